"""Model analysis figures: reference FLOP/parameter counts and the default model's costs.

1. ResNet-18/50, VGG-16 and AlexNet at 224×224, built on the meta device: parameters and
   multiply-adds (``torch.utils.flop_counter``, 2 FLOPs per multiply-add) against the values
   torchvision's model documentation publishes (its "GFLOPS" column counts multiply-adds).
2. The default recipe's model (recipes/fashion_mnist.yaml, or its model on synthetic 28×28
   input when Fashion-MNIST is not installed): FLOPs per image, training memory at the recipe's
   batch, and inference / training throughput at a few batch sizes.

    .venv/bin/python bench/analyze_models.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision.models as tvm
from rich.console import Console
from rich.table import Table

from trainlab.analyze import AnalyzeOptions, analyze, count_flops, model_target, recipe_target
from trainlab.analyze.report import flops_table, memory_table, sweep_table
from trainlab.analyze.sweep import sweep
from trainlab.errors import TrainlabError
from trainlab.models import create_model

REFERENCE = {
    "resnet18": tvm.ResNet18_Weights,
    "resnet50": tvm.ResNet50_Weights,
    "vgg16": tvm.VGG16_Weights,
    "alexnet": tvm.AlexNet_Weights,
}
RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "fashion_mnist.yaml"


def reference(console: Console) -> None:
    table = Table(title="224×224, batch 1: trainlab (flop_counter) vs torchvision's model docs")
    for col in ("model", "params", "tv params", "GFLOPs", "GMACs", "tv 'GFLOPS'", "MACs / tv"):
        table.add_column(col, justify="right")
    for name, weights in REFERENCE.items():
        meta = weights.DEFAULT.meta
        with torch.device("meta"):
            model = create_model(name)
            r = count_flops(model, (torch.empty(1, 3, 224, 224),), backward=False)
        params = sum(p.numel() for p in model.parameters())
        ratio = r.macs / 1e9 / meta["_ops"]
        table.add_row(
            name,
            f"{params:,}",
            f"{meta['num_params']:,}",
            f"{r.forward / 1e9:.3f}",
            f"{r.macs / 1e9:.3f}",
            f"{meta['_ops']:.3f}",
            f"{ratio:.4f}",
        )
        print(f"bench ref_macs_ratio_{name} {ratio:.4f} x")
        print(f"bench ref_params_ratio_{name} {params / meta['num_params']:.4f} x")
    console.print(table)


def default_model(console: Console) -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        target = recipe_target(RECIPE, device="cpu")
    except TrainlabError as e:  # no Fashion-MNIST here: the same model on synthetic input
        print(f"note: {e}; using resnet_small on random 1×28×28 input", file=sys.stderr)
        opts = {"widths": [24, 48, 96], "blocks": [1, 1], "num_classes": 10, "in_channels": 1}
        target = model_target("resnet_small", opts, device="cpu")
        target.batch_size = 256
    report = analyze(target, AnalyzeOptions(sweep=False))
    result = sweep(target, [64, 256, 1024], min_time=1.0)
    console.print(flops_table(report.flops), memory_table(report.memory), sweep_table(result))
    print(f"bench default_mflops_per_image {report.flops.forward_per_sample / 1e6:.2f} MFLOP")
    print(f"bench default_train_memory_mib {report.memory.estimated_total / 2**20:.1f} MiB")
    for row in result.rows:
        print(f"bench default_infer_per_s_b{row.batch} {row.infer_per_s:.0f} images/s")
        print(f"bench default_train_per_s_b{row.batch} {row.train_per_s:.0f} images/s")


if __name__ == "__main__":
    out = Console()
    reference(out)
    default_model(out)
