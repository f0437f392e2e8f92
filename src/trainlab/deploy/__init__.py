"""Shipping a trained model: export it (ONNX, pt2, TorchScript) with what it needs to be used,
and predict with a run directory or an exported file.

>>> from trainlab.deploy import export_run, predict  # doctest: +SKIP
>>> export_run("runs/fmnist", "onnx", "fmnist.onnx")["check"]["same_classes"]  # doctest: +SKIP
True
"""

from trainlab.deploy.artefact import Artefact, load_artefact, open_model
from trainlab.deploy.export import ExportError, export_run
from trainlab.deploy.predict import Prediction, predict, read_inputs
from trainlab.deploy.source import LoadedRun, dir_digest, input_spec, load_run

__all__ = [
    "Artefact",
    "ExportError",
    "LoadedRun",
    "Prediction",
    "dir_digest",
    "export_run",
    "input_spec",
    "load_artefact",
    "load_run",
    "open_model",
    "predict",
    "read_inputs",
]
