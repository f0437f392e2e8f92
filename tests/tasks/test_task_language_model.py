"""language_model: perplexity below a unigram baseline; `trainlab sample RUN` writes text."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from trainlab.cli.main import main
from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.tasks.language_model import LanguageModelTask
from trainlab.tasks.sampling import sample_text

LM = """
name: lm
seed: 0
data: {name: text_lm, path: TEXT, seq_len: 32, batch_size: 16, val_fraction: 0.1,
       test_fraction: 0.1}
model: {name: transformer_lm, vocab_size: 40, dim: 32, depth: 1, heads: 2, mlp_dim: 64,
        dropout: 0.0, context: 32, tie_weights: false}
task: {name: language_model}
optim: {name: adam, lr: 0.01}
train: {epochs: 6, log_every: 8, precision: fp32, monitor: val/ppl, monitor_mode: min}
"""


def template_text(sentences: int) -> str:
    """Sentences from a 5×5×5 grammar: spelling and word order are learnable, choices not."""
    rng = random.Random(0)
    subj = ["the cat", "a dog", "my friend", "the teacher", "our robot"]
    verb = ["sees", "likes", "finds", "draws", "follows"]
    obj = ["a red ball", "the old tree", "some bread", "the blue door", "a small bird"]
    picks = [f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)}." for _ in range(sentences)]
    return " ".join(picks) + "\n"


def unigram_perplexity(text: str, val_fraction: float, test_fraction: float) -> float:
    """Perplexity on the test part of a model that knows only character frequencies."""
    n = len(text)
    train = text[: n - int(n * val_fraction) - int(n * test_fraction)]
    test = text[n - int(n * test_fraction) :]
    counts, total = Counter(train), len(train)
    nll = -sum(math.log(counts.get(c, 0.5) / total) for c in test) / len(test)
    return math.exp(nll)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    from trainlab.run import train_run

    root = tmp_path_factory.mktemp("lm")
    text = template_text(300)
    (root / "text.txt").write_text(text)
    recipe = root / "lm.yaml"
    recipe.write_text(LM.replace("TEXT", str(root / "text.txt")))
    summary = train_run(recipe, run_dir=root / "run", progress=False)
    return dict(summary), root / "run", text


def test_perplexity_beats_unigram_baseline(lm_run) -> None:
    summary, _, text = lm_run
    baseline = unigram_perplexity(text, 0.1, 0.1)  # ≈ 15 for this text
    ppl = summary["test"]["test/ppl"]
    assert ppl < 0.4 * baseline, (ppl, baseline)
    # The loss is the log of the perplexity: one figure computed two ways.
    assert summary["test"]["test/loss"] == pytest.approx(math.log(ppl), rel=1e-4)


def test_sample_command_continues_the_prompt(lm_run, capsys) -> None:
    _, run, text = lm_run
    argv = ["sample", str(run), "--prompt", "the cat ", "--tokens", "30", "--top-k", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    assert out.startswith("the cat ") and len(out) == len("the cat ") + 30
    assert set(out) <= set(text)  # decoded with the run's own vocabulary
    # The run's seed fixes the draw; another seed gives another text.
    assert sample_text(run, "the cat ", 30, top_k=3) == out
    assert sample_text(run, "the cat ", 30, top_k=3, seed=1) != out


def test_sample_user_errors_exit_2(lm_run, tmp_path, capsys) -> None:
    _, run, _ = lm_run
    assert main(["sample", str(run), "--tokens", "0"]) == 2
    assert main(["sample", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--tokens must be at least 1" in err and "not a run directory" in err


def test_model_vocabulary_smaller_than_data_is_a_config_error() -> None:
    model = create_model("transformer_lm", vocab_size=10, dim=8, depth=1, heads=2, mlp_dim=8,
                         context=4)  # fmt: skip
    task = LanguageModelTask()
    task.metrics(30)  # the data has 30 token ids
    x = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ConfigError, match="vocab_size: 30"):
        task.train_step(model, (x, x))
