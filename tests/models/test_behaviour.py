"""Behaviour the textbook promises: regularisers, masks, packing, sampling, contracts."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import create_model, example_input
from trainlab.models.capsule import margin_loss
from trainlab.models.layers import DropConnectLinear, StochasticDepth, drop_path
from trainlab.models.vae import kl_divergence, reparameterize


def test_stochastic_depth_is_identity_in_eval_and_drops_samples_in_training() -> None:
    x = torch.ones(1000, 3, 2, 2)
    layer = StochasticDepth(0.5).eval()
    assert torch.equal(layer(x), x)
    layer.train()
    y = layer(x)
    per_sample = y.flatten(1)
    # Whole samples are dropped or kept (scaled by 1/(1-p) = 2), never single elements.
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample.min(1).values == per_sample.max(1).values).all()
    assert 0.4 < (per_sample[:, 0] == 0).float().mean() < 0.6
    assert torch.equal(drop_path(x, 0.0, training=True), x)


def test_resnet_with_stochastic_depth_equals_plain_resnet_in_eval() -> None:
    torch.manual_seed(0)
    plain = create_model("resnet", width=8, layers=[1, 1, 1, 1])
    deep = create_model("resnet", width=8, layers=[1, 1, 1, 1], stochastic_depth=0.5)
    deep.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, 28, 28)
    plain.eval(), deep.eval()
    assert torch.equal(plain(x), deep(x))
    deep.train()
    torch.manual_seed(1)
    outs = [deep(x) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_dropconnect_uses_full_weights_in_eval_only() -> None:
    torch.manual_seed(0)
    layer = DropConnectLinear(8, 4, p=0.5)
    x = torch.randn(3, 8)
    ref = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert torch.allclose(layer.eval()(x), ref)
    assert not torch.allclose(layer.train()(x), ref)


@pytest.mark.parametrize("pool", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_packed_padding_does_not_change_real_sequences(cell: str, pool: str) -> None:
    torch.manual_seed(0)
    model = create_model(cell, vocab_size=20, hidden=16, layers=2, bidirectional=True, pool=pool)
    model.eval()
    tokens = torch.randint(1, 20, (1, 5))
    padded = torch.cat([tokens, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    batch = torch.cat([padded, torch.randint(1, 20, (1, 8))])  # a full-length neighbour
    assert torch.allclose(model(tokens), model(batch)[:1], atol=1e-6)


def test_regressor_lengths_mask_padded_features() -> None:
    torch.manual_seed(0)
    model = create_model("lstm_regressor", input_size=3, hidden=8, pool="mean").eval()
    x = torch.randn(2, 6, 3)
    x_garbage = x.clone()
    x_garbage[0, 4:] = 1e3  # padding content must not matter
    lengths = torch.tensor([4, 6])
    assert torch.allclose(model(x, lengths), model(x_garbage, lengths), atol=1e-6)
    assert torch.allclose(model(x[:1, :4]), model(x, lengths)[:1], atol=1e-6)


@pytest.mark.parametrize("attention", ["bahdanau", "dot", "none"])
def test_seq2seq_ignores_source_padding(attention: str) -> None:
    torch.manual_seed(0)
    model = create_model(
        "seq2seq", attention=attention, src_vocab=30, tgt_vocab=30, hidden=16, embed_dim=8
    ).eval()
    src = torch.randint(1, 30, (1, 4))
    tgt = torch.randint(1, 30, (1, 6))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    assert torch.allclose(model(src, tgt), model(padded, tgt), atol=1e-6)
    assert model.generate(src, bos_idx=1, max_len=5).shape == (1, 5)


def test_seq2seq_teacher_forcing_ratio_zero_feeds_back_predictions() -> None:
    torch.manual_seed(0)
    model = create_model(
        "seq2seq",
        src_vocab=30,
        tgt_vocab=30,
        hidden=16,
        embed_dim=8,
        teacher_forcing=0.0,
        dropout=0.0,
    )
    src, tgt = torch.randint(1, 30, (2, 4)), torch.randint(1, 30, (2, 6))
    other = tgt.clone()
    other[:, 1:] = torch.randint(1, 30, (2, 5))
    # Only the first (BOS) input is read when the model always feeds back its own predictions.
    assert torch.allclose(model(src, tgt), model(src, other))


def test_transformer_lm_is_causal_and_generates() -> None:
    torch.manual_seed(0)
    model = create_model(
        "transformer_lm", vocab_size=50, dim=32, depth=2, heads=4, mlp_dim=64, context=16
    ).eval()
    x = torch.randint(0, 50, (2, 10))
    y = x.clone()
    y[:, 6:] = torch.randint(0, 50, (2, 4))
    # Logits at positions ≤ 5 only see tokens ≤ 5, which are identical.
    assert torch.allclose(model(x)[:, :6], model(y)[:, :6], atol=1e-5)
    assert not torch.allclose(model(x)[:, 6:], model(y)[:, 6:])
    out = model.generate(x[:, :3], max_new_tokens=20, temperature=0.8, top_k=5)
    assert out.shape == (2, 23) and torch.equal(out[:, :3], x[:, :3])


def test_encoder_decoder_transformer_masks() -> None:
    torch.manual_seed(0)
    model = create_model("transformer", src_vocab=40, tgt_vocab=40, dim=32, heads=4, mlp_dim=64)
    model.eval()
    src = torch.randint(1, 40, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    tgt = torch.randint(1, 40, (1, 6))
    assert torch.allclose(model(src, tgt), model(padded, tgt), atol=1e-5)
    changed = tgt.clone()
    changed[:, 4:] = torch.randint(1, 40, (1, 2))
    assert torch.allclose(model(src, tgt)[:, :4], model(src, changed)[:, :4], atol=1e-5)
    assert model.generate(src, bos_idx=1, max_len=7).shape == (1, 7)


def test_transformer_classifier_ignores_padding() -> None:
    torch.manual_seed(0)
    model = create_model("transformer_classifier", vocab_size=30, dim=32, heads=4, mlp_dim=64)
    model.eval()
    tokens = torch.randint(1, 30, (1, 6))
    padded = torch.cat([tokens, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    assert torch.allclose(model(tokens), model(padded), atol=1e-5)


@pytest.mark.parametrize("name", ["vae", "conv_vae"])
def test_vae_reparameterisation_and_contract(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, latent_dim=6)
    (x,) = example_input(model, 3)
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (3, 6)
    assert ((recon >= 0) & (recon <= 1)).all()
    z = reparameterize(mu, logvar)
    assert z.shape == (3, 6) and not torch.equal(z, mu)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])  # eval decodes the mean: deterministic
    assert model.sample(4).shape == (4, 1, 28, 28)
    zeros = torch.zeros(3, 6)
    assert kl_divergence(zeros, zeros).item() == 0.0
    assert kl_divergence(zeros + 1, zeros).item() == pytest.approx(3.0)  # ½ Σ mu² = ½ · 6


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_gan_players(name: str) -> None:
    model = create_model(name, latent_dim=16)
    fake = model.sample(3)
    assert fake.shape == (3, 1, 28, 28) and fake.abs().max() <= 1
    assert model.discriminator(fake).shape == (3, 1)


def test_adversarial_autoencoder_prior_and_discriminator() -> None:
    model = create_model("adversarial_autoencoder", latent_dim=4)
    recon, z = model(*example_input(model, 3))
    assert recon.shape == (3, 1, 28, 28) and z.shape == (3, 4)
    assert model.discriminator(model.sample_prior(5)).shape == (5, 1)


def test_siamese_embeddings_are_unit_length() -> None:
    model = create_model("siamese", embedding_dim=16).eval()
    e = model(*example_input(model, 4))
    assert torch.allclose(e.norm(dim=-1), torch.ones(4), atol=1e-5)


def test_capsnet_lengths_reconstruction_and_margin_loss() -> None:
    torch.manual_seed(0)
    model = create_model("capsnet", conv_channels=16, primary_maps=4)
    (x,) = example_input(model, 2)
    caps = model.capsules(x)
    lengths = caps.norm(dim=-1)
    assert caps.shape == (2, 10, 16) and ((lengths >= 0) & (lengths < 1)).all()
    assert model.reconstruct(caps, torch.tensor([3, 7])).shape == (2, 1, 28, 28)
    loss = margin_loss(lengths, torch.tensor([3, 7]))
    loss.backward()
    assert model.W.grad is not None and torch.isfinite(model.W.grad).all()


def test_rbm_cd_loss_moves_weights_and_dbn_pretrains_layerwise() -> None:
    torch.manual_seed(0)
    rbm = create_model("rbm", n_visible=20, n_hidden=8)
    v = (torch.rand(16, 20) > 0.5).float()
    assert rbm.free_energy(v).shape == (16,)
    rbm.cd_loss(v, k=2).backward()
    assert rbm.W.grad is not None and rbm.W.grad.abs().sum() > 0
    dbn = create_model("dbn", sizes=[20, 12, 6], num_classes=3)
    dbn.pretrain_loss(v, layer=1).backward()
    assert dbn.rbms[0].W.grad is None  # the lower layer is frozen while the upper one trains
    assert dbn.rbms[1].W.grad is not None
    assert dbn(v).shape == (16, 3)


def test_vgg_custom_block_list_from_yaml_like_values() -> None:
    model = create_model("vgg", arch=[[1, 8], [2, 16]], hidden=32, pool=1, image_size=28)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 16]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="model.depht"):
        create_model("vit_tiny", depht=3)
    with pytest.raises(ConfigError, match="model.block"):
        create_model("resnet", block="tripleneck")


def test_example_input_for_models_without_the_method() -> None:
    for name, shape in [
        ("mlp", (3, 784)),
        ("lenet5", (3, 1, 28, 28)),
        ("resnet_small", (3, 1, 28, 28)),
    ]:
        model = create_model(name)
        (x,) = example_input(model, 3, name=name)
        assert x.shape == shape and model(x).shape == (3, 10)
    with pytest.raises(TypeError, match="example_input"):
        example_input(torch.nn.Linear(2, 2))
