"""Plain-data encoding of call arguments and results.

Results cross from a sandboxed process to the trusted grader as an ``.npz``
file read with ``allow_pickle=False``: a JSON tree describing the structure
plus the arrays it names. Nothing in it can run code in the reader, and the
reader never sees the student's Python objects, so array subclasses with lying
comparisons or patched NumPy functions cannot influence a verdict.

This module must only import the standard library and NumPy: it is bound
read-only into the sandbox next to :mod:`cnngrader.worker`.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

TREE_KEY = "__tree__"
_SCALARS = (bool, int, float, str, type(None))


def encode(obj: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """Describe ``obj`` as JSON, moving arrays into ``arrays``."""
    if depth > 20:
        return {"other": "too deeply nested"}
    if isinstance(obj, np.ndarray | np.generic):
        key = f"a{len(arrays)}"
        arr = np.array(obj, copy=True)
        arr = np.asarray(arr).view(np.ndarray)  # drop any subclass
        if arr.dtype.kind not in "biuf":
            return {"other": f"array of dtype {arr.dtype}"}
        arrays[key] = arr
        kind = "ndarray" if isinstance(obj, np.ndarray) else "numpy_scalar"
        return {"a": key, "t": kind}
    if isinstance(obj, _SCALARS) and type(obj) in _SCALARS:
        return {"v": obj, "t": type(obj).__name__}
    if type(obj) is tuple:
        return {"tuple": [encode(x, arrays, depth + 1) for x in obj]}
    if type(obj) is list:
        return {"list": [encode(x, arrays, depth + 1) for x in obj]}
    if type(obj) is dict and all(type(k) is str for k in obj):
        return {"dict": {k: encode(v, arrays, depth + 1) for k, v in obj.items()}}
    return {"other": type(obj).__name__}


def decode(tree: Any, arrays: Any) -> Any:
    """Rebuild plain Python values from :func:`encode` output.

    Unknown objects come back as :class:`Opaque`, which compares unequal to
    everything and carries only the type name for messages.
    """
    if not isinstance(tree, dict):
        return Opaque("malformed result")
    if "a" in tree:
        arr = np.asarray(arrays[str(tree["a"])])
        return Leaf(arr, str(tree.get("t", "ndarray")))
    if "v" in tree:
        return tree["v"]
    if "tuple" in tree:
        return tuple(decode(x, arrays) for x in tree["tuple"])
    if "list" in tree:
        return [decode(x, arrays) for x in tree["list"]]
    if "dict" in tree:
        return {str(k): decode(v, arrays) for k, v in tree["dict"].items()}
    return Opaque(str(tree.get("other", "unknown")))


class Leaf:
    """An array from a result, with whether it was an ndarray or a NumPy scalar."""

    def __init__(self, array: np.ndarray, kind: str):
        self.array = array
        self.kind = kind

    def __repr__(self) -> str:
        return f"Leaf({self.kind}, shape={self.array.shape}, dtype={self.array.dtype})"


class Opaque:
    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def to_args(value: Any) -> Any:
    """Turn decoded call arguments back into ordinary objects."""
    if isinstance(value, Leaf):
        return value.array if value.kind == "ndarray" else value.array[()]
    if isinstance(value, tuple):
        return tuple(to_args(v) for v in value)
    if isinstance(value, list):
        return [to_args(v) for v in value]
    if isinstance(value, dict):
        return {k: to_args(v) for k, v in value.items()}
    return value


def dumps(payload: Any) -> bytes:
    """Serialise ``payload`` into ``.npz`` bytes."""
    arrays: dict[str, np.ndarray] = {}
    tree = encode(payload, arrays)
    arrays[TREE_KEY] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def loads(data: bytes | str) -> Any:
    """Read what :func:`dumps` wrote (bytes or a path); never unpickles."""
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    tree = json.loads(bytes(arrays.pop(TREE_KEY)).decode())
    return decode(tree, arrays)
