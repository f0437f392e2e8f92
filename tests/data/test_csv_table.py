"""The `csv` source: encoding, train-only statistics, missing values and every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.data.base import DATA
from trainlab.data.csv_table import CsvTable
from trainlab.data.inspect import summarize
from trainlab.errors import ConfigError, DataError

Write = Callable[[str, str], Path]
Text = Callable[..., str]


def build(path: Path, **kw: object) -> CsvTable:
    m = DATA.get("csv")(path=str(path), **{"target": "species", **kw})
    m.setup("cpu")
    return m


def test_onehot_classification_shapes_and_train_only_stats(write: Write, table_text: Text) -> None:
    m = build(write("t.csv", table_text()), categorical=["colour"])
    assert m.num_classes == 3 and m.classes == ["k0", "k1", "k2"]
    assert m.feature_names == ["sepal", "petal", "colour=blue", "colour=red"]
    assert m.sizes == {"train": 22, "val": 4, "test": 4}  # round(30 × 0.15) = 4
    x_tr = m.splits["train"][0]
    # Statistics come from the train split only: they equal train's, not the whole file's.
    assert m.mean[:2] == pytest.approx(x_tr[:, :2].double().mean(0).tolist(), rel=1e-5)
    assert m.mean[2:] == [0.0, 0.0] and m.std[2:] == [1.0, 1.0]  # one-hot left unscaled
    xb, yb = next(m.loader("train").iter_epoch(0))
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64
    full = torch.cat([x for x, _ in m.loader("test").iter_epoch(0)])
    assert set(full[:, 2:].sum(1).tolist()) <= {0.0, 1.0}
    # Stratified: every class present in every split.
    for _, y in m.splits.values():
        assert set(y.tolist()) == {0, 1, 2}


def test_codes_encoding_and_regression(write: Write, table_text: Text) -> None:
    p = write("t.csv", table_text())
    m = build(p, categorical=["colour"], encoding="codes")
    assert m.feature_names == ["sepal", "petal", "colour"] and m.codes == [(2, 3)]
    assert set(m.splits["train"][0][:, 2].tolist()) <= {1.0, 2.0}
    r = build(p, target="sepal", task="regression", categorical=["colour", "species"])
    assert r.num_classes is None and r.splits["train"][1].dtype == torch.float32


def test_missing_policies(write: Write, table_text: Text) -> None:
    lines = table_text().splitlines()
    lines[2] = "NA," + lines[2].split(",", 1)[1]  # a missing numeric cell on line 3
    text = "\n".join(lines)
    p = write("m.csv", text)
    with pytest.raises(DataError, match=r"m\.csv: line 3, column 'sepal': missing value"):
        build(p, categorical=["colour"])
    dropped = build(p, categorical=["colour"], missing="drop")
    assert sum(dropped.sizes.values()) == 29
    filled = build(p, categorical=["colour"], missing="fill")
    assert sum(filled.sizes.values()) == 30
    row = int(np.flatnonzero(np.concatenate(list(filled.split_indices.values())) == 1)[0])
    x_all = torch.cat([x for x, _ in filled.splits.values()])
    assert x_all[row, 0].item() == pytest.approx(filled.mean[0])  # filled with the train mean


def test_categorical_missing_filled_with_train_mode(write: Write, table_text: Text) -> None:
    text = table_text(20).replace(",red,", ",,", 1)
    m = build(write("c.csv", text), categorical=["colour"], missing="fill")
    x = torch.cat([x for x, _ in m.splits.values()])
    assert torch.all(x[:, 2:].sum(1) == 1)  # every row, the filled one too, has one category


@pytest.mark.parametrize(
    ("text", "kw", "pattern"),
    [
        ("a,species\n1,x\nabc,y\n", {}, r"b\.csv: line 3, column 'a': 'abc' is not a number"),
        ("a,species\n1,x\ninf,y\n", {}, r"line 3, column 'a': 'inf' is not finite"),
        ("a,b\n1,2\n", {}, r"b\.csv: no target column 'species'; columns: a, b"),
        ("", {}, r"b\.csv: empty file"),
        ("a,species\n", {}, r"b\.csv: no data rows"),
        ("a,species\n1,x,3\n", {}, r"b\.csv: line 2: 3 fields, the header has 2"),
        ("a,species\n" + "1,x\n" * 20, {}, r"only one class \('x'\)"),
        ("a,species\n" + "1,x\n2,y\n" * 10 + "3,z\n", {}, r"class 'z' has 1 sample"),
        (
            "a,species\n" + "1,x\n2,y\n" * 10,
            {"classes": ["x", "q"]},
            r"line 3, column 'species': label 'y' is not one of data.classes \(x, q\)",
        ),
        (
            "a,species\n" + "1,x\n2,y\n" * 3,
            {},
            r"the test split is 1 sample\(s\) for 2 classes \(6 samples",
        ),
        (
            "v,w\n1,4\n2,5\n3,6\n",
            {"task": "regression", "target": "v"},
            r"b\.csv \(3 usable rows\): the test split is empty",
        ),
        ("a,species\nnan,x\n", {}, r"line 2, column 'a': missing value"),
        ("a,species\n\xff,x\n", {}, r"b\.csv: line 2, column 'a': '\xff' is not a number"),
    ],
)
def test_bad_input_names_file_row_column(
    write: Write, text: str, kw: dict[str, object], pattern: str
) -> None:
    with pytest.raises(DataError, match=pattern):
        build(write("b.csv", text), **kw)


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes(b"a,species\n1,caf\xe9\n")
    with pytest.raises(DataError, match=r"latin\.csv: line 2: not UTF-8"):
        build(p)
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        build(tmp_path / "nope.csv")


def test_bad_options_are_config_errors(write: Write, table_text: Text) -> None:
    p = write("t.csv", table_text())
    with pytest.raises(ConfigError, match="data.val_fraction"):
        build(p, val_fraction=1.5)
    with pytest.raises(DataError, match="no feature column 'colr'.*did you mean 'colour'"):
        build(p, categorical=["colr"])


def test_tsv_and_determinism(write: Write, table_text: Text) -> None:
    p = write("t.tsv", table_text().replace(",", "\t"))
    a, b = build(p, categorical=["colour"]), build(p, categorical=["colour"])
    c = build(p, categorical=["colour"], split_seed=1)
    assert all(np.array_equal(a.split_indices[k], b.split_indices[k]) for k in a.split_indices)
    assert not np.array_equal(a.split_indices["train"], c.split_indices["train"])
    xa, _ = next(a.loader("train").iter_epoch(3))
    xb, _ = next(b.loader("train").iter_epoch(3))
    assert torch.equal(xa, xb)


# -- data.on_error: skip ---------------------------------------------------------------------


def _with_bad_rows(text: str) -> str:
    lines = text.splitlines()
    lines[3] = "abc," + lines[3].split(",", 1)[1]  # line 4: non-numeric numeric cell
    lines[6] = lines[6] + ",extra"  # line 7: 5 fields, the header has 4
    lines[9] = lines[9].rsplit(",", 1)[0] + ",k9"  # line 10: label outside data.classes
    lines[12] = "inf," + lines[12].split(",", 1)[1]  # line 13: infinite feature
    return "\n".join(lines) + "\n"


def test_on_error_skip_drops_counts_and_reports_bad_rows(write: Write, table_text: Text) -> None:
    p = write("bad.csv", _with_bad_rows(table_text(10)))
    opts = {"categorical": ["colour"], "classes": ["k0", "k1", "k2"]}
    with pytest.raises(DataError, match=r"bad\.csv: line 7: 5 fields, the header has 4"):
        build(p, **opts)  # the default stops at a bad row (ragged ones are found first)
    fixed = write("fixed.csv", p.read_text().replace(",extra", ""))
    with pytest.raises(DataError, match=r"line 4, column 'sepal': 'abc' is not a number"):
        build(fixed, **opts)
    with pytest.warns(UserWarning, match=r"bad\.csv: skipped 4 bad row\(s\).*lines 4, 7, 10, 13"):
        m = build(p, on_error="skip", **opts)
    assert sum(m.sizes.values()) == 26
    d = m.describe()
    assert d["skipped"] == 4
    assert d["skipped_rows"] == [
        "line 4: column 'sepal': 'abc' is not a number",
        "line 7: 5 fields, the header has 4",
        "line 10: column 'species': label 'k9' is not one of data.classes (k0, k1, k2)",
        "line 13: column 'sepal': 'inf' is not finite",
    ]
    # Table rows (the ragged line 7 is none): lines 4, 10, 13 are rows 2, 7, 10.
    kept = np.concatenate(list(m.split_indices.values()))
    assert set(range(29)) - set(kept.tolist()) == {2, 7, 10} and len(kept) == 26
    x = torch.cat([x for x, _ in m.splits.values()])
    assert torch.isfinite(x).all()
    assert summarize(m)["describe"]["skipped"] == 4  # what `trainlab data` writes out


def test_on_error_skip_keeps_the_missing_policy_and_needs_usable_rows(
    write: Write, table_text: Text
) -> None:
    lines = _with_bad_rows(table_text(10)).splitlines()
    lines[15] = "NA," + lines[15].split(",", 1)[1]  # line 16: a missing cell, not a bad one
    p = write("mix.csv", "\n".join(lines))
    opts = {"categorical": ["colour"], "classes": ["k0", "k1", "k2"], "on_error": "skip"}
    with pytest.raises(DataError, match=r"line 16, column 'sepal': missing value"):
        build(p, **opts)
    with pytest.warns(UserWarning, match="skipped 4 bad row"):
        m = build(p, missing="drop", **opts)
    assert sum(m.sizes.values()) == 25
    r = write("r.csv", "a,v\n1,2\n2,x\n3,4\n4,5\n5,6\n6,7\n7,8\n")
    with pytest.warns(UserWarning, match=r"line 3: column 'v': 'x' is not a number"):
        reg = build(r, target="v", task="regression", on_error="skip", val_fraction=0.2,
                    test_fraction=0.2)  # fmt: skip
    assert sum(reg.sizes.values()) == 6
    allbad = write("all.csv", "a,species\nx,k0\ny,k1\n1,2,3\n")
    with pytest.raises(DataError, match=r"all\.csv: no usable rows \(all 3 rows are bad; first: "
                       r"line 2: column 'a': 'x' is not a number\)"):  # fmt: skip
        build(allbad, on_error="skip")
    ragged = write("ragged.csv", "a,species\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"no data rows after the header \(all 2 rows are bad"):
        build(ragged, on_error="skip")
