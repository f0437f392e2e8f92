"""The data summary behind `trainlab data`: statistics, class counts, leakage, sample grid."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainlab.data.base import DATA
from trainlab.data.inspect import cross_split_duplicates, sample_grid, summarize


def test_summary_of_digits() -> None:
    m = DATA.get("digits")()
    m.setup("cpu")
    s = summarize(m)
    tr = s["splits"]["train"]
    assert tr["n"] == m.sizes["train"] and tr["x_shape"] == [1, 8, 8] and tr["x_dtype"] == "float32"
    assert sum(tr["class_counts"]) == tr["n"] and len(tr["class_counts"]) == 10
    assert abs(tr["mean"]) < 0.05 and tr["non_finite"] == 0  # standardised with train stats
    assert set(s["duplicates"]) == {"train&val", "train&test", "val&test"}


def test_duplicates_across_splits_are_counted() -> None:
    a = torch.arange(12.0).view(6, 2)
    dup = cross_split_duplicates({"train": a, "val": a[:2].clone(), "test": a[4:] + 100})
    assert dup == {"train&val": 2, "train&test": 0, "val&test": 0}


def test_sample_grid_png(tmp_path: Path) -> None:
    m = DATA.get("digits")()
    m.setup("cpu")
    out = sample_grid(m, tmp_path / "grid.png", n=8)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t = DATA.get("iris")()
    t.setup("cpu")
    with pytest.raises(ValueError, match="needs images"):
        sample_grid(t, tmp_path / "no.png")
