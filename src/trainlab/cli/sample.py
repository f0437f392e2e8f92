"""``trainlab sample RUN_DIR``: generate text with a trained language-model run."""

from __future__ import annotations

import argparse

__all__ = ["add_parsers", "cmd_sample"]


def cmd_sample(args: argparse.Namespace) -> int:
    from trainlab.tasks.sampling import sample_text

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
        help="generate text with a trained language model",
        description="Load a language-model run's best checkpoint and continue a prompt, "
        "token by token, with its vocabulary (e.g. trainlab sample runs/tiny_lm "
        "--prompt 'The ' --tokens 200 --temperature 0.8 --top-k 10).",
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
    s.set_defaults(func=cmd_sample)
