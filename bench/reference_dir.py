"""Where MiniMind's real tokenizers are (never copied into the repo): ``$MINIMIND_REFERENCE_DIR``, else the workspace's
``shared/reference`` beside the checkout or beside its parent folder (git worktrees), else /work/shared/reference."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CANDIDATES = (
    os.environ.get("MINIMIND_REFERENCE_DIR"),
    ROOT.parent / "shared" / "reference",
    ROOT.parent.parent / "shared" / "reference",
    "/work/shared/reference",
)
REFERENCE = next((Path(p) for p in _CANDIDATES if p and Path(p).is_dir()), ROOT.parent / "shared" / "reference")
