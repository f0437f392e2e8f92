"""``trainlab export`` and ``trainlab predict``: ship a trained run and use it on new inputs."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parsers", "cmd_export", "cmd_predict"]


def cmd_export(args: argparse.Namespace) -> int:
    from trainlab.deploy.export import export_run

    r = export_run(args.run, args.format, args.out, dynamic_batch=args.dynamic_batch,
                   force=args.force)  # fmt: skip
    c = r["check"]
    ok = c["within_tolerance"] and c["same_classes"]
    batch = "dynamic" if args.dynamic_batch else "1"
    print(f"exported {args.run} -> {r['file']} ({r['bytes'] / 1e6:.2f} MB, {args.format}, "
          f"batch {batch}, input {tuple(r['shape'])})")  # fmt: skip
    within = "within" if c["within_tolerance"] else "OUTSIDE"
    same = "identical" if c["same_classes"] else "DIFFER"
    print(f"check on {c['n']} test inputs in {c['runtime']}: max |diff| {c['max_abs_diff']:.2e} "
          f"(rtol {c['rtol']}, atol {c['atol']}): {within} tolerance, predicted classes {same}"
          f" -> {'ok' if ok else 'FAILED'}")  # fmt: skip
    print(f"details: {r['file']}.json")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from trainlab.deploy.predict import predict

    preds = predict(args.model, args.files, k=args.top)
    if args.json:
        print(json.dumps([p.as_dict() for p in preds]))
        return 0
    for p in preds:
        if p.values is not None:
            print(f"{p.source}: {', '.join(f'{v:.4g}' for v in p.values)}")
        else:
            print(f"{p.source}: " + ", ".join(f"{c} {prob:.3f}" for c, prob in p.top))
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``export`` and ``predict`` to ``trainlab``'s sub-commands."""
    e = sub.add_parser(
        "export",
        help="export a run's model (ONNX, pt2, TorchScript) with its input spec, verified",
        description="Write the run's best model with its input shape, normalisation statistics "
        "and class names in one file, then run it (ONNX in onnxruntime) on 100 test inputs and "
        "compare with PyTorch; the result is printed and kept in FILE.json.",
    )
    e.add_argument("run", metavar="RUN_DIR")
    e.add_argument("--format", default="onnx", choices=["onnx", "pt2", "torchscript"])
    e.add_argument("--out", metavar="FILE", help="default: exports/<run name>.<onnx|pt2|ts.pt>")
    e.add_argument("--dynamic-batch", action="store_true",
                   help="any batch size (default: batches of one sample)")  # fmt: skip
    e.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "predict",
        help="top-k classes of images, CSV rows or text lines with a run or an exported file",
        description="Inputs are converted the way the training data was: images of any size "
        "and colour mode to the training mode, size, value range and normalisation; CSV rows "
        "by feature name (or in order); text lines with the training vocabulary.",
    )
    p.add_argument("model", metavar="RUN_DIR|EXPORTED_FILE")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--top", "-k", type=int, default=3, metavar="K", help="classes shown (3)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead")
    p.set_defaults(func=cmd_predict)
