"""Report tests: one real tiny run (with TensorBoard), shared by the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reports_support import HIST_EVERY, TINY

torch.set_num_threads(1)  # the machine's 2 cores are shared: never oversubscribe


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run (2 epochs × 3 steps) with a TensorBoard logger writing into ``tb/``."""
    from trainlab.config.load import parse_config
    from trainlab.run import train_run

    run = tmp_path_factory.mktemp("runs") / "tiny"
    assert TINY["train"]["hist_every"] == HIST_EVERY  # the recipe's own TensorBoard logger
    train_run(parse_config(TINY), run_dir=run, progress=False)
    return run
