"""The diagnosis on the terminal (rich) and as a ``report.html`` section."""

from __future__ import annotations

import json
from typing import Any

from trainlab.doctor.findings import Diagnosis, Finding

__all__ = ["print_diagnosis", "html_section", "evidence_text"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def evidence_text(f: Finding, limit: int = 160) -> str:
    """The evidence as one compact line (numbers to 4 significant digits)."""
    text = json.dumps(_round(f.evidence), separators=(", ", ": "), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.4g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_round(x) for x in v[:12]]
    return v


def print_diagnosis(diag: Diagnosis, console: Any = None, verbose: bool = False) -> None:
    """Ranked findings: severity, symptom, evidence, cause, fix; then the combined fix."""
    from rich.console import Console

    console = console or Console()
    shown = diag.findings if verbose else [f for f in diag.findings if f.severity != "info"]
    console.print(f"[bold]doctor[/bold] {diag.target} ({diag.kind}): "
                  f"{len(diag.warnings)} problem(s), "
                  f"{len(diag.findings) - len(diag.warnings)} note(s)")  # fmt: skip
    for i, f in enumerate(shown, 1):
        style = _STYLE[f.severity]
        console.print(f"\n[{style}]{i}. {f.severity.upper()}[/{style}] [bold]{f.cause}[/bold] "
                      f"({f.rule})", highlight=False)  # fmt: skip
        console.print(f"   symptom:  {f.symptom}", highlight=False, soft_wrap=True)
        console.print(f"   evidence: {evidence_text(f)}", highlight=False, soft_wrap=True)
        console.print(f"   cause:    {f.explanation}", highlight=False, soft_wrap=True)
        if f.fix:
            console.print(f"   fix:      {' '.join(f.fix)}", highlight=False)
        if f.note:
            console.print(f"   also:     {f.note}", highlight=False, soft_wrap=True)
    if not shown:
        console.print("no problems found" + ("" if verbose else " (--verbose shows notes)"))
    if diag.fixes:
        fixes = " ".join(diag.fixes)
        console.print(f"\n[bold]suggested overrides:[/bold] {fixes}", highlight=False)
    if diag.skipped:
        skipped = "; ".join(f"{k}: {v}" for k, v in diag.skipped.items())
        console.print(f"[dim]not checked: {skipped}[/dim]", highlight=False)


def html_section(diag: Diagnosis) -> str:
    """The findings as an HTML table for ``report.html`` (empty string when none)."""
    from trainlab.reports.page import esc, section, table

    if not diag.findings:
        return section("Diagnosis", "<p>The doctor found nothing to report in this run's "
                       "records.</p>")  # fmt: skip
    rows = [
        [f.severity, f.cause, f.symptom, evidence_text(f, 240), f.explanation,
         " ".join(f.fix) or f.note or "—"]
        for f in diag.findings
    ]  # fmt: skip
    intro = (
        f"<p>{len(diag.warnings)} problem(s) found by <code>trainlab doctor {esc(diag.target)}"
        "</code>, most likely cause first.</p>"
    )
    fix = (f"<p>Suggested overrides: <code>{esc(' '.join(diag.fixes))}</code></p>"
           if diag.fixes else "")  # fmt: skip
    return section(
        "Diagnosis", intro,
        table(["severity", "cause", "symptom", "evidence", "likely cause", "fix"], rows), fix,
    )  # fmt: skip
