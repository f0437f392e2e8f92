"""The uncompressed copies of IDX files in the cache: used when current, rebuilt when not."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.data import idx
from trainlab.data.idx import read_idx_cached
from trainlab.errors import DataError


def write_idx(path: Path, arr: np.ndarray) -> Path:
    raw = b"\0\0\x08" + bytes([arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(gzip.compress(raw + arr.astype(np.uint8).tobytes()))
    return path


def images(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (5, 3, 4), dtype=np.uint8)


def copies(cache: Path) -> list[Path]:
    return sorted((cache / "idx").glob("*.npy"))


def test_second_read_comes_from_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_idx(tmp_path / "x.gz", images(0))
    first = read_idx_cached(src, cache_dir=tmp_path / "c")
    assert torch.equal(first, torch.from_numpy(images(0)))
    assert len(copies(tmp_path / "c")) == 1

    def no_original(path: Path) -> torch.Tensor:
        raise AssertionError("the original was read again")

    monkeypatch.setattr(idx, "read_idx", no_original)
    again = read_idx_cached(src, cache_dir=tmp_path / "c")
    assert torch.equal(again, first) and again.dtype == torch.uint8


def test_a_changed_original_is_read_again(tmp_path: Path) -> None:
    src = write_idx(tmp_path / "x.gz", images(0))
    read_idx_cached(src, cache_dir=tmp_path / "c")
    write_idx(src, images(1))
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later modification time
    assert torch.equal(read_idx_cached(src, cache_dir=tmp_path / "c"), torch.from_numpy(images(1)))


@pytest.mark.parametrize("damage", ["truncate", "huge_header", "garbage"])
def test_a_damaged_copy_is_rebuilt(tmp_path: Path, damage: str) -> None:
    src = write_idx(tmp_path / "x.gz", images(2))
    read_idx_cached(src, cache_dir=tmp_path / "c")
    (copy,) = copies(tmp_path / "c")
    data = copy.read_bytes()
    if damage == "truncate":
        copy.write_bytes(data[:-7])
    elif damage == "huge_header":  # a header claiming a terabyte must allocate nothing
        with open(copy, "wb") as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": (2**20, 2**20)}
            np.lib.format.write_array_header_1_0(f, header)
            f.write(images(2).tobytes())
    else:
        copy.write_bytes(b"not a numpy file at all")
    assert torch.equal(read_idx_cached(src, cache_dir=tmp_path / "c"), torch.from_numpy(images(2)))
    assert copy.read_bytes() == data  # rewritten whole


def test_an_unwritable_cache_is_skipped(tmp_path: Path) -> None:
    src = write_idx(tmp_path / "x.gz", images(3))
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache folder would go")
    assert torch.equal(read_idx_cached(src, cache_dir=blocker), torch.from_numpy(images(3)))


def test_errors_about_the_original_are_unchanged(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_idx_cached(tmp_path / "missing.gz", cache_dir=tmp_path / "c")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\1\2\3\4"))
    with pytest.raises(DataError, match="bad magic number"):
        read_idx_cached(bad, cache_dir=tmp_path / "c")
    assert copies(tmp_path / "c") == []
