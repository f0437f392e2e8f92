"""MLflow tracking, for users who already keep their runs there (``train.mlflow: true``).

Logs the resolved config (flattened, as params), every metric of ``metrics.jsonl`` with its
step, the test metrics, and the run directory's files (``report.html``, plots, config, summary)
as artifacts. By default into a local SQLite store beside the runs
(``sqlite:///<runs folder>/mlflow.db``, artifacts in ``<runs folder>/mlartifacts``); set
``train.mlflow_uri`` (or ``MLFLOW_TRACKING_URI``) to use a server or another store. Browse with
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``.

mlflow is optional and imported only when a run asks for it: ``pip install trainlab[mlflow]``.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import TrainlabError
from trainlab.train.state import TrainState

__all__ = ["MLflowLogger", "check_trackers", "require_mlflow", "default_uri"]

INSTALL = "pip install 'trainlab[mlflow]'"
_BAD_KEY = re.compile(r"[^\w\-. /:]")  # what MLflow accepts in metric and param names
_BUFFER = 500  # metric values held before one batched write (one SQLite transaction)
_ARTIFACT_MAX = 50 * 2**20  # bytes; checkpoints and event files stay out (folders anyway)
STATE_FILE = "mlflow.json"  # run id, so that --resume continues the same MLflow run


def require_mlflow() -> None:
    """Raise a one-line :class:`TrainlabError` when mlflow (with its SQL store) is missing."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise TrainlabError(
            f"train.mlflow: mlflow is not installed ({exc.name or exc}); {INSTALL}, "
            "or set train.mlflow=false"
        ) from None


def check_trackers(train: Any) -> None:
    """Fail early (before a run directory exists) when the config's ``train`` section asks for
    a tracker that is not installed."""
    if getattr(train, "mlflow", False):
        require_mlflow()


def default_uri(run_dir: Path) -> str:
    """``sqlite:///<folder holding the run>/mlflow.db`` (absolute)."""
    return f"sqlite:///{(Path(run_dir).parent / 'mlflow.db').resolve()}"


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", name)[:250]


def _flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in config.items():
        if isinstance(v, dict) and v:
            out.update(_flat_params(v, f"{prefix}{k}."))
        else:
            text = v if isinstance(v, str) else json.dumps(v)
            out[_key(f"{prefix}{k}")] = text[:6000]  # MLflow's longest param value
    return out


class MLflowLogger:
    """A callback that mirrors a run into MLflow; ``log_results`` adds the test metrics and
    the run's files once the report is written.

    >>> from trainlab import train_run
    >>> train_run("recipes/synthetic.yaml", ["train.mlflow=true"])   # doctest: +SKIP
    """

    def __init__(
        self, run_dir: str | Path, *, uri: str | None = None, experiment: str | None = None
    ) -> None:
        require_mlflow()
        self.run_dir = Path(run_dir)
        self.uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(self.run_dir)
        self.experiment = experiment
        self.client: Any = None
        self.run_id: str | None = None
        self._pending: list[Any] = []
        self._broken = False

    # -- events ------------------------------------------------------------------------------
    def on_fit_start(self, state: TrainState) -> None:
        if self.run_id is not None:  # fit again in the same process (a rollback)
            self._safe(self.client.update_run, self.run_id, status="RUNNING")
            return
        try:
            self._start()
        except TrainlabError:
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure is one line for the user
            raise TrainlabError(f"train.mlflow: cannot start a run at {self.uri}: {exc}") from None

    def on_log(self, state: TrainState, record: dict[str, Any]) -> None:
        self._add(record, int(record.get("step", state.step)))

    def on_epoch_end(self, state: TrainState) -> None:
        self.flush()

    def on_fit_end(self, state: TrainState) -> None:
        self.flush()
        # SignalStop's stop reason: the run can be resumed, but it did not finish.
        killed = state.stop_reason.startswith("stopped by ")
        self._end("KILLED" if killed else "FAILED" if state.diverged else "FINISHED")

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self.flush()
        self._end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")

    # -- after the fit -------------------------------------------------------------------------
    def log_results(self, summary: dict[str, Any], *, failed: bool = False) -> None:
        """Test metrics (at the last step) and the run directory's files as artifacts."""
        if self.run_id is None or self._broken:
            return
        self._add(summary.get("test") or {}, int(summary.get("steps") or 0))
        self.flush()
        for f in sorted(self.run_dir.iterdir()):
            if f.is_file() and not f.name.startswith(".") and f.stat().st_size < _ARTIFACT_MAX:
                self._safe(self.client.log_artifact, self.run_id, str(f))
        self._end("FAILED" if failed else "FINISHED")

    def flush(self) -> None:
        if self._pending and self.run_id is not None and not self._broken:
            batch, self._pending = self._pending, []
            for i in range(0, len(batch), 1000):  # MLflow's limit per request
                self._safe(self.client.log_batch, self.run_id, metrics=batch[i : i + 1000])

    # -- pieces --------------------------------------------------------------------------------
    def _add(self, record: dict[str, Any], step: int) -> None:
        """Queue the numeric values of ``record`` as metrics at ``step``."""
        if self.run_id is None or self._broken:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for k, v in record.items():
            if k in ("step", "epoch") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            self._pending.append(Metric(_key(k), float(v), now, step))
        if len(self._pending) >= _BUFFER:
            self.flush()

    def _start(self) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        saved = self._saved_run()
        if saved is not None:
            self.run_id = saved
            self.client.update_run(saved, status="RUNNING")
            return
        config = yaml.safe_load((self.run_dir / "config.yaml").read_text()) or {}
        name = self.experiment or str(config.get("name") or "trainlab")
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            exp_id = exp.experiment_id
        else:
            exp_id = self.client.create_experiment(name, artifact_location=self._artifacts())
        tags = {"trainlab.run_dir": str(self.run_dir.resolve())}
        run = self.client.create_run(exp_id, run_name=self.run_dir.name, tags=tags)
        self.run_id = run.info.run_id
        (self.run_dir / STATE_FILE).write_text(
            json.dumps({"tracking_uri": self.uri, "run_id": self.run_id}) + "\n"
        )
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in _flat_params(config).items()]
        for i in range(0, len(params), 100):  # MLflow's limit per request
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _saved_run(self) -> str | None:
        # A resumed run continues its MLflow run, if it is in this same store.
        try:
            saved = json.loads((self.run_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        if saved.get("tracking_uri") == self.uri and saved.get("run_id"):
            return str(saved["run_id"])
        return None

    def _artifacts(self) -> str | None:
        # A local SQLite store keeps its artifacts beside it, not in the working directory.
        if self.uri.startswith("sqlite:///"):
            return (Path(self.uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
        return None

    def _end(self, status: str) -> None:
        if self.run_id is not None and not self._broken:
            self._safe(self.client.set_terminated, self.run_id, status=status)

    def _safe(self, fn: Any, *args: Any, **kw: Any) -> None:
        # Once the run has started, a tracker failure (server down, disk full) must not end
        # the training: warn once, stop logging; the run directory keeps everything.
        try:
            fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001
            self._broken = True
            message = f"MLflow logging stopped: {type(exc).__name__}: {exc}"
            warnings.warn(message[:300], stacklevel=2)
