"""Comparison of runs: metrics side by side, config differences, overlay, HTML page."""

from __future__ import annotations

from pathlib import Path

import pytest
from reports_support import write_run

from trainlab.cli.main import main
from trainlab.reports import compare_runs, write_comparison
from trainlab.reports.compare import MISSING, direction


def test_compare_lines_up_metrics_and_config_differences(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", lr=0.1, val_acc=(0.5, 0.7, 0.8))
    b = write_run(tmp_path / "b", lr=0.01, val_acc=(0.4, 0.9, 0.6))
    c = compare_runs([a, b])
    assert c.labels == ["a", "b"]
    assert c.config_diff == {"optim.lr": [0.1, 0.01]}
    assert not c.seed_only
    assert c.values[0]["best val/acc"] == 0.8 and c.values[1]["best val/acc"] == 0.9
    assert c.values[1]["best epoch"] == 2
    assert c.best("best val/acc") == 1 and c.best("final val/loss") == 0  # 1.2/3 for both: first
    assert c.best("epochs") is None
    assert direction("final train/loss_epoch") == direction("wall_s") == "min"


def test_seed_only_runs_get_mean_and_std(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed, acc in ((0, 0.7), (1, 0.8), (2, 0.9)):
        write_run(sweep / f"seed{seed}", seed=seed, val_acc=(0.5, acc))
    c = compare_runs([sweep])  # a folder of runs is every run in it
    assert c.labels == ["seed0", "seed1", "seed2"]
    assert set(c.config_diff) == {"seed", "data.seed"} and c.seed_only
    mean, std = c.mean_std("final val/acc")
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)


def test_absent_key_equals_none(tmp_path: Path) -> None:
    # A run from before an option existed matches a newer run that leaves it off.
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b")
    text = (b / "config.yaml").read_text()
    (b / "config.yaml").write_text(text + "ema_decay: null\nextra: 1\n")
    assert compare_runs([a, b]).config_diff == {"extra": [MISSING, 1]}


def test_compare_cli_and_html(tmp_path: Path, capsys) -> None:
    a = write_run(tmp_path / "a&<b>", lr=0.1)
    b = write_run(tmp_path / "b", lr=0.2, finished=False)
    out = tmp_path / "cmp" / "compare.html"
    png = tmp_path / "overlay.png"
    assert main(["compare", str(a), str(b), "--html", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "optim.lr" in printed and "best val/acc" in printed and str(out) in printed
    assert png.stat().st_size > 1000
    html = out.read_text()
    assert "a&amp;&lt;b&gt;" in html and "a&<b>" not in html
    assert html.count('<img src="data:image/png;base64,') == 1
    assert "The run did not finish" in html  # b's warning, labelled
    assert "<td><b>0.8</b></td>" not in html and '<td class="num"><b>' in html  # best in bold


def test_compare_rejects_a_folder_without_runs(tmp_path: Path, capsys) -> None:
    (tmp_path / "nothing").mkdir()
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "neither a run directory nor a folder of runs" in capsys.readouterr().err


def test_write_comparison_from_python(tmp_path: Path) -> None:
    runs = [write_run(tmp_path / n, lr=lr) for n, lr in (("x", 0.1), ("y", 0.3))]
    page = write_comparison(compare_runs(runs), tmp_path / "c.html")
    assert "Config differences" in page.read_text()
