"""`trainlab sample` on a language model whose table is larger than the data's vocabulary:
sampling (like the beam) never draws an id the data's decoder does not know."""

from __future__ import annotations

import torch

from trainlab.cli.main import main
from trainlab.models import create_model
from trainlab.tasks.sampling import sample_text

LM = """
name: lm_big_table
seed: 0
data: {name: text_lm, path: TEXT, seq_len: 16, batch_size: 16, val_fraction: 0.1,
       test_fraction: 0.1}
model: {name: transformer_lm, vocab_size: 400, dim: 16, depth: 1, heads: 2, mlp_dim: 32,
        dropout: 0.0, context: 16, tie_weights: false}
task: {name: language_model}
optim: {name: adam, lr: 0.01}
train: {epochs: 1, max_steps: 2, log_every: 1, precision: fp32, tensorboard: false,
        report: false, monitor: val/ppl, monitor_mode: min}
"""


def test_generate_draws_only_ids_below_vocab() -> None:
    torch.manual_seed(0)
    model = create_model("transformer_lm", vocab_size=50, dim=16, depth=1, heads=2, mlp_dim=32,
                         context=8).eval()  # fmt: skip
    prompt = torch.zeros(64, 1, dtype=torch.long)
    free = model.generate(prompt, 6)
    assert (free >= 5).any()  # untrained: without the limit, high ids are drawn
    limited = model.generate(prompt, 6, vocab=5, top_k=3)
    assert limited.shape == (64, 7) and int(limited.max()) < 5


def test_sample_with_a_larger_table_than_the_vocabulary(run_recipe, tmp_path, capsys) -> None:
    text = "the cat sees a red ball. a dog likes the old tree. " * 20
    (tmp_path / "t.txt").write_text(text)
    _, run = run_recipe(LM.replace("TEXT", str(tmp_path / "t.txt")))
    # ~2 % of the 400 ids are characters of the text: an untrained model draws the others
    # almost always, and their decoding used to fail with IndexError.
    out = sample_text(run, "the ", 60, beam_size=0, seed=3).replace("<unk>", "?")
    # (drawn padding ids are dropped from the text: at most 60 characters follow the prompt)
    assert out.startswith("the ") and 30 < len(out) <= 64 and set(out) <= set(text) | {"?"}
    capsys.readouterr()
    assert main(["sample", str(run), "--prompt", "a ", "--tokens", "30", "--beam", "0"]) == 0
    line = capsys.readouterr().out.rstrip("\n").splitlines()[-1].replace("<unk>", "?")
    assert 10 < len(line) <= 32 and set(line) <= set(text) | {"?"}  # <unk> is in the vocabulary
