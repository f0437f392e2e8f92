"""The batch-size finder: the largest training batch that fits a memory budget, the throughput
at each size tried, and the recipe's learning rate scaled to it.

Memory and throughput are measured exactly as ``trainlab analyze`` measures them
(:func:`trainlab.analyze.sweep.sweep` on the recipe's own model, optimizer, precision and
batches): on CUDA the allocator's peak, with an out-of-memory error caught and the sizes between
the last fit and the failure bisected; on the CPU the estimate parameters + gradients +
optimizer state + saved activations, beside the measured growth of the peak RSS.

The learning rate for a batch ``B`` instead of the recipe's ``B0`` follows two rules of thumb:
linear (Goyal et al., 2017: ``lr · B/B0``, for SGD) and square root (``lr · √(B/B0)``, often
better for Adam-type optimizers). Both are printed; neither is a guarantee.

>>> res = find_batch_size("recipes/synthetic.yaml", memory=4.0)   # doctest: +SKIP
>>> res.largest, res.largest_how                                  # doctest: +SKIP
(512, 'at least')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError

__all__ = ["BatchSizeResult", "find_batch_size", "print_result", "scaled_lr"]

GIB = 1 << 30


@dataclass
class BatchSizeResult:
    """The sizes tried (``rows``: batch, training samples/s, memory bytes), the largest that
    fits ``budget`` bytes and how that was established, and the scaled learning rates."""

    recipe: str
    device: str
    recipe_batch: int
    recipe_lr: float | None
    budget: int | None
    rows: list[dict[str, Any]]
    largest: int | None
    largest_how: str
    stopped: str
    memory_how: str
    lr_linear: float | None = None  # the recipe's LR scaled to ``largest``
    lr_sqrt: float | None = None
    fastest: int | None = None  # the size with the highest training throughput that fits
    # {batch: [linear, sqrt]} for the largest and the fastest sizes
    scaled: dict[int, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scaled_lr(lr: float, batch: int, base_batch: int) -> tuple[float, float]:
    """``(linear, square_root)`` scaling of ``lr`` from ``base_batch`` to ``batch``.

    >>> scaled_lr(0.1, 1024, 256)
    (0.4, 0.2)
    """
    ratio = batch / base_batch
    return lr * ratio, lr * math.sqrt(ratio)


def find_batch_size(
    recipe: str | Path,
    overrides: list[str] | None = None,
    *,
    memory: float | None = None,
    max_batch: int = 4096,
    time_limit: float = 60.0,
    min_time: float = 0.2,
    out: str | Path | None = None,
) -> BatchSizeResult:
    """Sweep batch sizes 1, 2, 4 … ``max_batch`` on the recipe's training step until the
    memory budget (``memory`` GiB, default the device's free memory) or the time limit.
    Each size is timed by repeated steps for at least ``min_time`` seconds (the median is
    kept, so a busy machine disturbs it less)."""
    from trainlab.analyze.memory import available_memory
    from trainlab.analyze.sweep import batch_sizes, sweep
    from trainlab.analyze.target import recipe_target
    from trainlab.config.load import load_config

    if memory is not None and memory <= 0:
        raise ConfigError(f"batch-size --memory: must be a positive number of GiB, got {memory}")
    if max_batch < 1:
        raise ConfigError(f"batch-size --max-batch: must be ≥ 1, got {max_batch}")
    cfg = load_config(recipe, overrides)
    target = recipe_target(recipe, overrides or [])
    n_train = _train_size(target, cfg)
    notes = []
    if n_train is not None and n_train < max_batch:
        notes.append(f"sizes capped at the training split's {n_train} samples")
        max_batch = n_train
    budget = int(memory * GIB) if memory is not None else available_memory(target.device)
    res = sweep(target, batch_sizes(max_batch), budget=budget, time_limit=time_limit,
                min_time=min_time)  # fmt: skip
    rows = [{"batch": r.batch, "train_samples_per_s": r.train_per_s, "memory": r.memory,
             "measured": r.measured} for r in res.rows]  # fmt: skip
    lr = cfg.optim.options().get("lr")
    base = int(cfg.data.options().get("batch_size", target.batch_size))
    result = BatchSizeResult(
        recipe=str(recipe), device=str(target.device), recipe_batch=base,
        recipe_lr=float(lr) if isinstance(lr, (int, float)) else None, budget=budget,
        rows=rows, largest=res.largest_fit, largest_how=res.largest_how, stopped=res.stopped,
        memory_how=res.memory_how, notes=notes,
    )  # fmt: skip
    fitting = [r for r in rows if budget is None or r["memory"] <= budget]
    if fitting:
        result.fastest = max(fitting, key=lambda r: r["train_samples_per_s"])["batch"]
    if result.largest and result.recipe_lr is not None:
        result.lr_linear, result.lr_sqrt = scaled_lr(result.recipe_lr, result.largest, base)
        for b in sorted({result.largest, result.fastest or result.largest}):
            result.scaled[b] = list(scaled_lr(result.recipe_lr, b, base))
    if res.largest_how == "at least":
        result.notes.append(f"every size up to --max-batch {max_batch} fits: raise it to look "
                            "further")  # fmt: skip
    from trainlab.tracking.rundir import write_json

    folder = Path(out) if out is not None else Path("runs") / f"batch-size-{cfg.name}"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "batch_size.json", result.as_dict())
    result.notes.append(f"figures: {folder / 'batch_size.json'}")
    return result


def _train_size(target: Any, cfg: Any) -> int | None:
    """Training samples of the recipe's data (a batch larger than the split is never used)."""
    from trainlab.experiment import build_data

    data = build_data(cfg.data.name, default_seed=cfg.seed, **cfg.data.options())
    data.setup("cpu")
    n = data.sizes.get("train")
    return int(n) if n else None


def print_result(res: BatchSizeResult) -> None:
    """The sizes tried as a table, then the largest fit and the scaled learning rates."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    budget = f"{res.budget / 2**20:,.0f} MiB" if res.budget else "no budget"
    table = Table(title=f"{res.recipe} on {res.device} (memory budget {budget})")
    for col in ("batch", "train samples/s", f"memory ({res.memory_how})", "fits"):
        table.add_column(col, justify="right")
    for r in res.rows:
        fits = "yes" if res.budget is None or r["memory"] <= res.budget else "no"
        table.add_row(str(r["batch"]), f"{r['train_samples_per_s']:,.0f}",
                      f"{r['memory'] / 2**20:,.1f} MiB", fits)  # fmt: skip
    console.print(table)
    console.print(f"sweep ended: {res.stopped}")
    if res.largest is not None:
        console.print(f"largest batch that fits: [bold]{res.largest}[/bold] ({res.largest_how})")
    if res.fastest is not None:
        console.print(f"highest training throughput among the sizes tried: batch {res.fastest}")
    for batch, (linear, sqrt) in res.scaled.items():
        console.print(
            f"batch {batch}: the recipe's lr {res.recipe_lr:g} at batch {res.recipe_batch} "
            f"scales to {linear:.4g} (linear rule) or {sqrt:.4g} (square-root rule): "
            f"data.batch_size={batch} optim.lr={linear:.4g}", highlight=False,
        )  # fmt: skip
    for note in res.notes:
        console.print(note)
