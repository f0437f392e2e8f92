"""``report.html`` for one run: recipe, environment, metrics, every plot, the run's warnings.

``build_report(run_dir)`` reads the run directory only, writes the figures as PNG files beside
it (``curves.png``, ``lr.png``, ``confusion.png``, ``per_class.png``, ``roc_pr.png``,
``norms.png``, ``top_losses.png``) and the page, self-contained, as ``report.html``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from trainlab.reports import insight, plots
from trainlab.reports.attention import attention_section
from trainlab.reports.attention import figures as attention_figures
from trainlab.reports.page import esc, fmt, image, page, section, table, write_atomic
from trainlab.reports.rundata import RunData, load_run
from trainlab.reports.samples import samples_section

__all__ = ["build_report", "make_figures", "class_stats", "confused_pairs"]


def build_report(run_dir: str | Path) -> Path:
    """Write the run's figures and ``report.html``; returns the page's path.

    >>> build_report("runs/synthetic-20250101-120000")   # doctest: +SKIP
    PosixPath('runs/synthetic-20250101-120000/report.html')
    """
    run = load_run(run_dir)
    figures = make_figures(run)
    return write_atomic(run.path / "report.html", render(run, figures))


def evaluation(run: RunData) -> tuple[str, dict[str, Any]]:
    """The richest evaluation the run holds: ``("test", eval_test.json)``, else the last
    validation record (a run that stopped before its test evaluation)."""
    if run.test and "test/confusion" in run.test:
        return "test", run.test
    for r in reversed(run.records):
        if "val/confusion" in r:
            return "val", r
    return "test", run.test or {}


def make_figures(run: RunData) -> dict[str, Path | None]:
    """Every figure the run's files allow, written into the run directory."""
    out = run.path
    split, ev = evaluation(run)
    cm = ev.get(f"{split}/confusion")
    per_class = ev.get(f"{split}/acc_per_class")
    figs: dict[str, Path | None] = {
        "curves": plots.plot_curves(run, out / "curves.png"),
        "lr": plots.plot_lr(run, out / "lr.png"),
        "confusion": None,
        "per_class": None,
        "roc_pr": None,
    }
    if _matrix(cm):
        names = run.class_names(len(cm))
        figs["confusion"] = plots.plot_confusion(cm, out / "confusion.png", names)
    if isinstance(per_class, list) and per_class:
        names = run.class_names(len(per_class))
        title = f"{split} accuracy per class"
        figs["per_class"] = plots.plot_per_class(per_class, out / "per_class.png", names, title)
    roc, pr = ev.get(f"{split}/roc"), ev.get(f"{split}/pr")
    if isinstance(roc, list) and isinstance(pr, list) and len(roc) == len(pr) == 2:
        names = run.class_names(len(roc[0]))
        areas = (ev.get(f"{split}/auroc"), ev.get(f"{split}/ap"))
        figs["roc_pr"] = plots.plot_roc_pr(roc, pr, out / "roc_pr.png", names, areas)
    figs.update(insight.figures(run))  # norms.png, top_losses.png
    figs.update(attention_figures(run))  # attention.png (seq2seq, Transformer)
    return figs


def _matrix(cm: Any) -> bool:
    return isinstance(cm, list) and bool(cm) and all(isinstance(r, list) for r in cm)


def class_stats(cm: list[list[float]], names: list[str]) -> list[list[Any]]:
    """Per class: name, support, recall (= per-class accuracy), precision, most confused with.

    >>> class_stats([[8, 2], [1, 9]], ["a", "b"])[0]
    ['a', 10, 0.8, 0.8888888888888888, 'b (2)']
    """
    k = len(cm)
    col = [sum(cm[i][j] for i in range(k)) for j in range(k)]
    rows = []
    for i in range(k):
        support = sum(cm[i])
        others = [(cm[i][j], j) for j in range(k) if j != i and cm[i][j] > 0]
        worst = max(others) if others else None
        rows.append(
            [
                names[i],
                support,
                cm[i][i] / support if support else float("nan"),
                cm[i][i] / col[i] if col[i] else float("nan"),
                f"{names[worst[1]]} ({worst[0]})" if worst else "",
            ]
        )
    return rows


def confused_pairs(cm: list[list[float]], names: list[str], top: int = 8) -> list[list[Any]]:
    """The most frequent mistakes: true class, predicted class, count, share of the true class.

    >>> confused_pairs([[8, 2], [1, 9]], ["a", "b"])
    [['a', 'b', 2, '20.0 %'], ['b', 'a', 1, '10.0 %']]
    """
    pairs = [
        (cm[i][j], i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j and cm[i][j]
    ]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [[names[i], names[j], n, f"{100 * n / sum(cm[i]):.1f} %"] for n, i, j in pairs[:top]]


def render(run: RunData, figures: dict[str, Path | None]) -> str:
    """The report page as a string (figures embedded)."""
    note = insight.warnings_note(run)
    body = [
        _header(run),
        _warnings(run.warnings + ([note] if note else [])),
        section("Results", _results(run)),
        _diagnosis(run),
        section(
            "Training curves",
            image(figures.get("curves"), "loss and accuracy per epoch"),
            image(figures.get("lr"), "learning rate per step"),
        ),
        _evaluation_section(run, figures),
        samples_section(run),
        insight.top_losses_section(run, figures),
        attention_section(run, figures),
        insight.norms_section(figures),
        insight.model_section(run),
        insight.warnings_section(run),
        section(
            "Recipe and environment",
            '<div class="cols"><div><h3>config.yaml (resolved)</h3>'
            + _pre(yaml.safe_dump(run.config, sort_keys=False, default_flow_style=None))
            + "</div><div><h3>env.json</h3>"
            + table(["key", "value"], _env_rows(run.env))
            + "</div></div>",
        ),
        f"<footer>Written by <code>trainlab report</code> on {esc(time.strftime('%Y-%m-%d %H:%M'))}"
        f" from {esc(run.path)}.</footer>",
    ]
    return page(f"{run.name}: trainlab report", "\n".join(b for b in body if b))


def _diagnosis(run: RunData) -> str:
    """The doctor's findings from the run's records (``trainlab doctor RUN_DIR``)."""
    from trainlab.doctor.records import diagnose_loaded
    from trainlab.doctor.render import html_section

    if not run.records:
        return ""
    return html_section(diagnose_loaded(run, insight.read_norms(run.path)))


def results_rows(run: RunData) -> list[list[Any]]:
    """Rows ``[metric, train, val, test]``: the last epoch's train and validation figures and
    the test figures of the evaluated checkpoint, side by side.

    >>> run = RunData(Path("r"), "r", records=[{"step": 8, "epoch": 1, "train/loss_epoch": 0.5,
    ...                                        "val/loss": 0.6, "val/acc": 0.8}])
    >>> results_rows(run)
    [['loss', 0.5, 0.6, '—'], ['acc', '—', 0.8, '—']]
    """
    final = (run.summary or {}).get("final") or _last_values(run)
    test = (run.summary or {}).get("test") or {}
    cols: list[dict[str, float]] = [{}, {}, {}]
    for key, v in final.items():
        if key.startswith("train/") and key.endswith("_epoch"):
            cols[0][key[6:-6]] = v
        elif key.startswith("val/"):
            cols[1][key[4:]] = v
    cols[2] = {k[5:]: v for k, v in test.items() if k.startswith("test/")}
    names: list[str] = []
    for c in cols:
        names.extend(n for n in c if n not in names)
    return [[n, *(c.get(n, "—") for c in cols)] for n in names if _is_metric(cols, n)]


def _is_metric(cols: list[dict[str, float]], name: str) -> bool:
    return any(isinstance(c.get(name), (int, float)) for c in cols)


def _last_values(run: RunData) -> dict[str, Any]:
    # A run that did not finish has no summary: the latest value of every key stands in.
    out: dict[str, Any] = {}
    for r in run.records:
        out.update(r)
    return out


def _results(run: RunData) -> str:
    rows = results_rows(run)
    s = run.summary or {}
    best = s.get("best") or {}
    notes = []
    if best.get("value") is not None:
        notes.append(
            f"Best {esc(best.get('monitor'))} = {esc(fmt(best['value']))} at epoch "
            f"{esc(best.get('epoch'))}; the test figures are from that checkpoint."
        )
    if not rows:
        return "<p>No metrics were logged.</p>"
    head = ["metric", "train (last epoch)", "val (last epoch)", "test"]
    return table(head, rows) + "".join(f'<p class="meta">{n}</p>' for n in notes)


def _header(run: RunData) -> str:
    status = (
        '<span class="badge ok">finished</span>'
        if run.finished
        else '<span class="badge bad">did not finish</span>'
    )
    s = run.summary or {}
    cfg = run.config
    bits = [
        f"model <b>{esc((cfg.get('model') or {}).get('name', '?'))}</b>",
        f"data <b>{esc((cfg.get('data') or {}).get('name', '?'))}</b>",
    ]
    if s:
        bits.append(f"{esc(s.get('epochs'))} epochs, {esc(s.get('steps'))} steps")
        bits.append(f"{esc(fmt(s.get('wall_s')))} s")
    lrs = set(run.series("lr", x="step")[1])
    if len(lrs) == 1:
        bits.append(f"constant learning rate {esc(fmt(lrs.pop()))}")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(_mtime(run.path)))
    return (
        f"<h1>{esc(run.name)}{status}</h1>\n"
        f'<p class="meta">{esc(run.path)} · {esc(when)}</p>\n'
        f'<p class="meta">{" · ".join(bits)}</p>'
    )


def _mtime(path: Path) -> float:
    cfg = path / "config.yaml"
    return (cfg if cfg.is_file() else path).stat().st_mtime


def _warnings(messages: list[str]) -> str:
    if not messages:
        return ""
    items = "".join(f"<li>{esc(m)}</li>" for m in messages)
    return f'<div class="warn"><b>Warnings</b><ul>{items}</ul></div>'


def _evaluation_section(run: RunData, figures: dict[str, Path | None]) -> str:
    split, ev = evaluation(run)
    cm = ev.get(f"{split}/confusion")
    parts = [image(figures.get("confusion"), f"{split} confusion matrix")]
    if _matrix(cm):
        names = run.class_names(len(cm))
        headers = ["class", "support", "accuracy (recall)", "precision", "most confused with"]
        pairs = confused_pairs(cm, names)
        parts.append(
            '<div class="cols"><div><h3>Per class</h3>'
            + table(headers, class_stats(cm, names))
            + "</div><div><h3>Most confused pairs</h3>"
            + (
                table(["true", "predicted", "count", "share of true"], pairs)
                if pairs
                else "<p>No mistakes.</p>"
            )
            + "</div></div>"
        )
    parts.append(image(figures.get("per_class"), f"{split} accuracy per class"))
    parts.append(image(figures.get("roc_pr"), f"{split} ROC and precision-recall curves"))
    title = "Test set" if split == "test" else "Validation set (last epoch; no test evaluation)"
    return section(title, *parts)


def _pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>" if text.strip() not in ("", "{}") else ""


def _env_rows(env: dict[str, Any]) -> list[list[Any]]:
    # Strings throughout: a key/value list reads best with one alignment.
    return [[k, " ".join(map(str, v)) if isinstance(v, list) else str(v)] for k, v in env.items()]
