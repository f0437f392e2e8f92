"""The worker loop of ``trainlab tune``: run trials until the study holds its count.

One worker runs in the calling process; with ``--workers W`` each of W spawned processes runs the
same loop on the shared storage, with ``torch`` threads = cores // W. Another machine started
with the same command and ``--storage`` joins the same way.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from collections import Counter
from typing import Any

__all__ = ["run_worker", "spawn_workers"]


class _Printer:
    """An Optuna study callback: one line per finished trial."""

    def __init__(self, console: Any, monitor: str, prefix: str = "") -> None:
        self.console, self.monitor, self.prefix = console, monitor, prefix
        self.last: Any = None

    def __call__(self, study: Any, trial: Any) -> None:
        self.last = trial
        attrs = trial.user_attrs
        shown = " ".join(attrs.get("overrides", []))
        if trial.state.name == "COMPLETE":
            what = f"{self.monitor} {trial.value:.4f}"
        elif trial.state.name == "PRUNED":
            what = f"pruned after epoch {attrs.get('pruned_at_epoch', '?')}"
        else:
            what = f"failed: {attrs.get('fail_reason', 'unknown')}"[:160]
        self.console.print(f"{self.prefix}trial {trial.number} {what}  {shown}", markup=False,
                           highlight=False)  # fmt: skip


def run_worker(plan: Any, index: int, console: Any, study: Any = None) -> int | None:
    """Run trials of ``plan``'s study (``study``, or opened here) until it holds ``plan.trials``
    finished ones (or this worker saw ten or ``trials`` failures, or it was interrupted);
    returns the signal number if it was."""
    import optuna

    from trainlab.studies.tune import _open_study, run_trial

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = study or _open_study(plan, worker=index)
    state: dict[str, Any] = {"interrupted": None}
    printer = _Printer(console, plan.monitor, f"[worker {index}] " if plan.workers > 1 else "")
    failures, waited = 0, False
    while state["interrupted"] is None:
        counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
        done = counts["COMPLETE"] + counts["PRUNED"]
        if done >= plan.trials:
            break
        if failures >= max(plan.trials, 10):
            console.print(f"{printer.prefix}stopping: {failures} trials failed in this worker")
            break
        if done + counts["RUNNING"] + counts["WAITING"] < plan.trials or counts["WAITING"]:
            study.optimize(lambda t: run_trial(plan, t, state), n_trials=1,
                           catch=(Exception,), callbacks=[printer])  # fmt: skip
            last = printer.last
            reason = str(last.user_attrs.get("fail_reason", "")) if last is not None else ""
            if last is not None and last.state.name == "FAIL" and not reason.startswith("surplus"):
                failures += 1
            waited = False
            continue
        if not waited:  # the missing trials run elsewhere, or in a worker that died
            console.print(f"{printer.prefix}waiting for {counts['RUNNING']} running trial(s); "
                          f"one whose worker died is retried after {3 * plan.heartbeat} s "
                          "without a heartbeat")  # fmt: skip
            waited = True
        optuna.storages.fail_stale_trials(study)  # marks them failed; the callback retries
        time.sleep(min(plan.heartbeat, 2))
    return state["interrupted"]


def _worker_main(plan: Any, index: int) -> None:
    """Entry point of a spawned worker process."""
    import torch
    from rich.console import Console

    if plan.threads:
        torch.set_num_threads(plan.threads)
    console = Console(stderr=True)
    try:
        if plan.plugins:  # the user's models, data… registered as in the parent process
            from trainlab.plugins import load_plugins

            load_plugins(plan.plugins)
        code = run_worker(plan, index, console)
    except KeyboardInterrupt:
        code = int(signal.SIGINT)
    sys.exit(128 + code if code else 0)


def spawn_workers(plan: Any, console: Any) -> int | None:
    """Start ``plan.workers`` processes (spawn) and wait for them; Ctrl-C here is passed on as
    SIGTERM, which each worker's run turns into a checkpoint and a clean stop."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(plan, i), name=f"tune-worker-{i}")
             for i in range(plan.workers)]  # fmt: skip
    for p in procs:
        p.start()
    interrupted: int | None = None
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        interrupted = int(signal.SIGINT)
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join()
    for i, p in enumerate(procs):
        code = p.exitcode or 0
        if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            interrupted = interrupted or code - 128
        elif code < 0:
            console.print(f"[yellow]worker {i} was killed by {signal.Signals(-code).name}; "
                          "its trial is retried (run the same command if trials are missing)")
        elif code != 0:
            console.print(f"[yellow]worker {i} exited with code {code}")
    return interrupted
