"""Baseline: MiniMind's native SFT loop (``trainer/train_full_sft.py`` + ``trainer_utils.py``), re-implemented.

What it keeps from MiniMind, line for line in spirit:
* data: the per-item ``SFTDataset`` (bench/native_sft_dataset.py: render + tokenize + pad to ``max_length`` + token
  scan in every ``__getitem__``), batches from ``torch.randperm`` seeded with ``42 + epoch`` (``SkipBatchSampler``
  with nothing to skip), ``DataLoader(num_workers, pin_memory=True)``;
* optimizer: ``torch.optim.AdamW(model.parameters(), lr)`` (torch defaults: weight decay 0.01 on every parameter);
* schedule: ``get_lr`` (cosine from ``lr`` down to ``lr / 10``, no warm-up), set by hand every step;
* step: ``res = model(input_ids, labels=labels)``, ``loss = res.loss + res.aux_loss`` (our model's training
  ``res.loss`` is that sum), divided by the accumulation
  steps, ``GradScaler`` (active only for float16), clip at 1.0, ``zero_grad(set_to_none=True)``;
* precision: fp32 on CPU (MiniMind's ``autocast_ctx`` is ``nullcontext()`` there), autocast to ``dtype`` on GPU.

The model is whatever module it is given; the benchmarks pass `MiniMindForCausalLM` with SDPA, no attention mask and
``skip_logits=False``, which computes what MiniMind's own ``model_minimind.py`` computes (causal SDPA over the padded
rows, the LM head and cross-entropy at every position).
Logging, checkpointing and wandb are left out; ``on_step`` lets a caller time and count each step instead.
"""

from __future__ import annotations

import math
import random
from contextlib import nullcontext

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler


def get_lr(current_step: int, total_steps: int, lr: float) -> float:
    """MiniMind's schedule (trainer_utils.get_lr): cosine from ``lr`` at step 0 to ``lr / 10`` at ``total_steps``."""
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * current_step / total_steps)))


def setup_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


class SkipBatchSampler(Sampler):
    """MiniMind's resumable batch sampler: fixed-size batches of ``sampler``'s indices, the first ``skip`` dropped."""

    def __init__(self, sampler, batch_size: int, skip_batches: int = 0):
        self.sampler, self.batch_size, self.skip_batches = sampler, batch_size, skip_batches

    def __iter__(self):
        batch, skipped = [], 0
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                if skipped < self.skip_batches:
                    skipped += 1
                else:
                    yield batch
                batch = []
        if batch and skipped >= self.skip_batches:
            yield batch

    def __len__(self):
        return max(0, -(-len(self.sampler) // self.batch_size) - self.skip_batches)


def train_native(
    model,
    dataset,
    *,
    batch_size: int = 16,
    learning_rate: float = 1e-6,
    epochs: int = 1,
    max_steps: int | None = None,
    device: str = "cpu",
    dtype: str = "bfloat16",
    accumulation_steps: int = 1,
    grad_clip: float = 1.0,
    num_workers: int = 0,
    seed: int = 42,
    first_lr_step: int = 1,
    model_kwargs: dict | None = None,
    on_step=None,
) -> None:
    """Train ``model`` on ``dataset`` (items ``(input_ids, labels)``) the way MiniMind's train_full_sft.py does.

    ``max_steps`` stops early; the cosine then spans ``max_steps`` (as Trainer's schedule does with ``max_steps``),
    otherwise ``epochs * len(loader)`` as in MiniMind. MiniMind counts steps from 1 (``enumerate(loader, start=1)``),
    so its first update already uses a decayed rate; ``first_lr_step=0`` starts the cosine at step 0 as
    transformers' schedulers do (the one change the `native_step0` bench variant makes). ``model_kwargs`` go to every
    forward call. ``on_step(step, input_ids,
    labels, loss)`` runs after every optimizer step, with the un-divided loss tensor.
    """
    setup_seed(seed)
    device_type = "cuda" if "cuda" in device else "cpu"
    amp_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float16
    autocast_ctx = nullcontext() if device_type == "cpu" else torch.autocast("cuda", dtype=amp_dtype)
    scaler = torch.amp.GradScaler(device_type, enabled=(device_type == "cuda" and dtype == "float16"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.to(device).train()

    iters = -(-len(dataset) // batch_size)
    total_steps = max_steps if max_steps is not None else epochs * iters
    global_step = 0
    for epoch in range(epochs):
        setup_seed(seed + epoch)
        indices = torch.randperm(len(dataset)).tolist()
        loader = DataLoader(
            dataset,
            batch_sampler=SkipBatchSampler(indices, batch_size, 0),
            num_workers=num_workers,
            pin_memory=device_type == "cuda",
        )
        for step, (input_ids, labels) in enumerate(loader, start=1):
            input_ids = input_ids.to(device)
            labels = labels.to(device)
            lr = get_lr(epoch * iters + step - 1 + first_lr_step, total_steps, learning_rate)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr

            with autocast_ctx:
                res = model(input_ids, labels=labels, **(model_kwargs or {}))
                # MiniMind's `res.loss + res.aux_loss`: our training loss already adds router_aux_loss_coef · aux_loss
                loss = res.loss / accumulation_steps

            scaler.scale(loss).backward()
            if (step + 1) % accumulation_steps == 0:  # MiniMind's condition, kept as is
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)

            global_step += 1
            if on_step is not None:
                on_step(global_step, input_ids, labels, loss.detach() * accumulation_steps)
            del input_ids, labels, res, loss
            if max_steps is not None and global_step >= max_steps:
                return
