"""Which Trainer checkpoint a run may resume from.

A checkpoint is complete when everything `Trainer` needs to continue exactly is there and readable: trainer_state.json,
the weights, the optimizer and scheduler states and the RNG state. `resume_from_checkpoint: true` takes the newest
complete one (an older one when the newest is broken) and refuses when checkpoints exist but none can resume. A resume
must continue at the same sample position: the world size, per-device batch and accumulation may change only as long
as their product, the global batch, stays the same. `RunShape` records that shape in every checkpoint's
trainer_state.json.
"""

import json
import logging
import zipfile
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, sort_checkpoints

from .errors import UserError
from .integrity import non_finite_tensor, safetensors_intact

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"


class CheckpointNotResumable(UserError, ValueError):
    """The checkpoint asked for (or every one in output_dir) cannot continue this run; the message says why."""


class RunShape(TrainerCallback, ExportableState):
    """Writes the run's batch shape into each checkpoint's trainer_state.json (`stateful_callbacks.RunShape`)."""

    def __init__(self, **restored):
        self.shape = restored

    def on_train_begin(self, args, state, control, **kwargs):
        self.shape = current_shape(args)  # after Trainer restored the checkpoint's: the shape of this run

    def state(self) -> dict:
        return {"args": {}, "attributes": {"shape": self.shape}}


def current_shape(args) -> dict:
    return {
        "world_size": args.world_size,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
    }


def _global_batch(shape: dict) -> int:
    return shape["world_size"] * shape["per_device_train_batch_size"] * shape["gradient_accumulation_steps"]


def _describe(shape: dict) -> str:
    return (
        f"{_global_batch(shape)} ({shape['world_size']} processes x {shape['per_device_train_batch_size']} per device "
        f"x {shape['gradient_accumulation_steps']} accumulation)"
    )


# ----------------------------------------------------------------------------------------------------- completeness


def _torch_file_intact(path: Path) -> bool:
    """torch.save writes a zip archive: a truncated file has no central directory, a damaged one fails its CRCs."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def checkpoint_problem(path) -> str | None:
    """Why `path` cannot resume training exactly, or None. Trainer writes trainer_state.json last (after the
    weights, optimizer, scheduler and RNG states) and only then rotates old checkpoints away."""
    path = Path(path)
    if not path.is_dir():
        return "no such directory"
    state = path / TRAINER_STATE
    if not state.is_file():
        return f"{TRAINER_STATE} is missing: the save was interrupted"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is unreadable"
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin"), *path.glob("global_step*")]
    if not weights:
        return "it holds no model weights"
    broken = [f.name for f in sorted(path.glob("*.safetensors")) if not safetensors_intact(f)]
    if broken:
        return f"{', '.join(broken)} truncated or corrupt"
    non_finite = next(filter(None, (non_finite_tensor(f) for f in sorted(path.glob("*.safetensors")))), None)
    if non_finite:
        return f"{non_finite} holds NaN/inf values (corrupt)"
    missing = []
    # DeepSpeed keeps optimizer (and scheduler) state in its global_step* folder, FSDP in optimizer_* entries.
    if not any(path.glob("global_step*")) and not any(path.glob("optimizer*")):
        missing.append("optimizer.pt")
    if not any(path.glob("global_step*")) and not (path / "scheduler.pt").is_file():
        missing.append("scheduler.pt")
    if not any(path.glob("rng_state*.pth")):
        missing.append("rng_state.pth")
    if missing:
        return (
            f"{', '.join(missing)} missing (saved with save_only_model, or deleted): resuming would restart the "
            "optimizer and learning-rate schedule"
        )
    broken = [f.name for f in sorted(path.glob("*.pt")) + sorted(path.glob("*.pth")) if not _torch_file_intact(f)]
    if broken:
        return f"{', '.join(broken)} truncated or corrupt"
    return None


def checkpoint_folders(output_dir) -> list[Path]:
    """checkpoint-N folders of output_dir, newest first."""
    if not Path(output_dir).is_dir():
        return []
    return [Path(p) for p in reversed(sort_checkpoints(str(output_dir), PREFIX_CHECKPOINT_DIR))]


def last_complete_checkpoint(output_dir) -> str | None:
    return next((str(p) for p in checkpoint_folders(output_dir) if checkpoint_problem(p) is None), None)


# --------------------------------------------------------------------------------------------------------- resuming


def _state(checkpoint) -> dict:
    return json.loads(Path(checkpoint, TRAINER_STATE).read_text(encoding="utf-8"))


def shape_problem(checkpoint, training_args) -> str | None:
    """Why this run would not continue `checkpoint` at the sample it stopped at, or None."""
    recorded = _state(checkpoint).get("stateful_callbacks", {}).get("RunShape", {}).get("attributes", {})
    saved, now = recorded.get("shape"), current_shape(training_args)
    if not saved:
        logger.warning("%s records no batch shape (an older checkpoint): cannot check the resume position", checkpoint)
        return None
    if _global_batch(saved) == _global_batch(now):
        if saved != now:
            logger.info("Resuming %s with global batch %s (was %s)", checkpoint, _describe(now), _describe(saved))
        return None
    changed = [key for key in now if saved.get(key) != now[key]]
    return (
        f"it was trained with a global batch of {_describe(saved)}, this run has {_describe(now)} ({', '.join(changed)} "
        "changed): its step count would land on other samples, repeating some and skipping others. Keep the global "
        "batch the same, e.g. per_device_train_batch_size x gradient_accumulation_steps = "
        f"{_global_batch(saved) // now['world_size']} on {now['world_size']} processes"
    )


def reached_the_end(checkpoint, training_args) -> bool:
    """True when `checkpoint` already holds the last step this run would train (Trainer would train one more)."""
    state = _state(checkpoint)
    step = state.get("global_step", 0)
    if training_args.max_steps > 0:
        return step >= training_args.max_steps
    same_length = state.get("num_train_epochs") == training_args.num_train_epochs
    return same_length and state.get("max_steps", 0) > 0 and step >= state["max_steps"]


def resolve_resume_checkpoint(resume_from_checkpoint: str | None, output_dir: str, training_args=None) -> str | None:
    """`"latest"` -> the newest complete `checkpoint-N` in output_dir (skipping broken ones; None if output_dir has
    none); a path -> that path, if it is complete. With ``training_args``, a checkpoint whose global batch differs
    from this run's is refused."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint != "latest":
        problem = checkpoint_problem(resume_from_checkpoint)
        if problem is None and training_args is not None:
            problem = shape_problem(resume_from_checkpoint, training_args)
        if problem:
            raise CheckpointNotResumable(f"Cannot resume from {resume_from_checkpoint}: {problem}")
        return resume_from_checkpoint
    skipped = []
    for checkpoint in checkpoint_folders(output_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            problem = shape_problem(checkpoint, training_args) if training_args is not None else None
            if problem:  # an older checkpoint has the same shape: refusing is the only honest answer
                raise CheckpointNotResumable(f"Cannot resume from {checkpoint}: {problem}")
            logger.info("Resuming from %s", checkpoint)
            return str(checkpoint)
        logger.warning("Not resuming from %s: %s", checkpoint, problem)
        skipped.append((checkpoint, problem))
    finished_saves = [(c, p) for c, p in skipped if (c / TRAINER_STATE).is_file()]
    if finished_saves:
        listing = "; ".join(f"{c.name}: {p}" for c, p in finished_saves)
        raise CheckpointNotResumable(
            f"resume_from_checkpoint: no checkpoint in {output_dir} can resume this run ({listing}). Point "
            "resume_from_checkpoint at a complete one, or set it to false to start over"
        )
    logger.info("No complete checkpoint in %s: training from the start", output_dir)
    return None
