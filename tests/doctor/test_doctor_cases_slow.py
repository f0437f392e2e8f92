"""The validation sweep: every case recipe, in every mode it lists, ranks its cause first.

Slow tier (`pytest -m slow`): the run mode trains each case (seconds on digits, ~15 s for the
Fashion-MNIST overfitting case). `python tests/doctor/validate.py` prints the same as a hit
rate.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from doctor_support import CASES
from validate import run_case

TABLE = yaml.safe_load((CASES / "cases.yaml").read_text())
PAIRS = [(name, mode) for name, row in TABLE.items() for mode in row["modes"]]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "mode"), PAIRS, ids=[f"{c}-{m}" for c, m in PAIRS])
def test_case_cause_is_ranked_first(case: str, mode: str, tmp_path: Path) -> None:
    outcome = run_case(case, mode, TABLE[case]["expect"], tmp_path, seed=0)
    assert not outcome.error, outcome.error
    assert outcome.hit, f"expected {outcome.expect} first, got {outcome.ranked}"


def test_every_case_file_is_listed_and_every_listed_case_exists() -> None:
    files = {p.stem for p in CASES.glob("*.yaml")} - {"cases"}
    assert files == set(TABLE)
    assert all(set(row["modes"]) <= {"preflight", "run"} for row in TABLE.values())
