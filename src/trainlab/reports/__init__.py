"""Reports: figures, a self-contained ``report.html`` per run, and side-by-side comparisons.

Everything here reads run directories only. matplotlib is imported when a figure is drawn.
"""

from trainlab.reports.compare import Comparison, compare_runs, write_comparison
from trainlab.reports.interpret import Interpretation, interpret
from trainlab.reports.report import build_report
from trainlab.reports.rundata import ReportError, RunData, find_runs, flatten, load_run
from trainlab.reports.runs import list_runs

__all__ = [
    "Comparison",
    "Interpretation",
    "ReportError",
    "RunData",
    "build_report",
    "compare_runs",
    "find_runs",
    "flatten",
    "interpret",
    "list_runs",
    "load_run",
    "write_comparison",
]
