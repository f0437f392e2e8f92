"""A sweep's figures: runs grouped by parameters (seeds pooled), the difference each swept key
makes at equal other settings, and the files that hold them (``sweep.json``, ``sweep.md``,
``compare.html``)."""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

from trainlab.studies.stats import compare, summarize

__all__ = ["summarize_sweep", "write_outputs", "markdown", "show"]


def _value(run: Any) -> float | None:
    """The run's best value of the monitored metric (the one its best checkpoint was chosen
    by), or ``None`` when it has none."""
    value = (run.summary.get("best") or {}).get("value")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _test_key(monitor: str) -> str:
    return "test/" + monitor.split("/", 1)[-1]


def summarize_sweep(result: Any) -> None:
    """Fill ``result.groups`` and ``result.comparisons`` from the runs' summaries."""
    groups: dict[str, dict[str, Any]] = {}
    for run in result.runs:
        key = json.dumps(run.params, sort_keys=True)
        g = groups.setdefault(key, {"params": run.params, "runs": []})
        g["runs"].append(run)
    test_key = _test_key(result.monitor)
    result.groups = []
    for g in groups.values():
        runs = g["runs"]
        values = [_value(r) for r in runs]
        tests = [r.summary.get("test", {}).get(test_key) for r in runs]
        result.groups.append({
            "params": g["params"],
            "seeds": [r.seed for r in runs],
            "values": values,
            "monitor": summarize([v for v in values if v is not None]).as_dict(),
            "test": summarize([t for t in tests if isinstance(t, (int, float))]).as_dict(),
            "diverged": sum(r.status == "diverged" for r in runs),
            "failed": sum(r.status == "failed" for r in runs),
            "unfinished": sum(r.status in ("pending", "interrupted") for r in runs),
        })  # fmt: skip
    result.comparisons = _comparisons(result.groups)


def _comparisons(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every key, every pair of its values at each setting of the other keys."""
    keys = list(groups[0]["params"]) if groups else []
    out = []
    for key in keys:
        buckets: dict[str, list[dict[str, Any]]] = {}
        for g in groups:
            rest = {k: v for k, v in g["params"].items() if k != key}
            buckets.setdefault(json.dumps(rest, sort_keys=True), []).append(g)
        for rest, members in buckets.items():
            for a, b in combinations(members, 2):
                va, vb = a["values"], b["values"]
                paired = a["seeds"] == b["seeds"] and None not in va and None not in vb
                diff = compare([v for v in va if v is not None], [v for v in vb if v is not None],
                               paired=paired)  # fmt: skip
                out.append({"key": key, "a": a["params"][key], "b": b["params"][key],
                            "at": json.loads(rest), **diff.as_dict()})  # fmt: skip
    return out


def show(value: Any) -> str:
    """A parameter value for tables: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fmt(s: dict[str, Any], digits: int = 4) -> str:
    if not s["n"]:
        return "—"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} (n={s['n']})"


def _ci(s: dict[str, Any], digits: int = 4) -> str:
    if s["ci95_low"] is None:
        return "—"
    return f"{s['ci95_low']:.{digits}f} – {s['ci95_high']:.{digits}f}"


def markdown(result: Any) -> str:
    """The grouped table and the comparisons as Markdown (``sweep.md``)."""
    keys = list(result.groups[0]["params"]) if result.groups else []
    test_key = _test_key(result.monitor)
    head = [*keys, "runs", f"{result.monitor} (best) mean ± std", "95% CI", f"{test_key}",
            "diverged/failed"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in result.groups:
        cells = [show(g["params"][k]) for k in keys]
        cells += [str(len(g["seeds"])), _fmt(g["monitor"]), _ci(g["monitor"]), _fmt(g["test"]),
                  f"{g['diverged']}/{g['failed']}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if result.comparisons:
        lines += ["", "| key | a → b | at | difference (b − a) | test | p |", "|---" * 6 + "|"]
        for c in result.comparisons:
            at = ", ".join(f"{k}={show(v)}" for k, v in c["at"].items()) or "—"
            p = "—" if c["p"] is None else f"{c['p']:.3g}"
            diff = "—" if not math.isfinite(c["diff"]) else f"{c['diff']:+.4f}"
            change = f"{show(c['a'])} → {show(c['b'])}"
            lines.append(f"| {c['key']} | {change} | {at} | {diff} | {c['test']} | {p} |")
    return "\n".join(lines) + "\n"


def write_outputs(result: Any) -> None:
    """``sweep.json`` (index and figures), ``sweep.md``, and ``compare.html`` over the finished
    runs (trainlab's run comparison: metrics, config differences, overlaid curves)."""
    from trainlab.tracking.rundir import write_json

    out = Path(result.out)
    write_json(out / "sweep.json", _jsonable(result.as_dict()))
    (out / "sweep.md").write_text(markdown(result))
    finished = [r.run_dir for r in result.runs if (Path(r.run_dir) / "summary.json").is_file()]
    if len(finished) >= 2:
        from trainlab.reports import compare_runs, write_comparison
        from trainlab.reports.rundata import ReportError

        try:
            write_comparison(compare_runs(finished), out / "compare.html")
        except ReportError:  # a run's records unreadable: the sweep's own files still stand
            pass


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj
