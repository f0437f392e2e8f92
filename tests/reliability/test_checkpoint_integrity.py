"""Checksummed checkpoints: damage is reported in one line, ``--resume``/``eval`` fall back to the
newest intact checkpoint, ``trainlab verify`` gives a verdict per item."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core_support import SYNTH
from trainlab.cli.main import main
from trainlab.errors import CheckpointError
from trainlab.train.checkpoint import (
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)

# 6 steps per epoch; two checkpoints kept: step-12 and step-18 after 3 epochs.
THREE_EPOCHS = ["train.epochs=3", "train.threads=1"]


def train(recipe: Path, run: Path, *overrides: str) -> int:
    return main(["train", str(recipe), *overrides, "--run-dir", str(run), "--no-progress"])


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run, "latest") / "model.safetensors"))


@pytest.fixture
def finished(recipe, tmp_path) -> Path:
    run = tmp_path / "run"
    assert train(recipe(SYNTH), run, *THREE_EPOCHS) == 0
    return run


class Evil:
    """A pickle that would create a file when unpickled without ``weights_only``."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_commit_records_size_and_sha256(finished) -> None:
    ckpt = resolve_checkpoint(finished)
    manifest = json.loads((ckpt / "COMMIT").read_text())["files"]
    assert set(manifest) == {"model.safetensors", "state.pt"}
    import hashlib

    for name, entry in manifest.items():
        data = (ckpt / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert verify_checkpoint(ckpt) is None


def test_truncated_weights_resume_falls_back_and_stays_exact(recipe, tmp_path, capsys) -> None:
    path = recipe(SYNTH)
    full, part = tmp_path / "full", tmp_path / "part"
    assert train(path, full, "train.epochs=4", "train.threads=1") == 0
    assert train(path, part, *THREE_EPOCHS) == 0
    damaged = part / "checkpoints" / "step-00000018" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:100])  # a copy interrupted, a disk that filled
    capsys.readouterr()
    assert main(["train", "--resume", str(part), "train.epochs=4", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(x for x in err.splitlines() if "damaged" in x)
    assert "step-00000018" in line and "model.safetensors: 100 bytes" in line
    assert "using step-00000012" in line and "6 steps older" in line
    full_w, part_w = weights(full), weights(part)
    assert all(torch.equal(full_w[k], part_w[k]) for k in full_w)  # exact from step 12


def test_tampered_state_is_refused_in_one_line_and_never_run(finished, tmp_path, capsys) -> None:
    ckpt = resolve_checkpoint(finished)
    sentinel = tmp_path / "code-ran"
    (ckpt / "state.pt").write_bytes(pickle.dumps(Evil(sentinel)))
    with pytest.raises(CheckpointError, match="state.pt: .*expected"):
        load_checkpoint(ckpt)
    # An older checkpoint without checksums: weights_only=True refuses, in one line.
    (ckpt / "COMMIT").write_text("ok\n")
    with pytest.raises(CheckpointError, match="cannot load checkpoint") as e:
        load_checkpoint(ckpt)
    assert "\n" not in str(e.value)
    assert not sentinel.exists()
    capsys.readouterr()
    assert main(["eval", str(finished), "--checkpoint", "latest"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and not sentinel.exists()


def test_eval_falls_back_and_no_intact_checkpoint_exits_2(finished, capsys) -> None:
    ckpts = sorted((finished / "checkpoints").glob("step-*"))
    assert [p.name for p in ckpts] == ["step-00000012", "step-00000018"]
    (ckpts[1] / "state.pt").write_bytes(b"\0" * 64)
    capsys.readouterr()
    assert main(["eval", str(finished), "--checkpoint", "latest", "--json"]) == 0
    err = capsys.readouterr().err
    assert "using step-00000012" in err and "state.pt: 64 bytes" in err
    raw = bytearray((ckpts[0] / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit: same size, different SHA-256
    (ckpts[0] / "model.safetensors").write_bytes(bytes(raw))
    assert main(["train", "--resume", str(finished), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no valid checkpoint (none intact" in err
    assert "step-00000018 (state.pt: 64 bytes" in err
    assert "step-00000012 (model.safetensors: SHA" in err


def test_checkpoint_without_checksums_still_loads(finished) -> None:
    ckpt = resolve_checkpoint(finished)
    payload = load_checkpoint(ckpt)
    (ckpt / "COMMIT").write_text("ok\n")  # how trainlab marked checkpoints before checksums
    assert resolve_checkpoint(finished) == ckpt
    assert load_checkpoint(ckpt)["position"] == payload["position"]


@pytest.mark.parametrize("code", ["ENOSPC", "EIO", "EROFS", "EDQUOT"])
def test_save_failure_keeps_previous_and_removes_partial(tmp_path, monkeypatch, code) -> None:
    import errno
    import os

    import trainlab.train.checkpoint as ck
    from trainlab.errors import StorageError

    model = torch.nn.Linear(3, 2)
    with pytest.raises(StorageError, match="no checkpoint was saved yet"):
        with monkeypatch.context() as m:
            m.setattr(ck, "_fsync_dir", lambda p: (_ for _ in ()).throw(OSError(errno.EROFS, "x")))
            save_checkpoint(tmp_path, "step-00000000", model, {"position": {"step": 0}})
    save_checkpoint(tmp_path, "step-00000001", model, {"position": {"step": 1}})
    real = ck._write_bytes
    num = getattr(errno, code)

    def failing(path: Path, data: bytes) -> dict:
        if path.name == "state.pt":
            raise OSError(num, os.strerror(num), str(path))
        return real(path, data)

    monkeypatch.setattr(ck, "_write_bytes", failing)
    with pytest.raises(StorageError, match=f"{os.strerror(num)}; checkpoint step-00000001 is"):
        save_checkpoint(tmp_path, "step-00000002", model, {"position": {"step": 2}})
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "step-00000002").exists()
    assert (tmp_path / "latest").read_text().strip() == "step-00000001"
    assert verify_checkpoint(tmp_path / "step-00000001") is None


def test_verify_command_verdicts(finished, capsys) -> None:
    capsys.readouterr()
    assert main(["verify", str(finished)]) == 0
    out = capsys.readouterr().out
    assert "all" in out.splitlines()[-1] and "DAMAGED" not in out
    assert "summary.json ↔ best checkpoint" in out and "agree" in out
    with open(finished / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "train/lo')  # a torn line
    best = finished / "checkpoints" / (finished / "checkpoints" / "best").read_text().strip()
    (best / "model.safetensors").write_bytes(b"")
    assert main(["verify", str(finished)]) == 1
    lines = capsys.readouterr().out.splitlines()
    damaged = [x for x in lines if x.startswith("DAMAGED")]
    assert any("metrics.jsonl" in x and "is not a JSON record" in x for x in damaged)
    assert any(best.name in x and "model.safetensors: 0 bytes" in x for x in damaged)
    assert any("checkpoints/best" in x for x in damaged)
    assert "damaged" in lines[-1]
    assert main(["verify", str(finished / "nothing")]) == 2
