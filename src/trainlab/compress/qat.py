"""Quantization-aware training with PyTorch 2's export-based flow (torchao's PT2E).

``model.qat: true`` makes :func:`trainlab.experiment.build_experiment` hand the loop a graph of
the model with fake-quantised int8 weights and activations (``prepare_qat_pt2e``, the x86
quantizer's QAT configuration): the forward pass rounds as int8 inference will, the backward pass
goes straight through the rounding, and training adapts the weights to it. ``trainlab quantize
--mode qat`` fine-tunes a run that way (an ordinary run, :func:`trainlab.run.train_run`) and
converts the result to a real int8 program.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from trainlab.compress.quantize import _drop_unused, _pt2e_modules, _quantized_in_graph
from trainlab.deploy.source import LoadedRun, load_run

__all__ = ["prepare_qat", "qat_finetune"]


def prepare_qat(model: nn.Module, input_shape: tuple[int, ...], precision: str) -> nn.Module:
    """``model.qat: true``: the model as a PT2E graph with fake-quantised int8 weights and
    activations (torchao's ``prepare_qat_pt2e``, x86 QAT config), trainable by the ordinary
    loop: ``.train()``/``.eval()`` switch its batch norms and observers like a module's."""
    from trainlab.errors import ConfigError

    if precision != "fp32":
        raise ConfigError("model.qat: quantization-aware training needs train.precision: fp32 "
                          f"(got {precision})")  # fmt: skip
    xiq, _, _ = _pt2e_modules()
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from trainlab.deploy.export import ExportError

    example = torch.zeros(2, *input_shape)
    dim = torch.export.Dim("batch", min=2, max=65536)
    try:
        graph = torch.export.export(model.train(), (example,), dynamic_shapes=({0: dim},),
                                    strict=False).module()  # fmt: skip
    except Exception as e:  # untraceable model: name it like export does
        from trainlab.deploy.export import _blame

        where, why = _blame(model.eval(), example)
        raise ExportError(f"model.qat: module '{where}' cannot be exported: {why or e}") from None
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_qat_pt2e(graph, quantizer)
    _observe_in_training_only(prepared)
    return prepared


def _observe_in_training_only(gm: nn.Module) -> None:
    """``.train()``/``.eval()`` for the exported graph: torchao's moves between training and
    inference batch norm / dropout, and observers that update activation ranges in training
    only (an evaluation must neither depend on nor change them). Bound per object, so that
    copies (EMA, batch-norm folding) switch themselves."""
    import types

    from torchao.quantization.pt2e import (
        disable_observer,
        enable_observer,
        move_exported_model_to_eval,
        move_exported_model_to_train,
    )

    def train(self: nn.Module, mode: bool = True) -> nn.Module:
        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self)
        self.apply(enable_observer if mode else disable_observer)
        return self

    gm.train = types.MethodType(train, gm)  # type: ignore[method-assign]
    gm.eval = types.MethodType(lambda self: self.train(False), gm)  # type: ignore[method-assign]


def qat_finetune(run: LoadedRun, odir: Path, epochs: int, lr_factor: float,
                 overrides: list[str]) -> tuple[nn.Module, list[str], list[str], Path]:  # fmt: skip
    """Fine-tune ``run`` for ``epochs`` with fake quantisation as an ordinary run in
    ``odir/qat-run``, then convert it: (int8 graph, quantized layers, left in float, run dir)."""
    from trainlab.compress.quantize import QuantizeError
    from trainlab.config.load import load_config
    from trainlab.run import train_run

    if epochs < 1:
        raise QuantizeError("--mode qat needs --finetune-epochs ≥ 1")
    lr = float(run.cfg.optim.options().get("lr", 0.1)) * lr_factor
    cfg = load_config(run.run_dir / "config.yaml", [
        f"model.init_from={run.run_dir.resolve()}", "model.qat=true", f"train.epochs={epochs}",
        "train.precision=fp32", f"optim.lr={lr}", "train.report=false", *overrides])  # fmt: skip
    rdir = odir / "qat-run"
    train_run(cfg, run_dir=rdir, progress=False)
    tuned = load_run(rdir)  # the trained fake-quantised graph, in eval mode
    _, _, convert_pt2e = _pt2e_modules()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_pt2e(tuned.model)
    _drop_unused(converted)
    done = _quantized_in_graph(converted)
    if not done:
        raise QuantizeError(f"{run.run_dir}: the x86 quantizer found no conv/linear layer")
    norm = nn.modules.batchnorm._BatchNorm
    handled = done | {n for n, m in run.model.named_modules() if isinstance(m, norm)}
    names = dict(run.model.named_modules())
    quantized = [f"{n} ({type(names[n]).__name__})" for n in sorted(done) if n in names]
    left = [f"{n} ({type(m).__name__})" for n, m in names.items()
            if n and n not in handled and list(m.parameters(recurse=False))]  # fmt: skip
    return converted, quantized, left, rdir
