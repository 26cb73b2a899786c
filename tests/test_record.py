"""The grading record: one typed schema, written atomically, read with limits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cnngrader.core import record
from cnngrader.core.record import CellResult, Failure, Record, RecordError


def _sample() -> Record:
    return Record(student="ana", assignment="a1", sandboxed=True, cgroups=True, kernel="ok",
                  functions={"f": "cpu_limit", "g": "ok"}, function_notes={"f": "exceeded the 20 s CPU limit"},
                  limits_hit={"f": "cpu_limit"},
                  cells={"t1": CellResult(False, [Failure("wrong_shape", "the output has the wrong shape", "x (2, 3)")]),
                         "t2": CellResult(True)})


def test_round_trip(tmp_path: Path):
    """What save writes, load reads back equal, failures and all."""
    rec = _sample()
    path = record.save(rec, tmp_path)
    assert path == record.record_path("a1", "ana", tmp_path)
    back = record.load("a1", "ana", tmp_path)
    assert back == rec
    assert back.failures() == [("t1", Failure("wrong_shape", "the output has the wrong shape", "x (2, 3)"))]
    assert not list(path.parent.glob(".*.tmp"))


def test_update_changes_only_named_fields(tmp_path: Path):
    """update() keeps everything else and refuses fields the schema does not have."""
    record.save(_sample(), tmp_path)
    record.update("a1", "ana", tmp_path, retried_alone=True)
    back = record.load("a1", "ana", tmp_path)
    assert back.retried_alone is True and back.cells == _sample().cells
    with pytest.raises(AttributeError):
        record.update("a1", "ana", tmp_path, verdicts={})


def test_update_starts_a_record_when_none_exists(tmp_path: Path):
    """The batch can note a failure for a student whose autograde never wrote a record."""
    rec = record.update("a1", "bo", tmp_path, status="failed", failure="autograde failed (KeyError)")
    assert record.load("a1", "bo", tmp_path) == rec and rec.cells == {}


@pytest.mark.parametrize("data, why", [
    ([], "JSON object"),
    ({"student": "x", "assignment": "a"}, "schema None"),
    ({"schema": 1, "assignment": "a"}, "needs a student"),
    ({"schema": 1, "student": "x", "assignment": "a", "attention": "text"}, "wrong type"),
    ({"schema": 1, "student": "x", "assignment": "a", "cells": {"t": {"passed": "yes"}}}, "wrong type"),
    ({"schema": 1, "student": "x", "assignment": "a", "cells": {"t": {"passed": False, "failures": [{"code": 1}]}}},
     "a code, a message"),
])
def test_malformed_records_are_refused(data, why):
    """Every field is type-checked: a record of another shape is an error, not a crash later."""
    with pytest.raises(RecordError, match=why):
        Record.from_json(data)


def test_links_and_special_files_are_not_followed(tmp_path: Path):
    """A record path that is a symlink or a FIFO is unreadable, never followed or blocked on."""
    folder = tmp_path / "records"
    folder.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(_sample().to_json()))
    (folder / "link.json").symlink_to(secret)
    os.mkfifo(folder / "fifo.json")
    for name in ("link.json", "fifo.json"):
        with pytest.raises(RecordError, match="unreadable"):
            record.read(folder / name)


def test_oversized_records_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A record larger than the cap is refused without being parsed."""
    monkeypatch.setattr(record, "MAX_RECORD_BYTES", 100)
    path = record.save(_sample(), tmp_path)
    with pytest.raises(RecordError, match="sensible size"):
        record.read(path)


def test_load_all_reports_broken_files(tmp_path: Path):
    """load_all returns the good records by student id and says why each bad one was skipped."""
    record.save(_sample(), tmp_path)
    folder = record.record_path("a1", "ana", tmp_path).parent
    (folder / "zed.json").write_text("{nope")
    good, broken = record.load_all("a1", tmp_path)
    assert list(good) == ["ana"] and broken == {"zed": "grading record unreadable (JSONDecodeError)"}


def test_failure_labels():
    """Every code has words; exception codes read naturally."""
    assert record.failure_label("wrong_values") == "wrong values"
    assert record.failure_label("raised_IndexError") == "raised IndexError"
