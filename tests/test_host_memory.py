"""CPU training keeps freed host memory for reuse: a large tensor allocated again after being
freed costs no new page faults (glibc's default unmaps it and faults it in again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
import torch
from trainlab.train.host_memory import keep_freed_memory

applied = keep_freed_memory()

def faults_of_a_64mb_tensor():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(16 * 2**20)  # 64 MB, every page written
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_a_64mb_tensor()  # the first time pays in every case
print(json.dumps({"applied": applied, "faults": [faults_of_a_64mb_tensor() for _ in range(8)]}))
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="glibc's malloc settings only (Linux with glibc)",
)


def child(env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRAINLAB_SYSTEM_MALLOC"} | env_extra
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-1500:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@glibc
def test_freed_memory_is_reused_without_page_faults() -> None:
    kept = child({})
    assert kept["applied"] is True
    # 16,384 pages of 4 KB each time if the memory were unmapped and faulted in again. The heap
    # grows over the first two or three allocations (alignment slack); after that, none.
    assert max(kept["faults"][4:]) < 1000, kept
    system = child({"TRAINLAB_SYSTEM_MALLOC": "1"})
    assert system["applied"] is False
    assert min(system["faults"]) > 10_000, system  # glibc's default: unmapped, faulted again


@glibc
def test_the_cpu_trainer_applies_it() -> None:
    code = ("from trainlab.train import host_memory; from trainlab.train.trainer import Trainer; "
            "Trainer(device='cpu'); print(host_memory._applied)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items()
                                            if k != "TRAINLAB_SYSTEM_MALLOC"})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-1500:]
