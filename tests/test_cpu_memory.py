"""`keep_freed_memory` (minimind_hf.cpu_memory): after it, a step's large tensors reuse memory the last step freed
instead of page-faulting fresh pages in, which is what makes a CPU training step faster."""

import platform
import subprocess
import sys

import pytest

STEP_FAULTS = """
import resource, sys, torch
from minimind_hf.cpu_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step_faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(2**24)  # 64 MiB, above glibc's largest mmap threshold, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(*(step_faults() for _ in range(5)))
"""


def _page_faults_per_step(mode: str) -> list[int]:
    run = subprocess.run([sys.executable, "-c", STEP_FAULTS, mode], capture_output=True, text=True, check=True)
    return [int(n) for n in run.stdout.split()]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_step_reuses_the_memory_the_last_one_freed():
    """The first steps grow the heap (a small allocation can take a piece of a freed block); from the third step on
    the same 64 MiB are reused, where glibc's default maps fresh pages every step, one fault per 4 KiB page."""
    pages = 2**26 // 4096
    assert all(n > pages // 2 for n in _page_faults_per_step("default"))
    assert all(n < pages // 100 for n in _page_faults_per_step("keep")[2:])
