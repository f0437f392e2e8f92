"""contrastive_divergence and dbn: the CD-k gradient by hand; an RBM learns to reconstruct; a DBN
pre-trains layer by layer, then fine-tunes to a good classifier; resume keeps the phase."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from safetensors.torch import load_file
from task_support import untrained_eval

from trainlab.errors import ConfigError
from trainlab.experiment import build_data
from trainlab.models import create_model
from trainlab.run import train_run
from trainlab.tasks.common import to_unit_range
from trainlab.tasks.contrastive_divergence import CDTask, DBNTask
from trainlab.train.checkpoint import resolve_checkpoint

RBM = """
name: rbm
seed: 0
data: {name: digits, batch_size: 32}
model: {name: rbm, n_visible: 64, n_hidden: 64}
task: {name: contrastive_divergence, k: 1}
optim: {name: sgd, lr: 0.1, momentum: 0.5}
train: {epochs: 10, log_every: 10, precision: fp32, monitor: val/recon, monitor_mode: min,
        tensorboard: false, report: false}
"""

# digits, batch 16: 78 training batches per epoch → RBM 0 for epochs 1-2, RBM 1 for 3-4,
# fine-tuning for 5-12.
DBN = """
name: dbn
seed: 0
data: {name: digits, batch_size: 16}
model: {name: dbn, sizes: [64, 64, 32]}
task: {name: dbn, pretrain_batches: [156, 156], k: 1}
optim: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: 12, log_every: 20, precision: fp32, tensorboard: false, report: false}
"""


def test_free_energy_matches_brute_force_sum_over_hidden_states() -> None:
    torch.manual_seed(0)
    rbm = create_model("rbm", n_visible=3, n_hidden=2)
    rbm.requires_grad_(False)
    for p in rbm.parameters():
        p.normal_()
    v = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    for i in range(2):
        # F(v) = −log Σ_h exp(−E(v, h)), E(v, h) = −vᵀb_v − hᵀb_h − hᵀWv
        terms = []
        for bits in itertools.product([0.0, 1.0], repeat=2):
            h = torch.tensor(bits)
            terms.append(float(v[i] @ rbm.b_v + h @ rbm.b_h + h @ rbm.W @ v[i]))
        expected = -math.log(sum(math.exp(t) for t in terms))
        assert rbm.free_energy(v[i : i + 1]).item() == pytest.approx(expected, rel=1e-5)


def test_cd_loss_gradient_is_the_contrastive_divergence_update() -> None:
    torch.manual_seed(0)
    rbm = create_model("rbm", n_visible=6, n_hidden=3)
    v0 = torch.bernoulli(torch.full((5, 6), 0.5))
    torch.manual_seed(1)
    out = CDTask(k=2, rescale=False).train_step(rbm, (v0, torch.zeros(5)))
    out.loss.backward()
    torch.manual_seed(1)
    vk = rbm.gibbs(v0, 2)  # the same chain the task ran
    h0, hk = rbm.hidden_prob(v0).detach(), rbm.hidden_prob(vk).detach()
    # −(data statistics − model statistics), averaged over the batch: descending this gradient
    # raises p(data) and lowers p(chain samples).
    assert torch.allclose(rbm.W.grad, -(h0.T @ v0 - hk.T @ vk) / 5, atol=1e-6)
    assert torch.allclose(rbm.b_v.grad, -(v0 - vk).mean(0), atol=1e-6)
    assert torch.allclose(rbm.b_h.grad, -(h0 - hk).mean(0), atol=1e-6)
    f = rbm.free_energy
    assert out.loss.item() == pytest.approx((f(v0).mean() - f(vk).mean()).item(), abs=1e-6)
    torch.manual_seed(1)
    assert out.loss.item() == pytest.approx(rbm.cd_loss(v0, 2).item(), abs=1e-6)  # the model's


def test_a_cd_step_lowers_the_free_energy_of_the_data_relative_to_the_chain() -> None:
    torch.manual_seed(0)
    rbm = create_model("rbm", n_visible=16, n_hidden=8)
    v = torch.bernoulli(torch.full((32, 16), 0.2))
    v[:, :4] = 1.0  # a pattern the data always has and the untrained model does not
    flipped = v.clone()
    flipped[:, :4] = 0.0  # the same vectors without the pattern
    gap_before = (rbm.free_energy(v) - rbm.free_energy(flipped)).mean().item()  # ≈ 0
    opt = torch.optim.SGD(rbm.parameters(), lr=0.1)
    for _ in range(30):
        opt.zero_grad()
        CDTask(rescale=False).train_step(rbm, (v, torch.zeros(32))).loss.backward()
        opt.step()
    # Lower free energy = higher probability: the model now prefers the data's pattern.
    gap_after = (rbm.free_energy(v) - rbm.free_energy(flipped)).mean().item()
    assert abs(gap_before) < 0.1 and gap_after < -2.0, (gap_before, gap_after)


def test_rbm_reconstruction_error_falls_below_the_mean_image(run_recipe) -> None:
    before = untrained_eval(RBM)["val/recon"]  # p(v | h) ≈ 0.5 everywhere: ≈ 0.2
    summary, _ = run_recipe(RBM)
    data = build_data("digits")
    data.setup(torch.device("cpu"))
    train = torch.cat([to_unit_range(x) for x, _ in data.loader("train").iter_epoch(0)])
    test = torch.cat([to_unit_range(x) for x, _ in data.loader("test").iter_epoch(0)])
    mean_image = float((train.mean(0) - test).pow(2).mean())  # ≈ 0.07
    after = summary["test"]["test/recon"]
    assert after < 0.3 * before and after < 0.8 * mean_image, (before, after, mean_image)
    final = summary["final"]
    assert {"train/free_energy_epoch", "val/free_energy", "val/fe_gap", "val/loss"} <= final.keys()


def test_rbm_evaluation_is_deterministic_and_leaves_the_training_rng_alone() -> None:
    rbm = create_model("rbm", n_visible=16, n_hidden=4)
    task, batch = CDTask(k=3), (torch.rand(8, 16), torch.zeros(8))
    state = torch.get_rng_state()
    a, b = task.eval_step(rbm, batch), task.eval_step(rbm, batch)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.preds, b.preds)


def test_free_energy_gap_compares_validation_with_the_first_training_vectors() -> None:
    rbm = create_model("rbm", n_visible=16, n_hidden=4)
    task = CDTask(rescale=False, reference_size=5)
    batches = [torch.rand(3, 16) for _ in range(3)]
    for v in batches:
        task.train_step(rbm, (v, torch.zeros(3)))
    assert torch.equal(task.reference, torch.cat(batches)[:5])  # the first five, then no more
    val = torch.rand(4, 16)
    with torch.no_grad():
        out = task.eval_step(rbm, (val, torch.zeros(4)))
        expected = rbm.free_energy(val).mean() - rbm.free_energy(task.reference).mean()
    assert out.extras["fe_gap"].item() == pytest.approx(expected.item(), rel=1e-5)
    fresh = CDTask(rescale=False, reference_size=5)
    fresh.load_state_dict(task.state_dict())  # a resumed run keeps comparing with the same set
    assert torch.equal(fresh.reference, task.reference)


def test_dbn_schedule_trains_one_layer_at_a_time_then_the_whole_stack() -> None:
    model = create_model("dbn", sizes=[16, 8, 4], num_classes=3)
    task = DBNTask(pretrain_batches=[2, 1], k=1)
    task.setup(model, torch.device("cpu"))
    x, y = torch.rand(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    trained = []
    for _ in range(4):
        model.zero_grad(set_to_none=True)
        out = task.train_step(model, (x, y))
        out.loss.backward()
        grads = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.grad is not None}
        trained.append(grads)  # "rbms.0", "rbms.1", "head"
        assert (out.preds is None) == (int(out.extras["phase"]) < 2)
    assert trained[:3] == [{"rbms.0"}, {"rbms.0"}, {"rbms.1"}]
    assert trained[3] == {"rbms.0", "rbms.1", "head"}  # fine-tuning: the whole stack
    assert task.state_dict() == {"batches_seen": 4}


def test_dbn_schedule_must_name_every_rbm() -> None:
    model = create_model("dbn", sizes=[16, 8, 4], num_classes=3)
    with pytest.raises(ConfigError, match="one count per RBM"):
        DBNTask(pretrain_batches=[10]).setup(model, torch.device("cpu"))
    with pytest.raises(ConfigError, match="not a DBN"):
        DBNTask(pretrain_batches=[1]).setup(create_model("rbm", n_visible=4), torch.device("cpu"))


def test_dbn_pretrains_then_fine_tunes_to_a_good_classifier(run_recipe) -> None:
    summary, _ = run_recipe(DBN)
    history = summary["history"]
    assert [h["train/phase_epoch"] for h in history[:5]] == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert history[1]["val/recon"] < 0.5 * untrained_eval(DBN)["val/recon"]  # RBM 0 learned
    assert all(h["val/acc"] < 0.3 for h in history[:4])  # the head is untrained until then
    assert summary["final"]["val/acc"] > 0.85 and summary["test"]["test/acc"] > 0.8, summary


def test_dbn_resume_mid_pretraining_equals_uninterrupted_run(tmp_path) -> None:
    recipe = tmp_path / "dbn.yaml"
    recipe.write_text(DBN)
    short = ["train.epochs=4", "task.pretrain_batches=[78,78]"]  # fine-tuning from epoch 3
    full = train_run(recipe, short, run_dir=tmp_path / "full", progress=False)
    part = tmp_path / "part"
    train_run(recipe, [*short, "train.max_steps=100"], run_dir=part, progress=False)
    payload = torch.load(resolve_checkpoint(part) / "state.pt", weights_only=True)
    assert payload["task"] == {"batches_seen": 100}  # stopped while RBM 1 trains
    resumed = train_run(None, ["train.max_steps=null"], resume=part, progress=False)
    assert resumed["steps"] == full["steps"] == 4 * 78
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(part) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
