"""Graph tests: PyTorch Geometric is the `graphs` extra (in `dev`); without it they skip."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip(
    "torch_geometric", reason="PyTorch Geometric is not installed: pip install 'trainlab[graphs]'"
)
torch.set_num_threads(1)  # the machine has 2 cores and pytest may run beside other jobs
