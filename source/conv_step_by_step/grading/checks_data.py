"""Build ``cnn_checks_data.json``: the visible checks' expected outputs and known-bug fingerprints.

``cnn checks-data`` (``make checks-data``, also run by
``make release``) reads the visible cases from the released
``cnn_checks.py``, runs the source notebook's reference solutions on them,
and writes the expected outputs. It also runs every single-bug version of a
function in the mutant catalogue (``mutants.toml`` here) on the same cases and records a fingerprint of
each wrong output with the family of bug that produced it: a visible check
shows a hint only when a student's output matches one of these exactly.
Fingerprints that two different families share are dropped, so a hint never
guesses. A test regenerates the file and fails if the committed one is stale.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from cnngrader.core import reference, spec
from cnngrader.tools import mutants

#: This assignment's grading folder.
HERE = Path(__file__).resolve().parent

#: Mutant name (or the part after "<function>__") -> the family of bug, a key of cnn_checks.HINTS.
FAMILIES = {
    "stride_forgotten": "stride", "stride_forgotten_horizontal": "stride",
    "loop_range_valid": "loop_range", "window_end_uses_stride": "window_end",
    "dA_assign_not_add": "overwrite", "max_assign_not_add": "overwrite", "average_assign_not_add": "overwrite",
    "unpad_negative_index": "unpad", "unpad_forgotten": "unpad_forgotten",
    "bias_inside_sum": "bias_inside", "bias_forgotten": "bias", "bias_channel_zero": "bias",
    "filter_channel_zero": "filter_channel",
    "caches_padded_input": "cache", "caches_output": "cache",
    "dW_last_example": "examples", "db_last_example": "examples", "dW_divided_by_m": "examples",
    "db_divided_by_m": "examples", "db_wrong_shape": "examples",
    "dA_missing_dZ": "missing_dz", "dW_missing_dZ": "missing_dz",
    "dW_from_unpadded": "unpadded_slice", "slices_from_unpadded": "unpadded_slice",
    "horizontal_uses_h": "height_width", "width_uses_height": "height_width",
    "pads_with_stride": "size", "size_float_division": "size", "size_pad_once": "size",
    "size_without_pad": "size", "ceil_output_size": "size",
    "dot_not_elementwise": "elementwise", "mean_not_sum": "mean", "returns_array": "scalar",
    "abs_max": "mask_max", "mask_of_min": "mask_max", "argmax_index": "mask_type",
    "mask_holds_values": "mask_type", "column_max": "mask_axis",
    "divided_by_n_H": "divide", "not_divided": "divide", "sum_not_product": "divide",
    "precedence": "precedence", "shape_transposed": "spread_shape",
    "pool_forward__average_divided_by_f": "mode", "pool_backward__average_divided_by_f": "average_spread",
    "average_not_divided": "average_spread", "distribute_shape_from_dA": "average_spread",
    "mask_times_dA_slice": "mask_times_slice",
    "mode_or_always_true": "mode", "mode_ignored": "mode", "mode_string_avg": "mode",
    "all_channels_window": "channel_window", "corners_swapped": "corners", "missing_batch_index": "batch",
    "padded_input": "padding",
    "edge_mode": "pad_zeros", "nonzero_constant": "pad_zeros", "height_only": "pad_axes",
    "pads_batch_axis": "pad_axes", "pads_channel_axis": "pad_axes", "one_sided": "pad_sides",
}


def family_of(mutant: str) -> str:
    """The bug family of a mutant file's stem, for example ``conv_forward__stride_forgotten`` -> ``stride``."""
    return FAMILIES.get(mutant) or FAMILIES[mutant.split("__", 1)[1]]


def load_checks(folder: Path | None = None) -> ModuleType:
    """The visible-checks module of the assignment, loaded from its file."""
    path = (folder or HERE.parent) / "cnn_checks.py"
    spec = importlib.util.spec_from_file_location("cnn_checks_build", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _outputs(name: str, out: Any) -> dict[str, Any]:
    """The parts of a function's return value that the visible checks compare, by key suffix."""
    if name in ("conv_forward", "pool_forward"):
        return {"": out[0]}
    if name == "conv_backward":
        return {f"/{p}": v for p, v in zip(("dA_prev", "dW", "db"), out, strict=True)}
    return {"": out}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        arr = np.asarray(value)
        return arr.astype(float).tolist() if arr.dtype != bool else arr.tolist()
    return float(value)


def build(folder: Path | None = None) -> dict:
    """Expected outputs and bug fingerprints for every visible case."""
    checks = load_checks(folder)
    ref = reference.load_reference(HERE.parent / f"{HERE.parent.name}.ipynb")
    data: dict[str, dict] = {"expected": {}, "bugs": {}}
    checks._data.cache = data  # the published conv_backward case reads conv_forward's expected output
    for name in spec.load_file(HERE / "spec.toml").function_names:
        for k, case in enumerate(checks.CASES[name]()):
            out = ref[name](*case.build(), **case.kwargs)
            for suffix, value in _outputs(name, out).items():
                data["expected"][f"{name}/{k}{suffix}"] = _plain(value)
    seen: dict[str, dict[str, set[str]]] = {}
    for mutant in mutants.catalogue():
        name = mutant.function
        namespace: dict[str, Any] = {"np": np, **ref}
        exec(compile(mutant.source, mutant.name, "exec"), namespace)  # noqa: S102 - the course's own fixtures
        for k, case in enumerate(checks.CASES[name]()):
            try:
                out = namespace[name](*case.build(), **case.kwargs)
                parts = _outputs(name, out)
            except Exception:  # noqa: BLE001 - a crash shows its own hint
                continue
            for suffix, value in parts.items():
                key = f"{name}/{k}{suffix}"
                fp = checks._fingerprint(value)
                if fp != checks._fingerprint(np.asarray(data["expected"][key])):
                    seen.setdefault(key, {}).setdefault(fp, set()).add(family_of(mutant.name))
    for key, prints in seen.items():
        unique = {fp: fams.pop() for fp, fams in prints.items() if len(fams) == 1}
        if unique:
            data["bugs"][key] = dict(sorted(unique.items()))
    return data


def write(folder: Path | None = None) -> Path:
    folder = folder or HERE.parent
    data = build(folder)
    out = folder / "cnn_checks_data.json"
    out.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    print(f"wrote {write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
