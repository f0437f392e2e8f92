"""trainlab against PyTorch Lightning, Keras 3 (torch backend) and fastai: the same training.

The model, its initial weights, the optimizer (with its parameter groups), the LR schedule,
batch size, loss (label smoothing), precision and epochs all come from the recipe (default:
``recipes/fashion_mnist.yaml``) through trainlab's own builders, so the script follows the
recipe when it changes. Each peer then trains with its idiomatic data path and loop:

- ``trainlab``: ``Trainer.fit`` on the in-memory source (batched augmentation);
- ``lightning``: a ``LightningModule`` + ``Trainer`` over a torch ``DataLoader`` whose dataset
  applies torchvision v2 ``RandomCrop(padding=t)``/``RandomHorizontalFlip`` per sample;
  ``precision="bf16-mixed"``; the schedule returned from ``configure_optimizers`` (per step);
- ``keras``: ``keras.Model`` around the torch module (``keras.layers.TorchModuleWrapper``),
  ``RandomFlip``/``RandomTranslation`` layers, NumPy arrays into ``fit``, Keras's ``SGD`` with
  the recipe's LR per step as a ``LearningRateSchedule`` (momentum fixed, decoupled weight
  decay: Keras has no coupled L2 for wrapped torch weights); bf16 by ``torch.autocast`` inside
  the wrapped module (Keras's ``mixed_bfloat16`` policy does not reach a torch module);
- ``fastai``: ``Learner`` over ``DataLoaders.from_dsets`` (the same per-sample dataset as
  Lightning), the recipe's torch optimizer in ``OptimWrapper``, its scheduler stepped by a
  callback; bf16 by an autocast callback (fastai's ``MixedPrecision`` autocasts CUDA only).

Every framework's own validation is off; after each epoch one shared function scores the
validation split the way the recipe does (flip TTA when ``task.tta: flip``), off the clock.
Reported per framework: training seconds per epoch (median), time to the target validation
accuracy (the lowest final validation accuracy among them, so that all reach it) and final test
accuracy; ``bench peer_speedup_<peer>`` is the peer's time to the target over trainlab's.

    .venv/bin/python bench/peers.py [recipe] [--epochs N] [--subset N] [--peers lightning,keras]

A peer that cannot be imported is skipped with a line saying so (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import RECIPE  # noqa: E402
from torch import nn  # noqa: E402

from trainlab import load_config  # noqa: E402
from trainlab.experiment import build_experiment  # noqa: E402
from trainlab.models.registry import create_model  # noqa: E402
from trainlab.optim import build_optimizer, build_scheduler  # noqa: E402
from trainlab.optim.schedulers import ScheduleContext  # noqa: E402

PEERS = ("lightning", "keras", "fastai")


@dataclass
class Result:
    """One framework's run: training seconds and validation accuracy after each epoch."""

    name: str
    epoch_s: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_acc: float = float("nan")
    note: str = ""

    def time_to(self, target: float) -> float | None:
        total = 0.0
        for s, acc in zip(self.epoch_s, self.val_acc, strict=True):
            total += s
            if acc >= target:
                return total
        return None


@dataclass
class Setup:
    """What every framework shares: the recipe's pieces, built by trainlab."""

    exp: Any
    init: dict[str, torch.Tensor]  # the initial weights
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # uint8 images, labels (CPU)
    mean: list[float]
    std: list[float]
    flip: bool
    translate: int
    tta: bool
    bf16: bool
    channels_last: bool
    epochs: int
    steps: int  # optimizer steps per epoch (trainlab's, drop_last)
    batch: int
    smoothing: float
    workers: int

    @property
    def device(self) -> torch.device:
        return self.exp.trainer.device

    def model(self) -> nn.Module:
        """A fresh copy of the recipe's model with the shared initial weights."""
        m = create_model(self.exp.cfg.model.name, **self.exp.model_options)
        m.load_state_dict(self.init)
        m = m.to(self.device)
        return m.to(memory_format=torch.channels_last) if self.channels_last else m

    def optimizer(self, model: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
        """The recipe's optimizer (parameter groups included) and per-step scheduler."""
        cfg = self.exp.cfg
        opt = build_optimizer(
            model,
            cfg.optim.name,
            cfg.optim.options(),
            cfg.optim.decay_norm_and_bias,
            cfg.optim.lr_mult,
        )
        if cfg.sched is None:
            return opt, None
        ctx = ScheduleContext(self.epochs, self.steps)
        s = cfg.sched
        sched = build_scheduler(
            opt, s.name, s.options(), ctx, s.warmup_epochs, s.warmup_start_factor
        )
        if sched.interval != "step":
            raise SystemExit(f"sched {s.name}: only per-step schedules are mirrored here")
        return opt, sched.scheduler

    def lr_table(self) -> list[float]:
        """The LR of parameter group 0 at every optimizer step (for Keras)."""
        opt, sched = self.optimizer(self.model())
        lrs = []
        for _ in range(self.epochs * self.steps):
            lrs.append(opt.param_groups[0]["lr"])
            if sched is not None:
                opt.step()  # no gradients: a no-op that keeps torch's step-order check quiet
                sched.step()
        return lrs

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


def build_setup(recipe: str, overrides: list[str], epochs: int | None) -> Setup:
    if epochs is not None:
        overrides = [*overrides, f"train.epochs={epochs}"]
    cfg = load_config(recipe, [*overrides, "train.tensorboard=false", "train.report=false"])
    cfg = cfg.model_copy(update={"callbacks": []})  # same epochs for all: no early stopping
    exp = build_experiment(cfg)
    data = exp.data
    aug = getattr(data, "augment", None)
    from trainlab.data.folder_loader import worker_budget

    if aug is not None and aug.cutout:
        print(f"note: data.augment.cutout={aug.cutout} is not mirrored in the peers' pipelines")

    return Setup(
        exp=exp,
        init=copy.deepcopy(exp.model.state_dict()),
        splits={k: (x.cpu(), y.cpu()) for k, (x, y) in data.splits.items()},
        mean=list(data.mean),
        std=list(data.std),
        flip=bool(aug and aug.flip),
        translate=int(aug.translate if aug else 0),
        tta=getattr(exp.task, "tta", None) == "flip",
        bf16=exp.trainer.precision == "bf16",
        channels_last=exp.trainer.channels_last,
        epochs=cfg.train.epochs,
        steps=len(data.loader("train")),
        batch=data.batch_size,
        smoothing=float(cfg.task.options().get("label_smoothing", 0.0)),
        workers=worker_budget(2),
    )


@torch.inference_mode()
def score(setup: Setup, model: nn.Module, split: str) -> float:
    """Accuracy on ``split`` as the recipe evaluates (flip TTA averages the probabilities)."""
    x_all, y_all = setup.splits[split]
    mean = torch.tensor(setup.mean).view(1, -1, 1, 1)
    inv = 1 / torch.tensor(setup.std).view(1, -1, 1, 1)
    was = model.training
    model.eval()
    hits = 0
    for i in range(0, len(x_all), 1000):
        x = ((x_all[i : i + 1000].float() - mean) * inv).to(setup.device)
        with setup.autocast():
            p = model(x).float().softmax(-1)
            if setup.tta:
                p = (p + model(x.flip(-1)).float().softmax(-1)) / 2
        hits += int((p.argmax(-1).cpu() == y_all[i : i + 1000]).sum())
    model.train(was)
    return hits / len(x_all)


class EpochClock:
    """Training seconds per epoch and the shared validation score after it (off the clock)."""

    def __init__(self, setup: Setup, result: Result) -> None:
        self.setup, self.result, self.t0 = setup, result, 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def stop(self, model: nn.Module) -> None:
        self.result.epoch_s.append(time.perf_counter() - self.t0)
        self.result.val_acc.append(score(self.setup, model, "val"))
        print(
            f"  {self.result.name} epoch {len(self.result.epoch_s)}: "
            f"{self.result.epoch_s[-1]:.1f} s, val {self.result.val_acc[-1]:.4f}",
            flush=True,
        )


def run_trainlab(setup: Setup) -> Result:
    res, exp = Result("trainlab"), setup.exp
    clock = EpochClock(setup, res)

    scored: list[nn.Module] = [exp.model]

    class Probe:  # on_batch_end of the epoch's last step: training done, validation next
        def on_epoch_start(self, state: Any) -> None:
            clock.start()

        def on_batch_end(self, state: Any) -> None:
            if state.batch >= state.steps_per_epoch:
                # What trainlab evaluates: the weight average when the recipe keeps one.
                scored[0] = state.ema.module if state.ema is not None else state.model
                clock.stop(scored[0])

    if exp.cfg.train.ema_decay:
        res.note = "EMA of the weights (the peers here train without one)"
    exp.trainer.callbacks = [*exp.trainer.callbacks, Probe()]
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    res.test_acc = score(setup, scored[0], "test")
    return res


class AugmentedImages(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """uint8 (N, C, H, W) → per-sample torchvision v2 flip + padded crop → normalised float."""

    def __init__(self, setup: Setup, split: str, train: bool) -> None:
        from torchvision.transforms import v2

        self.x, self.y = setup.splits[split]
        steps: list[Any] = []
        if train and setup.translate:
            steps.append(v2.RandomCrop(self.x.shape[-1], padding=setup.translate))
        if train and setup.flip:
            steps.append(v2.RandomHorizontalFlip())
        steps += [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([m / 255 for m in setup.mean], [s / 255 for s in setup.std]),
        ]
        self.tf = v2.Compose(steps)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tf(self.x[i]), self.y[i]


def _loader_kw(setup: Setup) -> dict[str, Any]:
    w = setup.workers
    return {
        "num_workers": w,
        "persistent_workers": w > 0,
        "pin_memory": setup.device.type == "cuda",
    }


def run_lightning(setup: Setup) -> Result:
    import lightning as L

    res = Result("lightning", note="bf16-mixed" if setup.bf16 else "32-true")
    clock = EpochClock(setup, res)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = setup.model()

        def training_step(self, batch: Any, _: int) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(self.net(x), y, label_smoothing=setup.smoothing)

        def configure_optimizers(self) -> Any:
            opt, sched = setup.optimizer(self.net)
            if sched is None:
                return opt
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    class Clock(L.Callback):
        def on_train_epoch_start(self, *_: Any) -> None:
            clock.start()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            clock.stop(module.net)

    dl = torch.utils.data.DataLoader(
        AugmentedImages(setup, "train", True),
        batch_size=setup.batch,
        shuffle=True,
        drop_last=True,
        **_loader_kw(setup),
    )
    module = Module()
    trainer = L.Trainer(
        max_epochs=setup.epochs,
        accelerator="gpu" if setup.device.type == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if setup.bf16 else "32-true",
        callbacks=[Clock()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=dl)
    res.test_acc = score(setup, module.net, "test")
    return res


class Autocast(nn.Module):
    """The model's forward under bf16 autocast, logits back in fp32 (for Keras)."""

    def __init__(self, net: nn.Module, setup: Setup) -> None:
        super().__init__()
        self.net, self.setup = net, setup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.setup.autocast():
            return self.net(x.contiguous()).float()


def run_keras(setup: Setup) -> Result:
    import keras

    res = Result("keras", note="bf16 autocast inside the wrapper; decoupled weight decay")
    clock = EpochClock(setup, res)
    net = setup.model()
    table = keras.ops.convert_to_tensor(setup.lr_table(), dtype="float32")

    class Table(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> Any:
            return keras.ops.take(table, keras.ops.minimum(step, len(table) - 1))

    x, y = setup.splits["train"]
    _, c, h, w = x.shape
    k = int(setup.exp.data.num_classes)
    fill = [-m / s for m, s in zip(setup.mean, setup.std, strict=True)]  # a zero pixel, normalised
    inp = keras.Input((h, w, c))
    z = keras.layers.RandomFlip("horizontal")(inp) if setup.flip else inp
    if setup.translate:
        z = keras.layers.RandomTranslation(
            setup.translate / h,
            setup.translate / w,
            fill_mode="constant",
            fill_value=fill[0],
            interpolation="nearest",
        )(z)
    z = keras.layers.Permute((3, 1, 2))(z)  # NHWC (Keras's layers) → NCHW (the torch module)
    model = keras.Model(
        inp, keras.layers.TorchModuleWrapper(Autocast(net, setup), output_shape=(None, k))(z)
    )
    opt_cfg = setup.exp.cfg.optim.options()
    model.compile(
        optimizer=keras.optimizers.SGD(
            Table(),
            momentum=float(opt_cfg.get("momentum", 0.0)),
            nesterov=bool(opt_cfg.get("nesterov", False)),
            weight_decay=opt_cfg.get("weight_decay") or None,
        ),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=setup.smoothing
        ),
    )

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, *_: Any) -> None:
            clock.start()

        def on_epoch_end(self, *_: Any) -> None:
            clock.stop(net)

    xs = (
        (
            (x.float() - torch.tensor(setup.mean).view(1, -1, 1, 1))
            / torch.tensor(setup.std).view(1, -1, 1, 1)
        )
        .permute(0, 2, 3, 1)
        .numpy()
    )
    ys = F.one_hot(y, k).float().numpy()
    model.fit(
        xs,
        ys,
        batch_size=setup.batch,
        epochs=setup.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[Clock()],
    )
    res.test_acc = score(setup, net, "test")
    return res


def run_fastai(setup: Setup) -> Result:
    import fastai.callback.progress  # noqa: F401  (adds Learner.no_bar)
    from fastai.callback.core import Callback, CancelValidException
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper

    res = Result("fastai", note="bf16 via an autocast callback" if setup.bf16 else "")
    clock = EpochClock(setup, res)
    net = setup.model()
    opt, sched = setup.optimizer(net)
    lrs = [g["lr"] for g in opt.param_groups]

    class Recipe(Callback):  # the recipe's schedule and precision, and timing
        order = 10

        def before_fit(self) -> None:  # Learner.fit set one LR for all groups: undo that
            for g, lr in zip(opt.param_groups, lrs, strict=True):
                g["lr"] = lr

        def before_epoch(self) -> None:
            clock.start()

        def before_batch(self) -> None:
            self.cast = setup.autocast()
            self.cast.__enter__()

        def after_loss(self) -> None:
            self.cast.__exit__(None, None, None)

        def after_step(self) -> None:
            if sched is not None:
                sched.step()

        def after_train(self) -> None:
            clock.stop(net)

        def before_validate(self) -> None:
            raise CancelValidException  # validation is scored by the shared function

    kw = {**_loader_kw(setup), "device": setup.device}
    dls = DataLoaders.from_dsets(
        AugmentedImages(setup, "train", True),
        AugmentedImages(setup, "val", False),
        bs=setup.batch,
        **kw,
    )
    learn = Learner(
        dls,
        net,
        loss_func=nn.CrossEntropyLoss(label_smoothing=setup.smoothing),
        opt_func=lambda *_, **__: OptimWrapper(opt=opt),
        cbs=[Recipe()],
    )
    with learn.no_bar(), learn.no_logging():
        learn.fit(setup.epochs)
    res.test_acc = score(setup, net, "test")
    return res


RUNNERS: dict[str, Callable[[Setup], Result]] = {
    "lightning": run_lightning,
    "keras": run_keras,
    "fastai": run_fastai,
}


def report(results: list[Result]) -> None:
    base = results[0]
    target = min(r.val_acc[-1] for r in results)
    print(f"\ntarget validation accuracy (lowest final among them): {target:.4f}")
    print(
        f"{'framework':10s} {'s/epoch':>8s} {'to target s':>12s} {'final val':>10s} "
        f"{'test acc':>9s}  note"
    )
    t_base = base.time_to(target)
    for r in results:
        t = r.time_to(target)
        print(
            f"{r.name:10s} {statistics.median(r.epoch_s):8.1f} "
            f"{t if t is not None else float('nan'):12.1f} {r.val_acc[-1]:10.4f} "
            f"{r.test_acc:9.4f}  {r.note}"
        )
    for r in results:
        print(f"bench peer_s_per_epoch_{r.name} {statistics.median(r.epoch_s):.2f} s")
        print(f"bench peer_test_acc_{r.name} {r.test_acc:.4f} frac")
    for r in results[1:]:
        t = r.time_to(target)
        if t is not None and t_base:
            print(f"bench peer_speedup_{r.name} {t / t_base:.2f} x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default=str(RECIPE))
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    ap.add_argument(
        "--subset",
        type=int,
        default=None,
        help="train on a stratified subset of N images, test on the first N",
    )
    ap.add_argument("--peers", default=",".join(PEERS))
    args = ap.parse_args()
    sub = args.subset
    overrides = [f"data.subset={sub}", f"data.test_subset={sub}"] if sub else []
    setup = build_setup(args.recipe, overrides, args.epochs)  # initial weights copied here
    print(
        f"{setup.exp.cfg.model.name}, {setup.epochs} epochs of {setup.steps} steps × "
        f"{setup.batch}, bf16 {setup.bf16}, channels_last {setup.channels_last}, "
        f"device {setup.device}, torch threads {torch.get_num_threads()}, "
        f"loader workers {setup.workers}"
    )
    results = [run_trainlab(setup)]
    names = [n for n in args.peers.split(",") if n]
    if set(names) - set(PEERS):
        raise SystemExit(f"--peers: choose from {', '.join(PEERS)}")
    for name in names:
        try:
            __import__(name)
        except ImportError as e:
            print(f"skip {name}: cannot import it ({e}); pip install -e '.[bench]'")
            continue
        torch.manual_seed(0)  # the peers' own shuffling and augmentation draws
        results.append(RUNNERS[name](setup))
    report(results)


if __name__ == "__main__":
    main()
