"""The callbacks both recipes add to `transformers.Trainer`: throughput / aux-loss logging and a progress bar that
shows the loss. (The model card is minimind_hf.model_card, the Hub push minimind_hf.hub.)"""

import logging
import math
import time

import torch
import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from .constants import IGNORE_INDEX

logger = logging.getLogger(__name__)


class SFTMetricsCallback(TrainerCallback):
    """Adds to every training log, summed over all processes: `tokens_per_second` (non-padding input tokens),
    `supervised_tokens_per_second` (tokens that carry loss), `num_tokens` so far, and the MoE load-balancing loss as
    `aux_loss` (unweighted, as transformers returns it; `loss` includes `router_aux_loss_coef · aux_loss`). Adds
    `eval_perplexity` to eval logs.

    Counts come from forward hooks on the model, rates from the wall-clock time of the training steps in the logging
    window (evaluation and checkpoint saving excluded). Padding is the `attention_mask`'s zeros when the batch has
    one, else the tokens equal to `pad_token_id` (default: the Trainer's tokenizer's; `minimind_hf.collator` leaves
    the mask out unless it pads with eos). Insert it ahead of the reporting callbacks, so TensorBoard, W&B and the log
    history see its numbers: `trainer.callback_handler.callbacks.insert(0, SFTMetricsCallback())`.
    """

    def __init__(self, pad_token_id: int | None = None):
        self.pad_token_id = pad_token_id
        self.num_tokens = 0
        self._hooks = []
        self._reset_window()

    def _reset_window(self):
        # tokens, supervised tokens, aux-loss sum, forwards: device tensors once counted, read only when logging
        self._window = [0, 0, 0, 0]
        self._window_start = time.perf_counter()

    def _count_inputs(self, module, args, kwargs):
        if not module.training:
            return
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        mask, labels = kwargs.get("attention_mask"), kwargs.get("labels")
        if mask is not None:
            tokens = mask.sum()
        elif input_ids is None:
            tokens = 0
        else:
            tokens = input_ids.numel() if self.pad_token_id is None else (input_ids != self.pad_token_id).sum()
        self._window[0] = self._window[0] + tokens
        if labels is not None:
            self._window[1] = self._window[1] + (labels[..., 1:] != IGNORE_INDEX).sum()

    def _record_aux_loss(self, module, args, output):
        aux_loss = getattr(output, "aux_loss", None)
        if module.training and aux_loss is not None:
            self._window[2] = self._window[2] + aux_loss.detach().float()
            self._window[3] += 1

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        # A resumed run's state carries the logs so far: count on from the tokens they had seen.
        counted = [entry["num_tokens"] for entry in state.log_history if "num_tokens" in entry]
        self.num_tokens = counted[-1] if counted else 0
        if self.pad_token_id is None:
            self.pad_token_id = getattr(processing_class, "pad_token_id", None)
        self._hooks = [
            model.register_forward_pre_hook(self._count_inputs, with_kwargs=True),
            model.register_forward_hook(self._record_aux_loss),
        ]
        self._reset_window()

    def on_train_end(self, args, state, control, **kwargs):
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def on_evaluate(self, args, state, control, **kwargs):
        self._window_start = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        self._window_start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        added = {}
        if "eval_loss" in logs:
            added["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        if "loss" in logs:  # a training log; every process gets here at the same step, so the all-reduce is safe
            elapsed = max(time.perf_counter() - self._window_start, 1e-9)
            window = torch.tensor([float(x) for x in self._window], dtype=torch.float64, device=args.device)
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                dist.all_reduce(window)
            tokens, supervised, aux_sum, forwards = window.tolist()
            self.num_tokens += int(tokens)
            added.update(
                tokens_per_second=round(tokens / elapsed, 1),
                supervised_tokens_per_second=round(supervised / elapsed, 1),
                num_tokens=self.num_tokens,
            )
            if forwards:
                added["aux_loss"] = aux_sum / forwards
            self._reset_window()
        logs.update(added)
        if state.log_history and added:
            state.log_history[-1].update(added)


class LossProgressCallback(ProgressCallback):
    """transformers' progress bar with the latest loss, eval loss and learning rate beside it (the log lines stay)."""

    SHOWN = ("loss", "eval_loss", "learning_rate")

    def on_log(self, args, state, control, logs=None, **kwargs):
        super().on_log(args, state, control, logs=logs, **kwargs)
        if self.training_bar is not None and any(key in (logs or {}) for key in self.SHOWN):
            self._postfix = {**getattr(self, "_postfix", {}), **{k: f"{logs[k]:.4g}" for k in self.SHOWN if k in logs}}
            self.training_bar.set_postfix(self._postfix, refresh=True)


# Names this module used to hold, importable from here until the next minor release.
MOVED = {
    "checkpoint_problem": "minimind_hf.checkpoints",
    "resolve_resume_checkpoint": "minimind_hf.checkpoints",
    "write_model_card": "minimind_hf.model_card",
    "launch_command": "minimind_hf.model_card",
    "push_folder_to_hub": "minimind_hf.hub",
}


def __getattr__(name):
    if name not in MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(f"minimind_hf.callbacks.{name} moved to {MOVED[name]}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(MOVED[name]), name)
