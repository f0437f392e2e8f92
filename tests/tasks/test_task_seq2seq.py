"""seq2seq: teacher forcing in training, greedy decoding in evaluation, padding ignored."""

from __future__ import annotations

import pytest
import torch
from task_support import records
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.seq2seq import Seq2SeqTask

REVERSE = """
name: reverse
seed: 0
data: {name: seq_task, task: reverse, seq_len: 6, vocab: 8, n_train: 1024, n_val: 128,
       n_test: 128, batch_size: 32}
model: {name: seq2seq, src_vocab: 8, tgt_vocab: 8, embed_dim: 16, hidden: 32, layers: 1,
        dropout: 0.0}
task: {name: seq2seq}
optim: {name: adam, lr: 0.01}
train: {epochs: 4, log_every: 8, precision: fp32, monitor: val/token_acc, checkpoint: false}
"""


def test_reverse_task_reaches_greedy_token_accuracy(run_recipe) -> None:
    summary, run = run_recipe(REVERSE)
    # Greedy decoding feeds back the model's own tokens: a model that only learned to read the
    # shifted target (a broken teacher-forcing shift) scores near chance (1/6) here.
    assert summary["test"]["test/token_acc"] > 0.9
    assert summary["test"]["test/seq_acc"] > 0.6
    first = next(r for r in records(run) if "train/token_acc" in r)
    assert first["train/token_acc"] < 0.5  # the figure moved: it is computed, not constant


class FixedLogits(nn.Module):
    """Returns preset logits (N, T, V) whatever the input; ``generate`` returns preset ids."""

    def __init__(self, logits: torch.Tensor, decoded: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)
        self.decoded = decoded
        self.seen_tgt_in: torch.Tensor | None = None

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        self.seen_tgt_in = tgt_in
        return self.logits

    def generate(self, src: torch.Tensor, bos_idx: int, max_len: int) -> torch.Tensor:
        return self.decoded[:, :max_len]


def test_padding_is_ignored_and_decoder_input_is_shifted() -> None:
    torch.manual_seed(0)
    y = torch.tensor([[5, 6, 7, 0], [4, 3, 0, 0]])  # 0 = padding
    logits = torch.randn(2, 4, 9)
    model = FixedLogits(logits, decoded=torch.tensor([[5, 6, 2, 8], [4, 3, 7, 7]]))
    task = Seq2SeqTask(bos_idx=1, pad_idx=0)
    loss = task.train_step(model, (y, y)).loss
    assert torch.equal(model.seen_tgt_in, torch.tensor([[1, 5, 6, 7], [1, 4, 3, 0]]))
    # Scores at padded target positions do not count.
    changed = logits.clone()
    changed[0, 3] += 10
    changed[1, 2:] -= 10
    model.logits.data = changed
    assert torch.allclose(task.train_step(model, (y, y)).loss, loss)
    # Evaluation scores greedy output: 4 of 5 real tokens right, one whole sequence right.
    metrics = task.metrics(9)
    out = task.eval_step(model, (y, y))
    metrics.update(out.preds, out.target)
    result = {k: float(v) for k, v in metrics.compute().items()}
    assert result["token_acc"] == pytest.approx(4 / 5)
    assert result["seq_acc"] == pytest.approx(1 / 2)


def test_model_without_generate_is_a_config_error() -> None:
    class NoGenerate(nn.Module):
        def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
            return torch.zeros(*tgt_in.shape, 5)

    y = torch.ones(2, 3, dtype=torch.long) * 2
    with pytest.raises(ConfigError, match="generate"):
        Seq2SeqTask().eval_step(NoGenerate(), (y, y))


def test_model_vocabulary_smaller_than_data_is_a_config_error() -> None:
    from trainlab.models import create_model

    model = create_model("seq2seq", src_vocab=8, tgt_vocab=6, hidden=8, embed_dim=4)
    task = Seq2SeqTask()
    task.metrics(8)  # the data has ids 0..7
    y = torch.full((2, 3), 7)
    with pytest.raises(ConfigError, match="model.tgt_vocab: 8"):
        task.train_step(model, (y, y))
