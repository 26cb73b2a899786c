"""Plain-data encoding of call arguments and results, and the framing of the sandbox channels.

Everything that crosses the sandbox boundary is a *message*: a small JSON
header describing the structure (a tree of tuples, lists, dicts, scalars and
array references) followed by the raw bytes of the arrays it names. There is
no compression and no pickle, so a reader can bound its memory by the number
of bytes it accepts, and nothing in a message can run code in the reader.

:func:`loads` is the only way the trusted side turns bytes into values. It
checks, before allocating anything:

* the total size, and the header's size, against caps;
* every array's dtype against a short whitelist (booleans, integers and
  floats), its rank and dimensions against bounds, and its declared byte
  count against its shape and against the bytes actually present;
* the nesting depth of the tree, the number of nodes and the length of
  every string.

A violation raises :class:`Unreadable` with a reason from a fixed vocabulary.

This module imports only the standard library and NumPy: it is bound
read-only into the sandbox next to :mod:`cnngrader.sandbox.runner`.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

MAGIC = b"CNW1"
#: Default cap on one message, and on the JSON header inside it.
MAX_MESSAGE = 16 << 20
MAX_HEADER = 1 << 20
MAX_ARRAYS = 4096
MAX_NODES = 100_000
MAX_DEPTH = 24
MAX_NDIM = 8
MAX_STRING = 200
#: dtypes a result may use: bools, integers and floats, little-endian or byte-sized.
DTYPES = frozenset({"|b1", "|i1", "|u1", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8"})
_SCALARS = (bool, int, float, str, type(None))
#: Type names a result may report for an object it could not encode; anything
#: else is reported as a custom class, so no student-chosen name reaches a message.
KNOWN_TYPES = frozenset({
    "NoneType", "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "function", "generator",
    "int", "list", "map", "method", "module", "range", "set", "slice", "str", "tuple", "type", "zip",
    "builtin_function_or_method", "matrix", "memoryview", "ndarray", "object",
})


class Unreadable(ValueError):
    """A message that the trusted side refuses to decode; ``reason`` is from a fixed vocabulary."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------
# Trees: used by the wire format and by the instructor's HDF5 hidden data
# --------------------------------------------------------------------------

def encode(obj: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """Describe ``obj`` as a JSON tree, moving arrays into ``arrays``."""
    if depth > MAX_DEPTH:
        return {"other": "too_deep"}
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.array(obj, copy=True)
        arr = np.asarray(arr).view(np.ndarray)  # drop any subclass
        if arr.dtype.kind not in "biuf":
            return {"other": "ndarray"}
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        key = f"a{len(arrays)}"
        arrays[key] = arr
        kind = "ndarray" if isinstance(obj, np.ndarray) else "numpy_scalar"
        return {"a": key, "t": kind}
    if isinstance(obj, _SCALARS) and type(obj) in _SCALARS:
        if type(obj) is str:
            obj = obj[:MAX_STRING]
        return {"v": obj, "t": type(obj).__name__}
    if type(obj) is tuple:
        return {"tuple": [encode(x, arrays, depth + 1) for x in obj]}
    if type(obj) is list:
        return {"list": [encode(x, arrays, depth + 1) for x in obj]}
    if type(obj) is dict and all(type(k) is str for k in obj):
        return {"dict": {k[:MAX_STRING]: encode(v, arrays, depth + 1) for k, v in obj.items()}}
    name = type(obj).__name__
    return {"other": name if name in KNOWN_TYPES else "custom"}


class Leaf:
    """An array from a result, with whether it was an ndarray or a NumPy scalar."""

    def __init__(self, array: np.ndarray, kind: str):
        self.array = array
        self.kind = kind

    def __repr__(self) -> str:
        return f"Leaf({self.kind}, shape={self.array.shape}, dtype={self.array.dtype})"


class Opaque:
    """A value the sender could not encode; compares unequal to everything."""

    def __init__(self, type_name: str):
        self.type_name = type_name if type_name in KNOWN_TYPES else "custom"

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def decode(tree: Any, arrays: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Rebuild plain values from :func:`encode` output, within depth and size bounds."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise Unreadable("too many values")
    if depth > MAX_DEPTH:
        raise Unreadable("nested too deeply")
    if not isinstance(tree, dict) or len(tree) > 2:
        raise Unreadable("malformed structure")
    if "a" in tree:
        key = tree["a"]
        if not isinstance(key, str) or key not in arrays:
            raise Unreadable("malformed structure")
        kind = tree.get("t")
        if kind not in ("ndarray", "numpy_scalar"):
            raise Unreadable("malformed structure")
        arr = np.asarray(arrays[key])
        if kind == "numpy_scalar" and arr.ndim != 0:
            raise Unreadable("malformed structure")
        return Leaf(arr, kind)
    if "v" in tree:
        value, kind = tree["v"], tree.get("t")
        if kind not in ("bool", "int", "float", "str", "NoneType") or type(value).__name__ != kind:
            if not (kind == "float" and isinstance(value, int) and not isinstance(value, bool)):
                raise Unreadable("malformed structure")
            value = float(value)
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise Unreadable("malformed structure")
        return value
    if "tuple" in tree or "list" in tree:
        items = tree.get("tuple", tree.get("list"))
        if not isinstance(items, list):
            raise Unreadable("malformed structure")
        out = [decode(x, arrays, depth + 1, budget) for x in items]
        return tuple(out) if "tuple" in tree else out
    if "dict" in tree:
        items = tree["dict"]
        if not isinstance(items, dict) or any(len(k) > MAX_STRING for k in items):
            raise Unreadable("malformed structure")
        return {str(k): decode(v, arrays, depth + 1, budget) for k, v in items.items()}
    if "other" in tree:
        return Opaque(str(tree["other"]))
    raise Unreadable("malformed structure")


def to_args(value: Any) -> Any:
    """Turn decoded call arguments back into ordinary objects (writable arrays)."""
    if isinstance(value, Leaf):
        return np.array(value.array) if value.kind == "ndarray" else value.array[()]
    if isinstance(value, tuple):
        return tuple(to_args(v) for v in value)
    if isinstance(value, list):
        return [to_args(v) for v in value]
    if isinstance(value, dict):
        return {k: to_args(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

def dumps(payload: Any) -> bytes:
    """Serialise ``payload`` into one message."""
    arrays: dict[str, np.ndarray] = {}
    tree = encode(payload, arrays)
    table = {}
    chunks = []
    offset = 0
    for key, arr in arrays.items():
        raw = np.ascontiguousarray(arr).tobytes()
        table[key] = [arr.dtype.str, list(arr.shape), offset, len(raw)]
        chunks.append(raw)
        offset += len(raw)
    header = json.dumps({"tree": tree, "arrays": table}, allow_nan=True).encode()
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *chunks])


FLAT_MAGIC = b"CNF1"
_DT_CODES = {name: i for i, name in enumerate(sorted(DTYPES))}
_DT_NAMES = {i: name for name, i in _DT_CODES.items()}


def dumps_flat(values: tuple | list) -> bytes | None:
    """A compact message for a flat sequence of arrays and plain scalars (helper calls), or None.

    The general format spends most of its time on JSON; a reference helper
    is called hundreds of times per check with a few small arrays, so calls
    and replies use this one when they can. :func:`loads` reads both.
    """
    out = [FLAT_MAGIC, struct.pack("<H", len(values))]
    for value in values:
        if isinstance(value, np.ndarray | np.generic):
            arr = np.asarray(value).view(np.ndarray)
            if arr.dtype.kind not in "biuf":
                return None
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
            code = _DT_CODES.get(arr.dtype.str)
            if code is None or arr.ndim > MAX_NDIM:
                return None
            tag = b"a" if isinstance(value, np.ndarray) else b"g"
            out += [tag, struct.pack(f"<BB{arr.ndim}I", code, arr.ndim, *arr.shape), arr.tobytes()]
        elif type(value) is bool:
            out += [b"b", struct.pack("<?", value)]
        elif type(value) is int and -(1 << 63) <= value < (1 << 63):
            out += [b"i", struct.pack("<q", value)]
        elif type(value) is float:
            out += [b"f", struct.pack("<d", value)]
        elif value is None:
            out.append(b"n")
        else:
            return None
    return b"".join(out)


def _loads_flat(view: memoryview) -> tuple:
    (count,) = struct.unpack_from("<H", view, 4)
    pos = 6
    values = []
    try:
        for _ in range(count):
            tag = bytes(view[pos:pos + 1])
            pos += 1
            if tag in (b"a", b"g"):
                code, ndim = struct.unpack_from("<BB", view, pos)
                if code not in _DT_NAMES or ndim > MAX_NDIM or (tag == b"g" and ndim):
                    raise Unreadable("malformed structure")
                shape = struct.unpack_from(f"<{ndim}I", view, pos + 2)
                pos += 2 + 4 * ndim
                dtype = np.dtype(_DT_NAMES[code])
                nbytes = math.prod(shape) * dtype.itemsize
                if pos + nbytes > len(view):
                    raise Unreadable("an array is larger than the data sent")
                arr = np.frombuffer(view, dtype=dtype, count=math.prod(shape), offset=pos).reshape(shape)
                pos += nbytes
                values.append(Leaf(arr, "ndarray" if tag == b"a" else "numpy_scalar"))
            elif tag == b"b":
                values.append(bool(view[pos]))
                pos += 1
            elif tag == b"i":
                values.append(struct.unpack_from("<q", view, pos)[0])
                pos += 8
            elif tag == b"f":
                values.append(struct.unpack_from("<d", view, pos)[0])
                pos += 8
            elif tag == b"n":
                values.append(None)
            else:
                raise Unreadable("malformed structure")
    except (struct.error, IndexError):
        raise Unreadable("the result's description is too large or cut off") from None
    return tuple(values)


def _array_entry(key: Any, entry: Any, body: memoryview) -> np.ndarray:
    if not isinstance(key, str) or not isinstance(entry, list) or len(entry) != 4:
        raise Unreadable("malformed array table")
    dtype, shape, offset, nbytes = entry
    if dtype not in DTYPES:
        raise Unreadable("an array has a dtype that is not a number or a bool")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise Unreadable("an array has too many dimensions")
    if not all(type(d) is int and 0 <= d < 1 << 31 for d in shape):
        raise Unreadable("an array has an impossible shape")
    if not all(type(v) is int and v >= 0 for v in (offset, nbytes)):
        raise Unreadable("malformed array table")
    itemsize = np.dtype(dtype).itemsize
    count = math.prod(shape)
    if count * itemsize != nbytes or offset + nbytes > len(body):
        raise Unreadable("an array is larger than the data sent")
    arr = np.frombuffer(body, dtype=np.dtype(dtype), count=count, offset=offset)
    return arr.reshape(shape)


def loads(data: bytes | bytearray | memoryview, max_bytes: int = MAX_MESSAGE) -> Any:
    """Decode one message, or raise :class:`Unreadable`; never unpickles, never decompresses."""
    if len(data) > max_bytes:
        raise Unreadable("the result is larger than the size limit")
    view = memoryview(data)
    if len(view) >= 6 and bytes(view[:4]) == FLAT_MAGIC:
        return _loads_flat(view)
    if len(view) < 8 or bytes(view[:4]) != MAGIC:
        raise Unreadable("the result is not in the expected format")
    (header_len,) = struct.unpack("<I", view[4:8])
    if header_len > min(MAX_HEADER, len(view) - 8):
        raise Unreadable("the result's description is too large or cut off")
    try:
        header = json.loads(bytes(view[8:8 + header_len]).decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise Unreadable("the result's description is not valid") from None
    if not isinstance(header, dict) or set(header) != {"tree", "arrays"} or not isinstance(header["arrays"], dict):
        raise Unreadable("the result's description is not valid")
    if len(header["arrays"]) > MAX_ARRAYS:
        raise Unreadable("the result holds too many arrays")
    body = view[8 + header_len:]
    arrays = {}
    for key, entry in header["arrays"].items():
        arrays[key] = _array_entry(key, entry, body)
    try:
        return decode(header["tree"], arrays)
    except RecursionError:
        raise Unreadable("nested too deeply") from None


# --------------------------------------------------------------------------
# Frames on a byte stream: one kind byte, a 4-byte length, the payload
# --------------------------------------------------------------------------

FRAME_HEAD = struct.Struct("<cI")


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return FRAME_HEAD.pack(kind, len(payload)) + payload


class FrameReader:
    """Split a byte stream into frames, refusing any frame larger than ``max_frame``.

    Feed it whatever arrived (:meth:`feed`) and take complete frames
    (:meth:`frames`). ``error`` is set, and no more frames come out, once the
    stream declares an oversized frame.
    """

    def __init__(self, max_frame: int = MAX_MESSAGE):
        self.max_frame = max_frame
        self._buf = bytearray()
        self.error: str | None = None

    def feed(self, data: bytes) -> None:
        if self.error is None:
            self._buf += data

    def frames(self) -> list[tuple[bytes, bytes]]:
        out = []
        while self.error is None and len(self._buf) >= FRAME_HEAD.size:
            kind, length = FRAME_HEAD.unpack_from(self._buf)
            if length > self.max_frame:
                self.error = "the result is larger than the size limit"
                self._buf.clear()
                break
            if len(self._buf) < FRAME_HEAD.size + length:
                break
            out.append((kind, bytes(self._buf[FRAME_HEAD.size:FRAME_HEAD.size + length])))
            del self._buf[:FRAME_HEAD.size + length]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
