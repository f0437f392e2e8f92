"""Sweeps: every combination × seed an ordinary run directory, re-runs train nothing,
interrupted runs resume, bad grids fail before any run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from trainlab.cli.main import main
from trainlab.errors import ConfigError, RunInterrupted
from trainlab.studies.sweep import parse_grid, sweep, worker_threads

RECIPE = """
name: sweep_synth
seed: 0
data: {name: synthetic, num_classes: 3, shape: [1, 4, 4], n_train: 96, n_val: 48, n_test: 48,
       batch_size: 32, noise: 1.5}
model: {name: mlp, hidden: [16]}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 2, log_every: 1, precision: fp32, tensorboard: false, report: false,
        norms: false, threads: 1}
"""


def test_grid_times_seeds_gives_runs_and_one_report(recipe, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    grid = {"optim.lr": ["0.01", "0.1"], "model.dropout": ["0.0", "0.3"]}
    res = sweep(recipe(RECIPE), grid=grid, seeds=2, out=out)
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 8 and all((d / "summary.json").is_file() for d in dirs)
    assert res.trained == 8 and all(r.status == "done" for r in res.runs)
    # Each run directory reproduces its combination: config.yaml holds the swept values.
    cfg = (out / res.runs[-1].name / "config.yaml").read_text()
    assert "dropout: 0.3" in cfg and "lr: 0.1" in cfg and "seed: 1" in cfg
    index = json.loads((out / "sweep.json").read_text())
    assert len(index["runs"]) == 8 and len(index["groups"]) == 4
    group = index["groups"][0]
    values = [v for v in group["values"]]
    assert group["monitor"]["mean"] == pytest.approx(sum(values) / len(values))
    assert group["seeds"] == [0, 1]
    # One comparison per key per setting of the other key; seeds match, so paired.
    assert len(index["comparisons"]) == 4
    assert all(c["test"] == "paired" for c in index["comparisons"])
    assert (out / "sweep.md").read_text().count("\n|") >= 8
    assert (out / "compare.html").is_file()

    stamps = {d: (d / "summary.json").stat().st_mtime_ns for d in dirs}
    again = sweep(recipe(RECIPE), grid=grid, seeds=2, out=out)
    assert again.trained == 0
    assert {d: (d / "summary.json").stat().st_mtime_ns for d in dirs} == stamps


class _InterruptAt:
    """Sends this process a SIGINT after ``step`` optimizer steps (as Ctrl-C would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, state) -> None:  # noqa: ANN001
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_run_is_resumed_not_restarted(recipe, tmp_path: Path) -> None:
    from trainlab.run import train_run
    from trainlab.studies.sweep import plan

    path = recipe(RECIPE)
    out = tmp_path / "sw"
    runs = plan(path, [], out, grid={"optim.lr": ["0.05"]})
    with pytest.raises(RunInterrupted):
        train_run(path, runs[0].overrides, run_dir=runs[0].run_dir, progress=False,
                  extra_callbacks=[_InterruptAt(4)])  # fmt: skip
    rdir = Path(runs[0].run_dir)
    assert not (rdir / "summary.json").exists() and (rdir / "checkpoints" / "latest").exists()
    res = sweep(path, grid={"optim.lr": ["0.05"]}, out=out)
    assert res.runs[0].status == "done" and res.trained == 1
    steps = [json.loads(line)["step"] for line in (rdir / "metrics.jsonl").read_text().splitlines()]
    train_steps = sorted({s for s in steps})
    assert train_steps[0] == 1 and train_steps[-1] == 6  # 3 batches × 2 epochs, no step twice
    assert json.loads((rdir / "summary.json").read_text())["epochs"] == 2


def test_diverging_run_is_recorded_and_the_sweep_goes_on(recipe, tmp_path: Path) -> None:
    res = sweep(recipe(RECIPE), grid={"optim.lr": ["0.05", "1e12"]}, out=tmp_path / "sw")
    status = {r.params["optim.lr"]: r.status for r in res.runs}
    assert status[0.05] == "done"
    assert status["1e12"] == "diverged" or status.get(1e12) == "diverged"
    bad = [g for g in res.groups if g["diverged"]]
    assert len(bad) == 1 and bad[0]["monitor"]["n"] == 0


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["optim.lrr=0.1"], "did you mean 'lr'"),
        (["model.hidden=abc"], "model.hidden"),
        (["train.epochs=0"], "train.epochs"),
        (["optim.lr"], "expected KEY=V1,V2"),
        (["optim.lr=0.1,"], "an empty value"),
    ],
)
def test_bad_grid_is_one_line_before_any_run(recipe, tmp_path, capsys, grid, message) -> None:
    args = ["sweep", str(recipe(RECIPE)), "--out", str(tmp_path / "sw")]
    for g in grid:
        args += ["--grid", g]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "sw").exists()


def test_grid_and_random_are_exclusive(recipe, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--grid"):
        sweep(recipe(RECIPE), out=tmp_path / "sw")
    assert parse_grid(["a.b=1,2", "c=x"]) == {"a.b": ["1", "2"], "c": ["x"]}
    assert worker_threads(1) >= 1 and worker_threads(64) == 1


def test_cli_prints_the_grouped_table(recipe, tmp_path, capsys) -> None:
    code = main(["sweep", str(recipe(RECIPE)), "--grid", "optim.lr=0.02,0.2", "--seeds", "2",
                 "--out", str(tmp_path / "sw")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "| optim.lr | runs |" in out and "| 0.02 | 2 |" in out and "paired" in out
    assert out.count("seed=") == 4  # one line per run


@pytest.mark.slow
def test_two_workers_share_the_cores(recipe, tmp_path) -> None:
    res = sweep(recipe(RECIPE), grid={"optim.lr": ["0.01", "0.05", "0.1"]}, workers=2,
                out=tmp_path / "sw")  # fmt: skip
    assert res.trained == 3 and all(r.status == "done" for r in res.runs)
    assert all((Path(r.run_dir) / "summary.json").is_file() for r in res.runs)


def test_compare_two_groups_pairs_by_seed(recipe, tmp_path, capsys) -> None:
    from scipy import stats as sps

    from trainlab.studies.groups import compare_groups

    res = sweep(recipe(RECIPE), grid={"optim.lr": ["0.01", "0.2"]}, seeds=2, out=tmp_path / "s")
    a = [r.run_dir for r in res.runs if r.params["optim.lr"] == 0.01]
    b = [r.run_dir for r in res.runs if r.params["optim.lr"] == 0.2][::-1]  # order must not matter
    rows = {r["metric"]: r for r in compare_groups(a, b)}
    row = rows["best val/acc"]
    va = [r.summary["best"]["value"] for r in res.runs if r.params["optim.lr"] == 0.01]
    vb = [r.summary["best"]["value"] for r in res.runs if r.params["optim.lr"] == 0.2]
    assert row["test"] == "paired" and row["diff"] == pytest.approx(sum(vb) / 2 - sum(va) / 2)
    if row["p"] is not None:
        assert row["p"] == pytest.approx(sps.ttest_rel(vb, va).pvalue)
    assert main(["compare", *a, "--vs", *b, "--metric", "test/acc"]) == 0
    out = capsys.readouterr().out
    assert "test/acc" in out and "paired" in out


def test_random_sweep_samples_the_space(recipe, tmp_path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {type: float, low: 0.001, high: 0.3, log: true}\n"
                     "model.dropout: {type: categorical, choices: [0.0, 0.25]}\n")  # fmt: skip
    res = sweep(recipe(RECIPE), random_trials=3, space=space, out=tmp_path / "sw")
    assert len(res.runs) == 3 and all(r.status == "done" for r in res.runs)
    assert all(0.001 <= r.params["optim.lr"] <= 0.3 for r in res.runs)
    assert all(r.params["model.dropout"] in (0.0, 0.25) for r in res.runs)
    again = sweep(recipe(RECIPE), random_trials=3, space=space, out=tmp_path / "sw")
    assert again.trained == 0  # the same seed draws the same samples: nothing to train
    space.write_text("optim.lr: {type: float, low: 0.3, high: 0.001}\n")
    with pytest.raises(ConfigError, match="optim.lr"):
        sweep(recipe(RECIPE), random_trials=3, space=space, out=tmp_path / "sw2")
    assert not (tmp_path / "sw2").exists()


def test_a_folder_of_another_sweep_is_refused(recipe, tmp_path) -> None:
    out = tmp_path / "sw"
    sweep(recipe(RECIPE), grid={"optim.lr": ["0.05"]}, out=out)
    # More grid values may join the same folder: the base recipe is the same.
    grown = sweep(recipe(RECIPE), grid={"optim.lr": ["0.05", "0.02"]}, out=out)
    assert grown.trained == 1
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ConfigError, match="another recipe or other overrides"):
        sweep(recipe(RECIPE), ["train.epochs=1"], grid={"optim.lr": ["0.05"]}, out=out)
    assert sorted(p.name for p in out.iterdir()) == before
