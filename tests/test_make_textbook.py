"""docs/textbook/make_textbook.py: the tables it writes into the pages come from the files the
commands wrote (sweep.json and the runs' summary.json; analysis.json), between the page's
markers, and the commands shown are the ones it runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    """The script as a module (registered first: its dataclasses look their module up)."""
    path = ROOT / "docs/textbook/make_textbook.py"
    spec = importlib.util.spec_from_file_location("make_textbook", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_textbook"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def mt(tmp_path: Path, monkeypatch):
    mod = _load()
    monkeypatch.setattr(mod, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(mod, "PAGES", tmp_path / "pages")
    (tmp_path / "pages").mkdir()
    return mod


def _run(tmp: Path, name: str, params: dict, test_acc: float, warnings: list[str]) -> dict:
    rdir = tmp / "runs" / "exp" / name
    rdir.mkdir(parents=True)
    (rdir / "summary.json").write_text(json.dumps({"warnings": warnings}))
    return {"params": params, "status": "done", "run_dir": str(rdir),
            "summary": {"best": {"value": test_acc + 0.01}, "test": {"test/acc": test_acc},
                        "final": {"train/samples_per_s": 1000.0}, "wall_s": 2.0}}  # fmt: skip


def test_sweep_table_pools_seeds_and_fills_the_page_between_markers(mt, tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a0", {"model.conv_bn": True}, 0.80, []),
            _run(tmp_path, "a1", {"model.conv_bn": True}, 0.70, []),
            _run(tmp_path, "b0", {"model.conv_bn": False}, 0.10, ["ended at chance"])]  # fmt: skip
    (tmp_path / "runs" / "exp" / "sweep.json").write_text(json.dumps({"runs": runs}))
    exp = mt.Sweep("exp", "recipes/lenet5_fashion_mnist.yaml", ["model.conv_bn=true,false"])
    page = tmp_path / "pages" / "p.md"
    page.write_text("intro\n<!-- textbook:exp -->\nold table\n<!-- /textbook:exp -->\nreading\n")
    assert mt.fill(exp, "today")
    text = page.read_text()
    assert text.startswith("intro\n<!-- textbook:exp -->\n```sh\ntrainlab sweep")
    assert "old table" not in text and text.endswith("<!-- /textbook:exp -->\nreading\n")
    assert "| True | 2 | 0.760 ± 0.071 | 0.750 ± 0.071 | 1,000 | 2.0 | 0 / 0 |" in text
    assert "| False | 1 | 0.110 | 0.100 | 1,000 | 2.0 | 0 / 1 |" in text
    assert "--grid model.conv_bn=true,false --seeds 2" in text and "Measured today" in text


def test_wrapped_commands_run_as_shown(mt) -> None:
    cmd = ["trainlab", "sweep", "r.yaml", "--grid", "a=1,2", "--seeds", "2", "callbacks=[]",
           *[f"key{i}=value{i}" for i in range(12)]]  # fmt: skip
    shown = mt.shell_wrapped(cmd, width=40)
    assert all(len(line) <= 44 for line in shown.splitlines())
    assert "--grid a=1,2" in shown
    import shlex

    assert shlex.split(shown.replace("\\\n", " ")) == cmd


def test_count_table_reads_analysis_json(mt, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "cnt" / "m"
    out.mkdir(parents=True)
    mib = 2**20
    (out / "analysis.json").write_text(json.dumps({
        "layers": {"total_params": 1234},
        "flops": {"forward": 4e9, "train": 12e9,
                  "forward_by_type": {"conv": 3e9, "linear": 1e9}},
        "memory": {"params_by_type": {"conv": 1, "linear": 3}, "activations": 2 * mib,
                   "measured_peak": 10 * mib, "inference_peak": 5 * mib}}))  # fmt: skip
    table = mt.count_table(mt.Count("cnt", [("m", ["lenet5"])], batch=4))
    assert "| m | 1,234 | 25% / 75% | 4.000 G | 75% / 25% | 12.000 G | 2.0 | 10.0 | 5.0 |" in table


def test_every_experiment_has_exactly_one_page_block() -> None:
    mod = _load()
    pages = [p.read_text() for p in (ROOT / "docs/textbook").glob("*.md")]
    for exp in mod.EXPERIMENTS:
        marker = f"<!-- textbook:{exp.id} -->"
        assert sum(t.count(marker) for t in pages) == 1, exp.id
