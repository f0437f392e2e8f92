"""``trainlab predict RUN|EXPORTED FILE...``: top-k classes for new inputs, converted the way the
training data was.

- images (png, jpg, bmp, gif, webp, tiff) of any size and colour mode: converted to the
  training colour mode (``L`` or ``RGB``), resized (image folders: their eval resize and centre
  crop) to the training size, scaled to the stored value range (255 for uint8 image sets, 16 for
  sklearn's digits, 0..1 for image folders) and normalised with the training statistics;
- ``.csv``/``.tsv`` rows for table models: with a header, the columns are picked by feature name
  (a one-hot feature ``colour=red`` from the raw ``colour`` column); without, each row must hold
  the features in order;
- ``.txt`` lines for text models: tokenised and encoded with the training vocabulary.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.deploy.artefact import Artefact, open_model
from trainlab.errors import DataError, TrainlabError

__all__ = ["Prediction", "predict", "read_inputs", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TABLE_SUFFIXES = {".csv", ".tsv"}


@dataclass
class Prediction:
    """One input's top-k classes with probabilities (or a regression model's outputs)."""

    source: str
    top: list[tuple[str, float]]
    values: list[float] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.source}
        if self.values is not None:
            out["values"] = self.values
        else:
            out["top"] = [{"class": c, "prob": round(p, 6)} for c, p in self.top]
        return out


def _image(path: Path, spec: dict[str, Any]) -> np.ndarray:
    from torchvision.transforms import v2

    from trainlab.data.folder_loader import open_image

    img = open_image(str(path), spec["mode"])  # DataError names an unreadable file
    _, h, w = spec["shape"]
    steps: list[Any] = [v2.ToImage()]
    if spec.get("resize"):
        steps.append(v2.Resize(spec["resize"], antialias=True))
    if spec.get("crop"):
        steps.append(v2.CenterCrop(spec["crop"]))
    x = v2.Compose(steps)(img)
    if tuple(x.shape[-2:]) != (h, w):  # any other size: straight to the training size
        x = v2.Resize((h, w), antialias=True)(x)
    x = v2.ToDtype(torch.float32, scale=True)(x) * float(spec["scale"])  # stored units
    return _normalise(x.numpy(), spec)


def _normalise(x: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    if spec.get("mean") is None or spec.get("std") is None:
        return x.astype(np.float32)
    shape = (-1,) + (1,) * (x.ndim - 1)  # per channel (C, 1, 1) or per feature (F,)
    mean = np.asarray(spec["mean"], np.float32).reshape(shape)
    std = np.asarray(spec["std"], np.float32).reshape(shape)
    return ((x - mean) / std).astype(np.float32)


def _cell(value: str, where: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise DataError(f"{where}: '{value}' is not a number") from None
    if not np.isfinite(out):
        raise DataError(f"{where}: '{value}' is not a finite number")
    return out


def _row_features(row: list[str], header: list[str] | None, feats: list[str], where: str
                  ) -> list[float]:  # fmt: skip
    if header is None:
        if len(row) != len(feats):
            raise DataError(f"{where}: {len(row)} values, the model takes {len(feats)}")
        return [_cell(v, where) for v in row]
    cols = dict(zip(header, row))
    out = []
    for f in feats:
        if f in cols:
            out.append(_cell(cols[f], f"{where}, column '{f}'"))
        elif "=" in f and f.split("=", 1)[0] in cols:  # one-hot from the raw category
            name, cat = f.split("=", 1)
            out.append(1.0 if cols[name] == cat else 0.0)
        else:
            raise DataError(f"{where}: no column '{f}' (the model's features: {', '.join(feats)})")
    return out


def _table(path: Path, spec: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    n = spec["shape"][0]
    feats = spec.get("features") or [f"x{i}" for i in range(n)]
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    rows = [r for r in csv.reader(text.splitlines(), delimiter="\t" if path.suffix == ".tsv"
                                  else ",") if r]  # fmt: skip
    header = None
    if rows and not _numeric(rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    start = 2 if header is not None else 1
    out = []
    for i, row in enumerate(rows):
        where = f"{path}:{i + start}"
        x = np.asarray(_row_features([c.strip() for c in row], header, feats, where), np.float32)
        out.append((where, _normalise(x, spec)))
    return out


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def _text(path: Path, spec: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    from trainlab.data.text import UNK, tokenize

    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    stoi = {t: i for i, t in enumerate(spec["vocab"])}
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        toks = tokenize(line, spec["level"], spec["lowercase"])[: spec["max_len"]]
        x = np.zeros(spec["max_len"], np.int64)  # PAD = 0
        x[: len(toks)] = [stoi.get(t, UNK) for t in toks]
        out.append((f"{path}:{i + 1}", x))
    return out


def read_inputs(path: str | Path, spec: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """``(name, model input)`` pairs from one file, for a model described by ``spec``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    kind, suffix = spec.get("kind"), p.suffix.lower()
    if kind == "image" and suffix in IMAGE_SUFFIXES:
        return [(str(p), _image(p, spec))]
    if kind == "table" and suffix in TABLE_SUFFIXES:
        return _table(p, spec)
    if kind == "text" and suffix in {".txt", ".text"}:
        return _text(p, spec)
    wants = {"image": "an image (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")",
             "table": "a .csv or .tsv file", "text": "a .txt file (one text a line)"}  # fmt: skip
    raise DataError(f"{p}: this model ({kind} input) takes {wants.get(str(kind), 'nothing')}")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _logits(model: Artefact, xs: np.ndarray) -> np.ndarray:
    if model.meta.get("dynamic_batch", True):
        return model.run(xs)
    return np.concatenate([model.run(xs[i : i + 1]) for i in range(len(xs))])


def predict(source: str | Path, files: list[str | Path], k: int = 3) -> list[Prediction]:
    """Top-``k`` classes of every input in ``files`` (images, CSV rows, text lines).

    >>> predict("runs/fmnist", ["boot.png"], k=2)  # doctest: +SKIP
    [Prediction(source='boot.png', top=[('Ankle boot', 0.97), ('Sandal', 0.02)])]
    """
    if k < 1:
        raise TrainlabError(f"--top {k}: must be at least 1")
    model = open_model(source)
    items = [item for f in files for item in read_inputs(f, model.meta)]
    if not items:
        raise DataError(f"no inputs in {', '.join(map(str, files))}")
    xs = np.stack([x for _, x in items])
    logits = _logits(model, xs)
    classes = model.meta.get("classes") or []
    if not classes:  # regression: the outputs themselves
        return [Prediction(name, [], np.atleast_1d(z).tolist()) for (name, _), z in
                zip(items, logits)]  # fmt: skip
    probs = _softmax(logits.astype(np.float64))
    out = []
    for (name, _), p in zip(items, probs):
        order = np.argsort(-p)[:k]
        out.append(Prediction(name, [(classes[i], float(p[i])) for i in order]))
    return out
