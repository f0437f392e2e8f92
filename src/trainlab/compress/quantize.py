"""``trainlab quantize RUN --mode dynamic|static|qat|onnx``: int8 models for the CPU, with a
table of accuracy, file size, latency and throughput against float32.

- ``dynamic``: weights of ``nn.Linear``/``nn.LSTM``/``nn.GRU``/``nn.RNN`` stored as int8,
  activations quantised on the fly per batch (``torch.ao.quantization.quantize_dynamic``, x86
  engine). No calibration. Saved as TorchScript (batches of one sample).
- ``static``: PyTorch 2's export-based flow as torchao ships it (``prepare_pt2e`` with the
  ``X86InductorQuantizer``, per-channel int8 weights, uint8 activations): the model is exported
  with ``torch.export``, observers are calibrated on training batches, ``convert_pt2e`` folds
  batch norm and inserts quantise/dequantise pairs. Speed comes from ``torch.compile``, whose
  inductor backend lowers those pairs to oneDNN int8 kernels; without compiling, the graph runs
  in float with simulated rounding (same accuracy, slower). Saved as a ``.pt2`` program.
- ``qat``: quantization-aware fine-tuning (:mod:`trainlab.compress.qat`): an ordinary run of
  the source recipe with ``model.qat: true`` started from the run's weights, then converted as
  ``static`` is.
- ``onnx``: static int8 in ONNX Runtime (:mod:`trainlab.compress.ort_int8`): the exported
  model with QDQ pairs calibrated on training batches (``quantize_static``); on this project's
  CPU the fastest int8 model, with no compiling.

Layers neither flow handles stay in float and are listed. The source run is only read; the
artefact and ``quantize.json`` go to a new folder, and ``trainlab predict`` takes the artefact.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.compress.measure import Row, accuracy, measure, print_table
from trainlab.deploy.source import LoadedRun, load_run, sample_inputs
from trainlab.errors import TrainlabError

__all__ = ["quantize_run", "QuantizeError", "MODES"]

MODES = ("dynamic", "static", "qat", "onnx")
DYNAMIC_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.LSTM, nn.GRU, nn.RNN)


class QuantizeError(TrainlabError):
    """A quantization mode this model or this installation cannot do."""


def _own_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False))


def _left_float(model: nn.Module, done: set[str], folded: set[str]) -> list[str]:
    """Modules holding their own parameters that stayed in float, as ``name (Type)``."""
    return [f"{n} ({type(m).__name__})" for n, m in model.named_modules()
            if n and n not in done and n not in folded and _own_params(m)]  # fmt: skip


def _dynamic(run: LoadedRun) -> tuple[nn.Module, list[str], list[str]]:
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        q = torch.ao.quantization.quantize_dynamic(run.model, set(DYNAMIC_TYPES), torch.qint8)
    done = {n for n, m in run.model.named_modules() if n and isinstance(m, DYNAMIC_TYPES)}
    if not done:
        raise QuantizeError(
            f"{run.run_dir}: --mode dynamic quantizes Linear/LSTM/GRU/RNN layers and model "
            f"'{run.spec['model']}' has none; try --mode static"
        )
    quantized = [f"{n} ({type(run.model.get_submodule(n)).__name__})" for n in sorted(done)]
    return q, quantized, _left_float(run.model, done, set())


def _pt2e_modules() -> tuple[Any, Any, Any]:
    import logging

    # torchao's import logs a deprecation notice of torch's pytree registry: not the user's.
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:
        raise QuantizeError(
            "--mode static needs torchao (PyTorch's PT2E quantization lives there since "
            "torch 2.10): pip install 'trainlab[compress]'"
        ) from None
    return xiq, prepare_pt2e, convert_pt2e


def _quantized_in_graph(gm: torch.fx.GraphModule) -> set[str]:
    """Module names whose conv/linear takes a dequantised int8 weight in the converted graph."""
    names = set()
    for node in gm.graph.nodes:
        if node.op != "call_function" or len(node.args) < 2:
            continue
        w = node.args[1]
        if "dequantize_per_channel" in str(getattr(w, "target", "")):
            stack = list(node.meta.get("nn_module_stack", {}).values())
            if stack:
                names.add(str(stack[-1][0]))
    return names


def _drop_unused(gm: torch.fx.GraphModule) -> None:
    """Delete the float weights the converted graph no longer reads (it reads their int8
    copies): otherwise the saved program carries both."""
    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name not in used:
            owner, _, leaf = name.rpartition(".")
            mod = gm.get_submodule(owner) if owner else gm
            delattr(mod, leaf)


def _static(run: LoadedRun, calib_batches: int) -> tuple[nn.Module, list[str], list[str]]:
    from trainlab.deploy.export import _export_program

    xiq, prepare_pt2e, convert_pt2e = _pt2e_modules()
    xs, _ = sample_inputs(run, 2)
    program = _export_program(run.model, xs, dynamic=True)  # ExportError names the module
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_pt2e(program.module(), quantizer)
        with torch.no_grad():  # calibration: observers record activation ranges
            for i, (x, _) in enumerate(run.exp.data.loader("train").iter_epoch(0)):
                if i >= calib_batches:
                    break
                prepared(x.cpu())
        converted = convert_pt2e(prepared)
    _drop_unused(converted)
    done = _quantized_in_graph(converted)
    if not done:
        raise QuantizeError(f"{run.run_dir}: the x86 quantizer found no conv/linear layer to "
                            f"quantize in model '{run.spec['model']}'")  # fmt: skip
    norm = nn.modules.batchnorm._BatchNorm
    bns = {n for n, m in run.model.named_modules() if isinstance(m, norm)}
    quantized = [f"{n} ({type(run.model.get_submodule(n)).__name__})" for n in sorted(done)]
    return converted, quantized, _left_float(run.model, done, bns)


def _save(q: nn.Module, mode: str, run: LoadedRun, path: Any, meta: dict[str, Any]) -> None:
    """The model as TorchScript (dynamic: packed int8 weights, which torch.export cannot hold)
    or as a torch.export program (static), with the input spec inside; ``path`` may be a
    buffer (the float32 model saved the same way gives the size to compare with)."""
    xs, _ = sample_inputs(run, 2)
    extra = {"trainlab.json": json.dumps(meta)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "dynamic":
            traced = torch.jit.trace(q, (xs[:1],), check_trace=False)
            torch.jit.save(traced, path if isinstance(path, io.BytesIO) else str(path),
                           _extra_files=extra)  # fmt: skip
            return
        dim = torch.export.Dim("batch", min=1, max=65536)
        program = torch.export.export(q, (xs,), dynamic_shapes=({0: dim},), strict=False)
        torch.export.save(program, path if isinstance(path, io.BytesIO) else str(path),
                          extra_files=extra)  # fmt: skip


def _saved_bytes(model: nn.Module, mode: str, run: LoadedRun) -> int:
    buf = io.BytesIO()
    _save(model, mode, run, buf, {})
    return len(buf.getvalue())


def _compiled(fn: nn.Module) -> nn.Module:
    with contextlib.redirect_stderr(io.StringIO()):
        return torch.compile(fn)  # type: ignore[return-value]


def quantize_run(
    run_dir: str | Path,
    mode: str = "dynamic",
    out: str | Path | None = None,
    *,
    calib_batches: int = 10,
    compile: bool = True,
    reps: int = 50,
    finetune_epochs: int = 1,
    lr_factor: float = 0.1,
    overrides: list[str] | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Quantize a run's best model to int8, save it, and measure it against float32.

    Returns what ``<out>/quantize.json`` holds: the table rows, the quantized layers, those left
    in float, and the artefact's path.

    >>> report = quantize_run("runs/fmnist", "static", "runs/fmnist-int8")  # doctest: +SKIP
    >>> report["rows"][-1]["acc"] - report["rows"][0]["acc"]                  # doctest: +SKIP
    -0.0012
    """
    if mode not in MODES:
        raise QuantizeError(f"--mode {mode}: valid: {', '.join(MODES)}")
    run = load_run(run_dir)
    odir = Path(out) if out is not None else Path("exports") / f"{run.run_dir.name}-int8-{mode}"
    _check_out(odir, run)
    if mode == "onnx":  # static int8 in onnxruntime: its own export, table and artefact
        from trainlab.compress.ort_int8 import quantize_onnx

        return quantize_onnx(run, odir, calib_batches, reps, console)
    extra: dict[str, Any] = {}
    if mode == "dynamic":
        q, quantized, left = _dynamic(run)
    elif mode == "static":
        q, quantized, left = _static(run, calib_batches)
    else:  # quantization-aware fine-tuning: an ordinary run with model.qat, then converted
        from trainlab.compress.qat import qat_finetune

        q, quantized, left, qat_run = qat_finetune(run, odir, finetune_epochs, lr_factor,
                                                   overrides or [])  # fmt: skip
        extra["qat_run"] = str(qat_run)
    odir.mkdir(parents=True, exist_ok=True)
    suffix = ".ts.pt" if mode == "dynamic" else ".pt2"
    path = odir / f"model.int8{suffix}"
    meta = {**run.spec, "format": "torchscript" if mode == "dynamic" else "pt2",
            "dynamic_batch": mode != "dynamic", "quantized": f"int8 {mode}",
            "run_dir": str(run.run_dir)}  # fmt: skip
    _save(q, mode, run, path, meta)
    rows = _table(run, q, mode, path, compile, reps)
    report = {"mode": mode, "artefact": str(path), "quantized": quantized, "left_float": left,
              "calib_batches": calib_batches if mode == "static" else None,
              "threads": torch.get_num_threads(), "rows": [r.as_dict() for r in rows],
              **extra}  # fmt: skip
    (odir / "quantize.json").write_text(json.dumps(report, indent=2))
    print_table(f"{run.run_dir.name}: int8 {mode} vs float32 (CPU, "
                f"{torch.get_num_threads()} threads)", rows, console)  # fmt: skip
    return report


def _check_out(odir: Path, run: LoadedRun) -> None:
    if odir.exists() and any(odir.iterdir()):
        raise QuantizeError(f"{odir}: already exists and is not empty (choose another --out)")
    if odir.resolve().is_relative_to(run.run_dir.resolve()):
        raise QuantizeError(f"{odir}: inside the source run directory, which is never modified")


def _table(run: LoadedRun, q: nn.Module, mode: str, path: Path, compile: bool, reps: int
           ) -> list[Row]:  # fmt: skip
    xs, _ = sample_inputs(run, 256)
    test = run.exp.data.loader("test")
    fp32_bytes = _saved_bytes(run.model, mode, run)  # same file format as the int8 artefact
    rows = [measure("float32", run.model, test, xs, fp32_bytes, "eager", reps)]
    speed_note = "eager"
    fast: nn.Module = q
    if mode != "dynamic" and compile:
        rows.append(measure("float32 compiled", _compiled(run.model), None, xs, None,
                            "compiled", reps))  # fmt: skip
        fast, speed_note = _compiled(q), "compiled (oneDNN int8)"
    row = measure(f"int8 {mode}", fast, None, xs, path.stat().st_size, speed_note, reps)
    row.acc = accuracy(q, test)  # the uncompiled graph: the same int8 arithmetic
    rows.append(row)
    return rows
