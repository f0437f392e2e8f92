"""DDP smoke test for bench/gpu_suite.sh (not a benchmark: `make bench` skips `_` files).

Run under torchrun: joins a process group (NCCL on CUDA, gloo otherwise), wraps the default
recipe's model in ``DistributedDataParallel``, takes 20 optimizer steps on the recipe's batches
(gradients all-reduced in ``backward``) and checks that the loss is finite and that an
all-reduce of the weights agrees across ranks. trainlab itself joins no process group for a
single process, so this checks the NCCL path on a one-GPU machine.

    python -m torch.distributed.run --standalone --nproc-per-node 1 bench/_ddp_smoke.py \
        cuda [key=value ...]
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist
from _common import RECIPE
from torch.nn.parallel import DistributedDataParallel as DDP

from trainlab import load_config
from trainlab.experiment import build_experiment


def main() -> None:
    device = sys.argv[1]
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    exp = build_experiment(load_config(RECIPE, sys.argv[2:]))
    ids = [torch.cuda.current_device()] if device == "cuda" else None
    model = DDP(exp.model, device_ids=ids)
    t0, n = time.perf_counter(), 0
    loss = torch.tensor(float("nan"))
    for _, (x, y) in zip(range(20), exp.data.loader("train").iter_epoch(0), strict=False):
        with exp.trainer.autocast():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        exp.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP all-reduces the gradients here
        exp.optimizer.step()
        n += len(x)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    total = flat.clone()
    dist.all_reduce(total)  # every rank holds the same weights: the sum is world × them
    ok = bool(torch.isfinite(loss)) and torch.allclose(total, flat * dist.get_world_size())
    if device == "cuda":
        torch.cuda.synchronize()
    rate = n / (time.perf_counter() - t0)
    print(f"bench gpu_ddp_smoke {int(ok)} ok ({dist.get_backend()}, "
          f"{dist.get_world_size()} process(es), {rate:.0f} samples/s with warm-up)")  # fmt: skip
    dist.destroy_process_group()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
