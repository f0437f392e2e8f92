"""Trainer.fit and a plain hand-written PyTorch loop end with bitwise-equal weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainlab import Trainer, build_data, create_model
from trainlab.tasks.classification import ClassificationTask


def hand_written_loop(model, data, epochs: int, lr: float) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    loader = data.loader("train")
    for epoch in range(epochs):
        model.train()
        for x, y in loader.iter_epoch(epoch):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_fit_equals_hand_written_loop_bitwise() -> None:
    data = build_data(
        "synthetic",
        num_classes=4,
        shape=[1, 16, 16],
        n_train=160,
        n_val=32,
        n_test=32,
        batch_size=32,
        noise=2.0,
        augment={"flip": True, "translate": 1},
    )
    data.setup("cpu")
    # LeNet with batch norm and dropout: running stats and the dropout RNG must match too.
    opts = {"num_classes": 4, "image_size": 16, "conv_bn": True, "dropout": 0.3}
    torch.manual_seed(1)
    ours = create_model("lenet5", **opts)
    torch.manual_seed(1)
    theirs = create_model("lenet5", **opts)
    assert all(
        torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values())
    )

    torch.manual_seed(7)
    opt = torch.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    trainer = Trainer(epochs=3, device="cpu", precision="fp32", log_every=2)
    state = trainer.fit(ours, ClassificationTask(), data, opt)
    torch.manual_seed(7)
    hand_written_loop(theirs, data, epochs=3, lr=0.05)

    assert state.step == 3 * 5 and state.epoch == 3
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name
    # And training did something: weights moved from their initial values.
    torch.manual_seed(1)
    init = create_model("lenet5", **opts)
    assert not torch.equal(init.classifier[-1].weight, ours.classifier[-1].weight)
