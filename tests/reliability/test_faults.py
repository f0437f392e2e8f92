"""Injected faults: a second writer, a full disk, an I/O error. Each stops in one line, leaves the
saved checkpoints intact, and ``--resume`` afterwards ends exactly where an uninterrupted run
ends."""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core_support import SYNTH
from trainlab.cli.main import main
from trainlab.errors import StorageError
from trainlab.train.checkpoint import resolve_checkpoint, verify_checkpoint

OPTS = ["train.epochs=3", "train.threads=1"]  # 6 steps per epoch: checkpoints at 6, 12, 18


def train(recipe: Path, run: Path, *overrides: str) -> int:
    return main(["train", str(recipe), *overrides, "--run-dir", str(run), "--no-progress"])


def resume(run: Path) -> int:
    return main(["train", "--resume", str(run), "--no-progress"])


def assert_same_final_weights(a: Path, b: Path) -> None:
    wa = load_file(str(resolve_checkpoint(a) / "model.safetensors"))
    wb = load_file(str(resolve_checkpoint(b) / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture
def full_run(recipe, tmp_path) -> tuple[Path, Path]:
    """The recipe and an uninterrupted run of it, to compare resumed runs against."""
    path = recipe(SYNTH)
    assert train(path, tmp_path / "full", *OPTS) == 0
    return path, tmp_path / "full"


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("trainlab: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_second_writer_refused_and_a_killed_holder_leaves_no_stale_lock(
    full_run, tmp_path, capsys
) -> None:
    _, run = full_run
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
         "fcntl.flock(f, fcntl.LOCK_EX); f.truncate(0); f.write('pid 4242: trainlab train'); "
         "f.flush(); print('held', flush=True); time.sleep(60)", str(run / ".lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = (run / "metrics.jsonl").read_text()
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "train.epochs=4", "--no-progress"]) == 2
        line = one_line(capsys.readouterr().err)
        assert "another trainlab process (pid 4242: trainlab train)" in line
        assert (run / "metrics.jsonl").read_text() == before  # nothing was touched
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock with the process
        holder.wait()
    assert main(["train", "--resume", str(run), "train.epochs=4", "--no-progress"]) == 0


def test_full_disk_at_a_checkpoint_then_exact_resume(full_run, tmp_path, monkeypatch, capsys):
    import trainlab.train.checkpoint as ck

    path, full = full_run
    real = ck._write_bytes

    def fills_at_step_12(file: Path, data: bytes) -> dict:
        if "step-00000012" in str(file) and file.name == "state.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real(file, data)

    monkeypatch.setattr(ck, "_write_bytes", fills_at_step_12)
    part = tmp_path / "part"
    capsys.readouterr()
    assert train(path, part, *OPTS) == 4
    line = one_line(capsys.readouterr().err)
    assert "state.pt: No space left on device" in line and "step-00000006 is intact" in line
    assert f"--resume {part}" in line
    assert (part / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert verify_checkpoint(part / "checkpoints" / "step-00000006") is None
    assert not list((part / "checkpoints").glob(".tmp-*"))
    monkeypatch.undo()  # space freed
    assert resume(part) == 0
    assert_same_final_weights(full, part)


class FailingFile:
    """A file whose writes fail with EIO after ``ok`` writes (a failing device)."""

    def __init__(self, f, ok: int) -> None:
        self.f, self.ok = f, ok

    def write(self, text: str) -> int:
        self.ok -= 1
        if self.ok < 0:
            raise OSError(errno.EIO, "Input/output error")
        return self.f.write(text)

    def close(self) -> None:
        self.f.close()


def test_io_error_in_metrics_log_then_exact_resume(full_run, tmp_path, monkeypatch, capsys):
    import trainlab.tracking.jsonl as jl

    path, full = full_run
    monkeypatch.setattr(jl, "open", lambda *a, **k: FailingFile(open(*a, **k), 7), raising=False)
    part = tmp_path / "part"
    capsys.readouterr()
    assert train(path, part, *OPTS) == 4
    line = one_line(capsys.readouterr().err)
    assert f"cannot write {part / 'metrics.jsonl'}: Input/output error" in line
    assert "checkpoints are intact" in line
    monkeypatch.undo()
    assert resume(part) == 0
    assert_same_final_weights(full, part)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (needs the right to mount: root in a container; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = shutil.which("mount")
    done = mount and subprocess.run([mount, "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                                    capture_output=True).returncode == 0  # fmt: skip
    if not done:
        pytest.skip("cannot mount a tmpfs here (not root); the patched-write tests cover this")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


class FillDisk:
    """At the end of epoch 2, fill the disk the run writes to (before the checkpoint saves)."""

    def __init__(self, disk: Path) -> None:
        self.filler = disk / "filler"

    def on_epoch_end(self, state) -> None:
        if state.epoch != 2:
            return
        with open(self.filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass


def test_real_full_tmpfs_then_exact_resume(full_run, small_disk) -> None:
    from trainlab.run import train_run

    path, full = full_run
    part = small_disk / "part"
    with pytest.raises(StorageError, match="No space left on device") as e:
        train_run(path, OPTS, run_dir=part, progress=False, extra_callbacks=[FillDisk(small_disk)])
    assert "\n" not in str(e.value)
    assert (part / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    (small_disk / "filler").unlink()
    assert resume(part) == 0
    assert_same_final_weights(full, part)
