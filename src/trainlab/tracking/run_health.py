"""End-of-run figures that need no callback: peak memory, and a loud word on a loss that blew up.

``peak_memory`` is what ``summary.json`` records under ``memory``; ``loss_warnings`` is checked
by ``trainlab.run`` after training (a run whose loss exploded still finishes, but says so, and
``summary.json`` keeps the warning under ``warnings``). ``trainlab doctor`` diagnoses more.
"""

from __future__ import annotations

import math
import resource
import sys
from typing import Any

import torch

__all__ = ["peak_memory", "loss_warnings", "task_loss_warnings"]

# A final training loss this many times its best value seen during the run: it blew up.
ROSE_FACTOR = 10.0
# Classification: a mean cross-entropy this many times log(K) (the loss of a uniform guess).
CHANCE_FACTOR = 5.0


def peak_memory(device: torch.device | str) -> dict[str, float]:
    """Peak resident memory of this process (MiB; everything it loaded, data included) and,
    on CUDA, the most GPU memory PyTorch's allocator held for tensors (MiB).

    >>> "peak_rss_mib" in peak_memory("cpu")
    True
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    rss_mib = rss / 2**20 if sys.platform == "darwin" else rss / 1024
    out = {"peak_rss_mib": round(rss_mib, 1)}
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        out["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["cuda_max_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    return out


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def task_loss_warnings(
    task: Any, history: list[dict[str, Any]], num_classes: int | None
) -> list[str]:
    """:func:`loss_warnings` where its rules mean something for ``task``: the chance-level rules
    (a uniform guess's loss ln K, accuracy 1/K) for classification only; none at all for tasks
    whose training loss rises by design (``loss_may_rise``: adversarial games, whose
    discriminator loss climbs as the generator improves; reinforcement learning, whose TD loss
    grows with the value estimates). A VAE's NELBO on 10-class digits is not compared with
    ln 10."""
    from trainlab.tasks.classification import ClassificationTask

    if getattr(task, "loss_may_rise", False):
        return []
    return loss_warnings(history, num_classes if isinstance(task, ClassificationTask) else None)


def loss_warnings(history: list[dict[str, Any]], num_classes: int | None) -> list[str]:
    """Warnings about a training loss that exploded, or a model that ended at chance accuracy
    (val/acc ≤ 1.5 / K), from the per-epoch ``history``; at most one.

    >>> loss_warnings([{"epoch": 1, "train/loss_epoch": 2.1}, {"epoch": 2,
    ...                "train/loss_epoch": 359816.0, "val/acc": 0.1}], 10)[0][:38]
    'training loss exploded: 359,816 at the'
    """
    losses = [(h.get("epoch"), _finite(h.get("train/loss_epoch"))) for h in history]
    losses = [(e, v) for e, v in losses if v is not None]
    if not losses:
        return []
    last_epoch, last = losses[-1]
    peak_epoch, peak = max(losses, key=lambda ev: ev[1])
    best = min(v for _, v in losses)
    acc = _finite(history[-1].get("val/acc"))
    chance = 1.0 / num_classes if num_classes and num_classes > 1 else None
    at_chance = acc is not None and chance is not None and acc <= 1.5 * chance
    limit = CHANCE_FACTOR * math.log(num_classes) if chance else math.inf
    reasons = []
    if last > limit:
        reasons.append(f"above {CHANCE_FACTOR:g}× the loss of a uniform guess "
                       f"({math.log(num_classes or 1):.2f})")  # fmt: skip
    if best > 0 and last > ROSE_FACTOR * best:  # a ratio means nothing for losses ≤ 0 (RL)
        reasons.append(f"{last / best:,.0f}× its lowest value ({best:.4g})")
    tail = f", val/acc {acc:.4f} (chance {chance:.4f})" if at_chance and chance else ""
    advice = ("; the learning rate is likely too high for this model (try a lower optim.lr, "
              "train.grad_clip, or batch norm; trainlab doctor RUN_DIR)")  # fmt: skip
    if reasons:
        return [f"training loss exploded: {_num(last)} at the end of epoch {last_epoch}, "
                f"{' and '.join(reasons)}{tail}{advice}"]  # fmt: skip
    if at_chance and peak > limit:  # blew up, then settled on a constant guess: a dead network
        return [f"training loss exploded to {_num(peak)} in epoch {peak_epoch} and the model "
                f"ended at chance accuracy{tail}{advice}"]  # fmt: skip
    if at_chance and chance:
        return [_chance_warning(last, acc or 0.0, chance, advice)]
    return []


def _chance_warning(last: float, acc: float, chance: float, advice: str) -> str:
    """The model ended at chance accuracy: worse than a uniform guess's loss, or no better."""
    uniform = -math.log(chance)
    if last > 1.5 * uniform:
        return (f"the model ended at chance accuracy (val/acc {acc:.4f}) with a training loss "
                f"of {_num(last)}, above a uniform guess's ({uniform:.2f}){advice}")  # fmt: skip
    return (f"the model ended at chance accuracy (val/acc {acc:.4f}, chance {chance:.4f}): it "
            "did not learn; check the learning rate and the initialisation (sigmoid and tanh "
            "nets: model.init=xavier_uniform); trainlab doctor RUN_DIR")  # fmt: skip


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3f}"
