"""The exports' column-at-a-time CSV writes what csv.writer() writes, typed cells defused."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from accounts_app.views.csv_cells import FORMULA_STARTS, csv_text

# Text weighted towards what matters to CSV: separators, quotes, line breaks, a
# formula's first characters, NUL (the column search's own separator), non-ASCII.
tricky = st.text(
    alphabet=st.one_of(
        st.sampled_from([",", '"', "\r", "\n", "\x00", " ", "'", "a", "中", *FORMULA_STARTS]),
        st.characters(),
    ),
    max_size=8,
)
cell = st.one_of(st.none(), st.integers(), tricky)


def written_by_csv_writer(rows: list[tuple], typed: set[int]) -> str:
    """The reference: csv.writer(), with a quote before each typed cell a spreadsheet
    would run (a typed cell is text in the exports; any other is judged by its str())."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [_defused(value) if index in typed else value for index, value in enumerate(row)]
        for row in rows
    )
    return buffer.getvalue()


def _defused(value):
    if value is not None and str(value).startswith(FORMULA_STARTS):
        return "'" + str(value)
    return value


@given(
    st.integers(min_value=2, max_value=5).flatmap(
        lambda width: st.tuples(
            st.lists(st.tuples(*[cell] * width), max_size=6),
            st.sets(st.integers(min_value=0, max_value=width - 1)),
        )
    )
)
def test_it_writes_what_csv_writer_writes(rows_and_typed):
    rows, typed = rows_and_typed
    assert csv_text(zip(*rows, strict=True), typed) == written_by_csv_writer(rows, typed)


def test_a_typed_cell_that_would_run_as_a_formula_gets_a_quote_first():
    columns = [["=1+1", "-2", "@x", "ok"], ["=1+1", "-2", "@x", "ok"]]

    assert csv_text(columns, typed={0}) == "'=1+1,=1+1\r\n'-2,-2\r\n'@x,@x\r\nok,ok\r\n"


def test_a_formula_in_a_columns_first_cell_alone_is_defused_too():
    assert csv_text([["=1", "ok"], ["=2", "b"]], typed={0}) == "'=1,=2\r\nok,b\r\n"


def test_a_formula_start_after_a_nul_inside_a_cell_is_no_formula():
    # The column search joins cells with NUL: this one makes it look at each cell.
    assert csv_text([["a\x00=b"], ["c"]], typed={0}) == "a\x00=b,c\r\n"


def test_only_the_cells_holding_a_separator_quote_or_line_break_are_quoted():
    columns = [["a,b", 'say "hi"', "two\nlines", "cr\r", "plain"], [None, 1, "", " ", "x"]]

    assert csv_text(columns, typed=()) == (
        '"a,b",\r\n"say ""hi""",1\r\n"two\nlines",\r\n"cr\r", \r\nplain,x\r\n'
    )


def test_no_rows_write_nothing():
    assert csv_text([], typed=()) == ""
