"""The data contract, for every registered source: shapes, dtypes, label range, determinism by
seed, disjoint splits. File-backed sources get tiny files in tmp_path; no network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.data.base import DATA, DataModule
from trainlab.data.fashion_mnist import DEBIAN_DIR
from trainlab.data.inspect import cross_split_duplicates


def _csv(tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    rows = ["a,b,c,y"] + [
        f"{rng.normal():.6f},{rng.normal():.6f},{'uvw'[i % 3]},{i % 2}" for i in range(60)
    ]
    (tmp / "t.csv").write_text("\n".join(rows))
    return {"path": str(tmp / "t.csv"), "target": "y", "categorical": ["c"]}


def _windows(tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    (tmp / "s.csv").write_text(
        "\n".join(["v,w"] + [f"{a:.6f},{b:.6f}" for a, b in rng.normal(size=(80, 2))])
    )
    return {"path": str(tmp / "s.csv"), "columns": ["v", "w"], "window": 4}


def _text(tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    (tmp / "t.txt").write_text("".join(rng.choice(list("abcdefgh "), 3000)))
    return {"path": str(tmp / "t.txt"), "seq_len": 16}


def _text_csv(tmp: Path) -> dict[str, Any]:
    words = ["red", "green", "blue", "big", "small", "cat", "dog"]
    rng = np.random.default_rng(0)
    rows = ["text,label"] + [" ".join(rng.choice(words, 5)) + f" {i},{i % 2}" for i in range(40)]
    (tmp / "r.csv").write_text("\n".join(rows))
    return {"path": str(tmp / "r.csv"), "max_len": 8}


def _images(tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp / "img" / c).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(
                tmp / "img" / c / f"{i}.png"
            )
    return {"root": str(tmp / "img"), "num_workers": 0, "batch_size": 4}


def _fmnist(_: Path) -> dict[str, Any]:
    if not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST files not installed")
    return {"subset": 2000, "test_subset": 500, "download": False}


def write_idx_dataset(folder: Path, n_train: int = 200, n_test: int = 60) -> Path:
    """The four (Fashion-)MNIST IDX files with random 28×28 images and balanced labels."""
    import gzip

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        head_x = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
        head_y = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(head_x + images.tobytes())
        )
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(head_y + labels.tobytes())
        )
    return folder


def _mnist(tmp: Path) -> dict[str, Any]:
    return {"root": str(write_idx_dataset(tmp / "mnist")), "download": False}


def _cifar10(tmp: Path) -> dict[str, Any]:
    from test_cifar10 import write_cifar_archive  # a small archive in the official format

    return {"root": str(write_cifar_archive(tmp / "cifar10")), "md5": None, "download": False}


def _none(_: Path) -> dict[str, Any]:
    return {}


def _graph(options: Callable[[Path], dict[str, Any]]) -> Callable[[Path], dict[str, Any]]:
    def build(tmp: Path) -> dict[str, Any]:
        pytest.importorskip("torch_geometric", reason="pip install 'trainlab[graphs]'")
        return options(tmp)

    return build


def _graph_csv(tmp: Path) -> dict[str, Any]:
    rows, edges = ["id,f1,f2,label"], ["source,target"]
    for i in range(30):
        rows.append(f"v{i},{i % 3 + 0.1 * (i % 7)},{i % 5},{'abc'[i % 3]}")
        edges.append(f"v{i},v{(i + 3) % 30}")
    (tmp / "nodes.csv").write_text("\n".join(rows))
    (tmp / "edges.csv").write_text("\n".join(edges))
    return {"nodes": str(tmp / "nodes.csv"), "edges": str(tmp / "edges.csv")}


def _samples(x: Any) -> torch.Tensor:
    """A batch's inputs as (N, …) samples: a graph's node batch gives its nodes' features."""
    return x.node_features() if hasattr(x, "node_features") else x


def _gym(_: Path) -> dict[str, Any]:
    pytest.importorskip("gymnasium", reason="Gymnasium not installed: pip install 'trainlab[rl]'")
    return {"warmup_steps": 50, "batch_size": 8, "eval_episodes": 4}


# Options that make each source small and file-free; a new source must add itself here.
OPTIONS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "breast_cancer": _none,
    "diabetes": _none,
    "digits": _none,
    "iris": _none,
    "wine": _none,
    "synthetic": _none,
    "mnist": _mnist,
    "cifar10": _cifar10,
    "seq_task": lambda _: {"n_train": 128, "n_val": 32, "n_test": 32},
    "csv": _csv,
    "csv_windows": _windows,
    "text_lm": _text,
    "text_csv": _text_csv,
    "image_folder": _images,
    "fashion_mnist": _fmnist,
    "unpaired_fashion_mnist": _fmnist,
    "cv_fold": lambda _: {"source": {"name": "iris"}, "scheme": "stratified", "index": 1},
    "karate_club": _graph(_none),
    "sbm_graph": _graph(lambda _: {"num_classes": 3, "nodes_per_class": 20}),
    "graph_csv": _graph(_graph_csv),
    "gym": _gym,
}


def test_every_registered_source_is_covered() -> None:
    assert set(DATA.names()) <= set(OPTIONS), "add the new source to OPTIONS"


def _build(name: str, tmp: Path, seed: int) -> DataModule:
    m = DATA.get(name)(**OPTIONS[name](tmp), seed=seed)
    m.setup(torch.device("cpu"))
    return m


def _disjoint(m: DataModule) -> None:
    parts = getattr(m, "split_indices", None) or getattr(m, "split_samples", None)
    if parts:
        sets = [set(map(str, v)) for v in parts.values()]
        assert all(not (sets[i] & sets[j]) for i in range(3) for j in range(i + 1, 3))
    elif hasattr(m, "splits"):
        assert set(cross_split_duplicates({k: x for k, (x, _) in m.splits.items()}).values()) == {0}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_contract(name: str, tmp_path: Path) -> None:
    m = _build(name, tmp_path, seed=3)
    assert set(m.sizes) == {"train", "val", "test"} and min(m.sizes.values()) > 0
    assert m.num_classes is None or m.num_classes >= 2
    for split in ("train", "val"):
        loader = m.loader(split)
        x, y = next(loader.iter_epoch(0))
        x = _samples(x)
        assert tuple(x.shape[1:]) == m.input_shape and len(x) == len(y) and len(loader) >= 1
        assert x.dtype in (torch.float32, torch.int64) and torch.isfinite(x.float()).all()
        if getattr(m, "batch_kind", None) == "rl":  # y: packed transitions / episode seeds
            assert y.dtype in (torch.float32, torch.int64)
        elif m.num_classes is None:
            assert y.dtype == torch.float32
        else:
            assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < m.num_classes
    if name != "fashion_mnist":  # known duplicate images in the real data; its split is tested
        _disjoint(m)
    if getattr(m, "batch_kind", None) == "rl":  # batches depend on what was played before
        m = _build(name, tmp_path, seed=3)
    again = next(_build(name, tmp_path, seed=3).loader("train").iter_epoch(1))
    other = next(_build(name, tmp_path, seed=4).loader("train").iter_epoch(1))
    first = next(m.loader("train").iter_epoch(1))
    first, again, other = ((_samples(x), y) for x, y in (first, again, other))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    # Full-batch graphs: one batch of every training node, whatever the seed.
    full_batch = len(m.loader("train")) == 1 and hasattr(m, "graph")
    assert full_batch or not torch.equal(first[1], other[1]) or not torch.equal(first[0], other[0])
    assert isinstance(m.describe(), dict)
