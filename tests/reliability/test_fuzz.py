"""Property-based fuzzing of the public entry points with Hypothesis: random recipes, recipe
bytes, CSV bytes, IDX headers and image bytes (a decompression bomb among them). Each example
ends in success or in a one-line trainlab error (exit code 2; 3 for a diverged run) — never a
traceback, never a hang, never memory growing with a size a header claims.

The fast tier runs a few examples per property (the whole file in seconds); ``-m slow`` runs
the same properties with many more (see docs/reliability.md for the counts).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import resource
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from trainlab.cli.main import main  # noqa: E402
from trainlab.errors import TrainlabError  # noqa: E402

# Examples per property: the fast tier keeps the whole file to seconds (a recipe example trains
# a tiny model when it is valid, ~0.3 s); the slow tier (-m slow) runs many more.
FAST = {"max_examples": 40, "deadline": 10_000}
FAST_RECIPES = {"max_examples": 6, "deadline": 10_000}
SLOW = {"max_examples": 1000, "deadline": 20_000}
COMMON = {"suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          "derandomize": True, "database": None}  # fmt: skip
MEMORY_MB = 300  # peak RSS growth allowed per example (the tensors involved are tiny)

BASE: dict[str, Any] = {
    "name": "fuzz",
    "data": {"name": "synthetic", "num_classes": 3, "shape": [1, 4, 4], "n_train": 32,
             "n_val": 16, "n_test": 16, "batch_size": 16},
    "model": {"name": "mlp", "hidden": [8]},
    "optim": {"name": "sgd", "lr": 0.1},
    "train": {"epochs": 1, "tensorboard": False, "report": False, "precision": "fp32"},
}  # fmt: skip
KEYS = {
    "data": ["num_classes", "shape", "n_train", "n_val", "batch_size", "noise", "augment",
             "name", "eval_batch_size", "bogus"],
    "model": ["hidden", "act", "norm", "dropout", "num_classes", "in_features", "name", "init"],
    "optim": ["lr", "momentum", "weight_decay", "name", "nesterov", "lr_mult", "freeze"],
    "train": ["epochs", "log_every", "grad_clip", "monitor", "monitor_mode", "accumulate",
              "nan_policy", "ema_decay", "keep_checkpoints", "checkpoint_every_steps", "l1"],
    "task": ["name", "label_smoothing", "loss", "mixup_alpha", "tta"],
    "sched": ["name", "warmup_epochs", "gamma"],
    "callbacks": [0],
    "": ["seed", "name", "bogus"],
}  # fmt: skip
VALUES = st.one_of(
    st.integers(-3, 64), st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(max_size=8), st.booleans(), st.none(),
    st.lists(st.integers(-2, 16), max_size=3),
    st.sampled_from(["relu", "sgd", "adam", "val/acc", "val/loss", "min", "max", "onecycle",
                     "step", "cosine", "early_stopping", "classification", "regression", "flip",
                     "skip", "rollback", "L"]),
    st.dictionaries(st.sampled_from(["name", "flip", "x", "monitor"]),
                    st.one_of(st.integers(-1, 3), st.text(max_size=4)), max_size=2),
)  # fmt: skip


@st.composite
def recipes(draw: Any) -> dict[str, Any]:
    """The base recipe with 1-4 random edits (known keys and unknown ones, any type)."""
    recipe = yaml.safe_load(yaml.safe_dump(BASE))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(sorted(KEYS)))
        key = draw(st.sampled_from(KEYS[section]))
        value = draw(VALUES)
        if section == "":
            recipe[key] = value
        elif section == "callbacks":
            recipe["callbacks"] = [value] if draw(st.booleans()) else value
        elif isinstance(recipe.get(section), dict):
            recipe[section][key] = value
        else:
            recipe[section] = {key: value} if draw(st.booleans()) else value
    return recipe


@contextlib.contextmanager
def bounded_memory() -> Any:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    yield
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown < MEMORY_MB, f"peak memory grew by {grown:.0f} MB"


def run_cli(argv: list[str], capsys: Any) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors: exit 2 with one usage line
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def assert_clean(code: int, err: str) -> None:
    event(f"exit {code}")  # --hypothesis-show-statistics: how many examples ended how
    assert "Traceback" not in err, err
    assert code in (0, 2, 3), (code, err)
    if code:
        errors = [x for x in err.splitlines() if x.startswith("trainlab: error:")]
        usage = [x for x in err.splitlines() if x.startswith("trainlab: ") or "usage" in x]
        assert len(errors) == 1 or usage, err


def check_recipe_text(text: str, capsys: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(text)
        argv = ["train", str(path), "--run-dir", str(Path(tmp) / "run"), "--no-progress",
                "train.max_steps=2", "train.threads=1"]  # fmt: skip
        with bounded_memory():
            code, err = run_cli(argv, capsys)
        assert_clean(code, err)
        if code == 2:  # a mistake: nothing was trained
            assert not (Path(tmp) / "run" / "checkpoints").exists()


@settings(**FAST_RECIPES, **COMMON)
@given(rec=recipes())
def test_random_recipes(rec: dict[str, Any], capsys: Any) -> None:
    check_recipe_text(yaml.safe_dump(rec), capsys)


@pytest.mark.slow
@settings(**SLOW, **COMMON)
@given(rec=recipes())
def test_random_recipes_many(rec: dict[str, Any], capsys: Any) -> None:
    check_recipe_text(yaml.safe_dump(rec), capsys)


RECIPE_TEXT = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["data: [", "{a: *b}", "!!python/object:os.system {}", "- 1\n- 2", "a: b: c",
                     "data: {name: synthetic}\n" * 3, "\t\tdata:", "null", "&a [*a]"]),
)  # fmt: skip


@settings(**FAST_RECIPES, **COMMON)
@given(text=RECIPE_TEXT)
def test_random_recipe_text(text: str, capsys: Any) -> None:
    check_recipe_text(text, capsys)


@pytest.mark.slow
@settings(**SLOW, **COMMON)
@given(text=RECIPE_TEXT)
def test_random_recipe_text_many(text: str, capsys: Any) -> None:
    check_recipe_text(text, capsys)


# --- CSV bytes -------------------------------------------------------------------------------
NUMBER = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.4g}")
HOSTILE = st.one_of(st.sampled_from(["", "NA", "nan", "inf", "x", "a,b", '"q"', '"', "1e999",
                                     " 7 ", "\x00"]), st.text(max_size=4))  # fmt: skip
CELLS = st.one_of(NUMBER, st.integers(0, 3).map(str), HOSTILE)


@st.composite
def csv_bytes(draw: Any) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))  # anything at all
    cols = draw(st.integers(1, 4))
    header = ["y", *(f"f{i}" for i in range(cols - 1))]
    if draw(st.integers(0, 3)) == 0:
        header = draw(st.lists(st.sampled_from(["y", "f0", "", "y", "f1 "]), min_size=1,
                               max_size=4))  # fmt: skip
    if draw(st.booleans()):  # a clean table (numbers, labels 0..3) with at most one bad cell
        rows = [[draw(st.integers(0, 3).map(str)), *(draw(NUMBER) for _ in range(cols - 1))]
                for _ in range(draw(st.integers(0, 60)))]  # fmt: skip
        if rows and draw(st.booleans()):
            rows[draw(st.integers(0, len(rows) - 1))][0] = draw(HOSTILE)
    else:
        rows = draw(st.lists(st.lists(CELLS, min_size=cols - 1, max_size=cols + 1), max_size=40))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    text = "\n".join(sep.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", "\n"]))
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), errors="replace")


def check_csv(raw: bytes, task: str) -> None:
    from trainlab.experiment import build_data

    with tempfile.TemporaryDirectory() as tmp, bounded_memory():
        path = Path(tmp) / "t.csv"
        path.write_bytes(raw)
        try:
            data = build_data("csv", path=str(path), target="y", task=task, batch_size=8)
            data.setup("cpu")
            for split in ("train", "val", "test"):
                if data.sizes.get(split, 0):
                    next(iter(data.loader(split).iter_epoch(0)))
            event("loaded")
        except TrainlabError as e:
            event("one-line error")
            assert "\n" not in str(e)


@settings(**FAST, **COMMON)
@given(csv_bytes(), st.sampled_from(["classification", "regression"]))
def test_random_csv_bytes(raw: bytes, task: str) -> None:
    check_csv(raw, task)


@pytest.mark.slow
@settings(**SLOW, **COMMON)
@given(csv_bytes(), st.sampled_from(["classification", "regression"]))
def test_random_csv_bytes_many(raw: bytes, task: str) -> None:
    check_csv(raw, task)


# --- IDX headers -----------------------------------------------------------------------------
@st.composite
def idx_bytes(draw: Any) -> bytes:
    """An IDX file with a random (often lying) header and a small body."""
    magic = bytes([draw(st.sampled_from([0, 1])), 0, draw(st.sampled_from([8, 9, 11, 12, 13, 14,
                                                                         7, 255])),
                   draw(st.integers(0, 6))])  # fmt: skip
    dims = draw(st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)),
                         min_size=0, max_size=6))  # fmt: skip
    body = draw(st.binary(max_size=2000))
    if draw(st.booleans()):  # a consistent file (small dims, the body they declare) ± a byte
        magic = bytes([0, 0, draw(st.sampled_from([8, 9, 11, 12, 13, 14])), len(dims)])
        dims = [d % 9 for d in dims]
        size = {8: 1, 9: 1, 11: 2, 12: 4, 13: 4, 14: 8}[magic[2]] * math.prod(dims)
        body = (body * (size // max(len(body), 1) + 1))[:size] if body else b"\0" * size
        body = body + draw(st.sampled_from([b"", b"", b"\0"]))
    raw = magic + b"".join(struct.pack(">I", d) for d in dims) + body
    return gzip.compress(raw) if draw(st.booleans()) else raw


def check_idx(raw: bytes) -> None:
    from trainlab.data.idx import read_idx

    with tempfile.TemporaryDirectory() as tmp, bounded_memory():
        path = Path(tmp) / ("f.gz" if raw[:2] == b"\x1f\x8b" else "f")
        path.write_bytes(raw)
        try:
            read_idx(path)
            event("loaded")
        except TrainlabError as e:
            event("one-line error")
            assert "\n" not in str(e)


@settings(**FAST, **COMMON)
@given(idx_bytes())
def test_random_idx_headers(raw: bytes) -> None:
    check_idx(raw)


@pytest.mark.slow
@settings(**SLOW, **COMMON)
@given(idx_bytes())
def test_random_idx_headers_many(raw: bytes) -> None:
    check_idx(raw)


def test_idx_header_claiming_terabytes_and_gzip_bomb(tmp_path: Path) -> None:
    from trainlab.data.idx import read_idx

    claims = tmp_path / "claims.gz"  # 2^32 × 2^32 × 2^32 images, 16 bytes of data
    claims.write_bytes(gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", *[2**32 - 1] * 3)
                                     + b"\0" * 16))  # fmt: skip
    bomb = tmp_path / "bomb.gz"  # 8 bytes of header, then 200 MB of zeros in ~200 KB of gzip
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as g:
        g.write(b"\0\0\x08\x01" + struct.pack(">I", 16))
        for _ in range(200):
            g.write(b"\0" * (1 << 20))
    bomb.write_bytes(buf.getvalue())
    for path, words in ((claims, "header says"), (bomb, "header says 24")):
        with bounded_memory(), pytest.raises(TrainlabError, match=words):
            read_idx(path)


# --- image bytes -----------------------------------------------------------------------------
def png(width: int, height: int, data: bytes = b"\0" * 64, color: int = 2) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data))
            + chunk(b"IEND", b""))  # fmt: skip


def small_image(fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def image_bytes(draw: Any) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a header declaring any size, little data: bombs included
        return png(draw(st.integers(1, 2**31 - 1)), draw(st.integers(1, 2**31 - 1)),
                   draw(st.binary(max_size=64)), draw(st.sampled_from([0, 2, 6])))  # fmt: skip
    if kind == 1:  # a real small image with flipped bytes or cut short
        good = bytearray(small_image(draw(st.sampled_from(["PNG", "JPEG", "BMP", "GIF"]))))
        for i in draw(st.lists(st.integers(0, len(good) - 1), max_size=8)):
            good[i] = draw(st.integers(0, 255))
        return bytes(good[: draw(st.integers(0, len(good)))])
    return draw(st.binary(max_size=400))


def check_image(raw: bytes) -> None:
    from trainlab.data.folder_loader import open_image

    with tempfile.TemporaryDirectory() as tmp, bounded_memory():
        path = Path(tmp) / "x.png"
        path.write_bytes(raw)
        try:
            open_image(str(path), "RGB")
            event("loaded")
        except TrainlabError as e:
            event("decompression bomb refused" if "bomb" in str(e) else "one-line error")
            assert "\n" not in str(e)


@settings(**FAST, **COMMON)
@given(image_bytes())
def test_random_image_bytes(raw: bytes) -> None:
    check_image(raw)


@pytest.mark.slow
@settings(**SLOW, **COMMON)
@given(image_bytes())
def test_random_image_bytes_many(raw: bytes) -> None:
    check_image(raw)


@pytest.mark.parametrize("size", [(200_000, 200_000), (12_000, 12_000), (65_535, 2_000)])
def test_png_decompression_bomb_is_refused_before_decoding(tmp_path: Path, size) -> None:
    """Below PIL's own hard limit (178 M pixels) PIL only warns and would decode: 12000² is
    432 MB of RGB. trainlab refuses from the header."""
    from trainlab.data.folder_loader import open_image

    path = tmp_path / "bomb.png"
    path.write_bytes(png(*size))
    with bounded_memory(), pytest.raises(TrainlabError, match="decompression bomb"):
        open_image(str(path), "RGB")
