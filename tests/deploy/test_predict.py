"""``trainlab predict``: new inputs converted like the training data, top-k, JSON, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.cli.main import main
from trainlab.deploy import dir_digest, export_run, load_run, predict, read_inputs
from trainlab.deploy.source import sample_inputs


def _digit_png(x: torch.Tensor, path: Path, mode: str = "L", size: int = 8) -> Path:
    """One stored digits sample (values 0..16) as an image file of any mode and size."""
    pixels = (x[0].numpy() * 255.0 / 16.0).round().astype(np.uint8)
    img = Image.fromarray(pixels, "L").convert(mode)
    if size != 8:
        img = img.resize((size, size), Image.NEAREST)
    img.save(path)
    return path


def _raw_test_sample(run_dir: Path, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    run = load_run(run_dir)
    x_raw = run.exp.data.splits["test"][0][i]  # stored units, before normalisation
    xs, _ = sample_inputs(run, i + 1)
    with torch.no_grad():
        probs = torch.softmax(run.model(xs[i : i + 1]), -1)[0]
    return x_raw, probs


def test_image_of_any_mode_is_converted_like_training(digits_run: Path, tmp_path: Path) -> None:
    x_raw, probs = _raw_test_sample(digits_run, 3)
    grey = _digit_png(x_raw, tmp_path / "d.png")
    rgb = _digit_png(x_raw, tmp_path / "d_rgb.png", "RGB")
    big = _digit_png(x_raw, tmp_path / "d_big.png", "RGBA", size=64)
    preds = predict(digits_run, [grey, rgb, big], k=10)
    want = probs.numpy()
    for p in preds[:2]:  # same pixels: the probabilities of the test tensor itself
        got = dict(p.top)
        assert len(got) == 10
        assert np.allclose([got[str(c)] for c in range(10)], want, atol=2e-2)
    assert preds[0].top[0][0] == str(int(want.argmax()))
    assert preds[2].top[0][0] == preds[0].top[0][0]  # 64×64 RGBA, resized back to 8×8
    assert abs(sum(prob for _, prob in preds[0].top) - 1.0) < 1e-6


def test_predict_cli_json_and_top_k_with_exported_file(digits_run: Path, tmp_path: Path,
                                                       capsys) -> None:  # fmt: skip
    x_raw, _ = _raw_test_sample(digits_run, 0)
    img = _digit_png(x_raw, tmp_path / "d.png")
    art = tmp_path / "m.pt2"
    export_run(digits_run, "pt2", art, n_check=10)
    before = dir_digest(digits_run)
    assert main(["predict", str(digits_run), str(img), "--top", "2", "--json"]) == 0
    from_run = json.loads(capsys.readouterr().out)
    assert main(["predict", str(art), str(img), "-k", "2", "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert from_run[0]["input"] == str(img) and len(from_run[0]["top"]) == 2
    assert [t["class"] for t in from_run[0]["top"]] == [t["class"] for t in from_file[0]["top"]]
    assert from_run[0]["top"][0]["prob"] == pytest.approx(from_file[0]["top"][0]["prob"], abs=1e-4)
    assert main(["predict", str(art), str(img)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{img}: ") and line.count(",") == 2  # 3 classes by default
    assert dir_digest(digits_run) == before


def test_text_lines(text_run: Path, tmp_path: Path) -> None:
    lines = tmp_path / "reviews.txt"
    lines.write_text("my bike was clean as always\n\nthe film is fast today\nzzz unknown words\n")
    preds = predict(text_run, [lines], k=2)
    assert [p.source for p in preds] == [f"{lines}:1", f"{lines}:3", f"{lines}:4"]
    assert all({c for c, _ in p.top} == {"neg", "pos"} for p in preds)
    run = load_run(text_run)
    assert run.spec["kind"] == "text" and run.spec["vocab"][:2] == ["<pad>", "<unk>"]
    # Line 1 is the CSV's first review: encoded exactly as the data module encoded it.
    data = run.exp.data
    split, pos = next((k, list(v).index(0)) for k, v in data.split_indices.items() if 0 in v)
    encoded = read_inputs(lines, run.spec)[0][1]
    assert np.array_equal(encoded, data.splits[split][0][pos].numpy())


def test_csv_rows_by_feature_name_and_in_order(table_run: Path, tmp_path: Path) -> None:
    run = load_run(table_run)
    feats = run.spec["features"]
    assert feats[:2] == ["a", "b"] and "colour=red" in feats
    named = tmp_path / "named.csv"
    named.write_text("colour,b,a\nred,0.0,2.0\nblue,0.0,-2.0\n")
    ordered = tmp_path / "ordered.csv"
    onehot = {"colour=blue": 0.0, "colour=green": 0.0, "colour=red": 1.0}
    ordered.write_text(",".join(str({"a": 2.0, "b": 0.0, **onehot}[f]) for f in feats) + "\n")
    preds = predict(table_run, [named, ordered], k=1)
    assert [p.source for p in preds] == [f"{named}:2", f"{named}:3", f"{ordered}:1"]
    assert preds[0].top[0][0] == "hi" and preds[1].top[0][0] == "lo"
    assert preds[2].top[0][0] == preds[0].top[0][0]  # the same row, spelt two ways
    assert preds[2].top[0][1] == pytest.approx(preds[0].top[0][1], abs=1e-6)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("bad.png", b"not an image", "cannot read image"),
        ("notes.txt", b"hello", "takes an image"),
        ("missing.png", None, "no such file"),
    ],
)
def test_unreadable_input_is_one_line_exit_2(
    digits_run: Path, tmp_path: Path, capsys, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["predict", str(digits_run), str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]


def test_bad_csv_cell_names_line_and_column(table_run: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,colour\n1.0,oops,red\n")
    assert main(["predict", str(table_run), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2, column 'b': 'oops' is not a number" in err


FOLDER = """
name: folder
seed: 0
data: {name: image_folder, root: ROOT, mode: RGB, transforms: {resize: 12, crop: 12},
       num_workers: 0, batch_size: 8, val_fraction: 0.2, test_fraction: 0.2}
model: {name: resnet_small, widths: [4, 8, 8], blocks: [1, 1]}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 1, precision: fp32, threads: 1, tensorboard: false, report: false, norms: false}
"""


def test_image_folder_inputs_match_the_eval_transform(tmp_path: Path) -> None:
    """A run on an image folder (resize 12, centre crop 12, RGB, statistics in 0..1): an image
    of another size and mode becomes exactly the tensor the data module's eval pipeline makes."""
    rng = np.random.default_rng(0)
    for c, colour in enumerate(("red", "green", "blue")):
        folder = tmp_path / "imgs" / colour
        folder.mkdir(parents=True)
        for i in range(10):
            a = (rng.random((20, 16, 3)) * 60).astype(np.uint8)
            a[..., c] += 150
            Image.fromarray(a, "RGB").save(folder / f"{i}.png")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(FOLDER.replace("ROOT", str(tmp_path / "imgs")))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--run-dir", str(run), "--no-progress"]) == 0
    odd = tmp_path / "odd.png"
    Image.fromarray((rng.random((30, 50)) * 255).astype(np.uint8), "L").save(odd)
    loaded = load_run(run)
    assert loaded.spec["resize"] == 12 and loaded.spec["mode"] == "RGB"
    assert loaded.spec["scale"] == 1.0
    got = read_inputs(odd, loaded.spec)[0][1]
    ds = loaded.exp.data._dataset("test")  # the eval transform (no augmentation)
    want = ds.transform(Image.open(odd).convert("RGB")).numpy()
    assert got.shape == (3, 12, 12)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert predict(run, [odd], k=3)[0].top[0][0] in {"red", "green", "blue"}
