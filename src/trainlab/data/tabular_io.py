"""Reading delimited text files (CSV/TSV) with errors that name the file, line and column.

Shared by the ``csv`` table source, text classification and time-series windows. Only the
standard ``csv`` module and numpy: no pandas dependency.

A bad row (wrong number of fields, a non-numeric or infinite cell in a numeric column, a label
its source rejects) is a :class:`DataError` naming file, line and column, unless the table was
read with ``on_error="skip"``: then :meth:`Table.bad` records it in ``Table.skipped`` (file line →
reason), the source drops the row (:meth:`Table.bad_rows`) and :func:`report_skipped` warns once.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from trainlab.errors import DataError
from trainlab.registry import did_you_mean

__all__ = [
    "Table", "read_table", "numeric_column", "text_column", "is_missing", "read_text",
    "report_skipped", "OnError",
]  # fmt: skip

OnError = Literal["raise", "skip"]

# Cells that mean "no value": what spreadsheets, R and the UCI files write.
MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


@dataclass
class Table:
    """A parsed file: ``header`` names, ``rows`` of raw string cells, ``lines[i]`` = the file line
    where row ``i`` starts (header is line 1), for error messages."""

    path: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skip_bad: bool = False  # data.on_error: skip
    skipped: dict[int, str] = field(default_factory=dict)  # file line → why its row was dropped
    skip_hint: str = ""  # appended to a bad row's error when the source has data.on_error

    def bad(self, line: int, detail: str, hint: str = "") -> None:
        """Row at file ``line`` is bad: raise ``"{path}: line {line}{detail}{hint}"`` as a
        :class:`DataError`, or, when skipping, remember it (the first reason per line wins)."""
        if not self.skip_bad:
            raise DataError(f"{self.path}: line {line}{detail}{hint}{self.skip_hint}")
        self.skipped.setdefault(line, detail.lstrip(",: "))

    def bad_rows(self) -> np.ndarray:
        """(N,) bool over ``rows``: True where :meth:`bad` recorded the row."""
        return np.array([ln in self.skipped for ln in self.lines], dtype=bool)

    def col(self, name: str, what: str = "column") -> int:
        """Index of column ``name``; a missing column is a :class:`DataError` listing them all."""
        if name not in self.header:
            raise DataError(
                f"{self.path}: no {what} '{name}'{did_you_mean(name, self.header)}; "
                f"columns: {', '.join(self.header)}"
            )
        return self.header.index(name)


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file; missing, unreadable or non-UTF-8 files are a DataError."""
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None
    try:
        return raw.decode("utf-8-sig")  # -sig: tolerate the BOM that spreadsheet exports add
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        msg = f"{p}: line {line}: not UTF-8 text (byte {e.start}); re-save it as UTF-8"
        raise DataError(msg) from None


def read_table(
    path: str | Path, delimiter: str | None = None, on_error: OnError | None = None
) -> Table:
    """Parse a delimited file with a header row. ``delimiter`` defaults to tab for ``.tsv``/
    ``.tab`` files and comma otherwise. An empty file is an error; a ragged row is one too,
    or (``on_error="skip"``) recorded in ``Table.skipped`` and left out of ``rows``."""
    p = Path(path).expanduser()
    text = read_text(p)
    if delimiter is None:
        delimiter = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise DataError(f"{p}: empty file (expected a header row and data rows)")
    table = Table(str(p), [h.strip() for h in header], skip_bad=on_error == "skip")
    if on_error is not None:  # the source has data.on_error (None: it has not; "raise")
        table.skip_hint = "; data.on_error: skip drops such rows"
    n = len(table.header)
    for row in reader:
        if not row or not any(c.strip() for c in row):
            continue  # blank line
        if len(row) != n:
            table.bad(reader.line_num, f": {len(row)} fields, the header has {n}")
            continue
        table.rows.append(row)
        table.lines.append(reader.line_num)
    if not table.rows:
        raise DataError(f"{p}: no data rows after the header" + _first_skipped(table))
    return table


def _first_skipped(table: Table) -> str:
    if not table.skipped:
        return ""
    line = min(table.skipped)
    return f" (all {len(table.skipped)} rows are bad; first: line {line}: {table.skipped[line]})"


def report_skipped(table: Table, usable: int) -> list[str]:
    """After a source dropped ``table``'s bad rows: ``"line N: reason"`` for each, in file order.

    Warns once naming how many and the first lines; with no ``usable`` row left it is a
    :class:`DataError` instead (nothing to train on).
    """
    items = [f"line {ln}: {why}" for ln, why in sorted(table.skipped.items())]
    if not items:
        return items
    if usable == 0:
        raise DataError(f"{table.path}: no usable rows" + _first_skipped(table))
    first = ", ".join(str(ln) for ln in sorted(table.skipped)[:5])
    more = ", …" if len(items) > 5 else ""
    warnings.warn(
        f"{table.path}: skipped {len(items)} bad row(s) (data.on_error: skip), lines "
        f"{first}{more}; first: {items[0]}",
        stacklevel=2,
    )
    return items


def numeric_column(table: Table, name: str, hint: str = "") -> np.ndarray:
    """Column ``name`` as float64 (N,), NaN where a cell is missing.

    A non-numeric or infinite cell is a bad row (:meth:`Table.bad`: a :class:`DataError` naming
    file, line and column, or NaN and a recorded row when the table skips bad rows).
    """
    j = table.col(name)
    out = np.empty(len(table.rows), dtype=np.float64)
    for i, row in enumerate(table.rows):
        cell = row[j].strip()
        out[i] = math.nan
        if is_missing(cell):
            continue
        try:
            v = float(cell)
        except ValueError:
            table.bad(table.lines[i], f", column '{name}': {cell!r} is not a number", hint)
            continue
        if not math.isfinite(v):
            table.bad(table.lines[i], f", column '{name}': {cell!r} is not finite")
            continue
        out[i] = v
    return out


def text_column(table: Table, name: str) -> list[str | None]:
    """Column ``name`` as stripped strings, None where a cell is missing."""
    j = table.col(name)
    return [None if is_missing(r[j]) else r[j].strip() for r in table.rows]
