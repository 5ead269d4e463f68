"""CSV for the exports: what csv.writer() writes, a column at a time, typed cells defused.

csv.writer() looks at every character of every cell in C, and defusing a formula
was a Python call per cell: at a million events the two were most of an export's
time. Most of a batch's columns need neither (numbers, codes, hashes, names): one
search over the whole column shows it, and only a column where the search finds
something is looked at cell by cell. The output is csv.writer()'s with the default
dialect, byte for byte (tests/test_csv_cells.py).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

# Spreadsheets run a cell that starts with one of these as a formula; a
# comment or account name typed by a user must not become one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# What makes csv.writer()'s default dialect (QUOTE_MINIMAL) quote a cell: the
# delimiter, the quote character, or a character of the line terminator "\r\n".
QUOTED_IF_HOLDING = (",", '"', "\r", "\n")
_NEEDS_QUOTES = re.compile("[" + re.escape("".join(QUOTED_IF_HOLDING)) + "]")
# A column's cells are searched joined by NUL, so a formula's first character is
# one at the start or after a NUL. A NUL inside a cell can only make the search
# find too much: that column is then looked at cell by cell, which is exact.
_SEPARATOR = "\x00"
_FORMULA_AFTER_SEPARATOR = re.compile(_SEPARATOR + "[" + re.escape("".join(FORMULA_STARTS)) + "]")


def csv_text(columns: Iterable[Sequence], typed: Collection[int]) -> str:
    """The rows whose columns are given, as csv.writer().writerows() writes them,
    with a quote before each cell of a `typed` column that a spreadsheet would run.

    Rows have two cells or more (csv.writer() writes a lone empty cell as ""). A typed
    cell is text in the exports; any other would be judged by its str().
    """
    cells = [_column(column, index in typed) for index, column in enumerate(columns)]
    if not cells or not cells[0]:
        return ""
    return "\r\n".join(map(",".join, zip(*cells, strict=True))) + "\r\n"


def _column(column: Sequence, typed: bool) -> Sequence[str]:
    if set(map(type, column)) != {str}:
        # As csv.writer(): None is an empty cell, anything else its str().
        column = ["" if cell is None else str(cell) for cell in column]
    joined = _SEPARATOR.join(column)
    if typed and (joined.startswith(FORMULA_STARTS) or _FORMULA_AFTER_SEPARATOR.search(joined)):
        column = ["'" + cell if cell.startswith(FORMULA_STARTS) else cell for cell in column]
    # Substring tests, not a regular expression: they run at memchr's speed.
    if any(character in joined for character in QUOTED_IF_HOLDING):
        column = [_quoted(cell) if _NEEDS_QUOTES.search(cell) else cell for cell in column]
    return column


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'
