"""Text (LM and classification), CSV windows, synthetic sequence tasks, padding and bucketing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.data.base import DATA
from trainlab.data.collate import BucketBatchSampler, pad_collate
from trainlab.errors import DataError

Write = Callable[[str, str], Path]


def test_char_lm_blocks_are_shifted_and_vocab_from_train(write: Write) -> None:
    text = "abcdefgh" * 40 + "XYZ" * 5  # the capitals only appear at the very end (test part)
    m = DATA.get("text_lm")(path=str(write("t.txt", text)), seq_len=8, test_fraction=0.1)
    m.setup("cpu")
    x, y = m.splits["train"]
    assert x.dtype == torch.int64 and x.shape[1] == 8
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one token
    assert m.num_classes == 2 + 8  # pad, unk, a..h: test-only characters are not in the vocab
    xt, _ = m.splits["test"]
    assert (xt == 1).any()  # unseen capitals → <unk>
    xb, _ = next(m.loader("train").iter_epoch(0))
    assert xb.dtype == torch.int64  # token ids are not turned into floats


def test_word_lm_and_bad_text_files(write: Write, tmp_path: Path) -> None:
    m = DATA.get("text_lm")(
        path=str(write("w.txt", "the cat sat . " * 60)), level="word", seq_len=4
    )
    m.setup("cpu")
    assert m.describe()["vocab_size"] == 6
    with pytest.raises(DataError, match=r"e\.txt: empty text file"):
        DATA.get("text_lm")(path=str(write("e.txt", ""))).setup("cpu")
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"hello\nworld\xff\xfe\n")
    with pytest.raises(DataError, match=r"bin\.txt: line 2: not UTF-8"):
        DATA.get("text_lm")(path=str(bad)).setup("cpu")
    with pytest.raises(
        DataError, match=r"s\.txt: the train split has 3 tokens, fewer than seq_len\+1 = 9"
    ):
        DATA.get("text_lm")(path=str(write("s.txt", "abc")), seq_len=8).setup("cpu")


def test_text_classification_from_tsv(write: Write) -> None:
    rows = ["text\tlabel"] + [f"good fine film {i}\tpos" for i in range(10)]
    rows += [f"bad awful film {i}\tneg" for i in range(10)]
    m = DATA.get("text_csv")(path=str(write("r.tsv", "\n".join(rows))), max_len=6)
    m.setup("cpu")
    assert m.classes == ["neg", "pos"] and m.num_classes == 2
    x, y = m.splits["train"]
    assert x.shape[1] == 6 and x.dtype == torch.int64 and (x[:, 4:] == 0).all()  # padded
    with pytest.raises(DataError, match=r"n\.csv: line 3, column 'text': empty"):
        DATA.get("text_csv")(path=str(write("n.csv", "text,label\na,x\n,y\n"))).setup("cpu")
    with pytest.raises(DataError, match=r"no column 'label'"):
        DATA.get("text_csv")(path=str(write("m.csv", "text,lab\na,x\n"))).setup("cpu")


def test_text_classification_skips_bad_rows(write: Write) -> None:
    rows = ["text,label"] + [f"good film {i},pos" for i in range(10)]
    rows += [f"bad film {i},neg" for i in range(10)]
    rows[4] = ",pos"  # line 5: empty text
    rows[8] = "so,so,film,neg"  # line 9: 4 fields, the header has 2
    rows[12] = "meh,"  # line 13: empty label
    p = write("t.csv", "\n".join(rows))
    with pytest.raises(DataError, match=r"t\.csv: line 9: 4 fields, the header has 2"):
        DATA.get("text_csv")(path=str(p)).setup("cpu")
    m = DATA.get("text_csv")(path=str(p), on_error="skip")
    with pytest.warns(UserWarning, match=r"t\.csv: skipped 3 bad row\(s\).*lines 5, 9, 13"):
        m.setup("cpu")
    assert sum(m.sizes.values()) == 17 and m.classes == ["neg", "pos"]
    kept = set(np.concatenate(list(m.split_indices.values())).tolist())
    assert kept.isdisjoint({3, 10}) and len(kept) == 17  # table rows of lines 5 and 13
    assert m.describe()["skipped_rows"][1] == "line 9: 4 fields, the header has 2"


def test_csv_windows_chronological_and_train_scaled(write: Write) -> None:
    lines = ["t,temp,load"] + [f"{i},{i * 0.5},{(i % 7) * 2}" for i in range(100)]
    m = DATA.get("csv_windows")(
        path=str(write("s.csv", "\n".join(lines))),
        columns=["temp", "load"],
        targets=["temp"],
        window=5,
        horizon=2,
    )
    m.setup("cpu")
    x, y = m.splits["train"]
    assert x.shape[1:] == (5, 2) and y.shape[1:] == (2, 1) and m.num_classes is None
    assert len(x) == 70 - 7 + 1  # windows stay inside the 70 training rows
    # temp is linear in time: the target continues the window's last step by one increment.
    step = float(x[0, 1, 0] - x[0, 0, 0])
    assert float(y[0, 0, 0] - x[0, -1, 0]) == pytest.approx(step, rel=1e-4)
    assert m.describe()["column_mean"][0] == pytest.approx(0.5 * 69 / 2)  # train rows only
    bad = write("b.csv", "\n".join(lines[:10] + ["9,oops,1"]))
    with pytest.raises(DataError, match=r"b\.csv: line 11, column 'temp': 'oops' is not a number"):
        DATA.get("csv_windows")(path=str(bad), columns=["temp"]).setup("cpu")


@pytest.mark.parametrize("task", ["copy", "reverse", "sort", "adding", "sine"])
def test_sequence_tasks(task: str) -> None:
    m = DATA.get("seq_task")(task=task, n_train=64, n_val=16, n_test=16, seq_len=6)
    m.setup("cpu")
    x, y = m.splits["train"]
    if task in ("copy", "reverse", "sort"):
        assert x.dtype == torch.int64 and m.num_classes == 12 and x.min() >= 2
        expect = {"copy": x, "reverse": x.flip(1), "sort": x.sort(1).values}[task]
        assert torch.equal(y, expect)
    elif task == "adding":
        assert x.shape[1:] == (6, 2) and (x[..., 1].sum(1) == 2).all()
        assert torch.allclose(y, (x[..., 0] * x[..., 1]).sum(1))
    else:
        assert x.shape[1:] == (6, 1) and y.shape == (64,) and y.abs().max() <= 1.0


def test_pad_collate_masks_and_lengths() -> None:
    batch = [(torch.arange(1, 4), torch.tensor([1, 2, 3])), (torch.tensor([7]), torch.tensor([4]))]
    out = pad_collate(batch)
    assert out.x.tolist() == [[1, 2, 3], [7, 0, 0]] and out.lengths.tolist() == [3, 1]
    assert out.mask.tolist() == [[True, True, True], [True, False, False]]
    assert out.y.tolist() == [[1, 2, 3], [4, -100, -100]]  # ignored by cross_entropy
    feats = pad_collate([(torch.ones(2, 3), 0), (torch.ones(4, 3), 1)])
    assert feats.x.shape == (2, 4, 3) and feats.y.tolist() == [0, 1]


def test_bucketing_reduces_padding_and_covers_every_sample() -> None:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 100, (1000,), generator=gen).tolist()
    sampler = BucketBatchSampler(lengths, 20, seed=0, pool=10)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    pad = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    naive = sum(
        max(lengths[a : a + 20]) * 20 - sum(lengths[a : a + 20]) for a in range(0, 1000, 20)
    )
    assert pad < naive / 5
    sampler.set_epoch(1)
    assert list(sampler) != batches and list(sampler) == list(sampler)  # seeded per epoch
