"""Is stored or loaded weight data whole and finite? Checked wherever weights are read or written.

Flipped bytes in a safetensors file read back as NaN without an error, and a file cut short by a kill has fewer bytes
than its header promises: both are found here before a run resumes from them, chat answers with them or a save
overwrites a good checkpoint.
"""

import json
import struct
from pathlib import Path

import torch
from safetensors import safe_open


def first_non_finite(model) -> str | None:
    """Name of the first parameter holding NaN or inf, or None."""
    for name, param in model.named_parameters():
        if param.numel() and not torch.isfinite(param.detach()).all():
            return name
    return None


def safetensors_intact(path: Path) -> bool:
    """A file cut short by a kill has fewer bytes than its header's tensor offsets promise."""
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
    except (OSError, struct.error, ValueError):
        return False
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    return path.stat().st_size == 8 + header_len + end


def non_finite_tensor(path: Path) -> str | None:
    """`file: tensor` of the first floating-point tensor holding NaN/inf (flipped bytes read back as NaN), or None."""
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            tensor = f.get_tensor(name)
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return f"{path.name}: {name}"
    return None
