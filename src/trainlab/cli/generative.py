"""``trainlab gen-score``: Fréchet distance and classifier confidence of generator runs, and the
image side of ``trainlab sample`` (a PNG grid from a GAN, VAE or diffusion run)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parsers", "cmd_gen_score", "sample_image_grid"]


def _settings(samplers: list[str], steps: list[int]) -> list[tuple[str, int | None]]:
    """Every sampler × steps pair; ddpm always runs the whole chain (its steps are ignored)."""
    out: list[tuple[str, int | None]] = []
    for s in samplers:
        pairs = [(s, None)] if s == "ddpm" else [(s, k) for k in (steps or [50])]
        out.extend(p for p in pairs if p not in out)
    return out


def cmd_gen_score(args: argparse.Namespace) -> int:
    from trainlab.metrics.generative_report import format_rows, score_runs, write_json

    settings = _settings(args.sampler, args.steps)
    rows = score_runs(args.runs, args.classifier, n=args.n, settings=settings, eta=args.eta,
                      seed=args.seed, precision=args.precision)  # fmt: skip
    print(format_rows(rows))
    if args.json:
        meta = {"classifier": args.classifier, "n": args.n, "seed": args.seed, "eta": args.eta,
                "precision": args.precision,
                "features": "input of the classifier's last nn.Linear"}  # fmt: skip
        print(f"written: {write_json(rows, args.json, meta)}")
    return 0


def sample_image_grid(args: argparse.Namespace) -> int:
    """``trainlab sample RUN`` for a run that generates images: one PNG grid."""
    from trainlab.tasks.generate import generate_images, load_generator, save_grid

    gen = load_generator(args.run, args.checkpoint)  # best (EMA weights if kept) or latest
    images = generate_images(gen, args.n, seed=args.seed or 0, sampler=args.sampler,
                             steps=args.steps, eta=args.eta, precision=args.precision)  # fmt: skip
    tag = f"{args.sampler}-{args.steps}" if args.steps else args.sampler
    out = args.out or Path(args.run) / "samples" / f"sample-{tag}.png"
    print(f"{len(images)} samples: {save_grid(images, out)}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``gen-score`` to ``trainlab``'s sub-commands."""
    s = sub.add_parser(
        "gen-score",
        help="Fréchet distance and classifier confidence of generator runs",
        description="Generate N images with each run (diffusion: per sampler and step count; "
        "GAN/VAE: one row) and compare them with N real test images through the features "
        "(input of the last linear layer) and softmax of a trained classification run on the "
        "same data. Also scores N real training images (the floor) and uniform noise.",
    )
    s.add_argument("runs", nargs="+", metavar="RUN_DIR")
    s.add_argument("--classifier", required=True, metavar="RUN_DIR",
                   help="a classification run on the generators' data (e.g. lenet5)")  # fmt: skip
    s.add_argument("--n", type=int, default=2000, help="images per set (default 2000)")
    s.add_argument("--sampler", nargs="+", default=["ddim"], choices=["ddpm", "ddim"],
                   help="diffusion samplers to score (default ddim)")  # fmt: skip
    s.add_argument("--steps", nargs="+", type=int, default=[50], metavar="N",
                   help="DDIM step counts (default 50)")  # fmt: skip
    s.add_argument("--eta", type=float, default=0.0, help="DDIM η (0: deterministic)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="the generators' networks under bf16 autocast")  # fmt: skip
    s.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    s.set_defaults(func=cmd_gen_score)
