"""The Python warnings a run raised, kept in ``<run>/warnings.json`` for the report.

Warnings are still shown as usual (the filters in force decide which); each distinct one
(category, message, place) is also recorded once, with a count.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["WarningsLog", "capture_warnings", "read_warnings", "FILENAME"]

FILENAME = "warnings.json"
MAX_DISTINCT = 100  # a warning raised with a new message every step must not flood the file
MAX_MESSAGE = 2000


class WarningsLog:
    """Distinct warnings seen so far, written to ``path`` once one is set (see
    :func:`capture_warnings`)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str, int], dict[str, Any]] = {}
        self.path: Path | None = None
        self.dropped = 0

    def add(
        self, message: Warning | str, category: type[Warning], filename: str, lineno: int
    ) -> None:
        text = str(message)[:MAX_MESSAGE]
        key = (category.__name__, text, str(filename), int(lineno))
        if key in self.entries:
            self.entries[key]["count"] += 1
            return
        if len(self.entries) >= MAX_DISTINCT:
            self.dropped += 1
            return
        self.entries[key] = {
            "category": category.__name__,
            "message": text,
            "filename": str(filename),
            "lineno": int(lineno),
            "count": 1,
        }
        try:
            self.write()  # a new warning is on disk at once: a crash keeps it
        except OSError:
            pass  # never fail the code that warned; the final write reports a lasting fault

    def on_fit_start(self, state: Any) -> None:
        """As a callback of a run: write into its run directory (rank 0 only)."""
        from trainlab.train.distributed import is_main

        if state.run_dir is not None and is_main():
            self.attach(Path(state.run_dir) / FILENAME)

    def attach(self, path: str | Path) -> None:
        """Write to ``path`` from now on (and at once, with what was seen before)."""
        self.path = Path(path)
        self.write()

    def write(self) -> None:
        if self.path is None or not self.path.parent.is_dir():
            return
        from trainlab.tracking.rundir import write_json

        data: dict[str, Any] = {"warnings": list(self.entries.values())}
        if self.dropped:
            data["dropped"] = self.dropped
        write_json(self.path, data)


@contextmanager
def capture_warnings() -> Iterator[WarningsLog]:
    """Record the warnings shown inside the block (still showing them).

    >>> with capture_warnings() as log:
    ...     warnings.warn("lr looks high", stacklevel=1)                   # doctest: +SKIP
    >>> [w["message"] for w in log.entries.values()]                     # doctest: +SKIP
    ['lr looks high']
    """
    log = WarningsLog()
    # catch_warnings restores showwarning and the filters on exit, and resets the "once per
    # place" memory so that a warning already shown in this process is recorded for this run.
    with warnings.catch_warnings():
        show = warnings.showwarning

        def record(message: Any, category: Any, filename: str, lineno: int, *rest: Any) -> None:
            log.add(message, category, filename, lineno)
            show(message, category, filename, lineno, *rest)

        warnings.showwarning = record
        try:
            yield log
        except BaseException:
            try:
                log.write()
            except OSError:
                pass  # (a full disk) the error in flight already says what could not be written
            raise
        log.write()


def read_warnings(run_dir: str | Path) -> list[dict[str, Any]]:
    """The warnings a run recorded (``[]`` if none or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / FILENAME).read_text())
    except (OSError, ValueError):
        return []
    items = data.get("warnings") if isinstance(data, dict) else None
    return [w for w in items if isinstance(w, dict)] if isinstance(items, list) else []
