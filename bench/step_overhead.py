"""Per-step overhead of ``Trainer.fit`` against a hand-written loop on the same model and data.

Both run the same number of optimizer steps over the same in-memory batches with the same
precision and memory format; repetitions alternate between the two, and the median of the
paired ratios is reported with its interquartile range. Goal: ≤ 1.03 (MLP) and ≤ 1.01 (CNN).

``step_overhead_full`` repeats the CNN comparison with the options that add work to a step on
(gradient accumulation over 2 batches, clipping by norm, an EMA of the weights, bf16 autocast
with channels_last where the CPU has fast bf16): the hand-written loop does the same things
the textbook way. Goal: ≤ 1.03.

    .venv/bin/python bench/step_overhead.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from trainlab import Trainer, build_data, create_model
from trainlab.tasks.classification import ClassificationTask

REPS = 9
FULL = {"accumulate": 2, "grad_clip": 1.0, "ema_decay": 0.999}  # the options of the full case


def data_for(steps: int, shape: list[int], batch: int):
    data = build_data("synthetic", num_classes=10, shape=shape, n_train=steps * batch,
                      n_val=0, n_test=0, batch_size=batch, augment={"flip": True, "translate": 2}
                      if len(shape) == 3 else {})  # fmt: skip
    data.setup("cpu")
    return data


def hand_loop(model, data, trainer: Trainer) -> float:
    """The textbook loop, doing what the trainer's options ask for (accumulation, clipping,
    EMA) in the plainest way."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    accum = trainer.accumulate
    ema = None
    if trainer.ema_decay is not None:
        fn = get_ema_multi_avg_fn(trainer.ema_decay)
        ema = AveragedModel(model, multi_avg_fn=fn, use_buffers=True)
    loader = data.loader("train")
    t = time.perf_counter()
    model.train()
    for i, (x, y) in enumerate(loader.iter_epoch(0)):
        if trainer.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with trainer.autocast():
            loss = F.cross_entropy(model(x), y)
        (loss / accum if accum > 1 else loss).backward()
        if (i + 1) % accum:
            continue
        if trainer.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update_parameters(model)
    return (time.perf_counter() - t) / len(loader)


def trainer_loop(model, data, trainer: Trainer) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t = time.perf_counter()
    trainer.fit(model, ClassificationTask(), data, opt)
    return (time.perf_counter() - t) / len(data.loader("train"))


def measure(
    name: str, model_name: str, kwargs: dict, shape: list[int], steps: int, **options
) -> float:
    data = data_for(steps, shape, 256)
    model = create_model(model_name, num_classes=10, **kwargs)
    trainer = Trainer(epochs=1, device="cpu", log_every=50, progress=False, **options)
    trainer.prepare(model)
    hand_loop(model, data, trainer)  # warm-up: allocator, oneDNN kernels
    hand, ours, ratios = [], [], []
    for rep in range(REPS):
        # Back to back, alternating which goes first: drift in machine speed hits both.
        pair = [hand_loop, trainer_loop] if rep % 2 == 0 else [trainer_loop, hand_loop]
        times = {fn: fn(model, data, trainer) for fn in pair}
        hand.append(times[hand_loop])
        ours.append(times[trainer_loop])
        ratios.append(times[trainer_loop] / times[hand_loop])
    ratio = statistics.median(ratios)
    q = statistics.quantiles(ratios, n=4)
    print(
        f"{name:4s} {trainer.precision:5s} hand {statistics.median(hand) * 1e3:7.3f} ms/step  "
        f"trainer {statistics.median(ours) * 1e3:7.3f} ms/step  ratio median {ratio:.3f} "
        f"(IQR {q[0]:.3f}-{q[2]:.3f}; fastest vs fastest {min(ours) / min(hand):.3f})"
    )
    return ratio


def main() -> None:
    torch.manual_seed(0)
    mlp = measure("mlp", "mlp", {"in_features": 784, "hidden": [256, 128]}, [784], steps=300)
    cnn = measure("cnn", "resnet_small", {}, [1, 28, 28], steps=30)
    full = measure("full", "resnet_small", {}, [1, 28, 28], steps=40, **FULL)
    print(f"bench step_overhead_mlp {mlp:.3f} x")
    print(f"bench step_overhead_cnn {cnn:.3f} x")
    print(f"bench step_overhead_full {full:.3f} x")


if __name__ == "__main__":
    main()
