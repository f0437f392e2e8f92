"""analyze's memory section: parameters split by layer type, and the inference peak."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.analyze import memory_report, model_target
from trainlab.analyze.memory import parameter_bytes_by_type
from trainlab.models import create_model


def test_alexnet_holds_most_of_its_weights_in_the_fully_connected_layers() -> None:
    with torch.device("meta"):
        model = create_model("alexnet")  # 61.1M parameters, of which 2.5M in convolutions
    split = parameter_bytes_by_type(model)
    total = sum(p.numel() * 4 for p in model.parameters())
    assert sum(split.values()) == total
    assert split["conv"] == 4 * 2_469_696 and split["linear"] / total > 0.95


def test_shared_and_norm_parameters_are_counted_once_in_their_type() -> None:
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.BatchNorm1d(4), lin)  # the same Linear twice
    assert parameter_bytes_by_type(model) == {"conv": 0, "linear": 80, "norm": 32,
                                              "embedding": 0, "other": 0}  # fmt: skip


def test_memory_report_has_an_inference_peak_and_the_split() -> None:
    target = model_target("mlp", {"in_features": 256, "hidden": [2048, 2048], "num_classes": 10},
                          device="cpu")  # fmt: skip
    r = memory_report(target, batch=512)
    split = r.params_by_type
    assert sum(split.values()) == r.params == split["linear"] + split["norm"]
    # one forward of 512 × 2048 float32 hidden values (4 MiB each) must show in the RSS
    assert r.inference_peak > 2**20
    assert r.to_dict()["inference_peak"] == r.inference_peak
