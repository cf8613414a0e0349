"""What the device computes natively: the one rule training's `bf16` default and chat's dtype both follow."""

import platform
from pathlib import Path

import torch

# CPU flags (Linux /proc/cpuinfo names) under which bf16 matmuls run natively: AMX tiles or AVX512-BF16.
BF16_CPU_FLAGS = frozenset({"amx_bf16", "amx_tile", "avx512_bf16"})


def has_accelerator() -> bool:
    return (
        torch.cuda.is_available()
        or (hasattr(torch, "xpu") and torch.xpu.is_available())
        or torch.backends.mps.is_available()
    )


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere: torch has no public query for them)."""
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() != "Linux" or not cpuinfo.is_file():
        return frozenset()
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def bf16_supported(use_cpu: bool = False) -> bool:
    """bf16 autocast pays off on Ampere+ GPUs and on CPUs with AMX / AVX512-BF16 (it is emulated, slowly, elsewhere)."""
    if has_accelerator() and not use_cpu:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & BF16_CPU_FLAGS)
