"""``trainlab quantize``: compress a trained run into a new folder with a before/after table."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "cmd_quantize", "cmd_prune", "cmd_ensemble", "cmd_attack"]


def cmd_quantize(args: argparse.Namespace) -> int:
    from trainlab.compress.quantize import quantize_run

    r = quantize_run(args.run, args.mode, args.out, calib_batches=args.calib_batches,
                     compile=not args.no_compile, reps=args.reps,
                     finetune_epochs=args.finetune_epochs, lr_factor=args.lr_factor,
                     overrides=args.overrides)  # fmt: skip
    print(f"quantized ({len(r['quantized'])}): {', '.join(r['quantized'])}")
    print(f"left in float ({len(r['left_float'])}): {', '.join(r['left_float']) or 'none'}")
    if "qat_run" in r:
        print(f"quantization-aware fine-tuning run: {r['qat_run']}")
    print(f"artefact: {r['artefact']} (trainlab predict takes it)")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from trainlab.compress.prune import prune_run

    r = prune_run(args.run, args.amount, structured=args.structured, iterations=args.iterations,
                  finetune_epochs=args.finetune_epochs, out=args.out, lr_factor=args.lr_factor,
                  overrides=args.overrides, reps=args.reps)  # fmt: skip
    for i, step in enumerate(r["steps"], 1):
        extra = f", fine-tuned: {step['finetune_run']}" if "finetune_run" in step else ""
        print(f"step {i}: {step['target']:.0%} pruned, {step['params']:,} parameters, "
              f"{step['sparsity']:.1%} zero weights -> {step['weights']}{extra}")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from trainlab.compress.ensemble import ensemble_runs

    r = ensemble_runs(args.runs, args.method, args.out)
    print(f"results: {r['file']}")
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    from trainlab.compress.attack import attack_run

    r = attack_run(args.run, args.eps, args.method, steps=args.steps, n=args.n, out=args.out)
    print(f"results: {r['file']}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``quantize``, ``prune``, ``ensemble`` and ``attack`` to ``trainlab``'s commands."""
    _add_quantize(sub)
    _add_prune(sub)
    _add_ensemble(sub)
    _add_attack(sub)


def _add_quantize(sub: Any) -> None:
    q = sub.add_parser(
        "quantize",
        help="int8 model of a run (dynamic, static, qat or onnx), with accuracy/size/speed vs "
        "float32",
        description="dynamic: int8 Linear/LSTM/GRU weights, activations quantised on the fly. "
        "static: PT2E (torchao's X86InductorQuantizer), calibrated on training batches; its "
        "speed needs torch.compile (a minute or more of compiling). qat: quantization-aware "
        "fine-tuning as an ordinary run (model.qat: true), then converted as static. onnx: "
        "static int8 in onnxruntime (QDQ, calibrated on training batches). Writes "
        "OUT/model.int8.* and OUT/quantize.json; the run directory is not modified.",
    )
    q.add_argument("run", metavar="RUN_DIR")
    q.add_argument("overrides", nargs="*", help="qat: overrides for the fine-tuning run")
    q.add_argument("--mode", default="dynamic", choices=["dynamic", "static", "qat", "onnx"])
    q.add_argument("--out", metavar="DIR", help="default: exports/<run name>-int8-<mode>")
    q.add_argument("--calib-batches", type=int, default=10, metavar="N",
                   help="training batches that calibrate static quantization (10)")  # fmt: skip
    q.add_argument("--no-compile", action="store_true",
                   help="static: time the uncompiled graph (slow int8)")  # fmt: skip
    q.add_argument("--finetune-epochs", type=int, default=1, metavar="E",
                   help="qat: epochs of quantization-aware fine-tuning (1)")  # fmt: skip
    q.add_argument("--lr-factor", type=float, default=0.1, metavar="F",
                   help="qat: learning rate = the recipe's × F (0.1)")  # fmt: skip
    q.add_argument("--reps", type=int, default=50, metavar="N", help="timed calls at batch 1")
    q.set_defaults(func=cmd_quantize)


def _add_prune(sub: Any) -> None:
    p = sub.add_parser(
        "prune",
        help="magnitude pruning (global unstructured, or channels removed), with fine-tuning",
        description="Unstructured: global L1 magnitude pruning of conv/linear weights (zeros, "
        "dense tensors). --structured: channels removed with torch-pruning (a smaller, faster "
        "model). Each of --iterations steps can be fine-tuned as an ordinary run of the source "
        "recipe (key=value overrides apply to it). Writes a new folder; the run is not modified.",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("overrides", nargs="*", help="overrides for the fine-tuning runs")
    p.add_argument("--amount", type=float, required=True, metavar="A",
                   help="fraction of weights (or channels) to remove, e.g. 0.5")  # fmt: skip
    p.add_argument("--structured", action="store_true", help="remove whole channels")
    p.add_argument("--iterations", type=int, default=1, metavar="N",
                   help="reach the amount in N equal steps (1)")  # fmt: skip
    p.add_argument("--finetune-epochs", type=int, default=0, metavar="E",
                   help="train E epochs after each step (0: no fine-tuning)")  # fmt: skip
    p.add_argument("--lr-factor", type=float, default=0.1, metavar="F",
                   help="fine-tuning learning rate = the recipe's × F (0.1)")  # fmt: skip
    p.add_argument("--out", metavar="DIR",
                   help="default: exports/<run name>-pruned-<kind>-<percent>")  # fmt: skip
    p.add_argument("--reps", type=int, default=30, metavar="N", help="timed calls at batch 1")
    p.set_defaults(func=cmd_prune)


def _add_ensemble(sub: Any) -> None:
    e = sub.add_parser(
        "ensemble",
        help="test metrics of several runs combined (mean probabilities or majority vote)",
        description="Each run's best model on the shared test split, and their ensemble: "
        "mean of probabilities, or majority vote. The runs must share their data section.",
    )
    e.add_argument("runs", nargs="+", metavar="RUN_DIR")
    e.add_argument("--method", default="mean", choices=["mean", "vote"])
    e.add_argument("--out", metavar="DIR", help="default: exports/ensemble-<n>-<method>")
    e.set_defaults(func=cmd_ensemble)


def _add_attack(sub: Any) -> None:
    a = sub.add_parser(
        "attack",
        help="accuracy under FGSM/PGD adversarial attacks, with sanity checks",
        description="L∞ attacks on the test split at each ε (a fraction of the data's value "
        "range), beside random noise of the same size; checks that PGD beats FGSM, that noise "
        "hurts less and that PGD at ε=0.5 leaves about nothing.",
    )
    a.add_argument("run", metavar="RUN_DIR")
    a.add_argument("--method", default="pgd", choices=["fgsm", "pgd"])
    a.add_argument("--eps", type=float, nargs="+", default=[0.01, 0.03, 0.1], metavar="E",
                   help="budgets as fractions of the value range (0.01 0.03 0.1)")  # fmt: skip
    a.add_argument("--steps", type=int, default=10, metavar="S", help="PGD steps (10)")
    a.add_argument("-n", type=int, default=1000, metavar="N", help="test samples (1000)")
    a.add_argument("--out", metavar="DIR", help="default: exports/<run name>-attack")
    a.set_defaults(func=cmd_attack)
