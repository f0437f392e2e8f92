"""``trainlab verify RUN_DIR``: is everything a run directory holds intact?

Every checkpoint is checked against the sizes and SHA-256 sums its ``COMMIT`` records, the
``latest``/``best`` pointers must name an intact checkpoint, every line of ``metrics.jsonl``
must parse, the JSON and YAML records must parse, and ``summary.json`` must agree with the best
checkpoint (same epoch, same monitored value). Nothing is modified.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import CheckpointError
from trainlab.train.checkpoint import COMMIT, step_dirs, verify_checkpoint

__all__ = ["Verdict", "verify_run"]


@dataclass
class Verdict:
    """One checked item: its path relative to the run directory, whether it is intact, and
    what was found."""

    item: str
    ok: bool
    detail: str


def verify_run(run_dir: str | Path) -> list[Verdict]:
    """A verdict for every record and checkpoint of ``run_dir``.

    >>> all(v.ok for v in verify_run("runs/synth-20260101-120000"))  # doctest: +SKIP
    True
    """
    rdir = Path(run_dir)
    if not (rdir / "config.yaml").is_file():
        raise CheckpointError(f"{rdir}: not a run directory (no config.yaml)")
    out = [_yaml(rdir, "config.yaml")]
    for name in ("env.json", "data.json", "summary.json"):
        out.append(_json(rdir, name))
    out += [_json(rdir, p.name) for p in sorted(rdir.glob("eval_*.json"))]
    out.append(_jsonl(rdir, "metrics.jsonl"))
    out += _checkpoints(rdir)
    out.append(_summary_vs_best(rdir))
    return out


def _yaml(rdir: Path, name: str) -> Verdict:
    try:
        data = yaml.safe_load((rdir / name).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        return Verdict(name, False, f"does not parse ({str(e).splitlines()[0]})")
    ok = isinstance(data, dict) and {"data", "model"} <= data.keys()
    return Verdict(name, ok, "parses" if ok else "not a trainlab config (no data:/model:)")


def _json(rdir: Path, name: str) -> Verdict:
    if not (rdir / name).is_file():
        missing = "absent (the run has not finished)" if name == "summary.json" else "absent"
        return Verdict(name, name == "summary.json", missing)
    try:
        json.loads((rdir / name).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return Verdict(name, False, f"does not parse ({str(e).splitlines()[0]})")
    return Verdict(name, True, "parses")


def _jsonl(rdir: Path, name: str) -> Verdict:
    path = rdir / name
    if not path.is_file():
        return Verdict(name, False, "absent")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return Verdict(name, False, f"unreadable ({e})")
    for i, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            assert isinstance(record, dict)
        except (ValueError, AssertionError):
            return Verdict(name, False, f"line {i} of {len(lines)} is not a JSON record")
    return Verdict(name, True, f"{len(lines)} records parse")


def _checkpoints(rdir: Path) -> list[Verdict]:
    ckpt_dir = rdir / "checkpoints"
    if not ckpt_dir.is_dir():
        return [Verdict("checkpoints/", False, "absent (nothing was saved)")]
    out = []
    for path in step_dirs(ckpt_dir):
        problem = verify_checkpoint(path)
        if problem is None:
            legacy = (path / COMMIT).read_text().strip() == "ok"
            detail = "intact (files present; saved without checksums)" if legacy else (
                "intact (sizes and SHA-256 match COMMIT)")  # fmt: skip
            out.append(Verdict(f"checkpoints/{path.name}", True, detail))
        else:
            out.append(Verdict(f"checkpoints/{path.name}", False, problem))
    for stale in sorted(ckpt_dir.glob(".tmp-*")):
        out.append(Verdict(f"checkpoints/{stale.name}", True, "an unfinished save, ignored"))
    for pointer in ("latest", "best"):
        out.append(_pointer(ckpt_dir, pointer))
    return out


def _pointer(ckpt_dir: Path, pointer: str) -> Verdict:
    p = ckpt_dir / pointer
    item = f"checkpoints/{pointer}"
    if not p.is_file():
        return Verdict(item, pointer == "best", "absent")
    name = p.read_text(errors="replace").strip()
    target = ckpt_dir / name
    if not name or "/" in name or not target.is_dir():
        return Verdict(item, False, f"names {name!r}, which does not exist")
    problem = verify_checkpoint(target)
    detail = f"→ {name}" + (f", damaged: {problem}" if problem else "")
    return Verdict(item, problem is None, detail)


def _summary_vs_best(rdir: Path) -> Verdict:
    item = "summary.json ↔ best checkpoint"
    summary_path, best = rdir / "summary.json", rdir / "checkpoints" / "best"
    if not summary_path.is_file() or not best.is_file():
        return Verdict(item, True, "nothing to compare (no summary or no best checkpoint)")
    try:
        summary = json.loads(summary_path.read_text())["best"]
        ckpt = rdir / "checkpoints" / best.read_text().strip()
        payload = _payload(ckpt)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Verdict(item, False, f"cannot compare ({e})")
    if payload is None:
        return Verdict(item, False, "the best checkpoint is damaged")
    saved = next((v for k, v in payload["callbacks"].items() if k.startswith("ModelCheckpoint")),
                 None)  # fmt: skip
    if saved is None:
        return Verdict(item, True, "the best checkpoint records no monitored value")
    same_epoch = summary.get("epoch") == saved.get("best_epoch")
    value = summary.get("value")
    same_value = value is None or math.isclose(float(value), float(saved["best"]), rel_tol=1e-9)
    if same_epoch and same_value:
        return Verdict(item, True, f"agree (epoch {saved.get('best_epoch')}, {value})")
    return Verdict(item, False, f"summary says epoch {summary.get('epoch')} = {value}, the best "
                   f"checkpoint epoch {saved.get('best_epoch')} = {saved['best']}")  # fmt: skip


def _payload(ckpt: Path) -> dict[str, Any] | None:
    from trainlab.train.checkpoint import load_checkpoint

    try:
        return load_checkpoint(ckpt)
    except CheckpointError:
        return None
