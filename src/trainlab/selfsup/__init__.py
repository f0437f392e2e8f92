"""Self-supervised learning tools: reading out frozen features (linear probe, k-NN).

The objectives themselves are tasks (``simclr`` in :mod:`trainlab.tasks.simclr`), trained by
the one trainer like any other.
"""

from trainlab.selfsup.probe import ProbeRow, knn_accuracy, linear_probe, probe_runs

__all__ = ["ProbeRow", "knn_accuracy", "linear_probe", "probe_runs"]
