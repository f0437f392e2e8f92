"""``trainlab quantize``: compress a trained run into a new folder with a before/after table."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "cmd_quantize"]


def cmd_quantize(args: argparse.Namespace) -> int:
    from trainlab.compress.quantize import quantize_run

    r = quantize_run(args.run, args.mode, args.out, calib_batches=args.calib_batches,
                     compile=not args.no_compile, reps=args.reps)  # fmt: skip
    print(f"quantized ({len(r['quantized'])}): {', '.join(r['quantized'])}")
    print(f"left in float ({len(r['left_float'])}): {', '.join(r['left_float']) or 'none'}")
    print(f"artefact: {r['artefact']} (trainlab predict takes it)")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``quantize`` to ``trainlab``'s sub-commands."""
    q = sub.add_parser(
        "quantize",
        help="int8 model of a run (dynamic or static), with accuracy/size/speed vs float32",
        description="dynamic: int8 Linear/LSTM/GRU weights, activations quantised on the fly. "
        "static: PT2E (torchao's X86InductorQuantizer), calibrated on training batches; its "
        "speed needs torch.compile (a minute or more of compiling). Writes OUT/model.int8.* and "
        "OUT/quantize.json; the run directory is not modified.",
    )
    q.add_argument("run", metavar="RUN_DIR")
    q.add_argument("--mode", default="dynamic", choices=["dynamic", "static"])
    q.add_argument("--out", metavar="DIR", help="default: exports/<run name>-int8-<mode>")
    q.add_argument("--calib-batches", type=int, default=10, metavar="N",
                   help="training batches that calibrate static quantization (10)")  # fmt: skip
    q.add_argument("--no-compile", action="store_true",
                   help="static: time the uncompiled graph (slow int8)")  # fmt: skip
    q.add_argument("--reps", type=int, default=50, metavar="N", help="timed calls at batch 1")
    q.set_defaults(func=cmd_quantize)
