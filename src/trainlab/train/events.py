"""The named events of the training loop, in the order they fire, and the callback protocol.

A callback is any object with some of these methods; each receives the :class:`TrainState`.
Callbacks steer the loop only through documented flags (``state.should_stop``), never by raising.

    on_fit_start
      on_epoch_start
        on_batch_end            after every optimizer step (gradients already freed: a callback
                                that needs them keeps its own reference, see TensorBoardLogger)
        on_log                  whenever metrics are logged (train every log_every steps, val, test)
      on_validation_end         after the epoch's validation metrics are in state.metrics
      on_epoch_end              state.epoch already counts the finished epoch
    on_fit_end                  also after an early stop
    on_exception                then the exception propagates
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["EVENTS", "Callback"]

EVENTS = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_end",
    "on_log",
    "on_validation_end",
    "on_epoch_end",
    "on_fit_end",
    "on_exception",
)


class Callback(Protocol):
    """Implement any subset of the ``on_*`` methods; all are optional.

    ``state_dict``/``load_state_dict``, when present, are saved in checkpoints so that
    callbacks with counters (early stopping, best-checkpoint tracking) resume exactly.
    """

    def on_fit_start(self, state: Any) -> None: ...
