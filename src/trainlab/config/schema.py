"""The recipe schema: pydantic models with unknown keys forbidden.

Sections that pick an entry from a registry (``data``, ``model``, ``task``, ``optim``, ``sched``,
``callbacks``) name it with ``name:``; their other keys are the entry's own options, checked
against its signature by :func:`trainlab.config.resolve.resolve`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Config",
    "RegistrySection",
    "OptimSection",
    "SchedSection",
    "TrainSection",
]


class RegistrySection(BaseModel):
    """``{name: <registry key>, <option>: <value>, ...}``."""

    model_config = ConfigDict(extra="allow")

    name: str

    def options(self) -> dict[str, Any]:
        """The entry's options: every key except the section's own fields."""
        return dict(self.model_extra or {})


class ModelSection(RegistrySection):
    # Weight initialisation (trainlab.models.init): default (PyTorch's), xavier_uniform,
    # xavier_normal, kaiming_uniform, kaiming_normal, kaiming_*_fan_out, orthogonal, normal.
    init: str = "default"
    init_std: float = Field(0.01, gt=0.0)  # standard deviation for init: normal
    # Transfer learning: a run directory (its best weights), a .safetensors or a .pth state
    # dict; tensors load by name and shape, a head of another shape stays freshly initialised.
    init_from: str | None = None
    # Name prefixes init_from leaves freshly initialised (["head."]: new classes, same count).
    init_skip: list[str] = []
    # Quantization-aware training (trainlab quantize --mode qat): train the model as a graph
    # with fake-quantised int8 weights and activations (needs train.precision: fp32).
    qat: bool = False


class OptimSection(RegistrySection):
    # Weight decay on norm weights and biases only shrinks scales and shifts that carry no
    # capacity to overfit; most modern recipes exclude them.
    decay_norm_and_bias: bool = False
    # Discriminative learning rates: parameter-name prefix → LR multiplier ({"features.": 0.1}).
    lr_mult: dict[str, float] = {}
    # Parameter-name prefixes to freeze (no gradients, not optimized): ["features."].
    freeze: list[str] = []


class SchedSection(RegistrySection):
    # Linear warm-up from warmup_start_factor × lr over this many epochs (fractions allowed),
    # in front of the named schedule.
    warmup_epochs: float = Field(0.0, ge=0.0)
    warmup_start_factor: float = Field(0.1, gt=0.0, le=1.0)


class SWASection(BaseModel):
    """Stochastic weight averaging (``train.swa``; ``true`` takes these defaults)."""

    model_config = ConfigDict(extra="forbid")

    # Epochs trained before averaging starts; a number below 1 is a fraction of train.epochs.
    start: float = Field(0.75, ge=0.0)
    lr: float | None = Field(None, gt=0.0)  # the SWA learning rate (default: the rate at start)
    anneal_epochs: float = Field(1.0, ge=0.0)  # epochs to anneal from the rate at start to lr
    anneal: Literal["cos", "linear"] = "cos"


class TrainSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto"] | bool = "auto"
    grad_clip: float | None = Field(None, gt=0.0)
    grad_clip_mode: Literal["norm", "value"] = "norm"
    log_every: int = Field(50, ge=1)  # optimizer steps between train/* log lines (host syncs)
    monitor: str = "val/acc"  # metric that picks the best checkpoint
    monitor_mode: Literal["max", "min"] = "max"
    checkpoint: bool = True
    checkpoint_every_steps: int | None = Field(None, ge=1)  # extra mid-epoch checkpoints
    keep_checkpoints: int = Field(2, ge=2)
    eval_test: bool = True  # evaluate the best checkpoint on the test split at the end
    threads: int | None = Field(None, ge=1)  # torch intra-op threads; default: the cores
    max_steps: int | None = Field(None, ge=1)  # stop early after this many steps (quick checks)
    accumulate: int = Field(1, ge=1)  # batches per optimizer step (gradient accumulation)
    # L1/L2 penalty terms added to the loss (coupled regularisation; see optim.weight_decay for
    # the decoupled kind), on weight tensors whose names start with penalty_on (all if empty).
    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    penalty_on: list[str] = []
    # EMA of the weights (e.g. 0.999): evaluated, selected and tested instead of the raw weights.
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    # Non-finite loss: "stop" ends the run naming the step (checked at log points, no per-step
    # sync); "skip" drops the batch (a host sync per batch); "rollback" continues from the last
    # good checkpoint with the learning rate × rollback_lr_factor, at most max_rollbacks times.
    nan_policy: Literal["stop", "skip", "rollback"] = "stop"
    rollback_lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    max_rollbacks: int = Field(3, ge=1)
    # Recompute activations in backward for models that support it (less memory, ~30 % slower).
    grad_checkpointing: bool = False
    deterministic: bool = False  # torch.use_deterministic_algorithms(True)
    tensorboard: bool = True  # event files in <run>/tb: scalars, histograms, graph, inputs
    hist_every: int = Field(100, ge=1)  # optimizer steps between weight/gradient histograms
    norms: bool = True  # per-layer weight and gradient L2 norms every hist_every steps
    # MLflow (pip install 'trainlab[mlflow]'): params, metrics, report and plots of the run, into
    # mlflow_uri (default: sqlite:///<runs folder>/mlflow.db, or $MLFLOW_TRACKING_URI) under the
    # experiment mlflow_experiment (default: the recipe's name).
    mlflow: bool = False
    mlflow_uri: str | None = None
    mlflow_experiment: str | None = None
    report: bool = True  # figures + report.html at the end of the run (~1 s)
    sync_batchnorm: bool = False  # under torchrun: batch statistics over all ranks (CUDA)
    # Evaluate a copy with each batch norm folded into the convolution before it and, on the
    # CPU, each convolution + ReLU/GELU run as one oneDNN kernel: the same function (bf16
    # rounds a few borderline predictions differently), faster evaluation.
    fold_batchnorm: bool = True
    # Fine-tuning: the tensors of optim.freeze train from this epoch on (after this many
    # finished epochs); a list gives one epoch per optim.freeze prefix, in the same order
    # (list the top layers first for gradual unfreezing from the top).
    unfreeze_at_epoch: int | list[int] | None = None
    # Batch-norm statistics frozen during fine-tuning: those layers stay in eval mode (stored
    # statistics used, not updated). true: the norms under optim.freeze's prefixes (for the
    # whole run, also once unfrozen), or every norm when nothing is frozen; a list: prefixes.
    freeze_bn: bool | list[str] = False
    # Stochastic weight averaging: {start: 0.75, lr: 0.01, anneal_epochs: 1}; the averaged
    # weights, with batch-norm statistics recomputed, are the run's result.
    swa: SWASection | None = None

    @field_validator("swa", mode="before")
    @classmethod
    def _swa_flag(cls, v: Any) -> Any:
        # train.swa=true takes the defaults; false is off.
        return {} if v is True else (None if v is False else v)


class Config(BaseModel):
    """A whole recipe. ``name`` names the run directory; ``seed`` seeds every RNG."""

    model_config = ConfigDict(extra="forbid")

    name: str = "run"
    seed: int = 0
    data: RegistrySection
    model: ModelSection
    task: RegistrySection = RegistrySection(name="classification")
    optim: OptimSection = OptimSection(name="sgd", lr=0.1, momentum=0.9)  # type: ignore[call-arg]
    sched: SchedSection | None = None
    train: TrainSection = TrainSection()
    callbacks: list[RegistrySection] = []
