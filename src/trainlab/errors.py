"""User-facing errors.

Every mistake a user can make (a wrong key, a bad file, a missing dataset) raises a subclass of
:class:`TrainlabError` with one line that says what is wrong and where. The CLI prints that line
to stderr and exits with code 2; from Python the exception propagates as usual.
"""

from __future__ import annotations

__all__ = ["TrainlabError", "ConfigError", "DataError", "CheckpointError"]


class TrainlabError(Exception):
    """A mistake in the user's input: shown as one line, exit code 2, no traceback."""


class ConfigError(TrainlabError, ValueError):
    """A recipe or override is invalid (unknown key, wrong type, unknown registry name)."""


class DataError(TrainlabError):
    """A dataset is missing, truncated or malformed."""


class CheckpointError(TrainlabError):
    """No valid checkpoint where one was asked for, or a checkpoint that does not load."""
