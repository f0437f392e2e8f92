"""Pre-flight rules on the data, as the model will see it (after transforms and normalisation).

Class balance, non-finite values, unnormalised inputs, constant features, labels outside
``num_classes``, exact and near duplicates between training and evaluation splits, tiny splits.
Statistics and exact duplicates come from :mod:`trainlab.data.inspect`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from trainlab.config.schema import Config
from trainlab.data.base import DATA, DataModule
from trainlab.doctor.findings import Finding
from trainlab.registry import keyword_options

__all__ = ["check_data", "near_duplicates"]

# Inputs whose training-split mean or spread is this far from (0, 1) are not standardised.
MAX_ABS_MEAN, MAX_STD = 3.0, 10.0
# Largest/smallest class count from which a class imbalance matters.
IMBALANCE_RATIO = 5.0
NEAR_MIN_FEATURES = 32  # inputs with fewer features are not checked for near duplicates
STATS_SAMPLE = 10_000


def _stats(x: torch.Tensor, y: torch.Tensor, num_classes: int | None) -> dict[str, Any]:
    from trainlab.data.inspect import split_stats

    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(x), generator=g)[:STATS_SAMPLE] if len(x) > STATS_SAMPLE else None
    out = split_stats(x if pick is None else x[pick], y, num_classes)  # y whole: class counts
    if pick is not None:
        out["non_finite"] = int((~torch.isfinite(x)).sum()) if x.is_floating_point() else 0
        out["n"] = len(x)
    return out


def check_data(cfg: Config, data: DataModule) -> list[Finding]:
    """Every data rule that fires for the set-up ``data`` of recipe ``cfg``."""
    from trainlab.data.inspect import _batches, cross_split_duplicates

    splits = {k: _batches(data, k) for k, n in data.sizes.items() if n > 0}
    if "train" not in splits:
        return []
    tokens = not splits["train"][0].is_floating_point()
    # Value statistics on up to STATS_SAMPLE samples per split (the full default training
    # split in float64 took 4.5 s here); non-finite values and class counts over all of it.
    stats = {k: _stats(x, y, data.num_classes) for k, (x, y) in splits.items()}
    found: list[Finding] = []
    found += _non_finite(stats)
    found += _labels(splits, data.num_classes)
    if not tokens:
        found += _normalisation(cfg, stats["train"], splits["train"][0][:STATS_SAMPLE])
        xs = {k: x for k, (x, _) in splits.items()}
        # A few coarse features coincide by chance (iris: 4 features, 43 % of test "near"):
        # near copies mean something for high-dimensional inputs only.
        wide = splits["train"][0][0].numel() >= NEAR_MIN_FEATURES
        near = near_duplicates(xs) if wide else {}
        found += _duplicates(cross_split_duplicates(xs), near, {k: len(x) for k, x in xs.items()})
    found += _balance(cfg, stats["train"].get("class_counts"))
    found += _tiny(data.sizes)
    return found


def _has_option(cfg: Config, key: str) -> bool:
    return key in keyword_options(DATA.get(cfg.data.name))


def _non_finite(stats: dict[str, dict[str, Any]]) -> list[Finding]:
    bad = {k: s["non_finite"] for k, s in stats.items() if s["non_finite"]}
    if not bad:
        return []
    where = ", ".join(f"{k}: {n}" for k, n in bad.items())
    return [Finding(
        "data.non_finite", "non_finite_data", "error", 1.0,
        f"the inputs hold NaN or infinite values ({where})",
        {"non_finite": bad},
        "a single NaN input makes the loss NaN; missing values must be filled or rows dropped",
        note="clean the data source (fill or drop the rows); csv sources name the row",
    )]  # fmt: skip


def _labels(splits: dict[str, tuple[torch.Tensor, torch.Tensor]], k: int | None) -> list[Finding]:
    if k is None:
        return []
    out = {}
    for split, (_, y) in splits.items():
        if y.is_floating_point() or y.dim() != 1 or not len(y):
            continue
        bad = int(((y < 0) | (y >= k)).sum())
        if bad:
            out[split] = {"outside": bad, "min": int(y.min()), "max": int(y.max())}
    if not out:
        return []
    return [Finding(
        "data.labels_out_of_range", "labels_out_of_range", "error", 1.0,
        f"labels outside 0..{k - 1}: " + ", ".join(f"{s} {v['outside']}" for s, v in out.items()),
        {"num_classes": k, "splits": out},
        "the model has fewer outputs than the data has classes (or labels are not 0-based)",
        note="set num_classes to the number of classes, or re-map the labels to 0..C-1",
    )]  # fmt: skip


def _normalisation(cfg: Config, train: dict[str, Any], x: torch.Tensor) -> list[Finding]:
    found = []
    mean, std = train["mean"], train["std"]
    if abs(mean) > MAX_ABS_MEAN or std > MAX_STD:
        fix = ["data.normalize=true"] if _has_option(cfg, "normalize") else []
        score = min(1.0, 0.8 + 0.05 * math.log10(max(std, abs(mean), 1.0)))
        found.append(Finding(
            "data.unnormalized", "unnormalized_inputs", "warning", score,
            f"inputs are not standardised: mean {mean:.3g}, std {std:.3g}, "
            f"range {train['min']:.3g}..{train['max']:.3g} (expected about 0 ± 1)",
            {"mean": mean, "std": std, "min": train["min"], "max": train["max"]},
            "large raw inputs (e.g. 0-255 pixels) give huge pre-activations: saturated units, "
            "an initial loss far above ln C and a learning rate that is too high for them",
            fix, note="" if fix else "standardise the inputs (subtract the training mean, "
            "divide by the standard deviation) in the data source",
        ))  # fmt: skip
    flat = x.reshape(len(x), -1).double()
    if len(x) > 1:
        constant = int((flat.std(dim=0) == 0).sum())
        if constant:
            share = constant / flat.shape[1]
            found.append(Finding(
                "data.constant_features", "constant_features", "info", 0.2 + 0.3 * share,
                f"{constant} of {flat.shape[1]} input features never change in training",
                {"constant": constant, "features": flat.shape[1]},
                "constant features carry no information (harmless, e.g. image borders)",
            ))  # fmt: skip
    return found


def _codes(x: torch.Tensor, quantum: float) -> torch.Tensor:
    return torch.round(x.reshape(len(x), -1).float() / quantum).to(torch.int64)


def _row_hashes(codes: torch.Tensor) -> list[tuple[int, int]]:
    """128-bit fingerprints of integer rows: two polynomial hashes in wrap-around int64
    arithmetic, vectorised (a Python hash per row took 2.7 s for the default recipe's 70k
    images)."""
    g = torch.Generator().manual_seed(12345)
    cols = []
    for _ in range(2):
        mult = torch.randint(1, 2**62, (codes.shape[1],), generator=g, dtype=torch.int64) | 1
        cols.append((codes * mult).sum(dim=1).tolist())
    return list(zip(*cols, strict=True))


def near_duplicates(splits: dict[str, torch.Tensor], quantum: float = 0.5) -> dict[str, int]:
    """Evaluation samples that equal a training sample once values are rounded to
    ``quantum`` (in standardised units, 0.5 = half a standard deviation): copies with small
    noise, re-encoded or slightly shifted intensities. Keys ``"train&val"`` …; the count is
    of evaluation samples.

    >>> near_duplicates({"train": torch.zeros(3, 2), "val": torch.full((2, 2), 0.1)})
    {'train&val': 2}
    """
    if "train" not in splits:
        return {}
    train = set(_row_hashes(_codes(splits["train"], quantum)))
    return {
        f"train&{k}": sum(h in train for h in _row_hashes(_codes(x, quantum)))
        for k, x in splits.items()
        if k != "train"
    }


def _duplicates(exact: dict[str, int], near: dict[str, int], n: dict[str, int]) -> list[Finding]:
    found = []
    for pair, count in exact.items():
        a, b = pair.split("&")
        near[pair] = max(near.get(pair, 0), count)
        if "train" not in (a, b) or not count:
            continue
        other = b if a == "train" else a
        share = count / max(n[other], 1)
        severe = count >= 3 and share >= 0.02
        found.append(Finding(
            "data.leakage", "leakage", "warning" if severe else "info",
            min(1.0, 0.75 + share), f"{count} {other} samples ({share:.1%}) are exact copies "
            "of training samples", {"pair": pair, "exact": count, "share": share},
            f"the {other} score rewards memorisation: {other} metrics overstate how well the "
            "model generalises",
            note="remove the copies from the evaluation split (or de-duplicate before splitting)",
        ))  # fmt: skip
    for pair, count in near.items():
        other = pair.split("&")[1]
        share = count / max(n.get(other, 1), 1)
        if count < 3 or share < 0.05 or exact.get(pair, 0) >= count:
            continue
        found.append(Finding(
            "data.near_duplicates", "leakage", "warning" if share >= 0.2 else "info",
            0.5 + 0.3 * share, f"{count} {other} samples ({share:.1%}) nearly equal a training "
            "sample (values rounded to 0.5 std)", {"pair": pair, "near": count, "share": share},
            "near copies between training and evaluation overstate generalisation",
        ))  # fmt: skip
    return found


def _balance(cfg: Config, counts: list[int] | None) -> list[Finding]:
    if not counts or len(counts) < 2:
        return []
    found = []
    empty = [i for i, c in enumerate(counts) if c == 0]
    if empty:
        found.append(Finding(
            "data.missing_class", "class_imbalance", "warning", 0.7,
            f"classes {empty} have no training sample", {"class_counts": counts},
            "a class never seen in training can never be predicted",
        ))  # fmt: skip
    present = [c for c in counts if c]
    ratio = max(present) / min(present)
    if ratio < IMBALANCE_RATIO:
        return found
    by_acc = cfg.train.monitor.endswith("acc")
    balanced = bool(cfg.data.options().get("balance"))
    fix = ["train.monitor=val/f1"] if by_acc else []
    fix += _monitor_fixes(cfg) if by_acc else []
    if not balanced and _has_option(cfg, "balance"):
        fix.append("data.balance=true")
    minority = min(present) / sum(counts)
    found.append(Finding(
        "data.imbalance", "class_imbalance", "warning" if by_acc and not balanced else "info",
        0.85, f"classes are imbalanced {max(present)}:{min(present)} ({ratio:.0f}:1); "
        f"the smallest class is {minority:.1%} of the training set"
        + (", and the run is judged by accuracy" if by_acc else ""),
        {"class_counts": counts, "ratio": ratio, "monitor": cfg.train.monitor},
        f"predicting the majority class alone scores {1 - minority:.1%} accuracy: accuracy "
        "hides a failing minority class; judge by F1 (macro) and balance the batches",
        fix,
    ))  # fmt: skip
    return found


def _monitor_fixes(cfg: Config) -> list[str]:
    return [
        f"callbacks.{i}.monitor=val/f1"
        for i, cb in enumerate(cfg.callbacks)
        if str(cb.options().get("monitor", "")).endswith("acc")
    ]


def _tiny(sizes: dict[str, int]) -> list[Finding]:
    small = {k: n for k, n in sizes.items() if 0 < n < 50}
    if not small:
        return []
    worst = min(small.values())
    return [Finding(
        "data.tiny_split", "tiny_split", "info", 0.3,
        "small splits: " + ", ".join(f"{k} {n}" for k, n in small.items()),
        {"sizes": sizes},
        f"with {worst} samples one example moves accuracy by {1 / worst:.1%}: differences "
        "between runs smaller than that are noise",
    )]  # fmt: skip
