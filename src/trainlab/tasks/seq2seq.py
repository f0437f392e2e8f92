"""Sequence-to-sequence: teacher forcing in training, greedy decoding in evaluation.

Batches are ``(src (N, S), y (N, T))`` token ids, e.g. ``seq_task`` copy/reverse/sort, where id 0
is padding and id 1 is reserved as the start token. Models follow the ``seq2seq`` /
``transformer`` contract: ``model(src, tgt_in) -> logits (N, T, V)`` with ``tgt_in`` the target
shifted right behind BOS, and ``model.generate(src, bos_idx, max_len) -> (N, max_len)``.

Training scores the next token given the *true* previous tokens (teacher forcing: every position
trains in one forward pass). Evaluation decodes from the model's own predictions, as at
deployment: greedily, or with ``decode: beam`` by beam search (``beam_size``, ``length_penalty``,
optional ``eos_idx``; :mod:`trainlab.tasks.beam`). Its metrics are token accuracy, whole-sequence
exact match and BLEU (torchmetrics), all ignoring padded target positions. The evaluation loss
stays teacher-forced cross-entropy, comparable with the training loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.beam import check_beam_options, seq2seq_beam
from trainlab.tasks.common import bare_model, shift_right, token_accuracy

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["Seq2SeqTask", "seq2seq"]

Batch = tuple[torch.Tensor, torch.Tensor]


class Seq2SeqTask:
    """Cross-entropy over target tokens (padding ignored); greedy decoding for metrics.

    >>> from trainlab.models import create_model
    >>> model = create_model("seq2seq", src_vocab=8, tgt_vocab=8, hidden=16, embed_dim=8)
    >>> task = Seq2SeqTask()
    >>> src = torch.randint(2, 8, (4, 5))
    >>> out = task.train_step(model, (src, src))
    >>> sorted(out.extras)
    ['token_acc']
    """

    def __init__(
        self,
        bos_idx: int = 1,
        pad_idx: int = 0,
        label_smoothing: float = 0.0,
        decode: Literal["greedy", "beam"] = "greedy",
        beam_size: int = 4,
        length_penalty: float = 0.0,
        eos_idx: int | None = None,
    ) -> None:
        if bos_idx == pad_idx:
            raise ConfigError("task.bos_idx: must differ from task.pad_idx")
        check_beam_options(decode, beam_size, length_penalty, "task")
        self.bos_idx, self.pad_idx, self.label_smoothing = bos_idx, pad_idx, label_smoothing
        self.decode, self.beam_size, self.length_penalty = decode, beam_size, length_penalty
        self.eos_idx = eos_idx
        self.num_classes: int | None = None  # the data's vocabulary, known once metrics are built

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
        # (N, T, V) against (N, T): one cross-entropy over every real target token.
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            y.flatten(),
            ignore_index=self.pad_idx,
            label_smoothing=smoothing,
        )

    def _check_vocab(self, model: nn.Module) -> None:
        # Before the forward pass: an id beyond an embedding table fails there, less clearly.
        net = bare_model(model)
        for key in ("src_vocab", "tgt_vocab"):
            size = getattr(net, key, None)
            if self.num_classes is not None and size is not None and size < self.num_classes:
                raise ConfigError(
                    f"task seq2seq: model.{key} is {size} but the data has {self.num_classes} "
                    f"token ids; set model.{key}: {self.num_classes}"
                )

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        src, y = batch
        self._check_vocab(model)
        logits = model(src, shift_right(y, self.bos_idx))  # (N, T, V), teacher forcing
        extras = {"token_acc": token_accuracy(logits.detach(), y, self.pad_idx)}
        return StepOutput(self._loss(logits, y, self.label_smoothing), extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        src, y = batch
        loss = self._loss(model(src, shift_right(y, self.bos_idx)), y, 0.0)
        net = bare_model(model)
        if not callable(getattr(net, "generate", None)):
            raise ConfigError(
                f"task seq2seq: model {type(net).__name__} has no generate(src, bos_idx, max_len);"
                " use seq2seq or transformer"
            )
        if self.decode == "beam":  # (N, T), BOS excluded; beam_size 1 is greedy
            pred = seq2seq_beam(net, src, self.bos_idx, y.shape[1], self.beam_size,
                                self.length_penalty, self.eos_idx, self.pad_idx)  # fmt: skip
        else:
            pred = net.generate(src, self.bos_idx, y.shape[1])  # (N, T) greedy, BOS excluded
        if self.num_classes is not None:
            # A model vocabulary larger than the data's may emit ids no metric has a bin for:
            # count them as wrong (the pad id never matches a real target token).
            pred = pred.masked_fill(pred >= self.num_classes, self.pad_idx)
        return StepOutput(loss, pred, y)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassExactMatch

        from trainlab.tasks.bleu import TokenBLEU

        if not num_classes:
            raise ConfigError("task seq2seq: needs token data with a vocabulary (num_classes)")
        self.num_classes = num_classes
        k = {"num_classes": num_classes, "ignore_index": self.pad_idx, "validate_args": False}
        return MetricCollection(
            {
                "token_acc": MulticlassAccuracy(average="micro", **k),
                "seq_acc": MulticlassExactMatch(**k),
                "bleu": TokenBLEU(self.pad_idx, self.eos_idx),
            }
        )


@register_task("seq2seq")
def seq2seq(
    *,
    bos_idx: int = 1,
    pad_idx: int = 0,
    label_smoothing: float = 0.0,
    decode: Literal["greedy", "beam"] = "greedy",  # how evaluation decodes
    beam_size: int = 4,  # hypotheses kept by decode: beam (1 is greedy)
    length_penalty: float = 0.0,  # GNMT α: 0 favours short outputs, 0.6-1 evens that out
    eos_idx: int | None = None,  # end token, for data with one: a hypothesis stops there
) -> Seq2SeqTask:
    """Encoder–decoder training with teacher forcing; decoded token accuracy, sequence accuracy
    and BLEU (``val/token_acc``, ``val/seq_acc``, ``val/bleu``) in evaluation.

    ``decode``: ``greedy`` or ``beam`` (``beam_size`` hypotheses, GNMT ``length_penalty`` α;
    ``eos_idx`` ends a hypothesis, for data with an end token).
    """
    return Seq2SeqTask(
        bos_idx, pad_idx, label_smoothing, decode, beam_size, length_penalty, eos_idx
    )
