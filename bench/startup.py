"""Start-up time: from command start to the first optimizer step of ``trainlab train``.

Each repetition runs, as a fresh subprocess, exactly what a user types, stopped after one step:

    .venv/bin/trainlab train recipes/fashion_mnist.yaml train.max_steps=1 train.log_every=1 \\
        train.report=false train.eval_test=false --run-dir <tmp>/rN

``train.log_every=1`` makes the loop write its first ``metrics.jsonl`` record right after step 1
(``optimizer.step()``, then the loss read-out; nothing else writes that file before the run
ends, since a run stopped mid-epoch logs no epoch record). That file's modification time, minus
the wall-clock time just before the subprocess was launched, is ``startup_s``: interpreter start,
imports, config parsing and validation, reading Fashion-MNIST and splitting it, building the
model and optimizer, creating the run directory (config.yaml, env.json), the callbacks'
``on_fit_start`` (progress bar) and the first training step itself (forward, backward,
optimizer step at the recipe's batch size, first-call kernel set-up included). It does not
include what follows the step: the TensorBoard event file (created at the end of the first step,
with the weights from before it), torchmetrics (imported at the first validation), checkpoint,
exit. ``report`` and ``eval_test`` are switched off
only because they run after the measured point. File timestamps come from the kernel's coarse
clock: a few milliseconds of resolution.

The same clock gives the cheap breakdown: ``config.yaml`` written (experiment built),
``env.json`` written, the first step, the TensorBoard event file created (right after it), and
process exit. Separately, ``python -c pass``,
``import torch`` and ``import trainlab`` are timed as fresh interpreters. The first repetition
(cold file cache) is shown apart; medians are over the others.

    .venv/bin/python bench/startup.py [--reps 5] [--quick] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RECIPE, ROOT, fmt_spread, spread

STOP_AFTER_ONE = ["train.max_steps=1", "train.log_every=1", "train.report=false",
                  "train.eval_test=false"]  # fmt: skip
MARKS = ("config.yaml", "env.json", "metrics.jsonl", "tb")  # in the order a run writes them


def trainlab_command() -> str:
    exe = Path(sys.executable).with_name("trainlab")  # the venv's console script
    if not exe.is_file():
        sys.exit(f"{exe}: not found; run this script with the project's .venv/bin/python")
    return str(exe)


def one_run(rdir: Path, overrides: list[str]) -> dict[str, float]:
    """Seconds from launch to each file of ``MARKS`` and to process exit."""
    cmd = [trainlab_command(), "train", str(RECIPE), *STOP_AFTER_ONE, *overrides,
           "--run-dir", str(rdir)]  # fmt: skip
    t0 = time.time()  # wall clock: the same clock as file modification times
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    end = time.time()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    records = [json.loads(line) for line in (rdir / "metrics.jsonl").read_text().splitlines()]
    if len(records) != 1 or records[0].get("step") != 1:
        sys.exit(f"{rdir}/metrics.jsonl: expected one record, of step 1; got {records}")
    # tb/ is a folder: its time is that of the event file's creation (first step), as long as
    # that file is the only entry; with train.tensorboard=false it does not exist.
    tb = rdir / "tb"
    marks = [m for m in MARKS if m != "tb" or (tb.is_dir() and len(list(tb.iterdir())) == 1)]
    out = {name: (rdir / name).stat().st_mtime - t0 for name in marks}
    out["exit"] = end - t0
    return out


def python_time(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(
        description="Start-up time of `trainlab train recipes/fashion_mnist.yaml`: seconds from "
        "launching the command (fresh process) to its first optimizer step, read from the run's "
        "metrics.jsonl timestamp; plus the import times of torch and trainlab. Prints "
        "`bench startup_s <s> s`."
    )
    ap.add_argument("overrides", nargs="*", help="extra overrides of the recipe (key=value)")
    ap.add_argument("--reps", type=int, default=5, help="timed runs after the first (default 5)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 timed run (meaningless)")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps

    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="startup_") as tmp:
        for rep in range(reps + 1):
            runs.append(one_run(Path(tmp) / f"r{rep}", args.overrides))
    imports: dict[str, list[float]] = {"python -c pass": [], "import torch": [],
                                       "import trainlab": []}  # fmt: skip
    for _ in range(reps):
        for name in imports:
            code = "pass" if name.endswith("pass") else name
            imports[name].append(python_time(code))

    first, timed = runs[0], runs[1:]
    labels = {"config.yaml": "experiment built (config.yaml written)",
              "env.json": "run directory ready (env.json written)",
              "metrics.jsonl": "first optimizer step (metrics.jsonl)",
              "tb": "TensorBoard event file created (tb/)",
              "exit": "process exit (checkpoint, no report)"}  # fmt: skip
    print(f"trainlab train {RECIPE.name} {' '.join(STOP_AFTER_ONE + args.overrides)}")
    print(f"{'seconds from command start to':44s} {'median (spread)':>34s} {'first run':>10s}")
    labels = {k: v for k, v in labels.items() if all(k in r for r in runs)}
    for key, label in labels.items():
        values = [r[key] for r in timed]
        print(f"{label:44s} {fmt_spread(values, '.3f', ' s'):>34s} {first[key]:9.3f}s")
    for name, values in imports.items():
        print(f"{'fresh interpreter: ' + name:44s} {fmt_spread(values, '.3f', ' s'):>34s}")
    med = {key: spread([r[key] for r in timed])[0] for key in labels}
    print(f"bench startup_s {med['metrics.jsonl']:.2f} s")
    print(f"bench startup_experiment_built_s {med['config.yaml']:.2f} s")
    print(f"bench import_torch_s {spread(imports['import torch'])[0]:.2f} s")
    print(f"bench import_trainlab_s {spread(imports['import trainlab'])[0]:.2f} s")


if __name__ == "__main__":
    main()
