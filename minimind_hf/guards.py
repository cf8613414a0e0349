"""Guards that stop a run which can no longer produce a useful model, before it overwrites a good one.

`TrainingGuard` (a `TrainerCallback`) checks every optimizer step, before the optimizer applies it: a non-finite loss
or gradient norm stops the run at once, and so does, when `loss_spike_factor` is set, a loss that many times the
median of the recent steps'. The weights in memory are then still the last step's, nothing non-finite is saved, no
good checkpoint is rotated out, and the error names the step and the newest complete checkpoint to resume from.
Weights are checked again whenever a checkpoint or the final model is about to be written.
`check_precision` refuses float16 settings that cannot work on the device, before any data is tokenized.
"""

import math
import statistics

import torch
import torch.distributed as dist
from transformers import TrainerCallback

from .errors import ConfigError, UserError
from .integrity import first_non_finite

# Steps of loss history the spike guard compares against (and waits for before it judges).
SPIKE_WINDOW = 20


class TrainingStopped(UserError, RuntimeError):
    """Training was stopped on purpose: the message says why, where, and how to go on (no traceback needed)."""


def check_precision(model_dtype: str, training_args) -> None:
    """float16 trains only on a GPU, with mixed precision and loss scaling: refuse it elsewhere, up front."""
    if training_args.use_cpu and training_args.fp16:
        raise ConfigError(
            "fp16: float16 mixed precision needs a GPU; on CPU it would be ignored. Use bf16: true (on CPUs with "
            "AMX/AVX512-BF16) or leave both off for fp32"
        )
    if training_args.use_cpu and model_dtype == "float16":
        raise ConfigError(
            "dtype: float16 weights overflow to NaN within a few steps on CPU (no loss scaling). Use dtype float32 "
            "(bf16 autocast comes from bf16: true), or bfloat16"
        )


def check_finite_weights(model, what: str) -> None:
    """Refuse to write ``what`` (a checkpoint, the final model) from non-finite weights."""
    name = first_non_finite(model)
    if name is not None:
        raise TrainingStopped(f"Not saving {what}: parameter {name} holds NaN/inf values")


class TrainingGuard(TrainerCallback):
    """Stops training (raises `TrainingStopped`, on every rank alike) on a non-finite loss or gradient, or on a loss
    spike when ``loss_spike_factor`` is set; see the module docstring."""

    def __init__(self, loss_spike_factor: float | None = None):
        self.loss_spike_factor = loss_spike_factor
        self.history: list[float] = []
        self._loss = None
        self._non_finite_loss = None
        self._hook = None

    def _record_loss(self, module, args, output):
        loss = getattr(output, "loss", None) if module.training else None
        if loss is None:
            return
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        self._non_finite_loss = ~finite if self._non_finite_loss is None else self._non_finite_loss | ~finite
        self._loss = loss if self._loss is None else self._loss + loss

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._hook = model.register_forward_hook(self._record_loss)

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        # [non-finite loss seen, non-finite gradient, summed loss]; one small all-reduce keeps every rank's decision
        # the same (a NaN on one rank alone must not leave its peers waiting in the next collective).
        flags = torch.zeros(3, dtype=torch.float64, device=args.device)
        if self._non_finite_loss is not None:
            flags[0] = self._non_finite_loss.double()
            flags[2] = torch.nan_to_num(self._loss.double(), nan=0.0, posinf=0.0, neginf=0.0)
        if grads:
            flags[1] = (~torch.isfinite(torch.nn.utils.get_total_norm(grads))).double()
        self._loss = self._non_finite_loss = None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(flags)
        non_finite_loss, non_finite_grad, loss = flags.tolist()
        step = state.global_step + 1
        if non_finite_loss or non_finite_grad:
            what = "the loss" if non_finite_loss else "the gradient norm"
            self._stop(args, step, f"{what} is NaN/inf (the run diverged)")
        if self.loss_spike_factor and len(self.history) >= SPIKE_WINDOW:
            median = statistics.median(self.history[-SPIKE_WINDOW:])
            if median > 0 and loss > self.loss_spike_factor * median:
                self._stop(
                    args,
                    step,
                    f"the loss {loss:.4g} is {loss / median:.1f}x the median {median:.4g} of the last {SPIKE_WINDOW} "
                    f"steps (loss_spike_factor {self.loss_spike_factor:g})",
                )
        if math.isfinite(loss):
            self.history = [*self.history[-SPIKE_WINDOW:], loss]

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if control.should_save:
            name = first_non_finite(model)
            if name is not None:
                self._stop(args, state.global_step, f"parameter {name} holds NaN/inf values")

    def _stop(self, args, step: int, reason: str):
        from .checkpoints import last_complete_checkpoint

        last = last_complete_checkpoint(args.output_dir)
        resume = (
            f"the last good checkpoint is {last}: resume from it (resume_from_checkpoint: true) with a lower "
            "learning_rate or a smaller max_grad_norm"
            if last
            else f"there is no complete checkpoint in {args.output_dir} yet"
        )
        raise TrainingStopped(
            f"Training stopped at step {step}: {reason}. That step was not applied and nothing was saved from it; "
            f"{resume}."
        )
