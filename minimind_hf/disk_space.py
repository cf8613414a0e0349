"""A full disk while writing a checkpoint, the final model or the datasets cache.

torch.save reports it as `RuntimeError: [enforce fail at inline_container.cc:...] . unexpected pos ...`, datasets as
`OSError: [Errno 28]` inside a generation error, safetensors as a `SafetensorError` carrying the OS's text.
`disk_full_reported` turns each into one message naming the folder and how much to free, and removes the
half-written checkpoint it leaves (a checkpoint without trainer_state.json, which Trainer writes last), so the next
resume on the same disk does not trip over it. The older complete checkpoints are never touched.
"""

import errno
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

from .checkpoints import TRAINER_STATE, _checkpoints, last_complete_checkpoint

logger = logging.getLogger(__name__)

# torch.save's writer reports a short write without errno; it counts as a full disk when this little is left.
LOW_SPACE = 64 * 2**20


def _folder_size(folder) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _no_space(err: BaseException, folder) -> bool:
    chain, seen = [err], set()
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(current):  # safetensors' SafetensorError carries only the OS's text
            return True
        if isinstance(current, RuntimeError) and "inline_container" in str(current):
            return shutil.disk_usage(folder).free < LOW_SPACE
        chain += [current.__cause__, current.__context__]
    return False


def remove_partial_checkpoints(output_dir) -> list[str]:
    """Delete checkpoint-N folders whose save never finished (no trainer_state.json); returns their paths."""
    removed = []
    for checkpoint in _checkpoints(output_dir):
        if not (checkpoint / TRAINER_STATE).is_file():
            shutil.rmtree(checkpoint, ignore_errors=True)
            removed.append(str(checkpoint))
    return removed


@contextmanager
def disk_full_reported(folder, what: str, is_main_process: bool = True, final: bool = False):
    """Run the block; a full disk under `folder` ends the process (exit 1) with one message instead of a traceback.
    ``final``: the block saves the final model into `folder`, so what it leaves there is incomplete."""
    try:
        yield
    except Exception as err:  # datasets wraps the OSError in a DatasetGenerationError
        if not _no_space(err, folder):
            raise
        removed = remove_partial_checkpoints(folder) if is_main_process else []
        last = last_complete_checkpoint(folder)
        need = _folder_size(last) if last else None
        parts = [
            f"No space left on the disk of {folder} while writing {what} ({shutil.disk_usage(folder).free / 2**20:.0f} MiB free)."
        ]
        if removed:
            parts.append(f"Removed the half-written {', '.join(removed)}.")
        if final:
            parts.append(f"The final model in {folder} is incomplete: do not load it.")
            parts.append(
                f"Free space; {last}, the newest complete checkpoint, becomes a model folder with "
                f"`minimind-hf convert {last} FOLDER --to hf`."
                if last
                else "Free space (about as much as the model's weights), or point output_dir at a larger disk, and "
                "run again."
            )
        else:
            if last:
                parts.append(f"{last} is complete and untouched: resume from it (resume_from_checkpoint: true).")
            parts.append(
                f"Free at least {need / 2**20:.0f} MiB (one checkpoint), or lower save_total_limit, or point "
                "output_dir at a larger disk."
                if need
                else "Free space (or set HF_DATASETS_CACHE / output_dir to a larger disk) and run again."
            )
        logger.error(" ".join(parts))
        raise SystemExit(1) from err
