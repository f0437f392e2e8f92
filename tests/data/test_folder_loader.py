"""The file-backed loader: exact resume of augmented epochs, DDP shards, workers and threads."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from test_image_folder import make_folder

from trainlab.data import folder_loader
from trainlab.data.base import DATA
from trainlab.data.folder_loader import FolderLoader, worker_budget
from trainlab.data.images import ImageFolderData, ImageTransforms
from trainlab.errors import ConfigError

# Every random step of the pipeline, so that any unseeded draw shows up as a difference.
AUGMENT = ImageTransforms(
    crop=8, crop_padding=2, flip=True, rotation=20, color_jitter=0.3, random_erasing=0.5
)


def module(root: Path, workers: int = 0, **kw: Any) -> ImageFolderData:
    m = DATA.get("image_folder")(
        root=str(root), transforms=AUGMENT, batch_size=4, num_workers=workers,
        **{"cache": "never", **kw},
    )  # fmt: skip
    m.setup("cpu")
    return m


def epoch(loader: Any, e: int, start: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader.iter_epoch(e, start))


def same(a: list[tuple[torch.Tensor, torch.Tensor]], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


@pytest.fixture(scope="module")
def imgs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_folder(tmp_path_factory.mktemp("fl") / "imgs", per_class=8)
    module(root)  # the first set-up imports torchvision's transforms (seconds on a busy CPU)
    return root


def test_augmented_epoch_is_a_function_of_seed_epoch_and_position(imgs: Path) -> None:
    m = module(imgs, workers=1)
    ref = epoch(m.loader("train"), 2)
    assert same(ref, epoch(m.loader("train"), 2))  # a fresh loader (new worker) agrees
    resumed = epoch(m.loader("train"), 2, start=2)  # batch 2 first, on a fresh worker
    assert same(ref[2:], resumed)
    assert same(ref, epoch(module(imgs, workers=0).loader("train"), 2))  # any worker count
    # Persistent workers carry no RNG state across epochs: epoch 2 after epochs 0 and 1 agrees.
    kept = m.loader("train")
    epoch(kept, 0)
    next(kept.iter_epoch(1))  # abandoned mid-epoch, as a stop would
    assert same(ref, epoch(kept, 2))
    # ... and the augmentation is really random: the same samples differ in another epoch.
    other = epoch(m.loader("train"), 3)
    by_label = sorted(torch.cat([y for _, y in ref]).tolist())
    assert by_label == sorted(torch.cat([y for _, y in other]).tolist())
    assert not same(ref, other)
    assert not same(ref, epoch(module(imgs, workers=0, seed=1).loader("train"), 2))


def test_more_workers_than_batches_per_worker_change_nothing(imgs: Path) -> None:
    # Two workers interleave batches; with start=1 each decodes different ones than from 0.
    m = module(imgs)
    ds = m._dataset("train")
    two = FolderLoader(ds, 4, True, 0, 2, torch.device("cpu"))
    ref = epoch(m.loader("train"), 5)
    assert same(ref, epoch(two, 5)) and same(ref[1:], epoch(two, 5, start=1))


def test_loading_leaves_the_global_rng_alone(imgs: Path) -> None:
    loader = module(imgs, workers=0).loader("train")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    epoch(loader, 0)
    assert torch.equal(before, torch.get_rng_state())  # the training loop's stream is intact


def test_rank_shards_are_disjoint_cover_the_epoch_and_slice_global_batches(imgs: Path) -> None:
    m = module(imgs, workers=0)  # train: 16 images, 4 batches of 4
    ref = epoch(m.loader("train"), 1)
    shards = [m.loader("train", rank=r, world_size=2) for r in (0, 1)]
    assert all(s.sharded and len(s) == len(ref) for s in shards)
    got = [epoch(s, 1) for s in shards]
    for b, (x, y) in enumerate(ref):  # rank r's batch b is global batch b's samples r::2
        for r in (0, 1):
            assert torch.equal(got[r][b][0], x[r::2]) and torch.equal(got[r][b][1], y[r::2])
    keys = [[i for batch in s.batches for _, i in batch] for s in shards]
    assert not set(keys[0]) & set(keys[1]) and sorted(keys[0] + keys[1]) == list(range(16))
    assert same(got[1][2:], epoch(shards[1], 1, start=2))  # resume works per rank too
    # Evaluation splits are strided without padding: each sample scored exactly once.
    val = [m.loader("val", rank=r, world_size=2) for r in (0, 1)]
    ys = [torch.cat([y for _, y in v.iter_epoch(0)]) for v in val]
    assert len(ys[0]) + len(ys[1]) == m.sizes["val"]
    with pytest.raises(ConfigError, match=r"data.batch_size=4: must be divisible by the 3"):
        m.loader("train", rank=0, world_size=3)


def test_uneven_epoch_pads_ranks_to_equal_batch_counts(tmp_path: Path) -> None:
    m = module(make_folder(tmp_path / "odd", per_class=7), workers=0)  # 15 training images
    shards = [m.loader("train", rank=r, world_size=2) for r in (0, 1)]
    keys = [[i for batch in s.batches for _, i in batch] for s in shards]
    assert len(keys[0]) == len(keys[1]) == 8  # one repeated sample keeps DDP steps in step
    assert set(keys[0] + keys[1]) == set(range(15)) and len(shards[0]) == len(shards[1])


def test_initialised_process_group_shards_automatically(
    imgs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = module(imgs, workers=0)
    ref = epoch(m.loader("train"), 0)
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda *a: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 2)
    got = epoch(m.loader("train"), 0)
    assert all(torch.equal(g[1], r[1][1::2]) for g, r in zip(got, ref, strict=True))


def _rank_keys(rank: int, root: str, init: str, out: Any) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    m = module(Path(root), workers=0)
    ld = m.loader("train")
    ld.batches.set_position(1, 0)  # the keys this rank's sampler hands out in epoch 1
    out.put((rank, ld.sharded, [i for batch in ld.batches for _, i in batch]))
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_see_disjoint_halves(imgs: Path, tmp_path: Path) -> None:
    ctx = mp.get_context("fork")  # no re-import of torch: ~1 s for both ranks
    out = ctx.Queue()
    init = f"file://{tmp_path / 'rendezvous'}"
    procs = [ctx.Process(target=_rank_keys, args=(r, str(imgs), init, out)) for r in (0, 1)]
    for p in procs:
        p.start()
    got = dict((r, (s, k)) for r, s, k in (out.get(timeout=60) for _ in procs))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert got[0][0] and got[1][0]  # both loaders know they are sharded
    a, b = got[0][1], got[1][1]
    assert not set(a) & set(b) and sorted(a + b) == list(range(16))


def test_workers_persist_and_run_one_thread_each(imgs: Path) -> None:
    class WhoLoads(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
            return torch.tensor([os.getpid(), torch.get_num_threads()]), key[1]

    ld = FolderLoader(WhoLoads(), 2, True, 0, 1, torch.device("cpu"))  # type: ignore[arg-type]
    seen = [torch.cat([x for x, _ in ld.iter_epoch(e)]) for e in (0, 1)]
    pids = [set(s[:, 0].tolist()) for s in seen]
    assert pids[0] == pids[1] and os.getpid() not in pids[0]  # same worker in both epochs
    assert set(torch.cat(seen)[:, 1].tolist()) == {1}  # one torch thread per worker
    dl = ld.dl
    assert dl.persistent_workers and dl.prefetch_factor == 2 and not dl.pin_memory
    cuda = FolderLoader(WhoLoads(), 2, True, 0, 1, torch.device("cuda"))  # type: ignore[arg-type]
    assert cuda.dl.pin_memory  # page-locked batches for non_blocking copies (not iterated here)


def test_worker_budget_shares_cores_among_local_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder_loader.os, "sched_getaffinity", lambda _: set(range(16)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert worker_budget(64) == 15 and worker_budget(3) == 3 and worker_budget(0) == 0
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: 4 processes on this machine
    assert worker_budget(64) == 3  # (3 workers × 1 thread + main) × 4 ranks = 16 cores
    monkeypatch.setattr(folder_loader.os, "sched_getaffinity", lambda _: {0})
    assert worker_budget(8) == 0  # one core: decode in the main process


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_arrive_on_the_device(imgs: Path) -> None:
    m = DATA.get("image_folder")(
        root=str(imgs), transforms=AUGMENT, batch_size=4, num_workers=1, cache="never"
    )
    m.setup("cuda")
    ref = epoch(module(imgs).loader("train"), 0)
    got = epoch(m.loader("train"), 0)
    assert got[0][0].is_cuda and m.loader("train").dl.pin_memory
    assert same(ref, [(x.cpu(), y.cpu()) for x, y in got])  # same augmentation as on the CPU


@pytest.mark.slow  # four short training runs with a loader worker
@pytest.mark.parametrize("stop_at", [3, 4])  # mid-epoch, and an epoch boundary (4 steps each)
def test_resumed_augmented_run_equals_uninterrupted(tmp_path: Path, stop_at: int) -> None:
    from safetensors.torch import load_file

    from trainlab.cli.main import main
    from trainlab.train.checkpoint import resolve_checkpoint

    root = make_folder(tmp_path / "imgs", per_class=8)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: imgs\nseed: 0\n"
        f"data: {{name: image_folder, root: {root}, batch_size: 4, num_workers: 1, cache: never,\n"
        "       transforms: {crop: 8, crop_padding: 2, flip: true, rotation: 20,\n"
        "                    color_jitter: 0.3, random_erasing: 0.5}}\n"
        "model: {name: mlp, hidden: [16]}\n"
        "optim: {name: sgd, lr: 0.05, momentum: 0.9}\n"
        "train: {epochs: 2, log_every: 1, precision: fp32, tensorboard: false, report: false}\n"
    )
    full, part = tmp_path / "full", tmp_path / "part"
    opts = ["--no-progress"]
    assert main(["train", str(recipe), "--run-dir", str(full), *opts]) == 0
    stop = f"train.max_steps={stop_at}"
    assert main(["train", str(recipe), "--run-dir", str(part), stop, *opts]) == 0
    assert main(["train", "--resume", str(part), "train.max_steps=null", *opts]) == 0
    a = load_file(str(resolve_checkpoint(full) / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(part) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
