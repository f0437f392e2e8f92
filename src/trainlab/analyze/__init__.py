"""Model analysis: what a model costs in parameters, FLOPs, memory and time.

``trainlab analyze MODEL_OR_RECIPE`` and ``trainlab profile RECIPE`` call :func:`run_analyze`
and :func:`run_profile`; each section is also a function of its own:

>>> from trainlab.analyze import model_target, count_flops
>>> t = model_target("lenet5", device="cpu")
>>> count_flops(t.model, t.make_sample(1).inputs).macs > 0
True
"""

from trainlab.analyze.analysis import AnalysisReport, AnalyzeOptions, analyze, run_analyze
from trainlab.analyze.flops import FlopReport, count_flops
from trainlab.analyze.layers import LayerRow, LayerTable, layer_table
from trainlab.analyze.memory import MemoryReport, memory_report, optimizer_state_bytes
from trainlab.analyze.profile import ProfileReport, profile_recipe, run_profile
from trainlab.analyze.sweep import SweepResult, SweepRow, largest_batch, sweep
from trainlab.analyze.target import Sample, Target, model_target, recipe_target, resolve_target

__all__ = [
    "AnalysisReport",
    "AnalyzeOptions",
    "FlopReport",
    "LayerRow",
    "LayerTable",
    "MemoryReport",
    "ProfileReport",
    "Sample",
    "SweepResult",
    "SweepRow",
    "Target",
    "analyze",
    "count_flops",
    "largest_batch",
    "layer_table",
    "memory_report",
    "model_target",
    "optimizer_state_bytes",
    "profile_recipe",
    "recipe_target",
    "resolve_target",
    "run_analyze",
    "run_profile",
    "sweep",
]
