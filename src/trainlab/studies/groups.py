"""Two groups of runs compared metric by metric: mean ± std and 95 % interval of each group,
the difference and its t-test (paired by seed when both groups hold the same seeds).

``trainlab compare A1 A2 A3 --vs B1 B2 B3`` prints this; it reads run directories only.

>>> rows = compare_groups(["runs/bn-s0", "runs/bn-s1"], ["runs/nobn-s0", "runs/nobn-s1"])
...                                                          # doctest: +SKIP
>>> [r["metric"] for r in rows][:1], rows[0]["test"]         # doctest: +SKIP
(['test/acc'], 'paired')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.studies.stats import compare, summarize

__all__ = ["compare_groups", "groups_table"]


def _seed(run: Any) -> Any:
    return (run.config or {}).get("seed")


def compare_groups(
    a: list[str | Path], b: list[str | Path], metrics: list[str] | None = None
) -> list[dict[str, Any]]:
    """One row per metric both groups have (or per ``metrics``): each group's summary, the
    difference ``mean(b) - mean(a)`` and its test. Runs pair up by seed when both groups hold
    the same set of seeds, once each."""
    from trainlab.reports.compare import compare_runs

    ga, gb = compare_runs(list(a)), compare_runs(list(b))
    seeds_a, seeds_b = [_seed(r) for r in ga.runs], [_seed(r) for r in gb.runs]
    paired = (None not in seeds_a and len(set(seeds_a)) == len(seeds_a)
              and sorted(seeds_a, key=str) == sorted(seeds_b, key=str))  # fmt: skip
    order_b = [seeds_b.index(s) for s in seeds_a] if paired else list(range(len(gb.runs)))
    names = metrics or [m for m in ga.metrics if m in gb.metrics]
    rows = []
    for m in names:
        va = [v.get(m) for v in ga.values]
        vb = [gb.values[i].get(m) for i in order_b]
        if all(x is None for x in va) or all(x is None for x in vb):
            continue
        both = paired and None not in va and None not in vb
        xa = [x for x in va if x is not None]
        xb = [x for x in vb if x is not None]
        diff = compare(xa, xb, paired=both)  # type: ignore[arg-type]
        rows.append({"metric": m, "a": summarize(xa).as_dict(),  # type: ignore[arg-type]
                     "b": summarize(xb).as_dict(), **diff.as_dict()})  # type: ignore[arg-type]
    return rows


def groups_table(rows: list[dict[str, Any]], label_a: str = "A", label_b: str = "B") -> Any:
    """The rows as a rich table."""
    from rich.table import Table

    table = Table(title=f"{label_a} against {label_b} (difference = {label_b} − {label_a})")
    for col in ("metric", f"{label_a} mean ± std (n)", f"{label_b} mean ± std (n)",
                "difference", "test", "p"):  # fmt: skip
        table.add_column(col, justify="right" if col != "metric" else "left")
    for r in rows:
        cells = [r["metric"]]
        for side in ("a", "b"):
            s = r[side]
            cells.append(f"{s['mean']:.4g} ± {s['std']:.2g} ({s['n']})" if s["n"] else "—")
        cells += [f"{r['diff']:+.4g}", r["test"], "—" if r["p"] is None else f"{r['p']:.3g}"]
        table.add_row(*cells)
    return table
