"""SIGTERM, what schedulers (Slurm, Kubernetes, spot reclaims) send before they kill a job.

Python's default reaction is to die at once, mid-step, with no message and no checkpoint since the last scheduled
one. `GracefulShutdown` instead lets the running optimizer step finish, saves a checkpoint of it (when the run saves
checkpoints at all), and exits with 128 + SIGTERM and a message naming that checkpoint. The time it needs is one
step plus one checkpoint save: the scheduler's grace period (Slurm's KillWait, Kubernetes'
terminationGracePeriodSeconds) must cover that. A second SIGTERM exits at once.
"""

import logging
import os
import signal
import threading

import torch
import torch.distributed as dist
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class GracefulShutdown(TrainerCallback):
    """On SIGTERM: stop after the current optimizer step, checkpoint it, exit 128 + SIGTERM (every rank alike)."""

    def __init__(self):
        self.received: int | None = None
        self.stopped_at: int | None = None
        self._previous = None

    def _handle(self, signum, frame):
        if self.received is not None:
            raise SystemExit(128 + signum)
        self.received = signum
        logger.warning("SIGTERM received: finishing this step and saving a checkpoint of it, then stopping")

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.received is not None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # A scheduler signals every rank, but not at the same instant: all stop at the same step, or the
            # ranks still training would wait forever for the ones saving.
            flag = torch.tensor([float(stop)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
            self.stopped_at = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
        if self.stopped_at is None:
            return
        if args.save_strategy != "no":
            saved = os.path.join(args.output_dir, f"checkpoint-{self.stopped_at}")
            where = f"checkpoint {saved} holds it: resume with resume_from_checkpoint: true"
        else:
            where = "nothing was saved (save_strategy: no); set save_strategy: steps to keep work across restarts"
        if state.is_world_process_zero:
            logger.error(f"Stopped by SIGTERM after step {self.stopped_at}; {where}. No final model was written.")
        raise SystemExit(128 + signal.SIGTERM)
