"""Making a trained model smaller and faster: int8 quantization (and, to come, pruning and
distillation). Every tool reads a run directory and writes a new folder; the run stays as it was.

>>> from trainlab.compress import quantize_run  # doctest: +SKIP
>>> quantize_run("runs/fmnist", "static", "runs/fmnist-int8")["rows"]  # doctest: +SKIP
"""

from trainlab.compress.measure import Row, accuracy, latency_ms, measure, throughput
from trainlab.compress.quantize import QuantizeError, quantize_run

__all__ = [
    "QuantizeError",
    "Row",
    "accuracy",
    "latency_ms",
    "measure",
    "quantize_run",
    "throughput",
]
