"""The cifar10 source on small archives in the official format, built here: reading, the split,
the checksum, truncation, unsafe members and pickles, the offline message and the download."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.cli.main import main
from trainlab.data.base import DATA
from trainlab.data.cifar10 import MD5, URL
from trainlab.errors import ConfigError, DataError

FOLDER = "cifar-10-batches-py"


def _batch(rng: np.random.Generator, n: int, label: str) -> dict:
    # The official batches: a dict with an N×3072 uint8 array (1024 R, 1024 G, 1024 B values
    # per image, row-major) and a list of int labels, pickled with protocol 2.
    labels = rng.permutation(np.arange(n) % 10).tolist()
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return {"batch_label": label, "labels": labels, "data": data,
            "filenames": [f"img_{i}.png" for i in range(n)]}  # fmt: skip


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_cifar_archive(
    folder: Path, n: int = 60, n_test: int = 60, extra: dict[str, bytes] | None = None
) -> Path:
    """``folder/cifar-10-python.tar.gz`` with five training batches of ``n`` random images and a
    test batch of ``n_test``, labels balanced over the 10 classes; ``extra`` adds members."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    batches = {f"data_batch_{i}": _batch(rng, n, f"training batch {i} of 5") for i in range(1, 6)}
    batches["test_batch"] = _batch(rng, n_test, "testing batch 1 of 1")
    with tarfile.open(path, "w:gz") as tar:
        meta = {"label_names": ["airplane"], "num_cases_per_batch": n, "num_vis": 3072}
        _add(tar, f"{FOLDER}/batches.meta", pickle.dumps(meta, protocol=2))
        for name, batch in batches.items():
            _add(tar, f"{FOLDER}/{name}", pickle.dumps(batch, protocol=2))
        for name, payload in (extra or {}).items():
            _add(tar, name, payload)
    return path


def py2_batch(data: np.ndarray, labels: list[int], label: bytes = b"training batch") -> bytes:
    """A batch pickled the way the official archive's were (2009, Python 2's cPickle, protocol
    2): keys and buffers are Python 2 ``str`` opcodes, which Python 3's pickle cannot write, so
    the opcodes are written by hand; NumPy's array named as ``numpy.core.multiarray``."""

    def s(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v: int) -> bytes:  # BININT1 / BININT2
        return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)

    n, d = data.shape
    # dtype('u1', 0, 1) with its state, then _reconstruct(ndarray, (0,), 'b') + __setstate__
    dtype = (b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R" + b"(" + i(3)
             + s(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + i(0) + b"tb")  # fmt: skip
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + i(0) + b"\x85"
             + s(b"b") + b"\x87R" + b"(" + i(1) + i(n) + i(d) + b"\x86" + dtype + b"\x89"
             + s(data.tobytes()) + b"tb")  # fmt: skip
    labs = b"](" + b"".join(i(v) for v in labels) + b"e"
    return (b"\x80\x02}(" + s(b"batch_label") + s(label) + s(b"data") + array
            + s(b"labels") + labs + b"u.")  # fmt: skip


def test_reads_python2_pickles_like_the_official_archive(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "cifar-10-python.tar.gz"
    arrays = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
            labels = (np.arange(20) % 10).tolist()
            arrays[name] = data
            _add(tar, f"{FOLDER}/{name}", py2_batch(data, labels))
    m = _module(root=str(path), val_fraction=0.5)
    assert torch.equal(m.splits["test"][0].flatten(1), torch.from_numpy(arrays["test_batch"]))
    assert m.splits["test"][1].tolist() == list(range(10)) * 2


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _module(**opts):
    m = DATA.get("cifar10")(**{"download": False, "md5": None, **opts})
    m.setup("cpu")
    return m


def test_reads_the_batches_as_uint8_images(tmp_path: Path) -> None:
    path = write_cifar_archive(tmp_path / "c")
    m = _module(root=str(tmp_path / "c"), val_fraction=0.2)
    assert m.sizes == {"train": 240, "val": 60, "test": 60}
    assert m.input_shape == (3, 32, 32) and m.splits["train"][0].dtype == torch.uint8
    # The test split is the test batch in order, each row reshaped to (3, 32, 32) planes.
    with tarfile.open(path) as tar:
        raw = tar.extractfile(f"{FOLDER}/test_batch").read()  # type: ignore[union-attr]
    batch = pickle.loads(raw)
    x, y = m.splits["test"]
    assert torch.equal(x, torch.from_numpy(batch["data"].reshape(-1, 3, 32, 32)))
    assert y.tolist() == batch["labels"] and y.dtype == torch.int64
    assert torch.equal(x[0, 1].flatten(), torch.from_numpy(batch["data"][0, 1024:2048]))  # green
    assert len(m.mean) == len(m.std) == 3  # per-channel statistics of the training split


def test_split_is_stratified_seeded_and_subset(tmp_path: Path) -> None:
    write_cifar_archive(tmp_path)
    a = _module(root=str(tmp_path), subset=100, val_fraction=0.2, test_subset=20)
    b = _module(root=str(tmp_path / "cifar-10-python.tar.gz"), subset=100, val_fraction=0.2)
    assert a.sizes == {"train": 80, "val": 20, "test": 20}
    assert torch.bincount(a.splits["val"][1], minlength=10).tolist() == [2] * 10
    assert torch.equal(a.splits["train"][0], b.splits["train"][0])  # the same seed, same split
    c = _module(root=str(tmp_path), subset=100, val_fraction=0.2, split_seed=1)
    assert not torch.equal(a.splits["val"][0], c.splits["val"][0])


def test_checksum_is_verified(tmp_path: Path) -> None:
    path = write_cifar_archive(tmp_path)
    assert _module(root=str(tmp_path), md5=_md5(path)).sizes["test"] == 60
    with pytest.raises(DataError, match=f"MD5 {_md5(path)} is not the expected {MD5}"):
        _module(root=str(tmp_path), md5=MD5)  # the default: the official archive's


def _recipe(tmp_path: Path, root: Path, md5: str | None = MD5) -> str:
    text = (
        f"name: c\ndata: {{name: cifar10, root: '{root}', download: false, "
        f"md5: {md5 or 'null'}}}\nmodel: {{name: mlp}}\n"
    )
    (tmp_path / "c.yaml").write_text(text)
    return str(tmp_path / "c.yaml")


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_checksum_on_the_command_line(tmp_path: Path, capsys) -> None:
    write_cifar_archive(tmp_path / "c")
    err = _one_line_exit_2(["data", _recipe(tmp_path, tmp_path / "c")], capsys)
    assert "is not the expected c58f30108f718f92721af3b95e74349a" in err


def test_truncated_archive(tmp_path: Path, capsys) -> None:
    path = write_cifar_archive(tmp_path / "c")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or not a gzip-compressed tar"):
        _module(root=str(path))
    err = _one_line_exit_2(["data", _recipe(tmp_path, tmp_path / "c", md5=None)], capsys)
    assert "truncated" in err
    err = _one_line_exit_2(["data", _recipe(tmp_path, tmp_path / "c")], capsys)
    assert "MD5" in err  # with the checksum on, the checksum says it first


@pytest.mark.parametrize(
    ("name", "kind"),
    [("../escape.txt", tarfile.REGTYPE), ("/etc/owned", tarfile.REGTYPE),
     (f"{FOLDER}/../../up", tarfile.REGTYPE), (f"{FOLDER}/link", tarfile.SYMTYPE)],
)  # fmt: skip
def test_members_leaving_the_folder_refuse_the_archive(
    tmp_path: Path, capsys, name: str, kind: bytes
) -> None:
    path = write_cifar_archive(tmp_path / "c")
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore
    evil = tarfile.TarInfo(name)
    evil.type, evil.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    with tarfile.open(path, "w:gz") as tar:
        for m, payload in members:
            tar.addfile(m, io.BytesIO(payload))
        tar.addfile(evil, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    err = _one_line_exit_2(["data", _recipe(tmp_path, tmp_path / "c", md5=None)], capsys)
    assert f"member '{name}'" in err and "refusing the archive" in err
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "c" / FOLDER).exists()


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = pickle.dumps({"data": _RunsCode(marker), "labels": [0]}, protocol=2)
    path = write_cifar_archive(tmp_path / "c")
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore
    with tarfile.open(path, "w:gz") as tar:
        for m, raw in members:
            if m.name.endswith("data_batch_3"):
                raw, m.size = payload, len(payload)
            tar.addfile(m, io.BytesIO(raw))
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR batch pickle \(refused to "
                       r"load (posix|os|nt)\.system\)"):  # fmt: skip
        _module(root=str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("batch", "match"),
    [({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 10]}, "label 10 out of range"),
     ({"data": np.zeros((4, 100), np.uint8), "labels": [0, 1, 2, 3]}, "N×3072 images"),
     ({"data": np.zeros((4, 3072), np.float32), "labels": [0] * 4}, "uint8 array"),
     ([1, 2, 3], "a CIFAR batch is a dict")],
)  # fmt: skip
def test_malformed_batches_name_the_member(tmp_path: Path, batch: object, match: str) -> None:
    path = write_cifar_archive(tmp_path / "a", extra={})
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore
    with tarfile.open(path, "w:gz") as tar:
        for m, raw in members:
            if m.name.endswith("test_batch"):
                raw = pickle.dumps(batch, protocol=2)
                m.size = len(raw)
            tar.addfile(m, io.BytesIO(raw))
    with pytest.raises(DataError, match=f"test_batch: .*{match}"):
        _module(root=str(path))


def test_missing_batch(tmp_path: Path) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{FOLDER}/batches.meta", b"")
    with pytest.raises(DataError, match="missing cifar-10-batches-py/data_batch_1"):
        _module(root=str(tmp_path))


def test_offline_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TRAINLAB_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        _module(download=True)
    msg = str(err.value)
    assert "TRAINLAB_OFFLINE" in msg and URL in msg and MD5 in msg
    assert str(tmp_path / "cache" / "trainlab" / "cifar10") in msg and "\n" not in msg
    with pytest.raises(DataError, match="no cifar-10-python.tar.gz there"):
        _module(root=str(tmp_path / "elsewhere"))


def test_download_checks_the_md5_before_keeping_the_file(tmp_path: Path, monkeypatch) -> None:
    source = write_cifar_archive(tmp_path / "server")
    monkeypatch.setattr("trainlab.data.cifar10.URL", source.as_uri())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TRAINLAB_OFFLINE", raising=False)
    cache = tmp_path / "cache" / "trainlab" / "cifar10"
    with pytest.raises(DataError, match="is not the expected .*nothing was kept"):
        _module(download=True, md5=MD5)
    assert not cache.exists() or not any(cache.iterdir())  # no archive, no partial file
    m = _module(download=True, md5=_md5(source))
    assert m.sizes["test"] == 60 and _md5(cache / "cifar-10-python.tar.gz") == _md5(source)
    source.unlink()  # the cached archive is used from now on, without the network
    assert _module(download=True, md5=_md5(cache / "cifar-10-python.tar.gz")).sizes["test"] == 60


@pytest.mark.parametrize(
    ("opts", "match"),
    [({"md5": "xyz"}, "data.md5"), ({"val_fraction": 1.0}, "data.val_fraction")],
)
def test_bad_options(opts: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DATA.get("cifar10")(**opts)
