"""report.html and its figures, from a real run and from damaged run directories."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from reports_support import write_run

from trainlab.cli.main import main
from trainlab.reports import ReportError, build_report, load_run
from trainlab.reports import plots as plots_module

DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def embedded_images(html: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in DATA_URI.findall(html)]


def assert_offline(html: str) -> None:
    """No script, and nothing fetched: every src/href is a data URI or an anchor."""
    assert "<script" not in html.lower()
    for ref in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert ref.startswith(("data:", "#")), ref


def test_report_of_a_real_run(tiny_run: Path, capsys) -> None:
    assert main(["report", str(tiny_run)]) == 0
    out = tiny_run / "report.html"
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    assert_offline(html)
    pngs = ("curves.png", "confusion.png", "per_class.png", "roc_pr.png", "top_losses.png")
    for png in (*pngs, "norms.png"):
        assert (tiny_run / png).is_file(), png
    images = embedded_images(html)
    # curves, confusion, per-class, ROC/PR, top losses, norms (constant LR: stated, not drawn)
    assert len(images) == 6
    assert all(im.format == "PNG" and im.width > 200 for im in images)
    summary = json.loads((tiny_run / "summary.json").read_text())
    test_acc = summary["test"]["test/acc"]
    assert f"{test_acc:.4g}" in html  # the test figures are on the page
    headings = ("Results", "Training curves", "Test set", "Most confused pairs", "env.json")
    for heading in (*headings, "Top losses", "Weights and gradients", "<h2>Model</h2>"):
        assert heading in html
    assert "Total params: 643" in html  # torchinfo's table: 36·16+16 + 16·3+3
    assert "constant learning rate 0.05" in html and "did not finish" not in html


def test_text_is_escaped(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", name='<script>alert("x")</script>')
    html = build_report(run).read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_crashed_run_reports_what_exists(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", finished=False)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 10, "epoch": 3, "train/lo')  # torn by a crash mid-write
    html = build_report(run).read_text()
    assert "did not finish" in html and "1 unreadable line(s) skipped" in html
    assert len(embedded_images(html)) == 1  # curves from what was logged
    assert load_run(run).series("val/acc") == ([1, 2, 3], [0.5, 0.7, 0.8])


def test_validation_fallback_and_roc_curves(tmp_path: Path) -> None:
    from trainlab.metrics import curve_metrics

    run = write_run(tmp_path / "r")
    logits, y = torch.randn(40, 3), torch.arange(40) % 3
    metrics = {k: m(logits, y) for k, m in curve_metrics(3, thresholds=16).items()}
    cm = [[5, 1, 0], [2, 4, 1], [0, 0, 7]]
    record = {"step": 10, "epoch": 3, "val/confusion": cm, "val/acc_per_class": [0.8, 0.6, 1.0]}
    record.update({f"val/{k}": v.tolist() for k, v in metrics.items()})
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    html = build_report(run).read_text()
    assert "Validation set (last epoch; no test evaluation)" in html
    assert (run / "roc_pr.png").is_file() and (run / "confusion.png").is_file()
    assert '<td>1</td><td>0</td><td class="num">2</td>' in html  # most confused: 1 → 0


def test_failed_rebuild_keeps_the_good_report(tmp_path: Path, monkeypatch) -> None:
    run = write_run(tmp_path / "r")
    good = build_report(run).read_text()

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots_module, "plot_curves", broken)
    with pytest.raises(RuntimeError):
        build_report(run)
    assert (run / "report.html").read_text() == good
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_not_a_run_is_one_clear_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="not a run directory"):
        build_report(tmp_path / "empty")
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: error:") and "missing" in err and len(err.splitlines()) == 1
