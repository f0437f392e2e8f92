"""``compare`` and ``runs`` at 80 columns: whole run names, samples/s and memory columns, and a
run that drew no curve named under the plot."""

from __future__ import annotations

import json
from pathlib import Path

from reports_support import write_run

from trainlab.cli.main import main
from trainlab.reports import compare_runs

LONG = [f"ex8_bnfree_lr{lr}_batchnorm_sweep_seed{s}" for lr in ("0.5", "4.0") for s in (0, 1)]


def _runs(root: Path) -> list[Path]:
    paths = []
    for i, name in enumerate(LONG):
        p = write_run(root / name, lr=0.1 * (i + 1))
        summary = json.loads((p / "summary.json").read_text())
        summary["final"]["train/samples_per_s"] = 12_345.0 + i
        summary["memory"] = {"peak_rss_mib": 900.0 + i}
        (p / "summary.json").write_text(json.dumps(summary))
        paths.append(p)
    return paths


def test_compare_shows_whole_names_and_throughput(tmp_path: Path, capsys) -> None:
    paths = _runs(tmp_path)
    assert main(["compare", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and all(name in out for name in LONG)  # piped: nothing cut
    assert "samples/s" in out and "peak_rss_mib" in out
    cmp = compare_runs(paths)
    assert cmp.values[3]["samples/s"] == 12_348.0 and cmp.best("samples/s") == 3
    assert cmp.best("peak_rss_mib") == 0  # less memory is better


def test_runs_lists_whole_names_and_samples_per_second(tmp_path: Path, capsys) -> None:
    _runs(tmp_path)
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and all(name in out for name in LONG)
    assert "12,345" in out and "samples/s" in out


def test_on_a_narrow_terminal_names_wrap_instead_of_ending_in_an_ellipsis(tmp_path: Path) -> None:
    from rich.console import Console

    from trainlab.reports.runs import list_runs, print_wide, runs_table

    _runs(tmp_path)
    console = Console(width=80, force_terminal=True, record=True, no_color=True)
    print_wide(console, runs_table(list_runs(tmp_path)))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    first_column = "".join(ln.split("│")[1].strip() for ln in text.splitlines() if "│" in ln)
    assert first_column == "".join(LONG)  # each name whole, wrapped over several lines


def test_a_run_without_curves_is_named_under_the_plot(tmp_path: Path, capsys) -> None:
    good = write_run(tmp_path / "good")
    failed = write_run(tmp_path / "failed", val_acc=(), finished=False)
    png, html = tmp_path / "o.png", tmp_path / "c.html"
    assert main(["compare", str(good), str(failed), "--plot", str(png), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "not in the plot: failed (no val/loss, val/acc recorded; did not finish)" in out
    assert "not in the plot: good" not in out
    assert "not in the curves: failed" in html.read_text()


def test_a_runs_end_warnings_reach_its_report_and_comparisons(tmp_path: Path) -> None:
    from trainlab.reports.rundata import load_run

    p = write_run(tmp_path / "blown")
    summary = json.loads((p / "summary.json").read_text())
    summary["warnings"] = ["training loss exploded: 359,816 at the end of epoch 3"]
    (p / "summary.json").write_text(json.dumps(summary))
    assert "training loss exploded: 359,816 at the end of epoch 3" in load_run(p).warnings
