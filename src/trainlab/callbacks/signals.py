"""Graceful stop on SIGINT/SIGTERM: finish the step, checkpoint, exit with 128 + signal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from trainlab.train.state import TrainState

__all__ = ["SignalStop"]


class SignalStop:
    """Turns the first SIGINT/SIGTERM into ``state.should_stop``; a second SIGINT interrupts
    at once (KeyboardInterrupt). The loop then ends after the current optimizer step and the
    checkpoint callback saves the exact position (``on_fit_end``), so ``--resume`` continues
    bit for bit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.state: TrainState | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self.state = state
        if self.signum is not None:  # arrived while the run was being set up
            self._stop()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        self._stop()

    def _stop(self) -> None:
        if self.state is not None and self.signum is not None:
            self.state.should_stop = True
            self.state.stop_reason = f"stopped by {signal.Signals(self.signum).name}"

    @contextmanager
    def installed(self) -> Iterator[SignalStop]:
        """Install the handlers for the duration of the block (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
