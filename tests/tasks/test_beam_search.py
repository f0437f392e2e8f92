"""Beam search: beam 1 is greedy decoding (identical ids), wider beams find likelier sequences
(exactly the likeliest when the beam holds every prefix), the length penalty and the end token
behave as in GNMT, and the seq2seq task decodes with it and reports BLEU."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from task_support import records

from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.tasks.beam import beam_search, lm_beam, seq2seq_beam
from trainlab.tasks.bleu import TokenBLEU
from trainlab.tasks.seq2seq import Seq2SeqTask

SEQ2SEQ = {
    "seq2seq_gru": ("seq2seq", {"cell": "gru", "attention": "bahdanau"}),
    "seq2seq_lstm_dot": ("seq2seq", {"cell": "lstm", "attention": "dot", "layers": 2}),
    "transformer": ("transformer", {"dim": 32, "depth": 2, "heads": 4, "mlp_dim": 64}),
}


def _model(key: str, vocab: int = 12) -> torch.nn.Module:
    name, opts = SEQ2SEQ[key]
    torch.manual_seed(0)
    if name == "seq2seq":
        opts = {"embed_dim": 16, "hidden": 32, **opts}
    return create_model(name, src_vocab=vocab, tgt_vocab=vocab, **opts).eval()


def _seq_logprob(model: torch.nn.Module, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """log p(out | src) per sample, teacher-forced: (N,)."""
    tgt_in = torch.cat([torch.ones_like(out[:, :1]), out[:, :-1]], dim=1)  # BOS = 1
    with torch.no_grad():
        logp = F.log_softmax(model(src, tgt_in).float(), dim=-1)
    return logp.gather(-1, out.unsqueeze(-1)).squeeze(-1).sum(1)


@pytest.mark.parametrize("key", list(SEQ2SEQ))
def test_beam_one_is_greedy_decoding(key: str) -> None:
    model = _model(key)
    src = torch.randint(2, 12, (16, 7))
    greedy = model.generate(src, 1, 9)
    assert torch.equal(seq2seq_beam(model, src, 1, 9, beam_size=1), greedy)


def _sharpen(model: torch.nn.Module, head_gain: float = 10.0, embed_gain: float = 5.0):
    # Untrained outputs are near uniform and barely depend on the previous token: sharpen them
    # and strengthen that dependence, so that the likeliest first token can mislead greedy.
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.mul_(head_gain)
        model.tgt_embed.weight.mul_(embed_gain)
    return model


@pytest.mark.parametrize("key", list(SEQ2SEQ))
def test_a_beam_of_every_prefix_finds_the_likeliest_output(key: str) -> None:
    vocab, steps = 6, 3
    model = _sharpen(_model(key, vocab))
    src = torch.randint(2, vocab, (3, 5))
    found = seq2seq_beam(model, src, 1, steps, beam_size=vocab ** (steps - 1))
    every = torch.tensor(list(itertools.product(range(vocab), repeat=steps)))  # (V^T, T)
    for i in range(len(src)):
        scores = _seq_logprob(model, src[i : i + 1].expand(len(every), -1), every)
        assert _seq_logprob(model, src[i : i + 1], found[i : i + 1]) >= scores.max() - 1e-4
        assert torch.equal(found[i], every[scores.argmax()])


@pytest.mark.parametrize("key", list(SEQ2SEQ))
def test_wider_beams_find_likelier_sequences_on_average(key: str) -> None:
    model = _sharpen(_model(key), 5.0, 2.0)
    torch.manual_seed(1)
    src = torch.randint(2, 12, (32, 6))
    greedy = _seq_logprob(model, src, model.generate(src, 1, 6))
    beam = _seq_logprob(model, src, seq2seq_beam(model, src, 1, 6, beam_size=5))
    # Not for every sample (a beam can drop the prefix greedy keeps), but for most.
    assert beam.mean() > greedy.mean()
    assert int((beam > greedy + 1e-4).sum()) > 3 * int((beam < greedy - 1e-4).sum())


def test_language_model_beam_one_is_greedy() -> None:
    torch.manual_seed(0)
    lm = create_model("transformer_lm", vocab_size=20, dim=32, depth=2, heads=4, mlp_dim=64,
                      context=12).eval()  # fmt: skip
    prompt = torch.randint(0, 20, (4, 3))
    greedy = lm.generate(prompt, 15, top_k=1)  # only the likeliest token can be drawn
    assert torch.equal(lm_beam(lm, prompt, 15, beam_size=1), greedy)  # past the context, too
    wide = lm_beam(lm, prompt, 6, beam_size=4)
    assert wide.shape == (4, 9) and torch.equal(wide[:, :3], prompt)
    # A model table larger than the data's vocabulary: ids ≥ vocab are never generated.
    assert (greedy[:, 3:] >= 5).any()
    assert (lm_beam(lm, prompt, 15, beam_size=3, vocab=5)[:, 3:] < 5).all()


def _table_model(vocab: int, seed: int = 0):
    """next_logprobs depending on the last two tokens and the position: a fixed random table."""
    gen = torch.Generator().manual_seed(seed)
    table = F.log_softmax(torch.randn(8, vocab, vocab, vocab, generator=gen) * 2, dim=-1)

    def step(prefix: torch.Tensor) -> torch.Tensor:
        last2 = prefix[:, -2] if prefix.shape[1] > 1 else torch.zeros_like(prefix[:, -1])
        return table[prefix.shape[1], last2, prefix[:, -1]]

    return step


def test_a_beam_holding_every_prefix_finds_the_likeliest_sequence() -> None:
    vocab, steps = 3, 4
    step = _table_model(vocab)
    start = torch.tensor([[0], [1], [2]])
    found = beam_search(step, start, steps, beam_size=vocab ** (steps - 1))
    for row, first in zip(found, start[:, 0].tolist(), strict=True):
        best, best_lp = None, float("-inf")
        for seq in itertools.product(range(vocab), repeat=steps):
            full = torch.tensor([[first, *seq]])
            lp = sum(float(step(full[:, : t + 1])[0, full[0, t + 1]]) for t in range(steps))
            if lp > best_lp:
                best, best_lp = seq, lp
        assert row[1:].tolist() == list(best)


def test_length_penalty_and_end_token() -> None:
    # ids: 0 pad, 1 end, 2 'a'. p(end) = 0.4 at the start, then 0.4 after each 'a'.
    logp = torch.log(torch.tensor([1e-9, 0.4, 0.6]))

    def step(prefix: torch.Tensor) -> torch.Tensor:
        return logp.expand(len(prefix), 3)

    start = torch.full((1, 1), 3)  # a BOS id outside the table's choices
    raw = beam_search(step, start, 3, beam_size=3, length_penalty=0.0, eos_idx=1)
    assert raw[0, 1:].tolist() == [1, 0, 0]  # log 0.4 beats every longer sequence; pads follow
    long = beam_search(step, start, 3, beam_size=3, length_penalty=3.0, eos_idx=1)
    assert long[0, 1:].tolist() == [2, 2, 2]  # α = 3: (−1.53 / 2.37) beats (−0.92 / 1)


def test_task_decodes_with_beam_and_reports_bleu() -> None:
    model = _model("seq2seq_gru")
    src = torch.randint(2, 12, (8, 6))
    y = torch.randint(2, 12, (8, 6))
    greedy = Seq2SeqTask().eval_step(model, (src, y))
    beam1 = Seq2SeqTask(decode="beam", beam_size=1).eval_step(model, (src, y))
    assert torch.equal(beam1.preds, greedy.preds)
    metrics = Seq2SeqTask().metrics(12)
    metrics.update(y, y)
    assert float(metrics.compute()["bleu"]) == pytest.approx(1.0)


def test_token_bleu_drops_padding_and_what_follows_the_end() -> None:
    bleu = TokenBLEU(pad_idx=0, eos_idx=1, n_gram=2)
    pred = torch.tensor([[5, 6, 7, 1, 9, 9], [5, 6, 7, 8, 0, 0]])
    assert bleu._sentences(pred) == ["5 6 7", "5 6 7 8"]
    import torchmetrics.functional.text as tmf

    ref = torch.tensor([[5, 6, 7, 8, 0, 0], [5, 6, 7, 8, 0, 0]])
    expected = tmf.bleu_score(["5 6 7", "5 6 7 8"], [["5 6 7 8"], ["5 6 7 8"]], n_gram=2)
    assert float(bleu(pred, ref)) == pytest.approx(float(expected))


@pytest.mark.parametrize(
    ("opts", "match"),
    [({"decode": "sample"}, "task.decode"), ({"decode": "beam", "beam_size": 0}, "task.beam_size"),
     ({"decode": "beam", "length_penalty": -1.0}, "task.length_penalty")],
)  # fmt: skip
def test_bad_beam_options(opts: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Seq2SeqTask(**opts)


REVERSE = """
name: reverse
seed: 0
data: {name: seq_task, task: reverse, seq_len: 6, vocab: 8, n_train: 512, n_val: 64,
       n_test: 64, batch_size: 32}
model: {name: seq2seq, src_vocab: 8, tgt_vocab: 8, embed_dim: 16, hidden: 32, layers: 1,
        dropout: 0.0}
task: {name: seq2seq, decode: beam, beam_size: 3, length_penalty: 0.6}
optim: {name: adam, lr: 0.01}
train: {epochs: 2, log_every: 8, precision: fp32, checkpoint: false, tensorboard: false,
        report: false}
"""


def test_a_run_with_beam_decoding_reports_bleu(run_recipe) -> None:
    summary, run = run_recipe(REVERSE)
    bleu = [r["val/bleu"] for r in records(run) if "val/bleu" in r]
    assert len(bleu) == 2 and 0.0 <= bleu[0] <= 1.0 and 0.0 <= summary["test"]["test/bleu"] <= 1
    assert bleu[-1] > bleu[0]  # it learns, and BLEU follows


LM = """
name: lm
seed: 0
data: {name: text_lm, path: TEXT, seq_len: 16, batch_size: 16, val_fraction: 0.1,
       test_fraction: 0.1}
model: {name: transformer_lm, vocab_size: VOCAB, dim: 32, depth: 1, heads: 2, mlp_dim: 64,
        dropout: 0.0, context: 16}
task: {name: language_model, decode: beam, beam_size: 3, length_penalty: 0.5}
optim: {name: adam, lr: 0.01}
train: {epochs: 4, log_every: 8, precision: fp32, tensorboard: false, report: false}
"""


def test_sample_command_decodes_with_the_runs_beam(run_recipe, tmp_path, capsys) -> None:
    from trainlab.cli.main import main
    from trainlab.tasks.sampling import sample_text

    text = "the cat sees a red ball. a dog likes the old tree. " * 40
    (tmp_path / "t.txt").write_text(text)
    vocab = len(set(text)) + 2  # characters, padding and unknown: no id the data never has
    _, run = run_recipe(LM.replace("TEXT", str(tmp_path / "t.txt")).replace("VOCAB", str(vocab)))
    capsys.readouterr()
    assert main(["sample", str(run), "--prompt", "the ", "--tokens", "20"]) == 0
    by_task = capsys.readouterr().out.rstrip("\n")
    # The run's task.decode: beam (3, α 0.5) is the default; no sampling RNG is involved.
    assert by_task == sample_text(run, "the ", 20, beam_size=3, length_penalty=0.5, seed=7)
    sampled = {sample_text(run, "the ", 20, beam_size=0, seed=s) for s in range(3)}
    assert len(sampled) > 1 and by_task not in sampled  # --beam 0: sampling after all
    greedy = sample_text(run, "the ", 20, beam_size=1)
    assert greedy == sample_text(run, "the ", 20, beam_size=0, top_k=1)  # sampling from top-1
    assert main(["sample", str(run), "--beam", "-1"]) == 2
    assert "--beam must be ≥ 0" in capsys.readouterr().err
