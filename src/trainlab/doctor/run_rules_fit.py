"""Run rules about fit and structure: overfitting, underfitting, gradients by layer, classes,
imbalance, leakage, warm-up and early stopping."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

from trainlab.doctor.findings import Finding, gradient_ratio
from trainlab.doctor.run_rules import GAP, OVERFIT_RISE, UNDERFIT_ACC, _lr_key

if TYPE_CHECKING:
    from trainlab.doctor.records import RunView

__all__ = ["RULES"]

FLATTENING = 0.15  # training loss improved at most this much over the last third of the epochs
LEAK_Z = 3.0  # validation better than test by this many standard errors
MIN_VAL = 30  # fewer validation samples (leave-one-out folds): overfitting is only a note


def overfitting(v: RunView) -> list[Finding]:
    """Validation loss rising from its minimum while training loss keeps falling, and/or a
    train-validation accuracy gap; the evidence names the epoch the gap opened."""
    ep, val = v.series("val/loss")
    _, train = v.series("train/loss_epoch")
    if len(val) < 3 or len(train) < len(val) or not v.minimised:
        return []
    train = train[-len(val) :]
    i = min(range(len(val)), key=val.__getitem__)
    rise = (val[-1] - val[i]) / val[i] if val[i] > 0 else 0.0
    falling = train[-1] < train[i]
    tr_acc, va_acc = v.last("train/acc_epoch"), v.last("val/acc")
    gap = tr_acc - va_acc if tr_acc is not None and va_acc is not None else 0.0
    loss_sign = rise >= OVERFIT_RISE and falling and i < len(val) - 1
    if not loss_sign and gap < 2 * GAP:
        return []
    n_val = _val_size(v)
    enough = n_val is None or n_val >= MIN_VAL  # a 1-sample validation loss is noise
    severity = "warning" if loss_sign and enough and (gap >= GAP or not v.classify) else "info"
    return [Finding(
        "run.overfitting", "overfitting", severity, 0.8 if severity == "warning" else 0.4,
        f"validation loss rose {rise:.0%} above its minimum (epoch {ep[i]:g}) while the "
        f"training loss kept falling; final train/val accuracy gap {gap:.3f}",
        {"best_val_loss_epoch": ep[i], "val_loss_min": val[i], "val_loss_last": val[-1],
         "train_loss_at_min": train[i], "train_loss_last": train[-1], "acc_gap": gap,
         "gap_opened_epoch": _gap_epoch(v)},
        "the model memorises the training set (capacity large for the data, little "
        "regularisation): it fits noise that does not generalise",
        ["optim.weight_decay=5.0e-4", "model.dropout=0.3"],
        note="train.l2 for optimizers without weight decay; more data or augmentation "
        "(data.augment.*), a smaller model, or stop at the best "
        "epoch (callbacks: early_stopping)",
    )]  # fmt: skip


def _val_size(v: RunView) -> int | None:
    cm = next((r.get("val/confusion") for r in reversed(v.run.records) if "val/confusion" in r),
              None)  # fmt: skip
    return int(sum(map(sum, cm))) if isinstance(cm, list) and cm else None


def _gap_epoch(v: RunView) -> float | None:
    ep, tr = v.series("train/acc_epoch")
    ep2, va = v.series("val/acc")
    vals = dict(zip(ep2, va, strict=True))
    for e, t in zip(ep, tr, strict=True):
        if e in vals and t - vals[e] >= GAP:
            return e
    return None


def underfitting(v: RunView) -> list[Finding]:
    """Low training accuracy, no gap to validation, and a loss that stopped improving."""
    if not v.classify:
        return []
    _, tr = v.series("train/acc_epoch")
    _, loss = v.series("train/loss_epoch")
    va = v.last("val/acc")
    if len(tr) < 3 or va is None or tr[-1] >= UNDERFIT_ACC or tr[-1] - va >= GAP:
        return []
    third = max(1, len(loss) // 3)
    recent = (loss[-third - 1] - loss[-1]) / loss[-third - 1] if loss[-third - 1] else 0.0
    k = v.num_classes or 2
    if recent > FLATTENING or tr[-1] <= 1.5 / k + 0.02:  # still learning fast, or nothing at all
        return []
    return [Finding(
        "run.underfitting", "underfitting", "warning", 0.75,
        f"training accuracy only {tr[-1]:.3f} (validation {va:.3f}) and the training loss "
        f"improved {recent:.1%} over the last {third} epoch(s)",
        {"train_acc": tr[-1], "val_acc": va, "recent_loss_improvement": recent},
        "the model cannot fit even the training set: too little capacity (or too much "
        "regularisation) for the task",
        ["model.hidden=[256,128]", "train.epochs=" + str(2 * len(tr))],
        note="a larger model (more or wider layers), less regularisation, longer training",
    )]  # fmt: skip


def _ratios(v: RunView) -> list[tuple[int, float, str, str]]:
    """(step, first/last relative-gradient ratio, first layer, last layer) per norms record."""
    out = []
    for r in v.norms:
        w, g = r.get("weight", {}), r.get("grad", {})
        rel = [(k, g[k] / w[k]) for k in w if k in g and w[k] and g[k] and math.isfinite(g[k])]
        if len(rel) >= 2:
            out.append((int(r["step"]), rel[0][1] / rel[-1][1], rel[0][0], rel[-1][0]))
    return out


def gradients(v: RunView) -> list[Finding]:
    """Vanishing/exploding gradients by layer over time (``norms.jsonl``), for classifiers
    and regressors (see :func:`trainlab.doctor.model_checks.check_model`)."""
    task = (v.config.get("task") or {}).get("name", "classification")
    ratios = _ratios(v) if task in ("classification", "regression") else []
    if len(ratios) < 2:
        return []
    med = statistics.median(r[1] for r in ratios)
    first, last = ratios[0][2], ratios[0][3]
    thin = ratios[:: max(1, len(ratios) // 10)]
    ev = {"median_ratio": med, "first_layer": first, "last_layer": last,
          "ratios": [{"step": s, "ratio": q} for s, q, _, _ in thin]}  # fmt: skip
    return gradient_ratio(
        "run", med,
        f"over {len(ratios)} records, the relative gradient of '{first}' was a median "
        f"{med:.1e} × that of '{last}'",
        ev, "an initialisation too large for the depth makes gradients grow towards the input",
    )


def dead_layers(v: RunView) -> list[Finding]:
    """Layers whose gradient norm is exactly 0 in every record after the first."""
    recs = [r.get("grad", {}) for r in v.norms[1:] if r.get("grad")]
    if len(recs) < 2:
        return []
    dead = [k for k in recs[0] if all(r.get(k) == 0 for r in recs)]
    if not dead:
        return []
    return [Finding(
        "run.dead_layers", "dead_relu", "warning", 0.65,
        f"{len(dead)} layer(s) never received a gradient: {', '.join(dead[:5])}",
        {"dead_layers": dead, "records": len(recs)},
        "a layer whose units are all inactive (dead ReLUs) or cut off from the loss learns "
        "nothing", ["model.act=leaky_relu"],
    )]  # fmt: skip


def classes(v: RunView) -> list[Finding]:
    """Per-class recall far below the mean; class counts imbalanced while judged by accuracy."""
    per = v.test.get("test/acc_per_class")
    cm = v.test.get("test/confusion")
    found: list[Finding] = []
    counts = [sum(row) for row in cm] if isinstance(cm, list) and cm else None
    if counts and min(counts) > 0 and max(counts) / min(counts) >= 5:
        found += _imbalance(v, counts, per)
    if isinstance(per, list) and len(per) >= 2:
        mean = statistics.mean(per)
        bad = {i: r for i, r in enumerate(per) if r < min(mean - 0.3, 0.5 * mean)}
        if bad:
            found.append(Finding(
                "run.failing_classes", "failing_classes", "warning", 0.55,
                "classes far below the mean recall " + f"({mean:.3f}): "
                + ", ".join(f"{i} {r:.3f}" for i, r in bad.items()),
                {"per_class_recall": per, "mean": mean, "failing": bad, "test_counts": counts},
                "too few examples of these classes, labels that overlap other classes, or a "
                "loss that ignores them",
                note="look at the confusion matrix in report.html; class_weights or "
                "data.balance=true for rare classes",
            ))  # fmt: skip
    return found


def _imbalance(v: RunView, counts: list[float], per: Any) -> list[Finding]:
    by_acc = v.monitor.endswith("acc")
    balanced = bool((v.config.get("data") or {}).get("balance"))
    fix = ["train.monitor=val/f1"] if by_acc else []
    for i, cb in enumerate(v.config.get("callbacks") or []):
        if by_acc and str(cb.get("monitor", "")).endswith("acc"):
            fix.append(f"callbacks.{i}.monitor=val/f1")
    if not balanced and "balance" in (v.config.get("data") or {}):
        fix.append("data.balance=true")
    worst = min(per) if isinstance(per, list) and per else None
    return [Finding(
        "run.imbalance", "class_imbalance", "warning" if by_acc else "info", 0.85,
        f"test classes are imbalanced {max(counts):g}:{min(counts):g}"
        + (f", the run is judged by accuracy and the worst class recall is {worst:.3f}"
           if by_acc and worst is not None else ""),
        {"test_counts": counts, "monitor": v.monitor, "per_class_recall": per},
        "accuracy is dominated by the majority class: a model that neglects the minority "
        "class still scores high", fix,
    )]  # fmt: skip


def _val_test(v: RunView) -> dict[str, float] | None:
    va, tr = v.last("val/acc"), v.last("train/acc_epoch")
    te, te_loss = v.test.get("test/acc"), v.test.get("test/loss")
    cm_v = next((r.get("val/confusion") for r in reversed(v.run.records) if "val/confusion" in r),
                None)  # fmt: skip
    cm_t = v.test.get("test/confusion")
    if va is None or tr is None or not isinstance(te, float) or not cm_v or not cm_t:
        return None
    nv, nt = sum(map(sum, cm_v)), sum(map(sum, cm_t))
    se = math.sqrt(va * (1 - va) / nv + te * (1 - te) / nt) or 1e-9
    out = {"val_acc": va, "train_acc": tr, "test_acc": te, "z": (va - te) / se}
    val_loss = v.last("val/loss")
    if isinstance(te_loss, float) and val_loss:
        out |= {"val_loss": val_loss, "test_loss": te_loss, "loss_ratio": te_loss / val_loss}
    return out


def leakage(v: RunView) -> list[Finding]:
    """Validation as good as training and far better than test: validation leaks training."""
    e = _val_test(v)
    if e is None or e["val_acc"] < e["train_acc"] - 0.01:
        return []
    gap = e["val_acc"] - e["test_acc"]
    by_acc = e["z"] >= LEAK_Z and gap >= 0.03
    by_loss = e.get("loss_ratio", 0.0) >= 2.5 and gap >= 0.02
    if not (by_acc or by_loss):
        return []
    return [Finding(
        "run.val_leak", "leakage", "warning", 0.6 + 0.1 * (by_acc and by_loss),
        f"validation accuracy {e['val_acc']:.3f} matches training ({e['train_acc']:.3f}) but "
        f"test is {e['test_acc']:.3f} ({e['z']:.1f} standard errors lower"
        + (f", test loss {e['loss_ratio']:.1f}× the validation loss)" if "loss_ratio" in e
           else ")"), e,
        "the validation split holds copies of training samples (or was tuned on): it "
        "overstates generalisation",
        note="`trainlab doctor RECIPE` counts exact and near duplicates between the splits",
    )]  # fmt: skip


def warmup(v: RunView) -> list[Finding]:
    """A warm-up schedule whose LR was still rising when the run ended."""
    s = v.sched
    lrs = v.lr_series
    if not s or len(lrs) < 3 or not (s.get("name") == "onecycle" or s.get("warmup_epochs")):
        return []
    if not (lrs[-1] >= max(lrs) and lrs[-1] > lrs[-2]):
        return []
    stop = str(v.summary.get("stop_reason") or "")
    return [Finding(
        "run.no_warmup", "schedule_never_warmed_up", "warning" if stop else "info", 0.5,
        f"the learning rate was still rising ({lrs[0]:.3g} → {lrs[-1]:.3g}) when the run "
        f"ended{' (' + stop + ')' if stop else ''}: the schedule never reached its peak",
        {"lr_first": lrs[0], "lr_last": lrs[-1], "stop_reason": stop or None},
        "the run ended inside the warm-up: it trained at a fraction of its LR and skipped the "
        "annealing", ["sched.warmup_epochs=0.5"] if s.get("warmup_epochs") else [],
        note="train longer, or shorten the warm-up (sched.pct_start for one-cycle)",
    )]  # fmt: skip


def early_stop(v: RunView) -> list[Finding]:
    """A run stopped by its patience (information, with the epochs it skipped)."""
    stop = str(v.summary.get("stop_reason") or "")
    if not stop.startswith("early stopping"):
        return []
    best = v.summary.get("best") or {}
    epochs = v.summary.get("epochs")
    return [Finding(
        "run.early_stopped", "early_stopped", "info", 0.3,
        f"stopped by its patience after {epochs} epoch(s); best {best.get('monitor')} at epoch "
        f"{best.get('epoch')}", {"stop_reason": stop, "best": best, "epochs": epochs},
        "the monitored metric stopped improving; with a schedule that anneals late, a "
        "larger patience lets the annealing help",
        note=f"lower {_lr_key(v)} or raise the early-stopping patience if the curve was noisy",
    )]  # fmt: skip


RULES = [overfitting, underfitting, gradients, dead_layers, classes, leakage, warmup, early_stop]
