"""Training throughput from an image folder (``data.cache`` auto and never) vs in-memory data.

Writes the first 10,000 Fashion-MNIST training images as 28×28 grayscale PNGs into a temporary
folder (``<class>/<i>.png``), then trains the default recipe's model on it with the recipe's
optimizer, precision and batch size, three ways, in turns:

- ``memory``: the recipe as it is (the built-in ``fashion_mnist`` source, in-memory batches);
- ``folder_auto``: ``image_folder`` with ``cache: auto`` (the folder fits: decoded once);
- ``folder_never``: ``image_folder`` with ``cache: never`` (files decoded by loader workers).

The recipe's ``data.augment`` becomes the folder's transforms (``flip`` → ``flip``,
``translate: t`` → ``crop: 28, crop_padding: t``). Samples/s is timed over optimizer steps
``--warm`` … ``--warm + --steps`` of the first epoch (no validation, no start-up inside), median
over ``--reps`` turns. Prints a table and ``bench image_folder_vs_memory`` (cache auto / memory,
goal ≥ 0.90), ``bench image_folder_stream_vs_memory`` and the three samples/s figures.

    .venv/bin/python bench/image_folder_vs_memory.py [recipe] [--reps 3] [--steps 12]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import RECIPE

from trainlab.config.load import load_recipe, parse_config
from trainlab.experiment import build_experiment


def write_pngs(folder: Path, n: int) -> None:
    """The first ``n`` Fashion-MNIST training images as ``folder/<class>/<i>.png`` (mode L)."""
    from PIL import Image

    from trainlab.data.fashion_mnist import find_files, load_arrays

    arrays = load_arrays(str(find_files(None, download=True)))
    x, y = arrays["train_x"][:n].numpy(), arrays["train_y"][:n].tolist()
    for c in sorted(set(y)):
        (folder / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i, (img, c) in enumerate(zip(x, y, strict=True)):
        Image.fromarray(img.reshape(28, 28), mode="L").save(folder / f"class_{c}" / f"{i}.png")


def folder_data(recipe: dict[str, Any], root: Path, cache: str) -> dict[str, Any]:
    """The recipe's data section rewritten for ``image_folder`` over ``root``."""
    src = recipe["data"]
    aug = dict(src.get("augment") or {})
    transforms: dict[str, Any] = {"flip": bool(aug.pop("flip", False))}
    t = int(aug.pop("translate", 0))
    if t:
        transforms.update(crop=28, crop_padding=t)
    if aug:
        print(f"note: data.augment {aug} has no image_folder equivalent; the folder runs omit it")
    return {
        "name": "image_folder", "root": str(root), "mode": "L", "cache": cache,
        "batch_size": src.get("batch_size", 64),
        "eval_batch_size": src.get("eval_batch_size", 1000),
        "val_fraction": 0.1, "test_fraction": 0.1, "transforms": transforms,
    }  # fmt: skip


class StepClock:
    """Callback: wall time between the ends of optimizer steps ``warm`` and ``warm + steps``;
    stops the run there (``state.should_stop``, a documented flag)."""

    def __init__(self, warm: int, steps: int, batch: int) -> None:
        self.warm, self.steps, self.batch = warm, steps, batch
        self.t0 = self.rate = 0.0

    def on_batch_end(self, state: Any) -> None:
        if state.step == self.warm:
            self.t0 = time.perf_counter()
        elif state.step == self.warm + self.steps:
            self.rate = self.steps * self.batch / (time.perf_counter() - self.t0)
            state.should_stop = True
            state.stop_reason = "bench: steps timed"


def measure(recipe: dict[str, Any], data: dict[str, Any] | None, warm: int, steps: int) -> float:
    cfg_dict = {**recipe, "callbacks": []}
    cfg_dict["train"] = {**recipe.get("train", {}), "tensorboard": False, "report": False,
                         "epochs": 1}  # fmt: skip
    if data is not None:
        cfg_dict["data"] = data
    cfg = parse_config(cfg_dict)
    batch = cfg.data.options().get("batch_size", 64)
    clock = StepClock(warm, steps, batch)
    exp = build_experiment(cfg, callbacks=[clock])
    per_epoch = len(exp.data.loader("train"))
    if per_epoch < warm + steps:
        raise SystemExit(f"--warm + --steps must fit in one epoch ({per_epoch} steps)")
    if data is not None:
        print(f"  {exp.data.cache.line()}")  # type: ignore[attr-defined]
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    return clock.rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default=str(RECIPE))
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warm", type=int, default=2, help="steps before the clock starts")
    ap.add_argument("--steps", type=int, default=12, help="steps timed (within epoch 1)")
    args = ap.parse_args()
    recipe = load_recipe(args.recipe)
    rates: dict[str, list[float]] = {"memory": [], "folder_auto": [], "folder_never": []}
    with tempfile.TemporaryDirectory(prefix="trainlab-bench-") as tmp:
        t0 = time.perf_counter()
        write_pngs(Path(tmp) / "fmnist", args.images)
        print(f"wrote {args.images:,} PNGs in {time.perf_counter() - t0:.1f} s")
        datas = {
            "memory": None,
            "folder_auto": folder_data(recipe, Path(tmp) / "fmnist", "auto"),
            "folder_never": folder_data(recipe, Path(tmp) / "fmnist", "never"),
        }
        for rep in range(args.reps):
            for name, data in datas.items():
                rates[name].append(measure(recipe, data, args.warm, args.steps))
                print(f"rep {rep + 1} {name:13s} {rates[name][-1]:9,.0f} samples/s")
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"torch threads {torch.get_num_threads()}, recipe {Path(args.recipe).name}, "
          f"median of {args.reps}")  # fmt: skip
    print(f"{'path':14s} {'samples/s':>10s} {'vs memory':>10s}")
    for name, r in med.items():
        print(f"{name:14s} {r:10,.0f} {r / med['memory']:9.2f}x")
    print(f"bench image_folder_vs_memory {med['folder_auto'] / med['memory']:.3f} x")
    print(f"bench image_folder_stream_vs_memory {med['folder_never'] / med['memory']:.3f} x")
    for name, r in med.items():
        print(f"bench {name}_samples_per_s {r:.0f} samples/s")


if __name__ == "__main__":
    main()
