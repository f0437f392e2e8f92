"""Regenerate every measured table of docs/textbook/ (``make textbook``).

Each experiment runs the same ``trainlab`` command its page shows (a ``trainlab sweep`` where
runs compare, ``trainlab analyze`` for counting exercises), reads the files the command writes
(``sweep.json``, ``analysis.json``) and writes the commands and the table into the page, between
``<!-- textbook:ID -->`` and ``<!-- /textbook:ID -->``. Run folders go to ``runs/textbook/``;
a sweep run again skips the runs it already finished.

    python docs/textbook/make_textbook.py                 # everything (long: ~1 h on 2 cores)
    python docs/textbook/make_textbook.py bn_lr nin_mlp   # some experiments
    python docs/textbook/make_textbook.py --tables-only   # rewrite the tables from the runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).resolve().parent
RUNS = ROOT / "runs" / "textbook"
BIN = Path(sys.executable).parent / "trainlab"

# The scale every training experiment runs at: it fits a shared 2-core CPU with one thread.
SCALE = [
    "data.subset=4000", "data.test_subset=2000", "data.batch_size=64", "train.epochs=2",
    "train.threads=1", "train.report=false", "train.tensorboard=false", "callbacks=[]",
]  # fmt: skip
SCALE_TEXT = (
    "4,000 stratified training images (10% of them for validation), the first 2,000 test "
    "images, batch 64, 2 epochs of the recipe's one-cycle schedule, one torch thread"
)


@dataclass
class Sweep:
    """A ``trainlab sweep``: grid × seeds; the table pools seeds (and keys not in ``by``)."""

    id: str
    recipe: str
    grid: list[str]
    extra: list[str] = field(default_factory=list)
    seeds: int = 2
    by: list[str] | None = None  # group keys of the table (default: every grid key)
    scale: list[str] = field(default_factory=lambda: list(SCALE))
    note: str = ""  # where the scale differs from SCALE_TEXT

    def commands(self) -> list[list[str]]:
        cmd = ["trainlab", "sweep", self.recipe]
        for g in self.grid:
            cmd += ["--grid", g]
        cmd += ["--seeds", str(self.seeds), "--out", f"runs/textbook/{self.id}"]
        return [cmd + self.extra + self.scale]


@dataclass
class Count:
    """``trainlab analyze`` of several models (no training): parameters, FLOPs, memory."""

    id: str
    rows: list[tuple[str, list[str]]]  # (label, model name and options)
    batch: int = 8

    def commands(self) -> list[list[str]]:
        return [
            ["trainlab", "analyze", *args, "--no-sweep", "--batch", str(self.batch),
             "--out", f"runs/textbook/{self.id}/{slug(label)}"]
            for label, args in self.rows
        ]  # fmt: skip


@dataclass
class Throughput:
    """``trainlab analyze`` with its batch-size sweep, repeated: medians per batch size."""

    id: str
    args: list[str]
    repeats: int = 3
    max_batch: int = 256

    def commands(self) -> list[list[str]]:
        return [
            ["trainlab", "analyze", *self.args, "--max-batch", str(self.max_batch),
             "--sweep-seconds", "40", "--out", f"runs/textbook/{self.id}/rep{i}"]
            for i in range(self.repeats)
        ]  # fmt: skip


def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", text).strip("_")


EXPERIMENTS: list[Sweep | Count | Throughput] = [
    # AlexNet
    Count(
        "alexnet_count",
        [
            ("alexnet 224 px", ["alexnet", "num_classes=10"]),
            ("alexnet_small 28 px", ["alexnet_small"]),
            ("lenet5 28 px", ["lenet5"]),
        ],
    ),  # fmt: skip
    Throughput("alexnet_throughput", ["alexnet_small"]),
    Sweep(
        "alexnet_batch",
        "recipes/alexnet_small_fashion_mnist.yaml",
        ["data.batch_size=32,128,512"],
        # 2,000 images here: alexnet_small is the slowest model of these pages on a CPU.
        scale=[s.replace("4000", "2000") for s in SCALE if "batch_size" not in s],
        note="here 2,000 training images and the swept batch size instead of 64",
    ),
    Sweep(
        "lenet_dropout_relu",
        "recipes/lenet5_fashion_mnist.yaml",
        ["model.classic=true,false", "model.dropout=0.0,0.5"],
        ["model.conv_bn=false"],
    ),
    # VGG
    Count(
        "vgg_count",
        [
            ("alexnet 224 px", ["alexnet", "num_classes=10", "in_channels=1"]),
            ("vgg11 224 px", ["vgg", "image_size=224"]),
            ("vgg11 84 px", ["vgg", "image_size=84"]),
            ("vgg11 56 px", ["vgg", "image_size=56"]),
            ("vgg16 224 px", ["vgg16", "num_classes=10", "in_channels=1"]),
            ("vgg19 224 px", ["vgg19", "num_classes=10", "in_channels=1"]),
        ],
        batch=4,
    ),  # fmt: skip
    Sweep("vgg_resolution", "recipes/vgg_small_fashion_mnist.yaml", ["data.resize=28,56,84"]),
    # NiN
    Count(
        "nin_count",
        [
            ("nin 224 px, GAP head", ["nin"]),
            ("nin 224 px, FC head", ["nin", "head=fc"]),
            ("nin_small 28 px, GAP head", ["nin_small"]),
            ("nin_small 28 px, FC head", ["nin_small", "head=fc"]),
        ],
    ),  # fmt: skip
    Sweep("nin_mlp", "recipes/nin_small_fashion_mnist.yaml", ["model.mlp_convs=1,2,3"]),
    Sweep("nin_head", "recipes/nin_small_fashion_mnist.yaml", ["model.head=gap,fc"]),
    # GoogLeNet
    Count(
        "googlenet_count",
        [
            ("googlenet 224 px", ["googlenet", "num_classes=10", "in_channels=1"]),
            ("googlenet_small 28 px", ["googlenet_small"]),
        ],
    ),  # fmt: skip
    Sweep(
        "googlenet_bn_ls",
        "recipes/googlenet_small_fashion_mnist.yaml",
        ["model.batch_norm=true,false", "task.label_smoothing=0.0,0.1"],
    ),
    # Batch normalization
    Sweep(
        "bn_lr",
        "recipes/lenet5_fashion_mnist.yaml",
        ["model.conv_bn=true,false", "model.fc_bn=true,false", "optim.lr=0.01,0.1,1.0"],
    ),
    Sweep(
        "bn_variants",
        "recipes/lenet5_fashion_mnist.yaml",
        [
            "model.norm=batch,mean_only,var_only,frozen_affine",
            "model.norm_position=before_act,after_act",
        ],
        ["model.conv_bn=true", "model.fc_bn=true"],
    ),
    Sweep(
        "bn_dropout",
        "recipes/lenet5_fashion_mnist.yaml",
        ["model.fc_bn=true,false", "model.dropout=0.0,0.5"],
        ["model.conv_bn=true"],
    ),
    Sweep(
        "vgg_bn_parts",
        "recipes/vgg_small_fashion_mnist.yaml",
        ["model.batch_norm=true,false", "model.fc_bn=true,false"],
    ),
    # ResNet
    Count(
        "resnet_count",
        [
            ("resnet18", ["resnet18", "num_classes=10"]),
            ("preact_resnet18", ["preact_resnet18", "num_classes=10"]),
            ("resnet34", ["resnet34", "num_classes=10"]),
            ("resnet50 (bottleneck)", ["resnet50", "num_classes=10"]),
        ],
    ),  # fmt: skip
    Sweep(
        "resnet_block",
        "recipes/resnet18_fashion_mnist.yaml",
        ["model.block=basic,bottleneck", "model.preact=false,true"],
        ["model.name=resnet", "model.layers=[1,1,1,1]", "model.width=16"],
    ),
    # DenseNet
    Count(
        "densenet_count",
        [
            ("densenet121 224 px", ["densenet121", "num_classes=10"]),
            ("densenet_small 28 px", ["densenet_small"]),
        ],
    ),  # fmt: skip
    Sweep(
        "densenet_pool",
        "recipes/densenet_small_fashion_mnist.yaml",
        ["model.transition_pool=avg,max"],
    ),
    # RegNet
    Count(
        "regnet_count",
        [
            ("regnet (4 stages, ResNeXt)", ["regnet"]),
            ("regnet stages=2", ["regnet", "stages=2"]),
            ("regnet stages=3", ["regnet", "stages=3"]),
            ("regnet block=resnet", ["regnet", "block=resnet"]),
        ],
    ),  # fmt: skip
    Sweep("regnet_stages", "recipes/regnet_fashion_mnist.yaml", ["model.stages=2,3,4"]),
    Sweep("regnet_block", "recipes/regnet_fashion_mnist.yaml", ["model.block=resnext,resnet"]),
    Sweep(
        "anynet_space",
        "recipes/regnet_fashion_mnist.yaml",
        ["model.space=A,E", "model.seed=0,1,2"],
        ["model={name: anynet_sample, stages: 4, max_width: 128}"],
        seeds=1,
        by=["model.space"],
    ),
]


def shell(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def shell_wrapped(cmd: list[str], width: int = 92) -> str:
    """``cmd`` as a shell line, continued with backslashes to stay within ``width``."""
    parts: list[str] = []
    for c in cmd:  # an option and its value stay on one line
        if parts and parts[-1].startswith("--") and " " not in parts[-1] and c[:2] != "--":
            parts[-1] += " " + shlex.quote(c)
        else:
            parts.append(shlex.quote(c))
    lines, cur = [], ""
    for part in parts:
        if cur and len(cur) + 1 + len(part) > width:
            lines.append(cur)
            cur = "    " + part
        else:
            cur = f"{cur} {part}" if cur else part
    return " \\\n".join([*lines, cur])


def run(exp: Sweep | Count | Throughput) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for cmd in exp.commands():
        print("$", shell(cmd), flush=True)
        subprocess.run([str(BIN), *cmd[1:]], cwd=ROOT, env=env, check=True)


def fmt_ms(values: list[float], digits: int = 3) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def run_warnings(run: dict) -> list[str]:
    """The run's own end-of-run warnings (exploded loss, ended at chance) from summary.json."""
    path = Path(run["run_dir"]) / "summary.json"
    return json.loads(path.read_text()).get("warnings", []) if path.is_file() else []


def sweep_table(exp: Sweep) -> str:
    data = json.loads((RUNS / exp.id / "sweep.json").read_text())
    keys = exp.by or [g.split("=", 1)[0] for g in exp.grid]
    groups: dict[str, list[dict]] = {}
    for r in data["runs"]:
        label = tuple(str(r["params"].get(k)) for k in keys)
        groups.setdefault(json.dumps(label), []).append(r)
    head = [*keys, "runs", "val/acc (best)", "test/acc", "train samples/s", "s / run",
            "diverged / warned"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, runs in groups.items():
        s = [r.get("summary") or {} for r in runs]
        val = [x["best"]["value"] for x in s if (x.get("best") or {}).get("value") is not None]
        test = [x["test"]["test/acc"] for x in s if "test/acc" in (x.get("test") or {})]
        sps = [x["final"].get("train/samples_per_s") for x in s if x.get("final")]
        sps = [v for v in sps if v]
        wall = [x["wall_s"] for x in s if x.get("wall_s")]
        bad = sum(r["status"] in ("diverged", "failed") for r in runs)
        warned = sum(bool(run_warnings(r)) for r in runs)
        cells = [*json.loads(label), str(len(runs)), fmt_ms(val), fmt_ms(test),
                 f"{statistics.median(sps):,.0f}" if sps else "—",
                 f"{statistics.mean(wall):.1f}" if wall else "—", f"{bad} / {warned}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.1f}"


def count_table(exp: Count) -> str:
    head = ["model", "parameters", "conv / linear params", "forward FLOPs", "conv / linear FLOPs",
            "train FLOPs", f"activations MiB (batch {exp.batch})", "training peak MiB",
            "inference peak MiB"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, _ in exp.rows:
        d = json.loads((RUNS / exp.id / slug(label) / "analysis.json").read_text())
        m, f = d["memory"], d["flops"]
        by, fby = m.get("params_by_type") or {}, f.get("forward_by_type") or {}
        pt, ft = sum(by.values()) or 1, f["forward"] or 1
        cells = [label, f"{d['layers']['total_params']:,}",
                 f"{by.get('conv', 0) / pt:.0%} / {by.get('linear', 0) / pt:.0%}",
                 f"{f['forward'] / 1e9:.3f} G",
                 f"{fby.get('conv', 0) / ft:.0%} / {fby.get('linear', 0) / ft:.0%}",
                 f"{f['train'] / 1e9:.3f} G", mib(m.get("activations")),
                 mib(m.get("measured_peak")), mib(m.get("inference_peak"))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def throughput_table(exp: Throughput) -> str:
    reps = [json.loads((RUNS / exp.id / f"rep{i}" / "analysis.json").read_text())
            for i in range(exp.repeats)]  # fmt: skip
    by_batch: dict[int, list[dict]] = {}
    for d in reps:
        for row in (d.get("sweep") or {}).get("rows", []):
            by_batch.setdefault(row["batch"], []).append(row)
    head = [
        "batch",
        "samples",
        "train samples/s (median)",
        "min – max",
        "inference samples/s (median)",
        "training memory MiB (est.)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in sorted(by_batch):
        rows = by_batch[b]
        tr = [r["train_per_s"] for r in rows]
        inf = [r["infer_per_s"] for r in rows]
        cells = [str(b), str(len(rows)), f"{statistics.median(tr):,.1f}",
                 f"{min(tr):,.1f} – {max(tr):,.1f}", f"{statistics.median(inf):,.1f}",
                 mib(statistics.median(r["memory"] for r in rows))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block(exp: Sweep | Count | Throughput, when: str) -> str:
    cmds = "\n".join(shell_wrapped(c) for c in exp.commands())
    if isinstance(exp, Sweep):
        table = sweep_table(exp)
        note = f"Mean ± std over {exp.seeds} seed(s) per row; scale: {SCALE_TEXT}."
        if exp.note:
            note = note[:-1] + f" ({exp.note})."
        if exp.by:
            note = (f"Each row pools the runs of every other grid value (mean ± std over "
                    f"them); scale: {SCALE_TEXT}.")  # fmt: skip
    elif isinstance(exp, Count):
        table = count_table(exp)
        note = (
            "FLOPs per sample (2 FLOPs = 1 multiply-add); memory on the CPU, batch "
            f"{exp.batch}; peaks are RSS growth, disturbed by other processes."
        )
    else:
        table = throughput_table(exp)
        note = (
            f"Median over {exp.repeats} repeats of the batch-size sweep (the CPU was "
            "shared with other jobs: single samples are noisy)."
        )
    return f"```sh\n{cmds}\n```\n\n{table}\n\n*{note} Measured {when}.*"


def fill(exp: Sweep | Count | Throughput, when: str) -> bool:
    start, end = f"<!-- textbook:{exp.id} -->", f"<!-- /textbook:{exp.id} -->"
    for page in PAGES.glob("*.md"):
        text = page.read_text()
        if start in text and end in text:
            before, rest = text.split(start, 1)
            _, after = rest.split(end, 1)
            page.write_text(f"{before}{start}\n{block(exp, when)}\n{end}{after}")
            return True
    print(f"no page holds {start}", file=sys.stderr)
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="*", help="experiments to run (default: all)")
    ap.add_argument("--tables-only", action="store_true", help="only rewrite the tables")
    args = ap.parse_args()
    known = {e.id: e for e in EXPERIMENTS}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        sys.exit(f"unknown experiment(s) {unknown}; known: {', '.join(known)}")
    chosen = [known[i] for i in args.ids] or EXPERIMENTS
    when = (f"{dt.date.today().isoformat()} on a 2-core {platform.machine()} CPU shared with "
            "other jobs (torch, one thread)")  # fmt: skip
    for exp in chosen:
        if not args.tables_only:
            try:
                run(exp)
            except subprocess.CalledProcessError as e:  # the next experiments still run
                print(f"{exp.id}: failed ({e})", file=sys.stderr)
                continue
        try:
            fill(exp, when)
        except FileNotFoundError as e:
            print(f"{exp.id}: no results yet ({e.filename})", file=sys.stderr)


if __name__ == "__main__":
    main()
