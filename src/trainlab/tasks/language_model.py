"""Language modelling: next-token cross-entropy, perplexity in evaluation.

Batches are ``(x (N, T), y (N, T))`` token blocks from ``text_lm``, ``y`` being ``x`` shifted by
one token; the model (``transformer_lm``) returns logits (N, T, V) where position t has seen
tokens ≤ t only. Perplexity = exp(mean cross-entropy per token): the number of equally likely
tokens the model is, on average, choosing between. ``trainlab sample RUN`` generates text from
a trained run (:func:`trainlab.tasks.sampling.sample_text`): by sampling, or, with the task's
``decode: beam`` (or ``--beam K``), the likeliest continuation found by beam search
(:mod:`trainlab.tasks.beam`; ``beam_size: 1`` is greedy decoding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.beam import check_beam_options
from trainlab.tasks.common import bare_model

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["LanguageModelTask", "language_model"]

Batch = tuple[torch.Tensor, torch.Tensor]


class LanguageModelTask:
    """Cross-entropy over every target token; ``val/ppl`` from torchmetrics' Perplexity.

    >>> from trainlab.models import create_model
    >>> model = create_model("transformer_lm", vocab_size=10, dim=16, depth=1, heads=2,
    ...                      mlp_dim=32, context=8)
    >>> x = torch.randint(0, 10, (2, 8))
    >>> LanguageModelTask().train_step(model, (x, x.roll(-1, 1))).loss.shape
    torch.Size([])
    """

    def __init__(
        self,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        decode: str = "sample",
        beam_size: int = 4,
        length_penalty: float = 0.0,
    ) -> None:
        # -100 is cross_entropy's "ignore nothing real" default: text_lm blocks have no padding.
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.label_smoothing = label_smoothing
        if decode != "sample":  # how `trainlab sample` generates: sampling, or a beam search
            check_beam_options(decode, beam_size, length_penalty, "task")
        self.decode, self.beam_size, self.length_penalty = decode, beam_size, length_penalty
        self.vocab: int | None = None  # the data's vocabulary size, known once metrics are built

    def _logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # Checked before the forward pass, where an id beyond the embedding table fails less
        # clearly; sizes are host metadata (no sync).
        size = getattr(bare_model(model), "vocab_size", None)
        if self.vocab is not None and size is not None and size < self.vocab:
            raise ConfigError(
                f"task language_model: model.vocab_size is {size} but the data's vocabulary "
                f"has {self.vocab} tokens; set model.vocab_size: {self.vocab}"
            )
        return model(x)  # (N, T, V)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            y.flatten(),
            ignore_index=self.ignore_index,
            label_smoothing=smoothing,
        )

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        return StepOutput(self._loss(self._logits(model, x), y, self.label_smoothing))

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        logits = self._logits(model, x).float()
        return StepOutput(self._loss(logits, y, 0.0), logits, y)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.text import Perplexity

        self.vocab = num_classes
        ignore = None if self.ignore_index == -100 else self.ignore_index
        return MetricCollection({"ppl": Perplexity(ignore_index=ignore)})


@register_task("language_model")
def language_model(
    *,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    decode: Literal["sample", "greedy", "beam"] = "sample",  # how `trainlab sample` generates
    beam_size: int = 4,  # hypotheses kept by decode: beam
    length_penalty: float = 0.0,  # GNMT α of the beam: 0 favours short continuations
) -> LanguageModelTask:
    """Next-token prediction over (N, T) blocks; ``val/ppl`` is the perplexity.
    ``ignore_index``: a token id never scored as a target (e.g. padding), default none.
    ``decode``: how ``trainlab sample`` continues a prompt: ``sample`` (temperature, top-k),
    ``greedy``, or ``beam`` (``beam_size`` hypotheses, GNMT ``length_penalty`` α)."""
    return LanguageModelTask(ignore_index, label_smoothing, decode, beam_size, length_penalty)
