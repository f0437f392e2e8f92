"""FastTensorLoader yields exactly TensorLoader's batches, only faster; raw mode keeps dtype."""

from __future__ import annotations

import pytest
import torch

from trainlab.data.augment import Augment
from trainlab.data.fast import FastTensorLoader, window_store
from trainlab.data.memory import TensorLoader


@pytest.mark.parametrize(
    "aug",
    [
        Augment(),
        Augment(flip=True),
        Augment(translate=2),
        Augment(flip=True, translate=3),
        Augment(flip=True, translate=1, cutout=3),
        Augment(cutout=4),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_bitwise_equal_to_tensor_loader(aug: Augment, channels: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (70, channels, 9, 7), generator=gen, dtype=torch.uint8)
    y = torch.arange(70)
    kw = dict(
        batch_size=16,
        shuffle=True,
        seed=5,
        augment=aug,
        mean=[3.0] * channels,
        std=[2.0] * channels,
    )
    ref, fast = TensorLoader(x, y, **kw), FastTensorLoader(x, y, **kw)  # type: ignore[arg-type]
    for epoch in (0, 1):
        for (xr, yr), (xf, yf) in zip(
            ref.iter_epoch(epoch, 1), fast.iter_epoch(epoch, 1), strict=True
        ):
            assert torch.equal(xr, xf) and torch.equal(yr, yf)


def test_window_store_picks_shifted_mirrored_windows() -> None:
    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.uint8).view(2, 1, 3, 4)
    win = window_store(x, 1, flip=True)
    hp, wp = 5, 6
    assert torch.equal(win[1 * hp * wp + 1 * wp + 1], x[1])  # image 1, centred
    assert torch.equal(win[(2 + 0) * hp * wp + wp + 1], x[0].flip(-1))  # mirror of image 0
    shifted = win[0 * hp * wp + 0 * wp + 2]  # dy=-1, dx=+1: top row zero, content from x
    assert shifted[0, 0].tolist() == [0, 0, 0, 0] and shifted[0, 1, :3].tolist() == [1, 2, 3]


def test_raw_mode_keeps_token_dtype() -> None:
    x = torch.randint(0, 50, (10, 6))
    (xb, _), *_ = FastTensorLoader(x, x, batch_size=4, raw=True).iter_epoch(0)
    assert xb.dtype == torch.int64 and torch.equal(xb, x[:4])
