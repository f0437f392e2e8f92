"""Speed-up of bf16 autocast + channels_last over fp32 for the default CNN, training steps.

Same model (resnet_small), same in-memory batches of 256 Fashion-MNIST-sized images; the
settings alternate across repetitions and the median per-step times are compared.

    .venv/bin/python bench/precision.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from trainlab import Trainer, create_model

REPS, STEPS = 5, 10


def step_time(precision: str, channels_last: bool) -> float:
    torch.manual_seed(0)
    model = create_model("resnet_small")
    trainer = Trainer(
        epochs=1, device="cpu", precision=precision, channels_last=channels_last, progress=False
    )
    trainer.prepare(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(256, 1, 28, 28)
    if trainer.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (256,))

    def step() -> None:
        with trainer.autocast():
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: oneDNN picks its kernels
    t = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - t) / STEPS


def main() -> None:
    settings = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+cl": ("bf16", True)}
    times: dict[str, list[float]] = {k: [] for k in settings}
    for _ in range(REPS):
        for name, (precision, cl) in settings.items():
            times[name].append(step_time(precision, cl))
    base = statistics.median(times["fp32"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:8s} {med * 1e3:7.1f} ms/step  {256 / med:8,.0f} samples/s  {base / med:.2f}x")
    best = statistics.median(times["bf16+cl"])
    print(f"bench bf16_speedup {base / best:.2f} x")


if __name__ == "__main__":
    main()
