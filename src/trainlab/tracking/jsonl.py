"""``metrics.jsonl``: one JSON object per logged step or epoch, keys ``split/name``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (importing trainlab.train here would be circular)
    from trainlab.train.state import TrainState

__all__ = ["JsonlLogger", "read_metrics", "truncate_after"]


class JsonlLogger:
    """Appends every ``on_log`` record to ``path`` (appending keeps history across resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.file: Any = None

    def on_fit_start(self, state: TrainState) -> None:
        self.file = open(self.path, "a", buffering=1)  # line-buffered: a crash loses ≤ 1 line

    def on_log(self, state: TrainState, record: dict[str, Any]) -> None:
        if self.file is None:
            self.on_fit_start(state)
        try:
            self.file.write(json.dumps(record) + "\n")
        except OSError as e:  # a write() error carries no file name: name it for the message
            raise OSError(e.errno, e.strerror, str(self.path)) from None

    def on_fit_end(self, state: TrainState) -> None:
        self.close()

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        try:
            self.close()
        except OSError:
            pass  # the error being raised already says what failed; this one adds nothing

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            try:
                file.close()
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(self.path)) from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_after(path: Path, step: int) -> None:
    """Drop records logged after ``step`` (a resumed run logs those steps again). Atomic."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [json.dumps(r) for r in read_metrics(path) if int(r.get("step", 0)) <= step]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)
