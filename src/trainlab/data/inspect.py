"""What ``trainlab data RECIPE`` shows: a summary of a set-up data module, and a sample grid.

>>> from trainlab.data.base import DATA
>>> m = DATA.get("iris")(); m.setup("cpu")
>>> summarize(m)["splits"]["train"]["n"]
90
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from trainlab.data.base import DataModule, Loader
from trainlab.data.fast import FastTensorLoader

__all__ = ["summarize", "split_stats", "cross_split_duplicates", "sample_grid"]


def _batches(module: DataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    # Every sample of the split as the model sees it (normalised), without augmentation or
    # the training loader's dropped last batch; file-backed modules go through their loader.
    splits = getattr(module, "splits", None)
    if isinstance(splits, dict) and split in splits:
        x, y = splits[split]
        tokens = x.dtype in (torch.int64, torch.int32)
        mean, std = getattr(module, "mean", None), getattr(module, "std", None)
        loader: Loader = FastTensorLoader(x, y, batch_size=4096, raw=tokens, mean=mean, std=std)
    else:
        loader = module.loader(split)
    xs, ys = zip(*loader.iter_epoch(0), strict=True)
    # Graph data: a batch is the whole graph and a split's node ids; its samples are the
    # features of those nodes.
    xs = tuple(x.node_features() if hasattr(x, "node_features") else x for x in xs)
    return torch.cat(xs).cpu(), torch.cat(ys).cpu()


def split_stats(x: torch.Tensor, y: torch.Tensor, num_classes: int | None) -> dict[str, Any]:
    """Shape, dtype, value range, mean/std and class counts of one split."""
    xf = x.double()
    out: dict[str, Any] = {
        "n": len(x), "x_shape": list(x.shape[1:]), "x_dtype": str(x.dtype).removeprefix("torch."),
        "y_shape": list(y.shape[1:]), "y_dtype": str(y.dtype).removeprefix("torch."),
        "min": float(xf.min()), "max": float(xf.max()), "mean": float(xf.mean()),
        "std": float(xf.std()) if x.numel() > 1 else 0.0,
        "non_finite": int((~torch.isfinite(xf)).sum()),
    }  # fmt: skip
    if num_classes is not None and not y.is_floating_point() and y.dim() == 1:
        out["class_counts"] = torch.bincount(y.long(), minlength=num_classes).tolist()
    return out


def _row_hashes(x: torch.Tensor) -> set[bytes]:
    flat = x.contiguous().view(len(x), -1).numpy()
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat}


def cross_split_duplicates(splits: dict[str, torch.Tensor]) -> dict[str, int]:
    """Samples of one split identical (byte for byte) to a sample of another: leakage.

    Keys ``"train&val"`` etc.; the count is of distinct duplicated rows.
    """
    hashes = {k: _row_hashes(v) for k, v in splits.items()}
    names = list(splits)
    return {
        f"{a}&{b}": len(hashes[a] & hashes[b]) for i, a in enumerate(names) for b in names[i + 1 :]
    }


def summarize(module: DataModule) -> dict[str, Any]:
    """Per-split statistics, cross-split duplicates and the module's own description."""
    data = {split: _batches(module, split) for split in module.sizes}
    return {
        "describe": module.describe(),
        "splits": {k: split_stats(x, y, module.num_classes) for k, (x, y) in data.items()},
        "duplicates": cross_split_duplicates({k: x for k, (x, _) in data.items()}),
    }


def sample_grid(module: DataModule, path: str | Path, split: str = "train", n: int = 16) -> Path:
    """A PNG grid of the first ``n`` samples of ``split`` with their labels (image data only)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    x, y = next(module.loader(split).iter_epoch(0))
    if x.dim() != 4:
        raise ValueError(f"sample_grid needs images (N, C, H, W); this data has {tuple(x.shape)}")
    x, y = x[:n].cpu().float(), y[:n].cpu()
    cols = min(8, len(x))
    rows = -(-len(x) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False)
    names = getattr(module, "classes", None)
    for ax, img, label in zip(axes.flat, x, y, strict=False):
        img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-8)  # display range 0..1
        if img.shape[0] not in (1, 3):  # e.g. two stacked image domains: side by side, grey
            img = torch.cat(list(img), dim=-1).unsqueeze(0)
        ax.imshow(
            img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[0] == 1 else None
        )
        lab = int(label) if not label.is_floating_point() else float(label)
        ax.set_title(str(names[lab]) if names and isinstance(lab, int) else str(lab), fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return out
