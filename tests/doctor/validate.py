"""Validate the doctor on its case suite and on the shipped recipes; print the hit rate.

    python tests/doctor/validate.py [--cases a,b] [--modes preflight,run] [--recipes]
                                    [--out DIR] [--seed 0]

Each case of ``tests/doctor/cases/cases.yaml`` names the cause the doctor must rank first.
``preflight`` runs ``doctor(RECIPE)``; ``run`` trains the case (a few seconds on digits) and
runs ``doctor(RUN_DIR)``. ``--recipes`` also pre-flights every recipe in ``recipes/`` and counts
warning-level findings there (false alarms). Prints one line per case and ``bench`` lines:
``bench doctor_hit_rate <percent> %`` and ``bench doctor_false_alarms <n> findings``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"


@dataclass
class Outcome:
    case: str
    mode: str
    expect: str
    ranked: list[str]  # causes of the warning/error findings, in rank order
    seconds: float
    error: str = ""

    @property
    def hit(self) -> bool:
        return bool(self.ranked) and self.ranked[0] == self.expect


def load_faults() -> None:
    from trainlab.plugins import load_plugins

    load_plugins([str(CASES / "faults.py")], entry_points=False)


def run_case(name: str, mode: str, expect: str, work: Path, seed: int) -> Outcome:
    from trainlab import doctor
    from trainlab.errors import TrainlabError
    from trainlab.run import train_run

    recipe = CASES / f"{name}.yaml"
    t0 = time.perf_counter()
    try:
        if mode == "preflight":
            diag = doctor(recipe, [f"seed={seed}"])
        else:
            rdir = work / f"{name}-seed{seed}"
            try:
                train_run(recipe, [f"seed={seed}"], run_dir=rdir, progress=False)
            except TrainlabError:
                pass  # a diverged run stops with an error; its records are what we diagnose
            diag = doctor(rdir)
    except TrainlabError as exc:
        return Outcome(name, mode, expect, [], time.perf_counter() - t0, str(exc))
    ranked = [f.cause for f in diag.warnings]
    return Outcome(name, mode, expect, ranked, time.perf_counter() - t0)


def false_alarms(recipes: list[Path]) -> list[tuple[str, list[str], float, str]]:
    """(recipe, warning-level causes, seconds, error) for each shipped recipe's pre-flight."""
    from trainlab import doctor
    from trainlab.errors import TrainlabError

    out = []
    for r in recipes:
        t0 = time.perf_counter()
        try:
            diag = doctor(r)
            out.append(
                (
                    r.name,
                    [f"{f.cause} ({f.symptom})" for f in diag.warnings],
                    time.perf_counter() - t0,
                    "",
                )
            )
        except TrainlabError as exc:
            out.append((r.name, [], time.perf_counter() - t0, str(exc)))
        print(
            f"recipe {out[-1][0]:32s} {out[-1][2]:6.1f}s warnings: {out[-1][1]} {out[-1][3]}",
            flush=True,
        )
    return out


# Shipped recipes that train in seconds to a minute here: trained, then `doctor RUN_DIR`.
QUICK_RECIPES = (
    "synthetic",
    "iris_mlp",
    "autoencoder_digits",
    "vae_digits",
    "triplet_digits",
    "gan_digits",
    "seq2seq_reverse",
    "forecast_demand",
    "text_classification",
)


def healthy_runs(names: tuple[str, ...], work: Path) -> list[tuple[str, list[str], float, str]]:
    """(recipe, warning-level causes, seconds, error) of `doctor RUN_DIR` on trained recipes."""
    from trainlab import doctor
    from trainlab.errors import TrainlabError
    from trainlab.run import train_run

    out = []
    for name in names:
        t0 = time.perf_counter()
        rdir = work / f"healthy-{name}"
        try:
            train_run(ROOT / "recipes" / f"{name}.yaml", ["train.threads=1"], run_dir=rdir,
                      progress=False)  # fmt: skip
            diag = doctor(rdir)
            out.append((name, [f"{f.cause} ({f.symptom})" for f in diag.warnings],
                        time.perf_counter() - t0, ""))  # fmt: skip
        except TrainlabError as exc:
            out.append((name, [], time.perf_counter() - t0, str(exc)))
        print(f"run    {name:32s} {out[-1][2]:6.1f}s warnings: {out[-1][1]} {out[-1][3]}",
              flush=True)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    p.add_argument("--modes", default="preflight,run")
    p.add_argument("--recipes", action="store_true", help="also pre-flight recipes/*.yaml")
    p.add_argument("--recipes-only", action="store_true")
    p.add_argument("--healthy-runs", action="store_true",
                   help="train the quick shipped recipes and diagnose their runs")  # fmt: skip
    p.add_argument("--out", default="", help="write results.json here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    load_faults()
    table = yaml.safe_load((CASES / "cases.yaml").read_text())
    names = [n for n in args.cases.split(",") if n] or list(table)
    modes = args.modes.split(",")
    outcomes: list[Outcome] = []
    work = Path(tempfile.mkdtemp(prefix="doctor-cases-"))
    for name in [] if args.recipes_only or args.healthy_runs else names:
        for mode in table[name]["modes"]:
            if mode in modes:
                o = run_case(name, mode, table[name]["expect"], work, args.seed)
                outcomes.append(o)
                mark = "HIT " if o.hit else "MISS"
                print(
                    f"{mark} {name:16s} {mode:9s} expect {o.expect:24s} got {o.ranked[:3]} "
                    f"{o.seconds:5.1f}s {o.error}",
                    flush=True,
                )
    alarms = []
    if args.recipes or args.recipes_only:
        alarms = false_alarms(sorted((ROOT / "recipes").glob("*.yaml")))
    if args.healthy_runs:
        alarms += healthy_runs(QUICK_RECIPES, work)
    if outcomes:
        hits = sum(o.hit for o in outcomes)
        print(f"hit rate: {hits}/{len(outcomes)} (seed {args.seed})")
        print(f"bench doctor_hit_rate {100 * hits / len(outcomes):.1f} %")
    if alarms:
        print(
            f"bench doctor_false_alarms {sum(len(a[1]) for a in alarms)} findings "
            f"over {len(alarms)} recipes"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "cases": [asdict(o) | {"hit": o.hit} for o in outcomes],
                    "recipes": alarms,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
