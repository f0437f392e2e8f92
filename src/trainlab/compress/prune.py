"""``trainlab prune RUN --amount A [--structured] [--iterations N --finetune-epochs E]``.

- unstructured (default): global magnitude pruning with ``torch.nn.utils.prune`` — the fraction
  ``A`` of all conv/linear weights with the smallest |w|, across layers, set to zero. The tensors
  stay dense, so the model is not faster on the CPU; it compresses well and shows how much of
  the network is needed.
- ``--structured``: whole output channels of convolutions (and units of hidden linear layers)
  ranked by L1 norm and physically removed with torch-pruning's dependency graph, which keeps
  residual additions, batch norms and the next layer's inputs consistent: a smaller, faster
  dense model. The output layer keeps its size.

With ``--iterations N`` the amount is reached in N equal steps; with ``--finetune-epochs E``
each step is followed by an ordinary training run (``trainlab.run.train_run`` on the source
run's recipe) that starts from the pruned weights through ``model.init_from``: unstructured
zeros are kept at zero by the ``keep_zeros`` callback (added to the run's recipe), and
structured weights carry their new layer sizes in the safetensors metadata, from which
``init_from`` resizes the freshly built model. Everything goes
into a new folder (``prune.json``, ``prune.png``, ``step-i/pruned.safetensors``,
``step-i/finetune/`` run directories); the source run is only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.callbacks.keep_zeros import KeepZeros
from trainlab.compress.measure import Row, measure, print_table
from trainlab.deploy.source import LoadedRun, load_run, sample_inputs
from trainlab.errors import TrainlabError

__all__ = ["PruneError", "prune_run", "prune_unstructured", "prune_structured", "sparsity",
           "KeepZeros", "STRUCTURE_KEY"]  # fmt: skip

STRUCTURE_KEY = "trainlab_structure"  # safetensors metadata: new layer sizes after pruning
SIZE_ATTRS = ("in_channels", "out_channels", "in_features", "out_features", "num_features",
              "groups")  # fmt: skip
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class PruneError(TrainlabError):
    """An amount out of range, or a model torch-pruning cannot handle."""


def _weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]


def sparsity(model: nn.Module) -> float:
    """Fraction of conv/linear weights that are exactly zero."""
    ws = [m.weight for m, _ in _weights(model)]
    total = sum(w.numel() for w in ws)
    return sum(int((w == 0).sum()) for w in ws) / max(total, 1)


def prune_unstructured(model: nn.Module, amount: float) -> None:
    """Zero the ``amount`` fraction of all conv/linear weights with the smallest |w| (global)."""
    import torch.nn.utils.prune as tprune

    params = _weights(model)
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=amount)
    for m, name in params:
        tprune.remove(m, name)  # make it permanent: plain tensors with zeros


def _head(model: nn.Module) -> nn.Module:
    last = None
    for m in model.modules():
        if isinstance(m, PRUNABLE):
            last = m
    if last is None:
        raise PruneError("the model has no convolution or linear layer to prune")
    return last


def prune_structured(model: nn.Module, example: torch.Tensor, ratio: float) -> None:
    """Remove the ``ratio`` fraction of channels of every prunable layer but the output one,
    by L1 norm, with torch-pruning (in place; the module objects change size)."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise PruneError("--structured needs torch-pruning: pip install 'trainlab[compress]'"
                         ) from None  # fmt: skip
    try:
        pruner = tp.pruner.MagnitudePruner(
            model, example, importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=ratio, ignored_layers=[_head(model)],
        )  # fmt: skip
        pruner.step()
        with torch.no_grad():
            model(example)
    except PruneError:
        raise
    except Exception as e:  # torch-pruning's tracer or a shape error: many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise PruneError(f"torch-pruning cannot prune this model ({first})") from None


def structure(model: nn.Module) -> dict[str, dict[str, int]]:
    """The size attributes of every conv/linear/norm layer (what init_from needs to rebuild)."""
    out = {}
    for name, m in model.named_modules():
        attrs = {a: getattr(m, a) for a in SIZE_ATTRS if isinstance(getattr(m, a, None), int)}
        if attrs and name:
            out[name] = attrs
    return out


def save_weights(model: nn.Module, path: Path, structured: bool) -> None:
    from safetensors.torch import save_file

    meta = {STRUCTURE_KEY: json.dumps(structure(model))} if structured else None
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)


def _check(amount: float, iterations: int, finetune_epochs: int) -> None:
    if not 0.0 < amount < 1.0:
        raise PruneError(f"--amount {amount}: must be between 0 and 1 (a fraction to remove)")
    if iterations < 1 or finetune_epochs < 0:
        raise PruneError("--iterations must be ≥ 1 and --finetune-epochs ≥ 0")


def prune_run(
    run_dir: str | Path,
    amount: float,
    *,
    structured: bool = False,
    iterations: int = 1,
    finetune_epochs: int = 0,
    out: str | Path | None = None,
    lr_factor: float = 0.1,
    overrides: list[str] | None = None,
    reps: int = 30,
    console: Any = None,
) -> dict[str, Any]:
    """Prune a run's best model (optionally in steps, each fine-tuned as an ordinary run) and
    measure accuracy, size, latency and throughput after each step.

    >>> report = prune_run("runs/fmnist", 0.5, structured=True, finetune_epochs=1)  # doctest: +SKIP
    >>> [r["name"] for r in report["rows"]]  # doctest: +SKIP
    ['original', 'pruned 50%', 'pruned 50% + 1 ep']
    """
    _check(amount, iterations, finetune_epochs)
    base = load_run(run_dir)
    kind = "structured" if structured else "unstructured"
    odir = Path(out) if out is not None else Path("exports") / (
        f"{base.run_dir.name}-pruned-{kind}-{round(amount * 100)}")  # fmt: skip
    _check_out(odir, base)
    xs, _ = sample_inputs(base, 256)
    original_params = _params(base.model)  # before the steps prune base.model in place
    rows = [_row("original", base, xs, reps)]
    plan = _Plan(base, odir, structured, finetune_epochs, lr_factor, overrides or [], xs, reps)
    steps, current, done = [], base, 0.0
    for i in range(1, iterations + 1):
        target = amount * i / iterations
        current, step = _step(plan, i, target, done, current, rows)
        steps.append(step)
        done = target
    report = {"kind": kind, "amount": amount, "iterations": iterations,
              "finetune_epochs": finetune_epochs, "steps": steps,
              "original_params": original_params, "threads": torch.get_num_threads(),
              "rows": [r.as_dict() for r in rows]}  # fmt: skip
    (odir / "prune.json").write_text(json.dumps(report, indent=2))
    _plot(rows, odir / "prune.png", kind)
    print_table(f"{base.run_dir.name}: {kind} pruning to {amount:.0%} (CPU, "
                f"{torch.get_num_threads()} threads)", rows, console)  # fmt: skip
    return report


@dataclass
class _Plan:
    """What every pruning step shares."""

    base: LoadedRun
    odir: Path
    structured: bool
    finetune_epochs: int
    lr_factor: float
    overrides: list[str]
    xs: torch.Tensor
    reps: int


def _check_out(odir: Path, base: LoadedRun) -> None:
    if odir.exists() and any(odir.iterdir()):
        raise PruneError(f"{odir}: already exists and is not empty (choose another --out)")
    if odir.resolve().is_relative_to(base.run_dir.resolve()):
        raise PruneError(f"{odir}: inside the source run directory, which is never modified")


def _step(plan: _Plan, i: int, target: float, done: float, current: LoadedRun, rows: list[Row]
          ) -> tuple[LoadedRun, dict[str, Any]]:  # fmt: skip
    """Prune ``current`` from ``done`` to ``target``, save, measure, fine-tune (appends rows)."""
    sdir = plan.odir / f"step-{i}"
    sdir.mkdir(parents=True, exist_ok=True)
    if plan.structured:  # a ratio of the channels still there, so that the total is `target`
        prune_structured(current.model, plan.xs[:1], 1 - (1 - target) / (1 - done))
    else:
        prune_unstructured(current.model, target)
    weights = sdir / "pruned.safetensors"
    save_weights(current.model, weights, plan.structured)
    rows.append(_row(f"pruned {target:.0%}", current, plan.xs, plan.reps, weights))
    step: dict[str, Any] = {"target": target, "weights": str(weights),
                            "params": _params(current.model),
                            "sparsity": sparsity(current.model)}  # fmt: skip
    if plan.finetune_epochs:
        current = _finetune(plan.base, weights, sdir / "finetune", plan.finetune_epochs,
                            plan.lr_factor, plan.structured, plan.overrides)  # fmt: skip
        rows.append(_row(f"pruned {target:.0%} + {plan.finetune_epochs} ep", current, plan.xs,
                         plan.reps, weights))  # fmt: skip
        step["finetune_run"] = str(current.run_dir)
    return current, step


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _row(name: str, run: LoadedRun, xs: torch.Tensor, reps: int, weights: Path | None = None
         ) -> Row:  # fmt: skip
    from trainlab.train.checkpoint import resolve_checkpoint

    path = weights or resolve_checkpoint(run.run_dir, "best") / "model.safetensors"
    note = f"{_params(run.model):,} params, {sparsity(run.model):.0%} zeros"
    return measure(name, run.model.eval(), run.exp.data.loader("test"), xs,
                   path.stat().st_size, note, reps)  # fmt: skip


def _finetune(base: LoadedRun, weights: Path, rdir: Path, epochs: int, lr_factor: float,
              structured: bool, overrides: list[str]) -> LoadedRun:  # fmt: skip
    """An ordinary run of the source recipe, started from the pruned weights."""
    from trainlab.config.load import load_config
    from trainlab.run import train_run

    lr = float(base.cfg.optim.options().get("lr", 0.1)) * lr_factor
    cfg = load_config(base.run_dir / "config.yaml", [
        f"model.init_from={weights.resolve()}", f"train.epochs={epochs}", f"optim.lr={lr}",
        "train.report=false", *overrides])  # fmt: skip
    if not structured:  # zeros stay zeros; in the recipe, so that a resume keeps them too
        from trainlab.config.schema import RegistrySection

        cfg.callbacks.append(RegistrySection(name="keep_zeros"))
    train_run(cfg, run_dir=rdir, progress=False)
    return load_run(rdir)


def _plot(rows: list[Row], path: Path, kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [r.throughput or 0 for r in rows]
    ys = [r.acc or 0 for r in rows]
    ax.plot(xs, ys, "o-")
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(r.name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("throughput at batch 256 (samples/s)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{kind} pruning")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
