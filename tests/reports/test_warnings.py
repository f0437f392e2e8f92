"""The Python warnings a run raises: still shown, kept in warnings.json, listed in the report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from reports_support import TINY

from trainlab.config.load import parse_config
from trainlab.reports import build_report
from trainlab.run import train_run
from trainlab.tracking.warnings_log import capture_warnings, read_warnings


class Grumbles:
    """A callback that warns at every epoch end."""

    def on_epoch_end(self, state: object) -> None:
        warnings.warn("lr <looks> high", UserWarning, stacklevel=1)


def test_run_warnings_reach_the_report(tmp_path: Path) -> None:
    cfg = {**TINY, "train": {**TINY["train"], "tensorboard": False, "checkpoint": False}}
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="looks") as shown:  # "always": both epochs show it
        train_run(parse_config(cfg), run_dir=run, progress=False, extra_callbacks=[Grumbles()])
    assert sum("looks" in str(w.message) for w in shown) == 2  # still shown to the user
    [entry] = [w for w in read_warnings(run) if "looks" in w["message"]]
    assert entry["category"] == "UserWarning" and entry["count"] == 2
    assert entry["filename"].endswith("test_warnings.py")
    html = build_report(run).read_text()
    assert 'id="warnings"' in html and "lr &lt;looks&gt; high" in html
    assert "distinct Python warning" in html  # pointed to from the warning box at the top


def test_warnings_before_the_run_directory_are_kept(tmp_path: Path) -> None:
    before = warnings.showwarning
    with pytest.warns(RuntimeWarning), capture_warnings() as log:
        warnings.warn("early", RuntimeWarning, stacklevel=1)  # before any folder exists
        log.attach(tmp_path / "warnings.json")
        warnings.warn("late", RuntimeWarning, stacklevel=1)
    data = json.loads((tmp_path / "warnings.json").read_text())
    assert [w["message"] for w in data["warnings"]] == ["early", "late"]
    assert warnings.showwarning is before  # the previous handler is back
