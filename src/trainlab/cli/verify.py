"""``trainlab verify RUN_DIR``: a verdict per checkpoint and record; exit 0 only when all are
intact."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers"]


def cmd_verify(args: argparse.Namespace) -> int:
    from trainlab.tracking.verify import verify_run

    verdicts = verify_run(args.run)
    width = max(len(v.item) for v in verdicts)
    for v in verdicts:
        print(f"{'ok' if v.ok else 'DAMAGED':8} {v.item:{width}}  {v.detail}")
    bad = sum(not v.ok for v in verdicts)
    print(f"{args.run}: " + (f"{bad} of {len(verdicts)} items damaged" if bad else
                             f"all {len(verdicts)} items intact"))  # fmt: skip
    return 1 if bad else 0


def add_parsers(sub: Any) -> None:
    v = sub.add_parser(
        "verify",
        help="check a run directory's checkpoints and records (checksums, parse, consistency)",
        description="Check every checkpoint against the SHA-256 sums recorded when it was "
        "saved, that metrics.jsonl and the JSON records parse, and that summary.json agrees "
        "with the best checkpoint. Exit code 0 only when everything is intact; nothing is "
        "modified.",
    )
    v.add_argument("run", metavar="RUN_DIR")
    v.set_defaults(func=cmd_verify)
