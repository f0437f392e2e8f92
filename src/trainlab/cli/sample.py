"""``trainlab sample RUN_DIR``: generate text with a trained language-model run, or a PNG grid of
images with a GAN, VAE or diffusion run."""

from __future__ import annotations

import argparse

__all__ = ["add_parsers", "cmd_sample"]


def cmd_sample(args: argparse.Namespace) -> int:
    from trainlab.tasks.generate import is_image_generator
    from trainlab.tasks.sampling import sample_text

    if is_image_generator(args.run):
        from trainlab.cli.generative import sample_image_grid

        return sample_image_grid(args)

    text = sample_text(
        args.run,
        args.prompt,
        args.tokens,
        args.temperature,
        args.top_k,
        which=args.checkpoint,
        seed=args.seed,
        beam_size=args.beam,
        length_penalty=args.length_penalty,
    )
    print(text)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sample`` to ``trainlab``'s sub-commands."""
    s = sub.add_parser(
        "sample",
        help="generate text with a language model, or images with a GAN/VAE/diffusion run",
        description="Load a language-model run's best checkpoint and continue a prompt, "
        "token by token, with its vocabulary (e.g. trainlab sample runs/tiny_lm "
        "--prompt 'The ' --tokens 200 --temperature 0.8 --top-k 10); for a run that "
        "generates images, write a PNG grid (e.g. trainlab sample runs/ddpm --sampler ddim "
        "--steps 20 --n 64).",
    )
    s.add_argument("run", metavar="RUN_DIR")
    s.add_argument("--prompt", default="", help="text to continue (default: the text's start)")
    s.add_argument("--tokens", type=int, default=200, metavar="N", help="tokens to generate")
    s.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="< 1 sharper, > 1 more random (default 1.0)")  # fmt: skip
    s.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="sample among the K likeliest tokens only")  # fmt: skip
    s.add_argument("--beam", type=int, default=None, metavar="K",
                   help="the likeliest continuation by beam search of width K (1: greedy) "
                   "instead of sampling; 0 samples (default: the run's task.decode)")  # fmt: skip
    s.add_argument("--length-penalty", type=float, default=None, metavar="A",
                   help="GNMT length penalty α of the beam (default: the run's, or 0)")  # fmt: skip
    s.add_argument("--checkpoint", default="best", choices=["best", "latest"])
    s.add_argument("--seed", type=int, default=None, help="sampling seed (default: the run's)")
    g = s.add_argument_group("image generators (GAN, VAE, diffusion)")
    g.add_argument("--n", type=int, default=64, help="images in the grid (default 64)")
    g.add_argument("--sampler", default="ddim", choices=["ddpm", "ddim"],
                   help="diffusion: ancestral DDPM (all steps) or DDIM (default)")  # fmt: skip
    g.add_argument("--steps", type=int, default=None, metavar="N",
                   help="diffusion: DDIM steps (default 50)")  # fmt: skip
    g.add_argument("--eta", type=float, default=0.0, help="diffusion: DDIM η (0: deterministic)")
    g.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="run the network under bf16 autocast")  # fmt: skip
    g.add_argument("--out", default=None, metavar="FILE",
                   help="the PNG (default RUN_DIR/samples/sample-SAMPLER[-STEPS].png)")  # fmt: skip
    s.set_defaults(func=cmd_sample)
