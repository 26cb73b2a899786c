"""Measure the capstone's reference: test accuracy, training time and the loop/vectorised speed ratios.

``cnn measure --assignment train_cnn`` (this assignment's ``measure`` hook)
prints the numbers the course states: the accuracy of
``train(X_train, y_train, seed=0)`` on the held-out split (scored exactly as
the hidden test scores it), the training time (median of ``--runs``), and how
many times faster the reference ``conv_forward_fast`` and
``conv_backward_fast`` are than the first notebook's loops on the timing
input (median of ``--runs``). Run it with one BLAS thread, as grading does:
``OPENBLAS_NUM_THREADS=1 cnn measure --assignment train_cnn``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import h5py
import numpy as np

from cnngrader.core import codec, reference, spec

HERE = Path(__file__).resolve().parent


def _median_seconds(fn, *args, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnn measure", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    a = spec.load_file(HERE / "spec.toml")
    ns = reference.reference_namespace(a.notebook)
    with h5py.File(a.source_folder / "data" / "digits.h5", "r") as h5:
        X, y = h5["train/X"][()].astype(np.float64), h5["train/y"][()]
    times, params = [], None
    for _ in range(args.runs):
        start = time.perf_counter()
        params = ns["train"](X, y, 0)
        times.append(time.perf_counter() - start)
    scorer = a.resolve(a.scorers["test_accuracy"].call)
    accuracy = scorer(codec.loads(codec.dumps(params)), a.scorer_data(a.scorers["test_accuracy"]), a)
    print(f"test accuracy of train(X_train, y_train, seed=0): {accuracy:.4f}")
    print(f"training time: median {statistics.median(times):.1f} s of {args.runs} ({', '.join(f'{t:.1f}' for t in times)})")
    for gid in ("test_conv_forward_fast_speed", "test_conv_backward_fast_speed"):
        check = a.by_grade_id()[gid]
        case = check.cases[0].args
        _, _, name = check.baseline.partition(":")
        loop = _median_seconds(ns[name], *case, runs=args.runs)
        fast = _median_seconds(ns[check.function], *case, runs=max(5, args.runs))
        print(f"{check.function}: loop {loop:.3f} s, vectorised {fast * 1000:.2f} ms, {loop / fast:.0f} times faster")
    return 0
