"""What ``trainlab tune`` leaves in the study folder: ``trials.json``, ``best.yaml``, Optuna's
matplotlib plots and ``trials.html`` (one page listing every trial)."""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path
from typing import Any

import yaml

from trainlab.tracking.rundir import write_json

__all__ = ["write_outputs", "trial_records"]

_PLOTS = (
    ("history.png", "plot_optimization_history", "optimisation history"),
    ("importances.png", "plot_param_importances", "parameter importances"),
    ("parallel.png", "plot_parallel_coordinate", "parallel coordinates"),
)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def trial_records(study: Any) -> list[dict[str, Any]]:
    """Every trial of ``study`` as plain data (what ``trials.json`` holds)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        dur = t.duration.total_seconds() if t.duration is not None else None
        out.append({
            "number": t.number, "state": t.state.name, "value": _finite(t.value),
            "params": dict(t.params), "overrides": a.get("overrides", []),
            "run_dir": a.get("run_dir"), "epochs": a.get("epochs"),
            "pruned_at_epoch": a.get("pruned_at_epoch"), "reason": a.get("fail_reason"),
            "retry_of": t.system_attrs.get("failed_trial"), "worker": a.get("worker"),
            "intermediate": {str(k): _finite(v) for k, v in t.intermediate_values.items()},
            "start": t.datetime_start.isoformat() if t.datetime_start else None,
            "duration_s": round(dur, 2) if dur is not None else None,
        })  # fmt: skip
    return out


def write_outputs(plan: Any, study: Any, trained: int, plots: bool = True) -> Any:
    """Write the study folder's outputs and return the :class:`TuneResult`."""
    from trainlab.studies.tune import TuneResult, _direction, _shown

    records = trial_records(study)
    out: Path = plan.out
    notes: list[str] = []
    files = {"trials": str(out / "trials.json")}
    write_json(out / "trials.json", records)
    complete = [r for r in records if r["state"] == "COMPLETE" and r["value"] is not None]
    best = None
    if complete:
        pick = max if _direction(plan) == "maximize" else min
        best = pick(complete, key=lambda r: r["value"])  # ties: the earliest trial
        path = _best_yaml(plan, best, out / "best.yaml")
        if path is not None:
            files["best"] = str(path)
    else:
        notes.append("no trial completed: no best.yaml")
    if plots:
        files.update(_plots(study, out, notes))
    result = TuneResult(
        study_name=plan.study_name, storage=_shown(plan.storage), out=out,
        direction=_direction(plan), monitor=plan.monitor, trials=records, best=best,
        best_overrides=list(best["overrides"]) if best else [], trained=trained,
        files=files, notes=notes,
    )  # fmt: skip
    files["html"] = str(_html(result, out / "trials.html"))
    return result


def _best_yaml(plan: Any, best: dict[str, Any], path: Path) -> Path | None:
    """The best trial's resolved ``config.yaml``, with the recipe's own ``train.threads``
    (workers may have lowered it): ``trainlab train best.yaml`` reproduces the trial."""
    src = Path(best["run_dir"] or "") / "config.yaml"
    if not src.is_file():
        return None
    cfg = yaml.safe_load(src.read_text())
    cfg.setdefault("train", {})["threads"] = plan.base["train"].get("threads")
    head = (f"# best trial {best['number']} of study '{plan.study_name}': {plan.monitor} "
            f"{best['value']:.6g}\n# reproduce: trainlab train {path}\n")  # fmt: skip
    path.write_text(head + yaml.safe_dump(cfg, sort_keys=False))
    return path


def _plots(study: Any, out: Path, notes: list[str]) -> dict[str, str]:
    """Optuna's matplotlib figures as PNGs; a figure Optuna cannot draw is skipped with a note
    (parameter importances need two completed trials with different values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from optuna.visualization import matplotlib as ovm

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    files = {}
    for name, fn, title in _PLOTS:
        if name == "importances.png" and len({t.value for t in done}) < 2:
            notes.append(f"{title}: not drawn (Optuna needs two completed trials with "
                         "different values)")  # fmt: skip
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = getattr(ovm, fn)(study)
                fig = np.ravel(axes)[0].figure
                fig.savefig(out / name, dpi=100, bbox_inches="tight")
                plt.close(fig)
            files[name.removesuffix(".png")] = str(out / name)
        except Exception as e:  # e.g. a single distinct value, no finished trial
            notes.append(f"{title}: not drawn ({type(e).__name__}: {str(e)[:200]})")
    return files


def _cell(text: Any) -> str:
    return f"<td>{html.escape('' if text is None else str(text))}</td>"


def _html(result: Any, path: Path) -> Path:
    """One self-contained page: the best trial, the plots, and a table of every trial."""
    head = ("number", "state", "value", "epochs", "params", "run dir", "reason")
    rows = []
    for r in result.trials:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r["params"].items())  # fmt: skip
        value = f"{r['value']:.4f}" if r["value"] is not None else ""
        link = r["run_dir"] or ""
        rel = html.escape(str(Path(link).relative_to(path.parent))) if link.startswith(
            str(path.parent)) else html.escape(link)  # fmt: skip
        cells = [_cell(r["number"]), _cell(r["state"]), _cell(value), _cell(r["epochs"]),
                 _cell(params), f'<td><a href="{rel}">{rel}</a></td>', _cell(r["reason"])]
        rows.append(f'<tr class="{r["state"].lower()}">{"".join(cells)}</tr>')
    best = result.best
    best_line = (f"<p>best: trial {best['number']}, {html.escape(result.monitor)} "
                 f"{best['value']:.4f}<br><code>{html.escape(' '.join(result.best_overrides))}"
                 "</code></p>") if best else "<p>no completed trial yet</p>"  # fmt: skip
    imgs = "".join(f'<figure><img src="{Path(p).name}" alt="{k}"><figcaption>{k}</figcaption>'
                   "</figure>" for k, p in result.files.items() if p.endswith(".png"))  # fmt: skip
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>study {html.escape(result.study_name)}</title><style>
body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}} tr.pruned{{color:#777}}
tr.fail{{color:#b00}} img{{max-width:560px}} figure{{display:inline-block;margin:4px}}
</style></head><body>
<h1>study {html.escape(result.study_name)}</h1>
<p>storage <code>{html.escape(result.storage)}</code>, {result.direction}
{html.escape(result.monitor)}, {len(result.trials)} trials.
Live view: <code>optuna-dashboard {html.escape(result.storage)}</code></p>
{best_line}{imgs}<ul>{notes}</ul>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{"".join(rows)}</table>
</body></html>
"""
    path.write_text(page)
    return path

