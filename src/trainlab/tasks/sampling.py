"""Text generation from a trained language-model run (``trainlab sample RUN``).

The run is rebuilt exactly as ``trainlab eval`` rebuilds it: its saved ``config.yaml`` through
:func:`trainlab.experiment.build_experiment` (which also rebuilds the data module, hence the
vocabulary learned from the training split), then the best checkpoint's weights (EMA weights
when the run kept them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from trainlab.errors import CheckpointError, ConfigError

__all__ = ["sample_text", "encode_prompt", "decode_tokens"]


def _check_options(tokens: int, temperature: float, top_k: int | None) -> None:
    if tokens < 1:
        raise ConfigError(f"sample: --tokens must be at least 1 (got {tokens})")
    if not temperature > 0:
        raise ConfigError(f"sample: --temperature must be > 0 (got {temperature})")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"sample: --top-k must be at least 1 (got {top_k})")


def encode_prompt(data: Any, prompt: str) -> torch.Tensor:
    """Prompt text → ids (1, T) with the run's tokenizer and vocabulary (unknown → ``<unk>``).

    An empty prompt starts from the first token of the training text.
    """
    from trainlab.data.text import tokenize

    ids = data.vocab.encode(tokenize(prompt, data.opts["level"], data.opts["lowercase"]))
    if not ids:
        ids = data.splits["train"][0][0, :1].tolist()
    return torch.tensor([ids], dtype=torch.long)


def decode_tokens(data: Any, ids: list[int]) -> str:
    """Ids → text: characters joined as they are, words with spaces; padding dropped."""
    from trainlab.data.text import PAD

    pieces = data.vocab.decode([i for i in ids if i != PAD])
    return ("" if data.opts["level"] == "char" else " ").join(pieces)


def _load_run(run_dir: Path, which: str) -> Any:
    from trainlab.config.load import parse_config
    from trainlab.experiment import build_experiment
    from trainlab.plugins import use_run_plugins
    from trainlab.train.checkpoint import load_checkpoint, resolve_checkpoint

    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    ckpt = resolve_checkpoint(run_dir, which)  # fails before the data is loaded
    use_run_plugins(run_dir)
    cfg = parse_config(yaml.safe_load((run_dir / "config.yaml").read_text()))
    exp = build_experiment(cfg)
    if getattr(exp.data, "vocab", None) is None or not hasattr(exp.data, "opts"):
        raise ConfigError(
            f"{run_dir}: sample needs a run trained on text (data text_lm), not '{cfg.data.name}'"
        )
    if not callable(getattr(exp.model, "generate", None)):
        raise ConfigError(
            f"{run_dir}: model '{cfg.model.name}' cannot generate text; use transformer_lm"
        )
    load_checkpoint(ckpt, exp.model, prefer_ema=True)
    exp.model.eval()
    return exp


def _beam_choice(
    cfg: Any, beam_size: int | None, length_penalty: float | None
) -> tuple[int | None, float]:
    """The beam width (None: sample) and length penalty: the caller's (``beam_size=0``:
    sample), else the run's task."""
    opts = cfg.task.options() if cfg.task.name == "language_model" else {}
    decode = opts.get("decode", "sample")
    if beam_size is None and decode in ("greedy", "beam"):
        beam_size = 1 if decode == "greedy" else int(opts.get("beam_size", 4))
    alpha = float(opts.get("length_penalty", 0.0)) if length_penalty is None else length_penalty
    if beam_size is not None and beam_size < 0:
        raise ConfigError(f"sample: --beam must be ≥ 0 (0: sample; got {beam_size})")
    if alpha < 0:
        raise ConfigError(f"sample: --length-penalty must be ≥ 0 (got {alpha})")
    return (beam_size or None), alpha


def sample_text(
    run_dir: str | Path,
    prompt: str = "",
    tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    *,
    which: str = "best",
    seed: int | None = None,
    beam_size: int | None = None,
    length_penalty: float | None = None,
) -> str:
    """Generate ``tokens`` tokens after ``prompt`` with a trained language-model run.

    Returns the prompt followed by the generated text. ``temperature`` < 1 sharpens the
    distribution (→ 0: greedy), ``top_k`` samples among the k likeliest tokens only; ``seed``
    fixes the sampling RNG (default: the run's own seed, so a command repeats its output).
    ``beam_size`` (or the run's ``task.decode: beam``/``greedy``) replaces sampling by the
    likeliest continuation a beam of that width finds (1: greedy; 0: sample all the same),
    scored with the GNMT ``length_penalty``.

    >>> print(sample_text("runs/tiny_lm", "The ", tokens=40, top_k=5))  # doctest: +SKIP
    The model learns the next character ...
    """
    _check_options(tokens, temperature, top_k)
    exp = _load_run(Path(run_dir), which)
    beam, alpha = _beam_choice(exp.cfg, beam_size, length_penalty)
    torch.manual_seed(exp.cfg.seed if seed is None else seed)
    ids = encode_prompt(exp.data, prompt).to(exp.trainer.device)
    # fp32, not the run's autocast: sampling probabilities need the precision more than speed.
    if beam is not None:
        from trainlab.tasks.beam import lm_beam

        out = lm_beam(exp.model, ids, tokens, beam, alpha, vocab=len(exp.data.vocab))
    else:
        # Like the beam: ids beyond the data's vocabulary (a larger model table) are masked.
        out = exp.model.generate(
            ids, tokens, temperature=temperature, top_k=top_k, vocab=len(exp.data.vocab)
        )
    return decode_tokens(exp.data, out[0].tolist())
