"""``trainlab attack RUN --method fgsm|pgd --eps E...``: accuracy under L∞ adversarial attacks.

ε is a fraction of the data's value range (images: 8/255 ≈ 0.031 is the usual CIFAR budget), so
one number means the same for Fashion-MNIST's 0..255 pixels and digits' 0..16. Perturbations are
made in the data's stored units, clipped to its range, then normalised like the training data.

- FGSM (Goodfellow et al., 2015): one step of size ε along the sign of the input gradient.
- PGD (Madry et al., 2018): a random start in the ε-ball, ``steps`` signed-gradient steps of
  2.5·ε/steps, each projected back onto the ball and the data range.

Every evaluation also runs the sanity checks that reveal a broken one (gradient masking, a
wrong range): PGD must be at least as strong as FGSM; random ±ε noise of the same L∞ norm must
hurt far less; at a large ε (half the range) PGD must drive accuracy to about zero. Their
outcome is printed and stored with the table in a new folder; the run is only read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.deploy.source import LoadedRun, load_run, sample_inputs
from trainlab.errors import TrainlabError

__all__ = ["AttackError", "attack_run", "fgsm", "pgd", "Box"]

METHODS = ("fgsm", "pgd")
LARGE_EPS = 0.5  # half the data range: no classifier should survive PGD there


class AttackError(TrainlabError):
    """An ε outside (0, 1], data an L∞ attack cannot perturb (token ids), a bad method."""


class Box:
    """Maps stored-unit perturbations to model inputs: ``x = (raw - mean) / std``."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, lo: float, hi: float) -> None:
        self.mean, self.std, self.lo, self.hi = mean, std, lo, hi

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def norm(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.mean) / self.std

    def clip(self, raw: torch.Tensor, center: torch.Tensor, eps: float) -> torch.Tensor:
        """Project onto the ε-ball around ``center`` and the data range (stored units)."""
        return torch.minimum(torch.maximum(raw, center - eps), center + eps).clamp(self.lo, self.hi)


def _grad(model: nn.Module, box: Box, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    raw = raw.detach().requires_grad_(True)
    loss = F.cross_entropy(model(box.norm(raw)), y)
    (g,) = torch.autograd.grad(loss, raw)
    return g


def fgsm(model: nn.Module, box: Box, raw: torch.Tensor, y: torch.Tensor, eps: float
         ) -> torch.Tensor:  # fmt: skip
    """One signed-gradient step of size ``eps`` (stored units)."""
    return box.clip(raw + eps * _grad(model, box, raw, y).sign(), raw, eps)


def pgd(model: nn.Module, box: Box, raw: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
        gen: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Random start (from ``gen``, else the global RNG), then ``steps`` projected
    signed-gradient steps of 2.5·eps/steps."""
    noise = (torch.rand(raw.shape, generator=gen, device=raw.device) * 2 - 1) * eps
    adv = box.clip(raw + noise, raw, eps)
    alpha = 2.5 * eps / steps
    for _ in range(steps):
        adv = box.clip(adv + alpha * _grad(model, box, adv, y).sign(), raw, eps)
    return adv.detach()


def _box(run: LoadedRun) -> Box:
    spec, data = run.spec, run.exp.data
    if spec["kind"] == "text":
        raise AttackError(f"{run.run_dir}: inputs are token ids; an L∞ attack needs real values")
    shape = (1, -1) + (1,) * (len(spec["shape"]) - 1)
    mean = torch.tensor(spec["mean"] or [0.0]).view(shape)
    std = torch.tensor(spec["std"] or [1.0]).view(shape)
    splits = getattr(data, "splits", None)
    if spec["kind"] == "image":
        lo, hi = 0.0, float(spec["scale"])
    elif splits:  # tables: the training split's range, all features together
        x = splits["train"][0].float()
        lo, hi = float(x.min()), float(x.max())
    else:
        raise AttackError(f"{run.run_dir}: cannot tell the range of this data's values")
    return Box(mean, std, lo, hi)


def _acc(model: nn.Module, box: Box, raw: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(box.norm(raw)).argmax(-1) == y).float().mean())


def _check(eps_list: list[float], method: str, steps: int) -> None:
    if method not in METHODS:
        raise AttackError(f"--method {method}: valid: {', '.join(METHODS)}")
    bad = [e for e in eps_list if not 0.0 < e <= 1.0]
    if bad or not eps_list:
        raise AttackError(f"--eps {bad[0] if bad else ''}: ε is a fraction of the data's value "
                          "range and must lie in (0, 1] (e.g. 0.03 for 8/255)")  # fmt: skip
    if steps < 1:
        raise AttackError(f"--steps {steps}: must be at least 1")


def attack_run(run_dir: str | Path, eps: list[float], method: str = "pgd", *, steps: int = 10,
               n: int = 1000, out: str | Path | None = None, seed: int = 0,
               console: Any = None) -> dict[str, Any]:  # fmt: skip
    """Clean, random-noise, FGSM and PGD accuracy at each ε on ``n`` test samples, with the
    sanity checks.

    >>> r = attack_run("runs/fmnist", [0.01, 0.03, 0.1], "pgd")  # doctest: +SKIP
    >>> r["checks"]["pgd_at_least_fgsm"]                          # doctest: +SKIP
    True
    """
    _check(eps, method, steps)
    run = load_run(run_dir)
    box = _box(run)
    model = run.model.requires_grad_(False)
    xs, y = sample_inputs(run, n)
    raw = box.raw(xs)
    gen = torch.Generator().manual_seed(seed)
    rows, clean = [], _acc(model, box, raw, y)
    for e in sorted(set(eps)) + [LARGE_EPS]:
        e_raw = e * (box.hi - box.lo)
        sign = torch.randint(0, 2, raw.shape, generator=gen).float() * 2 - 1
        rows.append({
            "eps": e, "eps_stored_units": e_raw, "clean": clean,
            "random": _acc(model, box, box.clip(raw + e_raw * sign, raw, e_raw), y),
            "fgsm": _acc(model, box, fgsm(model, box, raw, y, e_raw), y),
            "pgd": _acc(model, box, pgd(model, box, raw, y, e_raw, steps, gen), y),
        })  # fmt: skip
    checks = _sanity(rows, clean, run.exp.data.num_classes or 2)
    report = {"method": method, "steps": steps, "n": len(y), "range": [box.lo, box.hi],
              "rows": rows, "checks": checks}  # fmt: skip
    odir = Path(out) if out is not None else Path("exports") / f"{run.run_dir.name}-attack"
    if odir.resolve().is_relative_to(run.run_dir.resolve()):
        raise AttackError(f"{odir}: inside the source run directory, which is never modified")
    odir.mkdir(parents=True, exist_ok=True)
    (odir / "attack.json").write_text(json.dumps(report, indent=2))
    report["file"] = str(odir / "attack.json")
    _print(run, report, console)
    return report


def _sanity(rows: list[dict[str, Any]], clean: float, k: int) -> dict[str, Any]:
    small = [r for r in rows if r["eps"] != LARGE_EPS]
    large = rows[-1]
    # 1 point of slack: on a few hundred samples FGSM can win by a sample or two.
    pgd_stronger = all(r["pgd"] <= r["fgsm"] + 0.01 for r in rows)
    noise_milder = all(r["clean"] - r["random"] <= 0.5 * (r["clean"] - r["pgd"]) + 0.02
                       for r in small)  # fmt: skip
    collapses = large["pgd"] <= max(0.05, 0.5 / k)
    return {"pgd_at_least_fgsm": pgd_stronger, "noise_hurts_less": noise_milder,
            "large_eps_pgd_acc": large["pgd"], "large_eps_collapses": collapses,
            "ok": pgd_stronger and noise_milder and collapses}  # fmt: skip


def _print(run: LoadedRun, report: dict[str, Any], console: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{run.run_dir.name}: accuracy under L∞ attacks ({report['n']} test "
                  f"samples, PGD {report['steps']} steps, ε as a fraction of the range "
                  f"{report['range'][0]:g}..{report['range'][1]:g})")  # fmt: skip
    for col in ("ε", "clean", "random ±ε", "FGSM", "PGD"):
        table.add_column(col, justify="right")
    for r in report["rows"]:
        cells = {k: f"{r[k]:.4f}" for k in ("clean", "random", "fgsm", "pgd")}
        cells[report["method"]] = f"[bold]{cells[report['method']]}[/bold]"  # the headline
        note = " (check)" if r["eps"] == LARGE_EPS else ""
        table.add_row(f"{r['eps']:g}{note}", cells["clean"], cells["random"], cells["fgsm"],
                      cells["pgd"])  # fmt: skip
    console.print(table)
    c = report["checks"]
    console.print(
        f"sanity: PGD ≥ FGSM {'ok' if c['pgd_at_least_fgsm'] else 'FAILED'}; random noise "
        f"hurts less {'ok' if c['noise_hurts_less'] else 'FAILED'}; PGD at ε={LARGE_EPS} → "
        f"{c['large_eps_pgd_acc']:.3f} {'ok' if c['large_eps_collapses'] else 'FAILED'}"
        + ("" if c["ok"] else " — the evaluation may be broken (gradient masking?)")
    )
