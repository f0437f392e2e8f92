"""Gradient accumulation, the non-finite loss policies, deterministic mode."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from core_support import SYNTH
from trainlab import Trainer, build_data, create_model
from trainlab.cli.main import main
from trainlab.tasks.classification import ClassificationTask
from trainlab.train.checkpoint import resolve_checkpoint


def synthetic(batch_size: int, **kw):
    data = build_data("synthetic", num_classes=3, shape=[10], n_train=128, n_val=32, n_test=0,
                      batch_size=batch_size, noise=2.0, **kw)  # fmt: skip
    data.setup("cpu")
    return data


def fit(batch_size: int, accumulate: int, data=None, **trainer_kw) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("mlp", in_features=10, hidden=[16], num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(epochs=2, device="cpu", precision="fp32", accumulate=accumulate, **trainer_kw)
    state = trainer.fit(model, ClassificationTask(), data or synthetic(batch_size), opt)
    model.state = state  # type: ignore[attr-defined]
    return model


def test_accumulation_matches_the_larger_batch() -> None:
    # Same sample order: batches 2k and 2k+1 of 32 are batch k of 64.
    big = fit(64, 1)
    acc = fit(32, 2)
    assert acc.state.step == big.state.step == 4
    for a, b in zip(acc.parameters(), big.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    plain = fit(32, 1)  # and differs from not accumulating
    assert not torch.allclose(plain.net[-1].weight, big.net[-1].weight, atol=1e-4)


def test_skip_policy_drops_non_finite_batches() -> None:
    data = synthetic(32)
    x, y = data.splits["train"]
    x[5, 0] = float("nan")  # one poisoned sample: its batch's loss is NaN, once per epoch
    model = fit(32, 1, data=data, nan_policy="skip")
    assert model.state.skipped == 2 and model.state.step == 6  # 4 batches per epoch, 1 dropped
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stop_policy_names_the_step_and_keeps_good_checkpoints(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = ["train", str(recipe(SYNTH)), "--run-dir", str(run), "--no-progress",
            "train.epochs=4", "optim.lr=1.0e+30", "train.log_every=1"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: error: non-finite loss in step")  # "step 2" / "steps 2-3"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"].startswith("non-finite loss")
    ckpt_dir = run / "checkpoints"
    if ckpt_dir.exists():  # any checkpoint that exists holds finite weights
        weights = load_file(str(resolve_checkpoint(run) / "model.safetensors"))
        assert all(torch.isfinite(v).all() for v in weights.values())


def test_rollback_policy_returns_to_the_last_good_checkpoint_with_a_lower_lr(
    recipe, tmp_path, capsys
) -> None:
    run = tmp_path / "run"
    # lr 1e10 diverges within the first epoch; rolled back to the start (step-0 checkpoint)
    # with lr × 1e-11 = 0.1, training then succeeds.
    args = ["train", str(recipe(SYNTH)), "--run-dir", str(run), "--no-progress",
            "optim.lr=1.0e+10", "train.log_every=1", "train.nan_policy=rollback",
            "train.rollback_lr_factor=1.0e-11"]  # fmt: skip
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "rolled back to step 0, learning rate × 1e-11 (rollback 1 of 3)" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["rollbacks"] == 1 and summary["stop_reason"] is None
    assert summary["final"]["val/acc"] > 0.5  # chance: 0.33
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert losses and all(x == x and abs(x) < 1e3 for x in losses)  # diverged steps dropped
    payload = torch.load(resolve_checkpoint(run) / "state.pt", weights_only=True)
    assert payload["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.1)


def test_rollback_gives_up_after_max_rollbacks(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = ["train", str(recipe(SYNTH)), "--run-dir", str(run), "--no-progress",
            "optim.lr=1.0e+10", "train.log_every=1", "train.nan_policy=rollback",
            "train.max_rollbacks=2"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "gave up after 2 rollbacks" in err
    weights = load_file(str(resolve_checkpoint(run) / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())  # the start point survives


def test_rollback_needs_checkpoints(recipe, tmp_path, capsys) -> None:
    args = ["train", str(recipe(SYNTH)), "--run-dir", str(tmp_path / "r"), "--no-progress",
            "train.nan_policy=rollback", "train.checkpoint=false"]  # fmt: skip
    assert main(args) == 2
    assert "rollback needs checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("sched", [
    {"name": "onecycle"}, {"name": "cosine", "warmup_epochs": 1},
    {"name": "cyclic", "base_lr": 0.01, "max_lr": 0.1}, {"name": "step", "step_size": 1},
])  # fmt: skip
def test_scale_lr_scales_the_rest_of_the_schedule(sched: dict) -> None:
    from trainlab.optim import build_scheduler
    from trainlab.optim.schedulers import ScheduleContext, scale_lr

    lrs = []
    for factor in (1.0, 0.25):
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        opts = {k: v for k, v in sched.items() if k not in ("name", "warmup_epochs")}
        s = build_scheduler(opt, sched["name"], opts, ScheduleContext(4, 10),
                            sched.get("warmup_epochs", 0.0))  # fmt: skip
        for _ in range(7):
            opt.step(), s.scheduler.step()
        scale_lr(opt, s, factor)
        seen = []
        for _ in range(20):
            opt.step(), s.scheduler.step()
            seen.append(opt.param_groups[0]["lr"])
        lrs.append(seen)
    for full, scaled in zip(*lrs):
        assert scaled == pytest.approx(0.25 * full, rel=1e-6)


def test_deterministic_mode_runs(recipe, tmp_path) -> None:
    try:
        code = main(["train", str(recipe(SYNTH)), "--run-dir", str(tmp_path / "r"),
                     "--no-progress", "train.deterministic=true"])  # fmt: skip
        assert code == 0
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_param_groups_no_decay_lr_mult_and_freeze() -> None:
    from trainlab import ConfigError, build_optimizer
    from trainlab.optim.optimizers import freeze

    model = create_model("lenet5", conv_bn=True)
    opt = build_optimizer(model, "sgd", {"lr": 0.1, "weight_decay": 0.01},
                          lr_mult={"features.": 0.1})  # fmt: skip
    by_id = {id(p): g for g in opt.param_groups for p in g["params"]}
    conv_w, bn_w = model.features[0].weight, model.features[1].weight
    fc_w, fc_b = model.classifier[1].weight, model.classifier[1].bias
    assert (
        by_id[id(conv_w)]["lr"] == pytest.approx(0.01) and by_id[id(conv_w)]["weight_decay"] == 0.01
    )
    assert by_id[id(bn_w)]["lr"] == pytest.approx(0.01) and by_id[id(bn_w)]["weight_decay"] == 0.0
    assert by_id[id(fc_w)]["lr"] == 0.1 and by_id[id(fc_b)]["weight_decay"] == 0.0
    assert freeze(model, ["features."]) == 8  # 2 convs + 2 norms, weight and bias
    opt = build_optimizer(model, "adam", {"lr": 1e-3})
    assert id(conv_w) not in {id(p) for g in opt.param_groups for p in g["params"]}
    with pytest.raises(ConfigError, match="optim.freeze: no parameter name starts with 'feat.'"):
        freeze(model, ["feat."])


def test_l2_penalty_equals_coupled_weight_decay() -> None:
    # λ·Σw² adds 2λ·w to each weight's gradient: SGD's (coupled) weight_decay=2λ on the same
    # weights, biases excluded in both.
    from trainlab import build_optimizer

    data = synthetic(32)
    runs = []
    for l2, wd in ((0.05, 0.0), (0.0, 0.1)):
        torch.manual_seed(0)
        model = create_model("mlp", in_features=10, hidden=[16], num_classes=3)
        opt = build_optimizer(model, "sgd", {"lr": 0.1, "weight_decay": wd})
        Trainer(epochs=2, device="cpu", precision="fp32", l2=l2).fit(
            model, ClassificationTask(), data, opt
        )
        runs.append(model)
    for a, b in zip(runs[0].parameters(), runs[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_l1_penalty_is_logged_and_shrinks_weights() -> None:
    data = synthetic(32)
    plain = fit(32, 1, data=data)
    sparse = fit(32, 1, data=data, l1=0.01, penalty_on=["net.1."])
    assert sparse.state.metrics["train/penalty_epoch"] > 0
    assert sparse.net[1].weight.abs().sum() < plain.net[1].weight.abs().sum()


@pytest.mark.parametrize("opts", [{"mixup_alpha": 0.4}, {"cutmix_alpha": 1.0},
                                  {"mixup_alpha": 0.2, "cutmix_alpha": 1.0}])  # fmt: skip
def test_mixup_cutmix_train_and_are_seeded(opts: dict) -> None:
    data = build_data("synthetic", num_classes=3, shape=[1, 8, 8], n_train=96, n_val=48,
                      n_test=0, batch_size=32, noise=1.0)  # fmt: skip
    data.setup("cpu")
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = create_model("lenet5", image_size=8 * 2, num_classes=3)
        model = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), model)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        state = Trainer(epochs=3, device="cpu", precision="fp32").fit(
            model, ClassificationTask(**opts), data, opt
        )
        weights.append(model[1].classifier[-1].weight.detach().clone())
    assert torch.equal(weights[0], weights[1])  # mixing draws follow the seed
    assert state.metrics["val/acc"] > 0.5  # still learns (chance: 0.33)


def test_cutmix_needs_images() -> None:
    from trainlab import ConfigError

    task = ClassificationTask(cutmix_alpha=1.0)
    with pytest.raises(ConfigError, match="CutMix needs image batches"):
        task.train_step(
            torch.nn.Linear(4, 3), (torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
        )
