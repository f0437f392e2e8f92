"""``trainlab gen-score``: quality figures of generator runs against one classifier run.

For each generator run (and sampler setting), ``n`` images are generated and scored with
:class:`trainlab.metrics.generative.GenerativeScorer` against ``n`` real test images of the
classifier's data. Two reference rows frame the figures: ``real (train)`` — ``n`` real training
images, the floor a perfect generator reaches at this ``n`` — and ``noise`` — uniform noise
images, a ceiling no generator that learned anything should reach.

>>> rows = score_runs(["runs/ddpm"], "runs/lenet5", settings=[("ddim", 50)])  # doctest: +SKIP
>>> rows[-1]["fd"] < rows[1]["fd"]  # the samples beat noise             # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError

__all__ = ["score_runs", "format_rows", "reference_rows"]

Setting = tuple[str, int | None]  # (sampler, steps)


def reference_rows(scorer: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """The ``real (train)`` floor and the ``noise`` ceiling, scored like a generator
    (``scorer`` from :meth:`GenerativeScorer.from_run`, which keeps the classifier's data)."""
    from trainlab.metrics.generative_data import real_images

    real = real_images(scorer.data, n, "train", seed + 1)
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(seed))
    return [
        {"run": "real (train)", "sampler": "", "steps": "", **scorer.score(real)},
        {"run": "noise", "sampler": "", "steps": "", **scorer.score(noise)},
    ]


def _settings_for(task: str, settings: list[Setting]) -> list[Setting]:
    # Latent models sample in one forward pass: one row, whatever the diffusion settings.
    return settings if task == "diffusion" else [("", None)]


def score_runs(
    runs: list[str],
    classifier: str,
    *,
    n: int = 2000,
    settings: list[Setting] | None = None,
    eta: float = 0.0,
    seed: int = 0,
    precision: str = "fp32",
    references: bool = True,
) -> list[dict[str, Any]]:
    """Score every run under every setting; rows of run, sampler, steps, fd, confidence,
    inception_score, n and seconds."""
    from trainlab.metrics.generative import GenerativeScorer
    from trainlab.tasks.generate import generate_images, load_generator

    if n < 2:
        raise ConfigError(f"gen-score: --n must be ≥ 2 (got {n})")
    gens = [load_generator(r) for r in runs]  # every run checked before the long part
    scorer = GenerativeScorer.from_run(classifier, n=n, seed=seed)
    rows = reference_rows(scorer, n, seed) if references else []
    for run, gen in zip(runs, gens):
        for sampler, steps in _settings_for(gen.task, settings or [("ddim", 50)]):
            t0 = time.perf_counter()
            images = generate_images(gen, n, seed=seed, sampler=sampler or "ddim", steps=steps,
                                     eta=eta, precision=precision)  # fmt: skip
            seconds = time.perf_counter() - t0
            shown = steps if steps else (gen.cfg.task.options().get("timesteps", 1000)
                                         if sampler == "ddpm" else "")  # fmt: skip
            rows.append({"run": str(run), "sampler": sampler, "steps": shown,
                         **scorer.score(images), "seconds": seconds})  # fmt: skip
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the rows."""
    head = "| run | sampler | steps | n | Fréchet distance | confidence | inception score | s |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        secs = f"{r['seconds']:.0f}" if "seconds" in r else ""
        lines.append(f"| {r['run']} | {r['sampler']} | {r['steps']} | {r['n']} | {r['fd']:.2f} | "
                     f"{r['confidence']:.3f} | {r['inception_score']:.2f} | {secs} |")  # fmt: skip
    return "\n".join(lines)


def write_json(rows: list[dict[str, Any]], path: str | Path, meta: dict[str, Any]) -> Path:
    """The rows and how they were made, as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**meta, "rows": rows}, indent=2))
    return path
