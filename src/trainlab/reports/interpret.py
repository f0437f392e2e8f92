"""Interpretation of a run's evaluation from Python, as fastai's ``ClassificationInterpretation``:
the most confused class pairs and the top losses, read back from the run directory.

>>> from trainlab.reports import interpret
>>> interp = interpret("runs/fashion_mnist-20250101-120000")      # doctest: +SKIP
>>> interp.most_confused(min_val=20)                                # doctest: +SKIP
[('Shirt', 'T-shirt/top', 112), ('Pullover', 'Coat', 85), ...]
>>> interp.top_losses(3)                                            # doctest: +SKIP
[{'index': 4127, 'loss': 9.1, 'target_name': 'Sandal', 'pred_name': 'Sneaker', ...}, ...]
>>> interp.plot_top_losses("worst.png")                             # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.reports import plots
from trainlab.reports.insight import read_inputs
from trainlab.reports.rundata import ReportError, load_run
from trainlab.tracking.top_losses import read_top_losses

__all__ = ["Interpretation", "interpret"]


@dataclass
class Interpretation:
    """What a run's evaluation of ``split`` says about its mistakes.

    ``confusion[i][j]``: examples of true class i predicted as j (None for regression).
    ``rows``: the kept highest-loss examples, worst first (see ``top_losses_<split>.json``);
    ``inputs``: their images, array (k, C, H, W), when the inputs were images.
    """

    run_dir: Path
    split: str
    kind: str
    classes: list[str]
    confusion: list[list[float]] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    inputs: Any = None

    def most_confused(self, min_val: int = 1) -> list[tuple[str, str, int]]:
        """``(true, predicted, count)`` for every off-diagonal cell with at least ``min_val``
        examples, most frequent first.

        >>> Interpretation(Path("r"), "test", "classification", ["a", "b"],
        ...                [[8, 2], [1, 9]]).most_confused()
        [('a', 'b', 2), ('b', 'a', 1)]
        """
        cm = self.confusion or []
        pairs = [
            (int(cm[i][j]), i, j)
            for i in range(len(cm))
            for j in range(len(cm))
            if i != j and cm[i][j] >= min_val and cm[i][j] > 0
        ]
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        return [(self.classes[i], self.classes[j], n) for n, i, j in pairs]

    def top_losses(self, k: int | None = None) -> list[dict[str, Any]]:
        """The ``k`` (default: all kept) highest-loss examples, worst first."""
        return self.rows[:k] if k is not None else list(self.rows)

    def plot_top_losses(self, out: str | Path, k: int | None = None) -> Path:
        """The grid of the ``k`` worst images (``report.html`` shows the same)."""
        rows = self.top_losses(k)
        path = None
        if self.inputs is not None and rows:
            path = plots.plot_top_losses(rows, self.inputs[: len(rows)], Path(out), self.classes)
        if path is None:
            raise ReportError(f"{self.run_dir}: no top-loss images were kept (not image inputs)")
        return path

    def plot_confusion(self, out: str | Path) -> Path:
        """The confusion matrix, counts and normalised by true class."""
        if not self.confusion:
            raise ReportError(f"{self.run_dir}: no confusion matrix for '{self.split}'")
        return plots.plot_confusion(self.confusion, Path(out), self.classes)


def interpret(run_dir: str | Path, split: str = "test") -> Interpretation:
    """Read the evaluation of ``split`` from a run directory: ``eval_<split>.json`` (confusion
    matrix) and ``top_losses_<split>.json`` (written by ``trainlab train`` for the test split
    and by ``trainlab eval RUN --split S``). Raises :class:`ReportError` when it has neither."""
    run = load_run(run_dir)
    ev = run.test if split == "test" else _read_eval(run.path, split)
    cm = (ev or {}).get(f"{split}/confusion")
    top = read_top_losses(run.path, split)
    if not top and not cm:
        raise ReportError(
            f"{run.path}: no evaluation of '{split}' (eval_{split}.json / top_losses_{split}.json);"
            f" write one with: trainlab eval {run.path} --split {split}"
        )
    if not (isinstance(cm, list) and cm and all(isinstance(r, list) for r in cm)):
        cm = None
    k = len(cm) if cm else len((top or {}).get("classes") or [])
    names = (top or {}).get("classes") or run.class_names(k)
    if cm is None and top and top.get("kind") == "classification" and not names:
        names = [str(i) for i in range(1 + max(max(r["target"], r["pred"]) for r in top["rows"]))]
    return Interpretation(
        run_dir=run.path,
        split=split,
        kind=str((top or {}).get("kind") or "classification"),
        classes=[str(n) for n in names],
        confusion=cm,
        rows=list((top or {}).get("rows") or []),
        inputs=read_inputs(run.path, split) if top and top.get("images") else None,
    )


def _read_eval(run_dir: Path, split: str) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads((run_dir / f"eval_{split}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
