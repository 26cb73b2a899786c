"""Student-controlled text on its way to a terminal, a CSV file or a log.

Student ids, file names and notebook names can hold anything a file system
allows: bytes that are not UTF-8, terminal escape sequences, carriage
returns, right-to-left overrides. :func:`clean` makes such text inert and
printable; :func:`csv_cell` also defuses spreadsheet formulas.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories that must not reach a terminal or a spreadsheet: controls,
#: format characters (bidi overrides, zero-width joiners), surrogates, unassigned.
_UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def is_clean(text: str) -> bool:
    """True when ``text`` is valid UTF-8 (no surrogate escapes) and holds no control or format characters."""
    return all(unicodedata.category(ch) not in _UNSAFE for ch in text)


def clean(text: str, limit: int = 200) -> str:
    """``text`` with every unsafe character shown as an escape such as ``\\x1b`` or ``\\u202e``, cut to ``limit``."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in _UNSAFE:
            code = ord(ch)
            if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
                out.append(f"\\x{code - 0xDC00:02x}")
            elif code < 0x100:
                out.append(f"\\x{code:02x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    result = "".join(out)
    return result if len(result) <= limit else result[:limit - 1] + "…"


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet will run as a formula: numbers stay numbers, text is defused."""
    text = clean(str(value), limit=2000)
    if text and text[0] in "=+-@\t\r" and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
