"""Top losses: the evaluated examples the model got most wrong, picked while the metrics stream.

:class:`TopLosses` wraps a classification or regression task for one evaluation pass: its
``eval_step`` is the task's, plus a streaming top-k selection of per-example losses on the
device. Only the ``k`` worst examples (inputs included) are ever held, never the logits of the
whole split, and nothing is copied to the host until the pass ends.

Saved beside the metrics as ``top_losses_<split>.json`` (one row per example, worst first) and,
for image inputs, ``top_losses_<split>.safetensors`` (the inputs, ``(k, C, H, W)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.tasks.base import StepOutput
from trainlab.tasks.classification import ClassificationTask, RegressionTask

__all__ = ["TopLosses", "MAX_FEATURES", "looks_like_images", "read_top_losses"]

MAX_FEATURES = 8  # tabular rows keep their first features, to show beside the error


def looks_like_images(x: torch.Tensor) -> bool:
    """``(N, C, H, W)`` floating inputs with 1 or 3 channels."""
    return x.dim() == 4 and x.shape[1] in (1, 3) and x.is_floating_point()


class TopLosses:
    """A task for :meth:`Trainer.evaluate` that also keeps the ``k`` highest-loss examples.

    Per-example loss: cross-entropy of the logits for classification (whatever the training
    loss; ``-log p(true class)``, so the top are the most confidently wrong), squared error for
    regression. Returns None from :meth:`for_task` for tasks it does not know.

    >>> rec = TopLosses.for_task(task, k=16)                           # doctest: +SKIP
    >>> trainer.evaluate(model, rec, data.loader("test"), "test", m)   # doctest: +SKIP
    >>> rec.save(run_dir, "test", classes)                             # doctest: +SKIP
    """

    def __init__(self, task: Any, kind: str, k: int = 16) -> None:
        self.task, self.kind, self.k = task, kind, k
        self.seen = 0  # examples evaluated (this process)
        self.loss: torch.Tensor | None = None  # (≤k,) per-example losses, worst first
        self.index: torch.Tensor | None = None  # (≤k,) position in the split
        self.target: torch.Tensor | None = None
        self.pred: torch.Tensor | None = None  # (≤k, K) probabilities or (≤k,) predictions
        self.inputs: torch.Tensor | None = None  # (≤k, …) when kept (images, tabular rows)

    @classmethod
    def for_task(cls, task: Any, k: int = 16) -> TopLosses | None:
        if isinstance(task, ClassificationTask):
            return cls(task, "classification", k)
        if isinstance(task, RegressionTask):
            return cls(task, "regression", k)
        return None

    # The task interface the trainer's evaluation uses.
    def train_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Any:
        return self.task.train_step(model, batch)

    def metrics(self, num_classes: int | None) -> Any:
        return self.task.metrics(num_classes)

    def eval_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
        out = self.task.eval_step(model, batch)
        if out.preds is not None and out.target is not None:
            self.update(batch[0], out.preds, out.target)
        return out

    @torch.no_grad()
    def update(self, x: torch.Tensor, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Merge one batch into the top-k: ``preds`` logits (N, K) or predictions (N,)."""
        n = len(target)
        if self.kind == "classification":
            losses = F.cross_entropy(preds.float(), target.long(), reduction="none")  # (N,)
        else:
            pred = preds.float().reshape(target.shape)
            losses = (pred - target.float()).square().reshape(n, -1).mean(dim=1)
        # The batch's own top-k first: only k rows (inputs included) are ever gathered.
        top = _top(losses, self.k)
        index = top + self.seen  # position in the split
        self.seen += n
        if self.kind == "classification":
            pred = preds[top].float().softmax(dim=1)  # (k, K) probabilities
        else:
            pred = pred[top]
        tabular = x.dim() == 2 and x.is_floating_point()  # (N, features); not token ids
        keep = (looks_like_images(x) or tabular) and len(x) == n
        fields = [losses[top], index, target[top], pred]
        if keep:
            fields.append(x[top])
        if self.loss is not None:  # merge with the current top-k (≤ 2k rows), select again
            old = [self.loss, self.index, self.target, self.pred]
            if keep and self.inputs is not None:
                old.append(self.inputs)
            fields = [torch.cat([o, f.to(o.dtype)]) for o, f in zip(old, fields)]
            top = _top(fields[0], self.k)
            fields = [f[top] for f in fields]
        self.loss, self.index, self.target, self.pred = fields[:4]
        self.inputs = fields[4] if len(fields) > 4 else None

    def rows(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """The kept examples, worst first, as JSON-ready dicts."""
        if self.loss is None:
            return []
        loss, index = self.loss.tolist(), self.index.tolist()  # type: ignore[union-attr]
        target, pred = self.target.tolist(), self.pred.tolist()  # type: ignore[union-attr]
        feats = self.inputs.tolist() if self._tabular() else None  # type: ignore[union-attr]
        out = []
        for i in range(len(loss)):
            row: dict[str, Any] = {"index": index[i], "loss": loss[i], "target": target[i]}
            if self.kind == "classification":
                probs = pred[i]
                guess = max(range(len(probs)), key=probs.__getitem__)
                row.update(pred=guess, confidence=probs[guess], p_true=probs[int(target[i])])
                if names:
                    row.update(target_name=names[int(target[i])], pred_name=names[guess])
            elif isinstance(pred[i], float):
                row.update(pred=pred[i], error=pred[i] - target[i])
            else:  # several outputs per example
                row.update(pred=pred[i])
            if feats is not None:
                row["features"] = feats[i][:MAX_FEATURES]
            out.append(row)
        return out

    def _tabular(self) -> bool:
        return self.inputs is not None and self.inputs.dim() == 2

    def save(self, run_dir: str | Path, split: str, names: list[str] | None = None) -> Path | None:
        """Write ``top_losses_<split>.json`` (and the image inputs); None when nothing was kept."""
        from trainlab.tracking.rundir import write_json

        rows = self.rows(names)
        if not rows:
            return None
        run_dir = Path(run_dir)
        images = self.inputs is not None and looks_like_images(self.inputs)
        if images:
            from safetensors.torch import save_file

            tensors = {"inputs": self.inputs.float().cpu().contiguous()}  # type: ignore[union-attr]
            save_file(tensors, str(run_dir / f"top_losses_{split}.safetensors"))
        meta = {"split": split, "kind": self.kind, "evaluated": self.seen, "images": images}
        if names:
            meta["classes"] = names
        path = run_dir / f"top_losses_{split}.json"
        write_json(path, {**meta, "rows": rows})
        return path


def _top(losses: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest losses, largest first; NaN (a NaN prediction) counts as the
    worst of all. On the device: no host sync."""
    key = torch.nan_to_num(losses, nan=float("inf"))
    return key.topk(min(k, len(key))).indices


def read_top_losses(run_dir: str | Path, split: str = "test") -> dict[str, Any] | None:
    """``top_losses_<split>.json`` of a run as a dict, or None if missing/unreadable."""
    path = Path(run_dir) / f"top_losses_{split}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("rows"), list) else None
