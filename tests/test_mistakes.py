"""A battery of realistic mistakes: each ends with exit code 2, one line on stderr naming what is
wrong and the override that fixes it, no traceback, and nothing trained or written first."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from trainlab.cli.main import main

SYN = ("{name: synthetic, num_classes: 10, shape: [1, 6, 6], n_train: 64, n_val: 32, n_test: 32, "
       "batch_size: 32}")  # fmt: skip
TRAIN = "train: {epochs: 1, tensorboard: false, report: false, threads: 1}\n"


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width``×``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def write_images(root: Path, sizes: list[int], mode: str = "RGB") -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "fox"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(8):
            s = sizes[i % len(sizes)]
            pixels = rng.integers(0, 255, (s, s, 3), dtype=np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / c / f"{i}.png")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """Recipes and data files the mistakes are made with."""
    ws = tmp_path_factory.mktemp("mistakes")
    write_images(ws / "imgs", [28])
    write_images(ws / "mixed", [28, 32])
    write_images(ws / "corrupt", [28])
    (ws / "corrupt" / "dog" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    write_images(ws / "bomb", [28])
    (ws / "bomb" / "cat" / "0.png").write_bytes(png_claiming(200_000, 200_000))
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{2 * a:.3f},{1 - a:.3f},{3 * a + 1:.3f}" for a in rng.random(80)]
    (ws / "reg.csv").write_text("a,b,c,y\n" + "\n".join(rows) + "\n")
    (ws / "bad.csv").write_text("a,b,y\n1,2,0\n3,x,1\n" + "".join(f"{i},{i},{i % 2}\n"
                                                             for i in range(40)))  # fmt: skip
    text = [f"{'good fine great' if i % 2 else 'bad awful poor'} item {i},{i % 2}"
            for i in range(60)]  # fmt: skip
    (ws / "text.csv").write_text("text,label\n" + "\n".join(text) + "\n")
    (ws / "img.yaml").write_text(
        "data: {name: image_folder, root: imgs, batch_size: 8, num_workers: 0}\n"
        "model: {name: lenet5}\n" + TRAIN
    )
    (ws / "syn.yaml").write_text(f"data: {SYN}\nmodel: {{name: mlp, hidden: [16]}}\n" + TRAIN)
    (ws / "reg.yaml").write_text(
        "data: {name: csv, path: reg.csv, target: y, task: regression, batch_size: 16}\n"
        "model: {name: mlp, hidden: [16]}\ntask: {name: regression}\n"
        "train: {epochs: 1, tensorboard: false, report: false, threads: 1, monitor: val/loss, "
        "monitor_mode: min}\n"
    )
    (ws / "empty").mkdir()
    (ws / "full").mkdir()
    (ws / "full" / "keep.txt").write_text("precious")
    return ws


# (id, command line after `trainlab`, words the one line must contain)
MISTAKES = [
    ("rgb_images_into_a_grayscale_model", ["train", "img.yaml", "model.in_channels=1"],
     ["3 channels", "model.in_channels=3", "data.mode=L"]),
    ("images_resized_to_32_for_a_28px_model", ["train", "img.yaml", "data.transforms.resize=32"],
     ["image_size=28", "32×32", "model.image_size=32", "data.transforms.resize=28"]),
    ("num_classes_too_small", ["train", "syn.yaml", "model.num_classes=5"],
     ["5 class scores", "10 classes", "model.num_classes=10"]),
    ("num_classes_too_large", ["train", "syn.yaml", "model.num_classes=12"],
     ["12 class scores", "model.num_classes=10"]),
    ("regression_mlp_keeps_ten_outputs", ["train", "reg.yaml", "model.num_classes=10"],
     ["10 outputs", "1 value(s)", "model.num_classes=1"]),
    ("image_folder_with_mixed_sizes", ["train", "img.yaml", "data.root=mixed"],
     ["28×28", "32×32", "data.transforms.resize=28", "data.transforms.crop=28"]),
    ("monitor_typo", ["train", "syn.yaml", "train.monitor=val/accuracy"],
     ["train.monitor", "'val/accuracy'", "did you mean 'val/acc'"]),
    ("batch_size_zero", ["train", "syn.yaml", "data.batch_size=0"],
     ["data.batch_size", "at least 1, got 0"]),
    ("early_stopping_monitor_typo",
     ["train", "syn.yaml", "callbacks=[{name: early_stopping, monitor: val/los}]"],
     ["callbacks.0.monitor", "did you mean 'val/loss'"]),
    ("loss_monitored_with_mode_max", ["train", "syn.yaml", "train.monitor=val/loss"],
     ["is a loss", "train.monitor_mode=min"]),
    ("monitor_without_validation_split",
     ["train", "syn.yaml", "data.n_val=0", "train.monitor=val/f1"],
     ["no validation split"]),
    ("plateau_monitors_accuracy_of_a_regression",
     ["train", "reg.yaml", "sched={name: plateau, monitor: val/acc}"],
     ["sched.monitor", "val/mae"]),
    ("in_features_for_another_dataset", ["train", "syn.yaml", "model.in_features=784"],
     ["36 features", "model.in_features=36"]),
    ("token_ids_into_an_mlp", ["train", "syn.yaml", "data={name: text_csv, path: text.csv}"],
     ["token ids", "gru, lstm"]),
    ("regression_task_on_labelled_data", ["train", "syn.yaml", "task.name=regression"],
     ["task.name=classification"]),
    ("classification_task_on_numeric_targets",
     ["train", "reg.yaml", "task.name=classification", "train.monitor=val/acc",
      "train.monitor_mode=max"],
     ["task.name=regression"]),
    ("non_numeric_csv_cell", ["train", "syn.yaml", "data={name: csv, path: bad.csv, target: y}"],
     ["bad.csv: line 3, column 'b'", "data.on_error: skip"]),
    ("corrupt_image_file", ["train", "img.yaml", "data.root=corrupt"],
     ["3.png", "cannot read image", "data.on_error: skip"]),
    ("png_decompression_bomb", ["train", "img.yaml", "data.root=bomb"],
     ["0.png", "decompression bomb", "data.on_error: skip"]),
    ("unknown_model_name", ["train", "syn.yaml", "model.name=lenet"], ["did you mean 'lenet5'"]),
    ("unknown_train_option", ["train", "syn.yaml", "train.epoch=3"], ["train.epoch"]),
    ("wrong_option_type", ["train", "syn.yaml", "train.epochs=three"], ["train.epochs"]),
    ("missing_csv_file", ["train", "reg.yaml", "data.path=nope.csv"], ["nope.csv"]),
    ("resume_a_folder_that_is_no_run", ["train", "--resume", "empty"], ["no valid checkpoint"]),
    ("run_dir_not_empty", ["train", "syn.yaml", "--run-dir", "full"], ["not empty"]),
    ("flip_tta_on_tabular_data", ["train", "reg.yaml", "task.name=classification", "task.tta=flip"],
     ["task"]),
    ("verify_a_folder_that_is_no_run", ["verify", "empty"], ["not a run directory"]),
]  # fmt: skip


def run_in(ws: Path, argv: list[str], capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(ws)
    capsys.readouterr()
    extra = ["--runs-root", "runs", "--no-progress"] if argv[0] == "train" else []
    code = main([*argv, *extra])
    return code, capsys.readouterr().err


def runs_in(ws: Path) -> set[str]:
    runs = ws / "runs"
    return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


@pytest.mark.parametrize("argv,words", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistake_is_one_line_exit_2_and_nothing_trained(ws, argv, words, capsys, monkeypatch):
    before = runs_in(ws)
    code, err = run_in(ws, argv, capsys, monkeypatch)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainlab: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert runs_in(ws) == before  # no new run directory: nothing was trained or written
    assert sorted(p.name for p in (ws / "full").iterdir()) == ["keep.txt"]
    assert not list((ws / "empty").iterdir())


def test_at_least_twenty_mistakes() -> None:
    assert len(MISTAKES) >= 20


def test_regression_output_size_comes_from_the_data(ws, capsys, monkeypatch) -> None:
    code, err = run_in(ws, ["train", "reg.yaml", "--run-dir", "runs/reg"], capsys, monkeypatch)
    assert code == 0, err
    import yaml

    cfg = yaml.safe_load((ws / "runs" / "reg" / "config.yaml").read_text())
    assert cfg["model"]["num_classes"] == 1  # one output per target value, not the default 10
    summary = json.loads((ws / "runs" / "reg" / "summary.json").read_text())
    assert summary["best"]["epoch"] == 1  # train.monitor val/loss was found and used


def test_resume_with_other_model_options_is_one_line(ws, capsys, monkeypatch) -> None:
    run = ws / "runs" / "syn"
    code, _ = run_in(ws, ["train", "syn.yaml", "--run-dir", "runs/syn"], capsys, monkeypatch)
    assert code == 0
    before = (run / "metrics.jsonl").read_text()
    code, err = run_in(ws, ["train", "--resume", "runs/syn", "model.hidden=[64]"], capsys,
                       monkeypatch)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "size mismatch" in err and "model options differ" in err
    assert (run / "metrics.jsonl").read_text() == before


def test_create_model_takes_a_runs_model_section(ws, capsys, monkeypatch) -> None:
    import torch
    import yaml

    from trainlab import create_model

    if not (ws / "runs" / "syn").exists():
        run_in(ws, ["train", "syn.yaml", "--run-dir", "runs/syn"], capsys, monkeypatch)
    section = yaml.safe_load((ws / "runs" / "syn" / "config.yaml").read_text())["model"]
    assert section["init"] == "default"
    model = create_model(**section)
    assert model(torch.zeros(2, 1, 6, 6)).shape == (2, 10)
    torch.manual_seed(0)
    a = create_model(**{**section, "init": "orthogonal"})
    torch.manual_seed(0)
    b = create_model(**{k: v for k, v in section.items() if k not in ("init", "init_std")})
    first = next(k for k in a.state_dict() if k.endswith("weight"))
    assert not torch.equal(a.state_dict()[first], b.state_dict()[first])  # init applied


def test_debug_flag_shows_the_traceback(ws, monkeypatch) -> None:
    from trainlab.errors import ConfigError

    monkeypatch.chdir(ws)
    with pytest.raises(ConfigError, match="did you mean 'val/acc'"):
        main(["train", "syn.yaml", "train.monitor=val/accuracy", "--debug", "--runs-root", "runs"])


@pytest.mark.slow  # a process start-up with torch: ~4 s idle, 15 s on a busy 2-core machine
def test_real_process_stderr_is_one_line(ws) -> None:
    """Through the installed console script: what a user's terminal shows."""
    exe = str(Path(sys.executable).with_name("trainlab"))
    proc = subprocess.run([exe, "train", "img.yaml", "model.in_channels=1", "--runs-root", "runs",
                           "--no-progress"], cwd=ws, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "model.in_channels=3" in proc.stderr


def test_eval_with_an_override_the_model_cannot_take_is_one_line(ws, capsys, monkeypatch):
    code, err = run_in(ws, ["train", "img.yaml", "--run-dir", "runs/img"], capsys, monkeypatch)
    assert code == 0, err
    code, err = run_in(ws, ["eval", "runs/img", "data.transforms.resize=32"], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "model.image_size=32 or data.transforms.resize=28" in err
    assert not (ws / "runs" / "img" / "eval_test.json").exists() or "resize" not in (
        ws / "runs" / "img" / "eval_test.json"
    ).read_text()
