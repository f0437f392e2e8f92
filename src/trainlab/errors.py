"""User-facing errors.

Every mistake a user can make (a wrong key, a bad file, a missing dataset) raises a subclass of
:class:`TrainlabError` with one line that says what is wrong and where. The CLI prints that line
to stderr and exits with code 2; from Python the exception propagates as usual.
"""

from __future__ import annotations

__all__ = [
    "TrainlabError", "ConfigError", "DataError", "CheckpointError", "TrainingDiverged",
    "RunInterrupted", "StorageError", "RunLocked",
]  # fmt: skip


class TrainlabError(Exception):
    """A mistake in the user's input: shown as one line, exit code 2, no traceback."""

    exit_code = 2


class ConfigError(TrainlabError, ValueError):
    """A recipe or override is invalid (unknown key, wrong type, unknown registry name)."""


class DataError(TrainlabError):
    """A dataset is missing, truncated or malformed."""


class CheckpointError(TrainlabError):
    """No valid checkpoint where one was asked for, or a checkpoint that does not load."""


class StorageError(TrainlabError):
    """A file of the run could not be written (disk full, I/O error, read-only folder); what
    was saved before is intact (exit code 4: free space, then ``--resume``)."""

    exit_code = 4


class RunLocked(TrainlabError):
    """Another live process is writing the same run directory."""


class TrainingDiverged(TrainlabError):
    """The loss became NaN/Inf and ``train.nan_policy`` is ``stop`` (exit code 3)."""

    exit_code = 3


class RunInterrupted(TrainlabError):
    """SIGINT/SIGTERM: the current step finished and a checkpoint was written; exit 128+signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
