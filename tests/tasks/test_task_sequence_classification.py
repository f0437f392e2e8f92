"""Sequence classification: `classification` over token sequences (text_csv + GRU).

The committed reviews need word order: "not" flips a review's polarity, which a model blind to
order (bag of words) cannot represent for every adjective.
"""

from __future__ import annotations

from task_support import REPO

TEXT = f"""
name: reviews
seed: 0
data: {{name: text_csv, path: {REPO / "recipes/data/reviews.csv"}, max_len: 12, batch_size: 16}}
model: {{name: gru, vocab_size: 64, embed_dim: 16, hidden: 32}}
task: {{name: classification}}
optim: {{name: adam, lr: 0.01}}
train: {{epochs: 12, log_every: 10, precision: fp32}}
"""


def test_gru_classifies_reviews_with_negation(run_recipe) -> None:
    summary, _ = run_recipe(TEXT)
    negated = summary["test"]["test/acc"]
    assert negated > 0.9, summary["test"]  # classes are balanced: chance ≈ 0.5
