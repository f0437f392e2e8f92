"""After training, on the default recipe's model: int8, ONNX Runtime, structured pruning and
distillation against the float32 model in eager PyTorch, on the CPU.

- ``int8``: static int8 through torchao's PT2E flow (``X86InductorQuantizer``, calibrated on 10
  training batches), run through ``torch.compile`` (oneDNN int8 kernels); ``float32 compiled``
  is the same compiler on the float model, for reference.
- ``onnxruntime``: ``trainlab export --format onnx --dynamic-batch`` run in onnxruntime;
  ``int8 onnxruntime``: that file as static int8 (``trainlab quantize --mode onnx``: QDQ,
  per-channel, calibrated on 10 training batches).
- ``pruned``: ``trainlab prune --structured`` at each ``--amounts`` (channels removed), each
  fine-tuned ``--finetune-epochs`` as an ordinary run; the headline is the largest amount whose
  test accuracy is at most 0.5 points below the original's.
- ``distill``: a narrower student (``model.widths=[8,16,32]``) trained ``--student-epochs``
  alone and with the run as teacher (``task: distillation``, T = 4, α = ``--alpha``): the
  test accuracy gain.

Latency is timed on one batch of one image, throughput on one batch of 256, ``--reps`` rounds
in which the cases alternate, so a busy machine disturbs them alike; the table gives medians
with their interquartile range. Headline ratios use the median throughput and, for latency, the
lower quartile: a sub-millisecond call on a shared CPU is hit by bursts of other work, which
inflate the median and upper quartile but rarely the lower one. Accuracy is over the 10,000
test images, one view each (no TTA).

    .venv/bin/python bench/compression.py [--run RUN_DIR] [--epochs 3] [--threads 2]
        [--reps 15] [--amounts 0.25 0.5] [--finetune-epochs 1] [--student-epochs 2]
        [--alpha 0.5] [--quick]

Without ``--run`` the default recipe is trained for ``--epochs`` first.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import RECIPE, ROOT, fmt_spread, spread

Fn = Callable[[torch.Tensor], torch.Tensor]


def timings(cases: dict[str, Fn], x1: torch.Tensor, xb: torch.Tensor, reps: int
            ) -> dict[str, tuple[list[float], list[float]]]:  # fmt: skip
    """Per case: latencies (ms, batch 1) and throughputs (images/s, batch 256), alternating."""
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in cases}
    with torch.no_grad():
        for fn in cases.values():  # warm-up (compiles on first call)
            fn(x1), fn(xb), fn(x1), fn(xb)
        for _ in range(reps):
            for name, fn in cases.items():
                t = time.perf_counter()
                fn(x1)
                out[name][0].append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                fn(xb)
                out[name][1].append(len(xb) / (time.perf_counter() - t))
    return out


def train_default(root: Path, epochs: int, threads: int) -> Path:
    from trainlab.run import train_run

    run = root / "teacher"
    train_run(RECIPE, [f"train.epochs={epochs}", f"train.threads={threads}"], run_dir=run,
              progress=False)  # fmt: skip
    return run


def speed_cases(run_dir: Path, root: Path, threads: int) -> tuple[dict[str, Fn], dict[str, float]]:
    """The timed models and the accuracy of each (test split, one view)."""
    from trainlab.compress.measure import accuracy
    from trainlab.compress.ort_int8 import quantize_onnx_file
    from trainlab.compress.quantize import _compiled, _static
    from trainlab.deploy import export_run, load_artefact, load_run

    run = load_run(run_dir)
    torch.set_num_threads(threads)
    test = run.exp.data.loader("test")
    q, _, _ = _static(run, calib_batches=10)
    onnx_path = root / "model.onnx"
    export_run(run_dir, "onnx", onnx_path, dynamic_batch=True)
    ort = load_artefact(onnx_path)
    quantize_onnx_file(run, onnx_path, root / "model.int8.onnx", calib_batches=10)
    ort8 = load_artefact(root / "model.int8.onnx")
    cases: dict[str, Fn] = {
        "float32 eager": run.model,
        "float32 compiled": _compiled(run.model),
        "int8 compiled": _compiled(q),
        "onnxruntime": lambda x: torch.from_numpy(ort.run(x.numpy())),
        "int8 onnxruntime": lambda x: torch.from_numpy(ort8.run(x.numpy())),
    }
    accs = {"float32 eager": accuracy(run.model, test), "int8 compiled": accuracy(q, test),
            "onnxruntime": accuracy(cases["onnxruntime"], test),
            "int8 onnxruntime": accuracy(cases["int8 onnxruntime"], test)}  # fmt: skip
    return cases, accs


def pruned_cases(run_dir: Path, root: Path, amounts: list[float], epochs: int, threads: int
                 ) -> tuple[dict[str, Fn], dict[str, float]]:  # fmt: skip
    from trainlab.compress.measure import accuracy
    from trainlab.compress.prune import prune_run
    from trainlab.deploy import load_run

    cases, accs = {}, {}
    for a in amounts:
        rep = prune_run(run_dir, a, structured=True, finetune_epochs=epochs,
                        out=root / f"pruned-{a}", overrides=[f"train.threads={threads}"], reps=3)
        tuned = load_run(rep["steps"][-1]["finetune_run"])
        name = f"pruned {a:.0%} + {epochs} ep"
        cases[name] = tuned.model
        accs[name] = accuracy(tuned.model, tuned.exp.data.loader("test"))
    torch.set_num_threads(threads)
    return cases, accs


def distill(run_dir: Path, root: Path, epochs: int, threads: int, alpha: float
            ) -> dict[str, float]:  # fmt: skip
    from trainlab.run import train_run

    common = [f"train.epochs={epochs}", f"train.threads={threads}", "model.widths=[8,16,32]",
              "train.report=false", "train.tensorboard=false"]  # fmt: skip
    kd = ["task.name=distillation", f"task.teacher={run_dir}", "task.temperature=4.0",
          f"task.alpha={alpha}"]  # fmt: skip
    alone = train_run(RECIPE, common, run_dir=root / "student-alone", progress=False)
    taught = train_run(RECIPE, common + kd, run_dir=root / "student-distilled", progress=False)
    return {"alone": alone["test"]["test/acc"], "distilled": taught["test"]["test/acc"]}


def report(t: dict[str, tuple[list[float], list[float]]], accs: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="after training, CPU (medians, IQR)")
    for col in ("model", "test acc", "latency b=1", "throughput b=256"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, (lat, thr) in t.items():
        acc = accs.get(name)
        table.add_row(name, "-" if acc is None else f"{acc:.4f}", fmt_spread(lat, ".3f", " ms"),
                      fmt_spread(thr, ",.0f", "/s"))  # fmt: skip
    Console().print(table)


def main() -> None:
    from trainlab.deploy import load_run
    from trainlab.deploy.source import sample_inputs

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--amounts", type=float, nargs="+", default=[0.25, 0.5])
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--student-epochs", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.5, help="distillation: soft-loss weight")
    p.add_argument("--quick", action="store_true", help="5 reps, one amount, no distillation")
    args = p.parse_args()
    if args.quick:
        args.reps, args.amounts, args.student_epochs = 5, args.amounts[:1], 0
    root = ROOT / "runs" / f"bench-compression-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True)
    run = args.run or train_default(root, args.epochs, args.threads)
    cases, accs = speed_cases(run, root, args.threads)
    more, more_accs = pruned_cases(run, root, args.amounts, args.finetune_epochs, args.threads)
    cases.update(more)
    accs.update(more_accs)
    x, _ = sample_inputs(load_run(run), 256)
    torch.set_num_threads(args.threads)  # load_run applies the run's own train.threads
    t = timings(cases, x[:1].contiguous(), x[:256].contiguous(), args.reps)
    report(t, accs)
    lat = {k: spread(v[0])[1] for k, v in t.items()}  # lower quartile (see the docstring)
    thr = {k: spread(v[1])[0] for k, v in t.items()}
    base = "float32 eager"
    print(f"bench int8_speedup_b1 {lat[base] / lat['int8 compiled']:.2f} x")
    print(f"bench int8_speedup_b256 {thr['int8 compiled'] / thr[base]:.2f} x")
    print(f"bench int8_acc_drop {(accs[base] - accs['int8 compiled']) * 100:.2f} points")
    print(f"bench onnxruntime_speedup_b1 {lat[base] / lat['onnxruntime']:.2f} x")
    print(f"bench onnxruntime_speedup_b256 {thr['onnxruntime'] / thr[base]:.2f} x")
    o8 = "int8 onnxruntime"
    print(f"bench ort_int8_speedup_b1 {lat[base] / lat[o8]:.2f} x")
    print(f"bench ort_int8_speedup_b256 {thr[o8] / thr[base]:.2f} x")
    print(f"bench ort_int8_acc_drop {(accs[base] - accs[o8]) * 100:.2f} points")
    ok = [k for k in more if accs[base] - accs[k] <= 0.005]
    best = ok[-1] if ok else list(more)[0]
    print(f"# pruned: {best}{'' if ok else ' (none within 0.5 points; the smallest amount)'}")
    print(f"bench pruned_speedup {thr[best] / thr[base]:.2f} x")
    out = {"run": str(run), "threads": args.threads, "accuracy": accs,
           "latency_ms": lat, "throughput": thr}  # fmt: skip
    if args.student_epochs:
        d = distill(run, root, args.student_epochs, args.threads, args.alpha)
        out["distill"] = d
        print(f"# student acc alone {d['alone']:.4f}, distilled {d['distilled']:.4f}")
        print(f"bench distill_gain {(d['distilled'] - d['alone']) * 100:.2f} points")
    (root / "compression.json").write_text(json.dumps(out, indent=2))
    print(f"# results: {root / 'compression.json'}")


if __name__ == "__main__":
    main()
