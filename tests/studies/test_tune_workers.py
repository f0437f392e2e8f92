"""``trainlab tune`` across processes: a SIGKILLed worker, and two workers sharing a study in a
real PostgreSQL server (a throw-away cluster from ``initdb``)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

RECIPE = """
name: digits_mlp
seed: 0
data: {name: digits, batch_size: 64}
model: {name: mlp, hidden: [16]}
task: {name: classification}
optim: {name: sgd, lr: 0.05}
train: {epochs: 2, threads: 1, tensorboard: false, report: false, norms: false, log_every: 20}
"""
SPACE = """
optim.lr: {type: float, low: 0.01, high: 0.5, log: true}
model.hidden.0: {type: int, low: 8, high: 32, step: 8}
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TRAINLAB_OFFLINE": "1"}


def _tune(recipe: Path, space: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "trainlab", "tune", str(recipe), *extra, "--space", str(space),
            "--sampler", "random", "--pruner", "none", "--out", str(out), "--no-plots"]  # fmt: skip


@pytest.fixture
def files(recipe, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return recipe(RECIPE), space


def _running_with_checkpoint(storage: str, name: str) -> tuple[int, int] | None:
    """(trial number, worker pid) of a running trial that has saved a checkpoint."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception:  # not created yet
        return None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        rdir, worker = t.user_attrs.get("run_dir"), t.user_attrs.get("worker")
        if rdir and worker and (Path(rdir) / "checkpoints" / "latest").exists():
            if not (Path(rdir) / "summary.json").exists():
                return t.number, int(worker.rsplit(":", 1)[1])
    return None


@pytest.mark.slow
def test_sigkill_of_a_worker_mid_trial_still_gives_exactly_six(files, tmp_path):
    recipe, space = files
    out = tmp_path / "study"
    cmd = _tune(recipe, space, out, "train.epochs=6", "--trials", "6", "--workers", "2",
                "--heartbeat", "1")  # fmt: skip
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    storage = f"sqlite:///{out / 'study.db'}"
    deadline, victim = time.time() + 240, None
    while victim is None and time.time() < deadline and proc.poll() is None:
        victim = _running_with_checkpoint(storage, "digits_mlp")
        time.sleep(0.1)
    assert victim is not None, proc.communicate()[0]
    number, pid = victim
    os.kill(pid, signal.SIGKILL)  # one worker dies in the middle of its trial
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, log
    assert "killed by SIGKILL" in log
    trials = json.loads((out / "trials.json").read_text())
    states = [t["state"] for t in trials]
    assert states.count("COMPLETE") == 6 and "RUNNING" not in states, log
    killed = trials[number]
    assert killed["state"] == "FAIL"
    [retry] = [t for t in trials if t["retry_of"] == number]
    assert retry["state"] == "COMPLETE" and retry["params"] == killed["params"]
    assert retry["run_dir"] == killed["run_dir"]  # continued from the killed trial's checkpoint
    # the same command again: nothing to do
    again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "trials.json").read_text()) == trials


def _initdb() -> str | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob(
        "/usr/lib/postgresql/*/bin/initdb"))), None)  # fmt: skip
    return str(Path(found).resolve().parent) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster (initdb in a temporary folder, run as the ``postgres``
    user when the tests run as root) on a free port of 127.0.0.1."""
    bindir = _initdb()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (`make postgres` installs Debian's package)")
    pytest.importorskip("psycopg", reason="psycopg is missing: pip install 'trainlab[postgres]'")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start postgres as its own user")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", _free_port()
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                   capture_output=True)  # fmt: skip
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-o", opts, "-w", "-l",
                    str(base / "log"), "start"], check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_one_study_in_postgres(files, tmp_path, postgres_url):
    recipe, space = files
    procs = [
        subprocess.Popen(_tune(recipe, space, tmp_path / f"machine{i}", "--trials", "6",
                               "--storage", postgres_url, "--study", "shared"),
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(len(numbers)))
    assert sum(t.state.name == "COMPLETE" for t in trials) == 6
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in trials)
    # both machines trained some of the trials and both report the same best one
    workers = {t.user_attrs["worker"] for t in trials if t.state.name == "COMPLETE"}
    assert len(workers) == 2, workers
    best = [re.search(r"best: trial (\d+)", out).group(1) for out, _ in outs]
    assert best[0] == best[1] == str(study.best_trial.number)
