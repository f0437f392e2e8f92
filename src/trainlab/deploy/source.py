"""A trained run, rebuilt for use after training: its model (best checkpoint, eval mode, CPU,
float32), its data and what a caller needs to feed the model new inputs (:func:`input_spec`).

Every tool after training (export, predict, quantize, prune, ensemble, attack) starts here and
only reads the run directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.config.load import load_config
from trainlab.config.schema import Config
from trainlab.errors import CheckpointError, ConfigError
from trainlab.plugins import use_run_plugins

__all__ = ["LoadedRun", "load_run", "load_model_only", "input_spec", "sample_inputs",
           "dir_digest"]


@dataclass
class LoadedRun:
    """A run directory's model with the best weights, ready for inference."""

    run_dir: Path
    cfg: Config
    exp: Any  # trainlab.experiment.Experiment
    model: nn.Module
    spec: dict[str, Any]


def load_run(run_dir: str | Path, which: str = "best", overrides: list[str] | None = None
             ) -> LoadedRun:  # fmt: skip
    """Rebuild a run's experiment on the CPU and load its ``best`` (or ``latest``) weights.

    >>> run = load_run("runs/fashion_mnist-20261122-043541")  # doctest: +SKIP
    >>> run.model(torch.zeros(1, *run.spec["shape"])).shape    # doctest: +SKIP
    torch.Size([1, 10])
    """
    from trainlab.experiment import build_experiment
    from trainlab.train.checkpoint import load_checkpoint, resolve_checkpoint

    rdir = Path(run_dir)
    if not (rdir / "config.yaml").is_file():
        raise CheckpointError(f"{rdir}: not a run directory (no config.yaml)")
    ckpt = resolve_checkpoint(rdir, which)  # CheckpointError when there is none
    use_run_plugins(rdir)  # the run's own models/data from --import files, checked by hash
    # Inference on the CPU in float32, whatever the run trained with.
    cfg = load_config(rdir / "config.yaml", ["train.device=cpu", *(overrides or [])])
    exp = build_experiment(cfg)
    load_checkpoint(ckpt, exp.model, prefer_ema=True)
    model = exp.model.float().eval()
    model = model.to(memory_format=torch.contiguous_format)
    return LoadedRun(rdir, cfg, exp, model, input_spec(exp))


def load_model_only(run_dir: str | Path, which: str = "best") -> tuple[nn.Module, Config]:
    """Only a run's model (best weights, eval mode, CPU, no gradients), without its data; the
    global RNG is left as it was (building a model draws initial weights from it).

    >>> teacher, cfg = load_model_only("runs/fmnist")  # doctest: +SKIP
    """
    from trainlab.models.registry import create_model
    from trainlab.train.checkpoint import load_checkpoint, resolve_checkpoint

    rdir = Path(run_dir)
    if not (rdir / "config.yaml").is_file():
        raise CheckpointError(f"{rdir}: not a run directory (no config.yaml)")
    ckpt = resolve_checkpoint(rdir, which)
    use_run_plugins(rdir)
    cfg = load_config(rdir / "config.yaml")
    with torch.random.fork_rng(devices=[]):
        model = create_model(cfg.model.name, **cfg.model.options())
    if cfg.model.init_from is not None:  # a pruned model: its layer sizes come from there
        from trainlab.compress.init_from import init_from

        init_from(model, cfg.model.init_from)
    load_checkpoint(ckpt, model, prefer_ema=True)
    model.eval().requires_grad_(False)
    return model, cfg


def _value_scale(data: Any) -> float:
    """What a pixel of 1.0 (white, after ``ToDtype(scale=True)``) is in the stored units of an
    in-memory image set: 255 for uint8 images, the training maximum otherwise (digits: 16)."""
    x = data.splits["train"][0]
    if x.dtype == torch.uint8:
        return 255.0
    return float(x.max()) or 1.0


def _image_spec(data: Any, shape: list[int]) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "image", "mode": "L" if shape[0] == 1 else "RGB"}
    tf = getattr(data, "transforms", None)
    if tf is not None:  # image_folder: torchvision's eval transforms, values in 0..1
        spec.update(mode=data.opts["mode"], scale=1.0, resize=tf.resize, crop=tf.crop)
    else:  # in-memory images (Fashion-MNIST, digits): resized straight to (H, W)
        spec.update(scale=_value_scale(data), resize=None, crop=None)
    return spec


def input_spec(exp: Any) -> dict[str, Any]:
    """How raw inputs become model inputs, as JSON: kind (image, table, text), one sample's
    shape, normalisation statistics (in stored units), class names and, for text, the vocabulary.
    """
    data = exp.data
    shape = [int(s) for s in data.input_shape]
    desc = data.describe()
    classes = getattr(data, "classes", None) or desc.get("classes")
    if not classes and data.num_classes:
        classes = [str(i) for i in range(data.num_classes)]
    spec: dict[str, Any] = {
        "shape": shape,
        "mean": desc.get("mean"),
        "std": desc.get("std"),
        "classes": [str(c) for c in classes or []],
        "data": exp.cfg.data.name,
        "model": exp.cfg.model.name,
    }
    vocab = getattr(data, "vocab", None)
    if vocab is not None:
        o = data.opts
        spec.update(kind="text", vocab=list(vocab.itos), level=o["level"],
                    lowercase=o["lowercase"], max_len=o.get("max_len", shape[0]))  # fmt: skip
    elif len(shape) == 3:
        spec.update(_image_spec(data, shape))
    else:
        spec.update(kind="table", features=desc.get("features"))
    return spec


def sample_inputs(
    run: LoadedRun, n: int = 100, split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` model inputs of ``split`` (normalised as in training) and their labels."""
    if run.exp.data.sizes.get(split, 0) == 0:
        raise CheckpointError(f"{run.run_dir}: the data has no '{split}' split")
    xs, ys, got = [], [], 0
    for x, y in run.exp.data.loader(split).iter_epoch(0):
        if not isinstance(x, torch.Tensor):  # a graph's node batch: one input is a whole graph
            raise ConfigError(
                f"{run.run_dir}: trained on graph data (data '{run.cfg.data.name}': each input "
                "is a whole graph); this tool takes runs whose inputs are tensors (images, "
                "table rows, token ids): graph runs are not supported"
            )
        xs.append(x.cpu())
        ys.append(y.cpu())
        got += len(x)
        if got >= n:
            break
    # clone: a slice would keep (and torch.export.save would store) the whole batch's storage
    return torch.cat(xs)[:n].clone(), torch.cat(ys)[:n].clone()


def dir_digest(path: str | Path) -> str:
    """SHA-256 over every file's relative path and bytes below ``path`` (tests use it to show
    that a tool left its source run untouched)."""
    h = hashlib.sha256()
    root = Path(path)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()
