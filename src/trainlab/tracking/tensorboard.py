"""TensorBoard event files for a run (``<run>/tb/``): scalars, histograms, graph, images.

A callback like any other (see ``trainlab.train.events``). It only reads the model and the
logged records: it never changes weights, modes or RNG state, so a run with it ends with the
same weights as a run without it.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.tracking.grads import StepGrads
from trainlab.train.state import TrainState

__all__ = ["TensorBoardLogger"]

# Record fields that are positions, not metrics (they become the x axis instead).
_POSITION_KEYS = ("step", "epoch")
# Models up to this many parameters have their weights before training copied at the start and
# written with the event file's creation, after the first step; larger ones are written at once.
SNAPSHOT_MAX = 20_000_000


class TensorBoardLogger:
    """Writes what a run logs to TensorBoard event files in ``log_dir``.

    - every numeric value of every ``on_log`` record, as a scalar at the record's ``step``
      (same keys as ``metrics.jsonl``: ``train/loss``, ``val/acc``, ``lr`` …);
    - histograms of every parameter (``weights/<name>``) and of its gradient as the optimizer
      used it (``grads/<name>``: accumulated, unscaled, clipped) every ``hist_every``
      optimizer steps, and of the weights before training starts;
    - the model graph, traced once on two samples of the first batch (``graph=False`` to skip;
      models that cannot be traced are skipped with a warning);
    - a grid of the first ``images`` inputs of the first batch when they look like images
      (N, C, H, W) with C in {1, 3}.

    >>> from trainlab import train_run                                      # doctest: +SKIP
    >>> train_run("recipes/synthetic.yaml", run_dir="runs/demo",
    ...           extra_callbacks=[TensorBoardLogger("runs/demo/tb")])     # doctest: +SKIP

    Then ``tensorboard --logdir runs/demo/tb --host 127.0.0.1``.
    """

    def __init__(
        self,
        log_dir: str | Path,
        *,
        hist_every: int = 100,
        graph: bool = True,
        images: int = 64,
        flush_secs: int = 30,
    ) -> None:
        if hist_every < 1:
            raise ValueError(f"hist_every must be >= 1, got {hist_every}")
        self.log_dir = Path(log_dir)
        self.hist_every, self.graph, self.images = hist_every, graph, images
        self.flush_secs = flush_secs
        self.writer: Any = None
        self._started = False  # between on_fit_start and close()
        self._purge: int | None = None
        self._pending: list[dict[str, Any]] = []  # on_log records that came before the writer
        self._initial: dict[str, torch.Tensor] | None = None  # the weights before training
        self._sample: torch.Tensor | None = None
        self._rest: tuple[torch.Tensor, ...] = ()  # further positional inputs (edge_index, …)
        self._hook: Any = None
        self._sample_written = False
        self._grads = StepGrads(hist_every)

    # -- events ------------------------------------------------------------------------------
    def on_fit_start(self, state: TrainState) -> None:
        # The writer (and the tensorboard import, ~0.25 s) waits for the end of the first step:
        # training starts without it. What comes before is kept: the weights before training
        # (a copy, for models up to SNAPSHOT_MAX parameters) and the first step's records.
        # On resume, purge_step hides events a crashed run wrote after its last checkpoint
        # (taken at state.step, whose records are kept), so curves continue without a
        # doubled tail.
        self._purge = state.step + 1 if state.step > 0 else None
        self._started, self._pending, self._initial = True, [], None
        if state.step == 0:
            params = dict(state.model.named_parameters())
            if sum(p.numel() for p in params.values()) <= SNAPSHOT_MAX:
                self._initial = {name: p.detach().clone() for name, p in params.items()}
            else:
                self._open()
                self._histograms(state.model, 0, grads=False)
        self._grads.start(state.model, state.step)
        self._sample_written = not (self.graph or self.images)
        if not self._sample_written:
            # Capture the first training batch as it enters the model: the callback API
            # does not hand batches to callbacks, and this costs one reference, no copy.
            self._hook = state.model.register_forward_pre_hook(self._capture)

    def on_batch_end(self, state: TrainState) -> None:
        if not self._started:
            return
        self._open()
        if not self._sample_written and self._sample is not None:
            self._write_sample(state.model, state.step)
        if state.step % self.hist_every == 0:
            self._histograms(state.model, state.step, grads=True)
        self._grads.advance(state.model, state.step)

    def on_log(self, state: TrainState, record: dict[str, Any]) -> None:
        if self.writer is None:
            if self._started:  # written when the writer opens
                self._pending.append({"step": state.step, **record})
            return
        self._scalars(record, int(record.get("step", state.step)))

    def _scalars(self, record: dict[str, Any], step: int) -> None:
        for key, value in record.items():
            if key in _POSITION_KEYS or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.flush()  # a TensorBoard watching the run sees each epoch promptly

    def on_fit_end(self, state: TrainState) -> None:
        self._open()  # a run that ended before its first step still gets its event file
        self.close()

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        with contextlib.suppress(Exception):  # the run's own error is the one to report
            self._open()
        self.close()

    def close(self) -> None:
        self._remove_hook()
        self._grads.close()
        self._started, self._pending, self._initial = False, [], None
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- pieces --------------------------------------------------------------------------------
    def _open(self) -> None:
        """Create the writer (once per fit) and write what waited for it."""
        if self.writer is not None or not self._started:
            return
        # Imported here: the tensorboard package is only needed by runs that write events.
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(
            str(self.log_dir), purge_step=self._purge, flush_secs=self.flush_secs
        )
        for name, weights in (self._initial or {}).items():
            self.writer.add_histogram(f"weights/{name}", _finite(weights), 0)
        pending, self._pending, self._initial = self._pending, [], None
        for record in pending:
            self._scalars(record, int(record["step"]))

    def _capture(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self._sample = args[0].detach()
            # Further positional tensors (a graph's edge index, a decoder's input) go to the
            # graph trace whole, with the whole first input: cut to 2 samples, a GNN's edge
            # index would name nodes that are no longer there.
            self._rest = tuple(a.detach() for a in args[1:] if isinstance(a, torch.Tensor))
        self._remove_hook()

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _histograms(self, model: nn.Module, step: int, *, grads: bool) -> None:
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", _finite(p), step)
            g = self._grads.grad(name, p) if grads else None
            if g is not None:
                self.writer.add_histogram(f"grads/{name}", _finite(g), step)

    def _write_sample(self, model: nn.Module, step: int) -> None:
        x = self._sample
        assert x is not None
        self._sample, self._sample_written = None, True
        if self.images and _looks_like_images(x):
            from torchvision.utils import make_grid

            n = min(self.images, len(x))
            grid = make_grid(
                x[:n].float().cpu(),
                nrow=int(math.ceil(math.sqrt(n))),
                normalize=True,
                scale_each=True,
            )
            self.writer.add_image("inputs/first_batch", grid, step)
        if self.graph:
            self._write_graph(model, (x, *self._rest) if self._rest else x[:2])

    def _write_graph(self, model: nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
        # add_graph traces in eval mode and puts the mode back: no dropout draw, no
        # batch-norm statistics update. Its own error printout is kept off stdout, which
        # belongs to the CLI's machine-readable last line.
        try:
            with (
                torch.no_grad(),
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                warnings.simplefilter("ignore")
                self.writer.add_graph(model, x)
        except Exception as exc:  # noqa: BLE001 - any tracing failure only loses the graph
            warnings.warn(
                f"TensorBoard: model graph skipped ({type(exc).__name__}: {exc})"[:300],
                stacklevel=2,
            )


def _looks_like_images(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.shape[1] in (1, 3) and x.is_floating_point()


def _finite(t: torch.Tensor) -> torch.Tensor:
    # Histograms of a diverged run must not crash the run: TensorBoard rejects NaN/inf bins.
    t = t.detach().float()
    return torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0) if not t.isfinite().all() else t
