"""Reading delimited text files (CSV/TSV) with errors that name the file, line and column.

Shared by the ``csv`` table source, text classification and time-series windows. Only the
standard ``csv`` module and numpy: no pandas dependency.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainlab.errors import DataError
from trainlab.registry import did_you_mean

__all__ = ["Table", "read_table", "numeric_column", "text_column", "is_missing", "read_text"]

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
    rows: list[list[str]]
    lines: list[int]

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


def read_table(path: str | Path, delimiter: str | None = None) -> Table:
    """Parse a delimited file with a header row. ``delimiter`` defaults to tab for ``.tsv``/
    ``.tab`` files and comma otherwise. Empty files and ragged rows are errors."""
    p = Path(path).expanduser()
    text = read_text(p)
    if delimiter is None:
        delimiter = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise DataError(f"{p}: empty file (expected a header row and data rows)")
    header = [h.strip() for h in header]
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not row or not any(c.strip() for c in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataError(
                f"{p}: line {reader.line_num}: {len(row)} fields, the header has {len(header)}"
            )
        rows.append(row)
        lines.append(reader.line_num)
    if not rows:
        raise DataError(f"{p}: no data rows after the header")
    return Table(str(p), header, rows, lines)


def numeric_column(table: Table, name: str, hint: str = "") -> np.ndarray:
    """Column ``name`` as float64 (N,), NaN where a cell is missing.

    A non-numeric or infinite cell is a :class:`DataError` naming file, line and column.
    """
    j = table.col(name)
    out = np.empty(len(table.rows), dtype=np.float64)
    for i, row in enumerate(table.rows):
        cell = row[j].strip()
        if is_missing(cell):
            out[i] = math.nan
            continue
        try:
            v = float(cell)
        except ValueError:
            raise DataError(
                f"{table.path}: line {table.lines[i]}, column '{name}': {cell!r} is not a number"
                f"{hint}"
            ) from None
        if not math.isfinite(v):
            raise DataError(
                f"{table.path}: line {table.lines[i]}, column '{name}': {cell!r} is not finite"
            )
        out[i] = v
    return out


def text_column(table: Table, name: str) -> list[str | None]:
    """Column ``name`` as stripped strings, None where a cell is missing."""
    j = table.col(name)
    return [None if is_missing(r[j]) else r[j].strip() for r in table.rows]
