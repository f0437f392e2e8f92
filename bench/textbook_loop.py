"""Speed-up of trainlab's default recipe over the textbook's plain training loop.

The plain loop, as Dive into Deep Learning writes it (ch. "LeNet", ``train_ch6``): torchvision's
``datasets.FashionMNIST`` read from the IDX files (a temporary copy of
/usr/share/datasets/fashion-mnist, gunzipped where torchvision looks for them: no download), a
``DataLoader`` with default settings (0 workers) over PIL images → ``ToTensor``, batch 256,
LeNet-5 with sigmoids and average pooling (Xavier init), SGD lr 0.9, fp32, the textbook's
per-batch loss/accuracy accumulation, test accuracy after every epoch. Its best test accuracy
and the wall time at which it first reached it are recorded. ``--model simple_cnn`` swaps in a
ReLU/max-pool CNN with SGD + momentum instead.

Then, in the same process, trainlab's default recipe through the Python API
(``build_experiment`` + ``Trainer.fit``, the recipe's callbacks) with the test split evaluated
after every epoch; it stops at the first epoch whose test accuracy reaches the plain loop's
best. ``textbook_loop_speedup`` = plain loop's time ÷ trainlab's time to that accuracy.

Both clocks start after the imports (done once for the process, trainlab's lazy ones for
scikit-learn and torchmetrics included; ``time_to_93_s`` in time_to_accuracy.py counts from
process start) and include reading the dataset, building the model, training and whatever
validation the loop itself does; the per-epoch test evaluation done for this measurement is
subtracted from both. With ``--reps N``
the pair is run N times and the median ratio is reported.

    .venv/bin/python bench/textbook_loop.py [--epochs 10] [--reps 1] [--quick] [key=value ...]

Defaults take about 4-6 minutes on 2 quiet cores. Extra ``key=value`` arguments are overrides
of the trainlab recipe.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import sklearn.model_selection  # noqa: F401 - imported lazily by trainlab: kept off its clock
import torch
import torchmetrics  # noqa: F401 - the same (the plain loop's torchvision is imported here too)
from _common import RECIPE, TestEachEpoch, fmt_spread
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from trainlab import load_config
from trainlab.data.fashion_mnist import FILES, find_files, load_arrays
from trainlab.experiment import build_callbacks, build_experiment


def lenet() -> nn.Module:
    """d2l's LeNet-5: sigmoid activations, average pooling, 28×28 input padded by 2."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def simple_cnn() -> nn.Module:
    """The tutorials' "simple CNN": two conv/ReLU/max-pool stages and two linear layers."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )  # fmt: skip


# model builder, SGD keyword arguments (d2l: lr 0.9 for LeNet; the tutorials: lr 0.01, momentum)
MODELS = {
    "lenet": (lenet, {"lr": 0.9}),
    "simple_cnn": (simple_cnn, {"lr": 0.01, "momentum": 0.9}),
}


def torchvision_root(tmp: Path) -> Path:
    """A torchvision ``root`` holding FashionMNIST/raw/<the four files, gunzipped>."""
    src = find_files(None, download=True)
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES.values():
        with gzip.open(src / name) as fin, open(raw / name.removesuffix(".gz"), "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return tmp


def evaluate_accuracy(net: nn.Module, loader: DataLoader) -> float:
    """d2l's ``evaluate_accuracy``: eval mode, no gradients, correct / total."""
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((net(x).argmax(dim=1) == y).sum())
            total += len(y)
    return correct / total


def plain_loop(root: Path, args: argparse.Namespace) -> list[tuple[int, float, float]]:
    """The textbook loop; returns (epoch, wall s without test evaluation, test acc) per epoch."""
    torch.manual_seed(args.seed)
    t0, excluded = time.perf_counter(), 0.0
    to_tensor = transforms.ToTensor()
    train = datasets.FashionMNIST(str(root), train=True, transform=to_tensor, download=False)
    test = datasets.FashionMNIST(str(root), train=False, transform=to_tensor, download=False)
    if args.train_subset:
        train = Subset(train, range(args.train_subset))
    if args.test_subset:
        test = Subset(test, range(args.test_subset))
    train_iter = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_iter = DataLoader(test, batch_size=args.batch_size, shuffle=False)
    build, sgd = MODELS[args.model]
    net = build()
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), **sgd)
    rows = []
    for epoch in range(1, args.epochs + 1):
        net.train()
        loss_sum, correct, n = 0.0, 0, 0  # the textbook's Accumulator
        for x, y in train_iter:
            opt.zero_grad()
            y_hat = net(x)
            loss = loss_fn(y_hat, y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += float(loss) * len(y)
                correct += int((y_hat.argmax(dim=1) == y).sum())
                n += len(y)
        now = time.perf_counter()
        acc = evaluate_accuracy(net, test_iter)
        rows.append((epoch, now - t0 - excluded, acc))
        print(
            f"  plain  epoch {epoch:2d}  {rows[-1][1]:7.1f} s  train loss {loss_sum / n:.3f}  "
            f"train acc {correct / n:.4f}  test acc {acc:.4f}",
            flush=True,
        )
        excluded += time.perf_counter() - now
    return rows


EVERY = 20  # optimizer steps between test scores of the trainlab run (211 steps per epoch)


def trainlab_run(target: float, overrides: list[str]) -> TestEachEpoch:
    """The default recipe until its test accuracy reaches ``target`` (or its epochs end)."""
    load_arrays.cache_clear()  # each repetition reads the dataset, like the plain loop does
    t0 = time.perf_counter()
    cfg = load_config(RECIPE, overrides)
    probe = TestEachEpoch(t0, stop_at=target, every_steps=EVERY)
    exp = build_experiment(cfg, callbacks=[*build_callbacks(cfg), probe])
    probe.exp = exp
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    for epoch, wall, val, test in probe.rows:
        print(f"  trainlab epoch {epoch:5.2f}  {wall:7.1f} s  val {val:.4f}  test {test:.4f}")
    return probe


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Speed-up of trainlab over the textbook's plain loop: wall time of a "
        "d2l-style loop (torchvision FashionMNIST + DataLoader + ToTensor, LeNet, SGD, fp32, "
        "batch 256) to its best test accuracy in --epochs epochs, against the wall time of "
        "trainlab's default recipe (Python API, same process) to that accuracy. Prints "
        "`bench textbook_loop_speedup <x> x`. Default run: ~4-6 min on 2 quiet cores.",
    )
    ap.add_argument("overrides", nargs="*", help="overrides of the trainlab recipe (key=value)")
    ap.add_argument("--epochs", type=int, default=10, help="plain-loop epochs (default 10)")
    ap.add_argument("--model", choices=sorted(MODELS), default="lenet", help="plain-loop model")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=1, help="repetitions of the pair (median ratio)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-subset", type=int, default=0, help="plain loop: first N train images")
    ap.add_argument("--test-subset", type=int, default=0, help="plain loop: first N test images")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 2 epochs on 2,000/1,000 images (figures meaningless)",
    )
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.train_subset, args.test_subset = 2, 2000, 1000
        args.overrides = ["train.epochs=2", "data.subset=2000", "data.test_subset=1000",
                          *args.overrides]  # fmt: skip
    return args


def main() -> None:
    args = parse_args()
    plain_s: list[float] = []
    ours_s: list[float] = []
    ratios: list[float] = []
    targets: list[float] = []
    with tempfile.TemporaryDirectory(prefix="textbook_loop_") as tmp:
        root = torchvision_root(Path(tmp))
        for rep in range(args.reps):
            print(f"rep {rep + 1}/{args.reps}: plain loop ({args.model}, {args.epochs} epochs)")
            rows = plain_loop(root, args)
            best = max(acc for _, _, acc in rows)
            t_plain = next(w for _, w, acc in rows if acc == best)
            print(f"rep {rep + 1}/{args.reps}: trainlab default recipe until test acc ≥ {best:.4f}")
            probe = trainlab_run(best, args.overrides)
            t_ours = probe.first_reaching(best)
            targets.append(best)
            plain_s.append(t_plain)
            if t_ours is not None:
                ours_s.append(t_ours)
                ratios.append(t_plain / t_ours)
            shown = f"{t_ours:.1f} s" if t_ours is not None else "not reached"
            print(f"  plain {t_plain:.1f} s to {best:.4f}; trainlab {shown}")

    print(
        f"threads {torch.get_num_threads()}, plain loop: {args.model}, fp32, DataLoader "
        f"0 workers, batch {args.batch_size}; trainlab: {RECIPE.name} {' '.join(args.overrides)}"
    )
    print(f"plain loop best test acc: {fmt_spread(targets, '.4f')}")
    print(f"plain loop time to it:    {fmt_spread(plain_s, '.1f', ' s')}")
    if len(ratios) < args.reps:
        print(f"trainlab did not reach the plain loop's best in {args.reps - len(ratios)} rep(s)")
    print(f"bench textbook_plain_best_acc {statistics.median(targets):.4f} frac")
    print(f"bench textbook_plain_time_s {statistics.median(plain_s):.1f} s")
    if ratios:
        print(f"trainlab time to it:      {fmt_spread(ours_s, '.1f', ' s')}")
        print(f"speed-up:                 {fmt_spread(ratios, '.2f', 'x')}")
        print(f"bench textbook_trainlab_time_s {statistics.median(ours_s):.1f} s")
        print(f"bench textbook_loop_speedup {statistics.median(ratios):.2f} x")
    else:
        print("bench textbook_trainlab_time_s not_reached s")
        print("bench textbook_loop_speedup not_reached x")


if __name__ == "__main__":
    main()
