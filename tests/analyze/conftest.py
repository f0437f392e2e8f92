"""The machine is shared and has 2 cores: one torch thread per test process."""

import torch

torch.set_num_threads(1)
