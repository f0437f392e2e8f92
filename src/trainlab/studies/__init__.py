"""Studies on top of ordinary runs: LR finder, batch-size finder, sweeps, search,
cross-validation and the statistics that compare groups of runs."""

from trainlab.studies.stats import Difference, Summary, compare, format_summary, summarize

__all__ = ["Difference", "Summary", "compare", "format_summary", "summarize"]
