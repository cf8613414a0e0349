"""CPU training's memory allocator: keep what a step frees in the process for the next step (Linux, glibc).

Every training step allocates and frees the same large tensors: activations, their gradients, the LM head's logits.
glibc's malloc serves a block above its mmap threshold (128 KiB at start, raised by use to at most 32 MiB) with
freshly mapped pages and unmaps it when it is freed, and it returns the free top of its heap to the OS beyond its
trim threshold. So each step touches its large tensors' pages for the first time again, one page fault per 4 KiB
(docs/benchmarks.md: 1.07x configs/sft.yaml's step on 2 cores). `keep_freed_memory` sets glibc's own knobs
(`mallopt`, as the ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables would before start): no
mmap for single blocks and no trimming, so freed memory stays mapped and the next step reuses it. The process's
resident memory then stays at its largest step's peak instead of falling between steps. jemalloc and tcmalloc, which
PyTorch's CPU tuning guide preloads for the same reason, cache freed memory by design; this needs no preload. Other
C libraries (macOS, musl) are left as they are.
"""

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's <malloc.h>
NO_TRIM = 2**31 - 1  # mallopt takes an int: the largest free heap top (bytes) kept rather than returned


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory in this process (see the module docstring); True if it now does."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # another C library under glibc's file name
        return False
    return libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, NO_TRIM) == 1
