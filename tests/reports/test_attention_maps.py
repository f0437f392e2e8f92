"""Attention maps of seq2seq and Transformer runs: the recomputed weights are the ones the
models use, each map is target × source with rows summing to 1, and the report shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from trainlab.models import create_model
from trainlab.models.layers import MultiHeadAttention, padding_mask
from trainlab.models.seq2seq import Attention
from trainlab.run import train_run
from trainlab.tracking.attention_maps import (
    additive_weights,
    attention_maps,
    mha_weights,
    write_attention_maps,
)


def test_mha_weights_reproduce_the_modules_output() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(dim=12, heads=3).eval()
    q, kv = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    mask[1, ..., 4:] = False  # the second sample's last two keys are padding
    with torch.no_grad():
        w = mha_weights(mha, q, kv, mask)  # (N, h, T, S)
    assert w.shape == (2, 3, 4, 6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 4))
    assert float(w[1, ..., 4:].abs().max()) == 0.0
    # The weights applied to the values, through the output projection, give the output.
    value = F.linear(kv, mha.qkv.weight[24:], mha.qkv.bias[24:]).view(2, 6, 3, 4).transpose(1, 2)
    y = (w @ value).transpose(1, 2).reshape(2, 4, 12)
    assert torch.allclose(mha.out(y), mha(q, kv, mask=mask), atol=1e-5)


@pytest.mark.parametrize("kind", ["bahdanau", "dot"])
def test_additive_weights_reproduce_the_context(kind: str) -> None:
    torch.manual_seed(0)
    attn = Attention(kind, hidden=8)
    q, k = torch.randn(3, 8), torch.randn(3, 5, 8)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 5])
    with torch.no_grad():
        w = additive_weights(attn, q, k, mask)
    assert torch.allclose(w.sum(-1), torch.ones(3)) and float(w[1, 3:].sum()) == 0.0
    assert torch.allclose((w.unsqueeze(1) @ k).squeeze(1), attn(q, k, mask), atol=1e-6)


@pytest.mark.parametrize("name", ["seq2seq", "transformer"])
def test_maps_are_target_by_source_and_ignore_padding(name: str) -> None:
    torch.manual_seed(0)
    opts = {"hidden": 16, "embed_dim": 8} if name == "seq2seq" else {"dim": 16, "depth": 2,
                                                                      "heads": 2, "mlp_dim": 32}
    model = create_model(name, src_vocab=10, tgt_vocab=10, **opts).train()
    src = torch.randint(2, 10, (3, 7))
    src[0, 5:] = 0  # padding
    maps = attention_maps(model, src, torch.randint(1, 10, (3, 4)))
    assert len(maps) == (1 if name == "seq2seq" else 2)  # one per decoder layer
    for m in maps:
        assert m.weights.shape == (3, 4, 7)
        assert torch.allclose(m.weights.sum(-1), torch.ones(3, 4), atol=1e-5)
        assert float(m.weights[0, :, 5:].abs().max()) == 0.0
    assert model.training  # the mode it was in
    assert not any(mod._forward_hooks for mod in model.modules())  # hooks removed
    if name == "transformer":  # the mask the model builds is the one the maps honour
        assert padding_mask(src, 0)[0, 0, 0].tolist() == [True] * 5 + [False] * 2


def test_models_without_encoder_decoder_attention_write_nothing(tmp_path: Path) -> None:
    lenet = create_model("lenet5")
    assert attention_maps(lenet, torch.zeros(1, 1, 28, 28), torch.zeros(1, 1)) == []
    assert write_attention_maps(lenet, None, None, tmp_path) is None
    plain = create_model("seq2seq", attention="none", hidden=16, embed_dim=8)
    assert write_attention_maps(plain, None, None, tmp_path) is None
    assert not list(tmp_path.iterdir())


RECIPE = """
name: attn
seed: 0
data: {name: seq_task, task: reverse, seq_len: 6, vocab: 10, n_train: 256, n_val: 64,
       n_test: 64, batch_size: 64}
model: MODEL
task: {name: seq2seq}
optim: {name: adam, lr: 0.01}
train: {epochs: 1, log_every: 4, precision: fp32, monitor: val/seq_acc, tensorboard: false,
        norms: false}
"""
MODELS = {
    "seq2seq": "{name: seq2seq, src_vocab: 10, tgt_vocab: 10, embed_dim: 16, hidden: 32, "
    "layers: 1, dropout: 0.0}",
    "transformer": "{name: transformer, src_vocab: 10, tgt_vocab: 10, dim: 32, depth: 2, "
    "heads: 2, mlp_dim: 64, dropout: 0.0}",
}


@pytest.mark.parametrize("name", list(MODELS))
def test_tiny_run_puts_attention_maps_in_the_report(name: str, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("MODEL", MODELS[name]))
    train_run(recipe, run_dir=tmp_path / "run", progress=False)
    run = tmp_path / "run"
    saved = json.loads((run / "attention.json").read_text())
    assert saved["split"] == "test" and len(saved["examples"]) == 4
    layers = 1 if name == "seq2seq" else 2
    for ex in saved["examples"]:
        assert len(ex["src"]) == len(ex["tgt"]) == 6  # reverse: target as long as the source
        assert len(ex["maps"]) == layers
        for weights in ex["maps"].values():
            w = torch.tensor(weights)
            assert w.shape == (len(ex["tgt"]), len(ex["src"]))  # target × source
            assert torch.allclose(w.sum(1), torch.ones(len(ex["tgt"])), atol=1e-5)
    assert (run / "attention.png").stat().st_size > 1000
    html = (run / "report.html").read_text()
    assert "<h2>Attention</h2>" in html and 'alt="attention maps"' in html
