"""CIFAR-10 (Krizhevsky, 2009): 50k train / 10k test colour images of 32×32 px in 10 classes.

Read from the official ``cifar-10-python.tar.gz``, looked up in order: ``data.root`` when given
(the archive itself, or the folder holding it; only there), then the user cache
(``~/.cache/trainlab/cifar10``), which a download fills when the network allows (never under
``TRAINLAB_OFFLINE=1``). The archive's MD5 is checked before it is read (``data.md5``: the
official one by default; ``null`` for an archive of your own in the same format).

Nothing is extracted: the six pickled batches are read straight from the tar stream, and a
member whose path would leave the archive's folder (absolute, ``..``, links, devices) makes the
whole archive refused. The batches are Python pickles; they are loaded by an unpickler that
resolves only the few names a NumPy array needs, so a crafted archive cannot run code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import string
import tarfile
import zlib
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from trainlab.data.augment import Augment
from trainlab.data.base import register_data
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import train_val_indices
from trainlab.errors import ConfigError, DataError

__all__ = ["CIFAR10", "CLASSES", "MD5", "URL", "cifar10", "find_archive", "read_archive"]

ARCHIVE = "cifar-10-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # of the official archive (163 MB)
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]  # fmt: skip
HOW_TO = (
    f"download {URL} (163 MB, MD5 {MD5}) and put it in {{cache}} or in a folder named by "
    "data.root, or let trainlab download it (data.download=true, network access, "
    "TRAINLAB_OFFLINE unset)"
)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/trainlab/cifar10`` (``~/.cache/trainlab/cifar10`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trainlab" / "cifar10"


def find_archive(root: str | None, download: bool, md5: str | None = MD5) -> Path:
    """The archive's path: ``root`` (file or folder), else the cache, else a fresh download.

    >>> find_archive("/nonexistent", download=False)   # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    trainlab.errors.DataError: data.root=/nonexistent: no cifar-10-python.tar.gz there; ...
    """
    how_to = HOW_TO.format(cache=cache_dir())
    if root is not None:
        path = Path(root).expanduser()
        path = path / ARCHIVE if path.is_dir() else path
        if not path.is_file():
            raise DataError(f"data.root={root}: no {ARCHIVE} there; {how_to}")
        return path
    cached = cache_dir() / ARCHIVE
    if cached.is_file():
        return cached
    if download and not os.environ.get("TRAINLAB_OFFLINE"):
        return download_archive(cached, URL, md5)
    offline = " (TRAINLAB_OFFLINE is set)" if download else " (data.download=false)"
    raise DataError(f"CIFAR-10 not found: no {cached}{offline}; {how_to}")


def download_archive(dest: Path, url: str, md5: str | None) -> Path:
    """Stream ``url`` to ``dest`` through a temporary file; the MD5 is checked before the
    archive takes its final name, so an interrupted or corrupted download never does."""
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as e:  # URLError, timeouts and refused connections are all OSErrors
        part.unlink(missing_ok=True)
        how_to = HOW_TO.format(cache=dest.parent)
        raise DataError(f"CIFAR-10 download from {url} failed ({e}); {how_to}") from None
    if md5 is not None and digest.hexdigest() != md5.lower():
        part.unlink(missing_ok=True)
        raise DataError(
            f"CIFAR-10 download from {url}: MD5 {digest.hexdigest()} is not the expected {md5} "
            "(damaged in transit, or the file changed); nothing was kept"
        )
    os.replace(part, dest)
    return dest


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only what pickled NumPy arrays of numbers need; any other global is refused
    (a pickle names the callables it runs, so refusing them refuses the code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        if module == "_codecs":  # how protocol-2 pickles written by Python 3 store bytes
            import codecs

            return codecs.encode
        core = getattr(np, "_core", None) or np.core  # numpy ≥ 2 renamed numpy.core
        sources = {"multiarray": core.multiarray, "numeric": core.numeric}
        return getattr(sources[module.rsplit(".", 1)[-1]] if module != "numpy" else np, name)


def _unpickle_batch(raw: bytes, member: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images and (N,) labels of one pickled batch."""
    try:
        # latin1: the official batches were pickled by Python 2 (str keys, str array buffers)
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{member}: not a CIFAR batch pickle ({e})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{member}: a CIFAR batch is a dict, found {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{member}: 'data' must be an N×3072 uint8 array")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),) or len(data) == 0:
        raise DataError(
            f"{member}: {data.shape} images and {labels.shape} labels; a CIFAR-10 batch holds "
            "N×3072 images (1024 red, 1024 green, 1024 blue values each) and N labels"
        )
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{member}: label {labels.min() if labels.min() < 0 else labels.max()} "
                        "out of range 0..9")  # fmt: skip
    return data.reshape(-1, 3, 32, 32), labels


def _check_member(info: tarfile.TarInfo, archive: Path) -> None:
    path = PurePosixPath(info.name)
    if path.is_absolute() or ".." in path.parts:
        problem = "has a path that leaves the archive's folder"
    elif not (info.isfile() or info.isdir()):  # a link could point anywhere on extraction
        problem = "is a link or device, not a file"
    else:
        return
    raise DataError(
        f"{archive}: member '{info.name}' {problem}; refusing the archive "
        "(re-download the official one)"
    )


def _batches(path: Path) -> dict[str, bytes]:
    """The raw pickles of the six batches, read in one pass over the gzip-compressed tar."""
    wanted = {f"{FOLDER}/{name}" for name in (*TRAIN_BATCHES, "test_batch")}
    found: dict[str, bytes] = {}
    try:
        with gzip.open(path, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:  # a stream: one forward pass
                for info in tar:  # every member is checked, not only the ones read
                    _check_member(info, path)
                    if info.name in wanted:
                        found[info.name] = tar.extractfile(info).read()  # type: ignore[union-attr]
            # tarfile stops quietly at a cut header; reading gzip to its end checks its length
            # and CRC-32 trailer, so a truncated or corrupted file is always noticed.
            while gz.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(
            f"{path}: truncated or not a gzip-compressed tar ({e or type(e).__name__}); "
            f"re-download {URL}"
        ) from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; not a CIFAR-10 python archive")
    return found


@lru_cache(maxsize=2)
def read_archive(path: str, md5: str | None, stamp: tuple[int, int]) -> dict[str, torch.Tensor]:
    """``train_x`` (50000, 3, 32, 32) uint8, ``train_y`` int64, ``test_x``, ``test_y``.

    Parsed once per process for a given file (``stamp``: its size and mtime) and checksum.
    """
    archive = Path(path)
    if md5 is not None and (actual := _md5_of(archive)) != md5.lower():
        raise DataError(
            f"{archive}: MD5 {actual} is not the expected {md5}; the file is damaged or not the "
            "official archive (re-download it, or set data.md5 to your archive's MD5, or null)"
        )
    raw = _batches(archive)
    parts = [_unpickle_batch(raw[f"{FOLDER}/{n}"], f"{archive}:{n}") for n in TRAIN_BATCHES]
    test_x, test_y = _unpickle_batch(raw[f"{FOLDER}/test_batch"], f"{archive}:test_batch")
    return {
        "train_x": torch.from_numpy(np.concatenate([x for x, _ in parts])),
        "train_y": torch.from_numpy(np.concatenate([y for _, y in parts])),
        "test_x": torch.from_numpy(np.ascontiguousarray(test_x)),
        "test_y": torch.from_numpy(test_y),
    }


class CIFAR10(TensorDataModule):
    """CIFAR-10 in memory as uint8 (150 MB for all 60k images), normalised per batch."""

    num_classes = 10
    classes = CLASSES

    def __init__(
        self,
        root: str | None,
        val_fraction: float,
        split_seed: int,
        subset: int | None,
        test_subset: int | None,
        download: bool,
        md5: str | None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.root, self.val_fraction, self.split_seed = root, val_fraction, split_seed
        self.subset, self.test_subset, self.download, self.md5 = subset, test_subset, download, md5

    def load(self) -> None:
        path = find_archive(self.root, self.download, self.md5).resolve()
        st = path.stat()
        arrays = read_archive(str(path), self.md5, (st.st_size, st.st_mtime_ns))
        x, y = arrays["train_x"], arrays["train_y"]
        tr, va = train_val_indices(y, self.subset, self.val_fraction, self.split_seed)
        n_test = self.test_subset or len(arrays["test_y"])
        self.splits = {
            "train": (x[tr], y[tr]),
            "val": (x[va], y[va]),
            "test": (arrays["test_x"][:n_test], arrays["test_y"][:n_test]),
        }


@register_data("cifar10")
def cifar10(
    *,
    root: str | None = None,  # the archive or its folder (default: the cache, or a download)
    batch_size: int = 256,
    eval_batch_size: int = 1000,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: Augment = Augment(),
    subset: int | None = None,  # a stratified sample of that many training images
    test_subset: int | None = None,  # the first N test images
    download: bool = True,  # into the cache when missing (never under TRAINLAB_OFFLINE=1)
    md5: str | None = MD5,  # the archive's expected MD5; null: an archive of your own
    seed: int = 0,
) -> CIFAR10:
    """CIFAR-10 (32×32 RGB, 10 classes) with a stratified, seeded validation split.

    ``root``: the archive or its folder; ``subset``: a stratified sample of that many training
    images; ``test_subset``: the first N test images; ``md5``: the archive's expected MD5
    (``null`` skips the check, for an archive of your own in the same format).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction: must be between 0 and 1 (got {val_fraction})")
    if md5 is not None and not (len(md5) == 32 and all(c in string.hexdigits for c in md5)):
        raise ConfigError(f"data.md5: 32 hexadecimal digits, or null (got '{md5}')")
    return CIFAR10(
        root, val_fraction, split_seed, subset, test_subset, download, md5,
        batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed, augment=augment,
    )  # fmt: skip
