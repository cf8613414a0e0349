"""Measuring a training run: per-step times and token counts (`StepMeter`, fed by a Trainer callback or the native
loop's ``on_step``), peak memory, and the held-out loss after training."""

from __future__ import annotations

import resource
import time


class StepMeter:
    """Per-step wall-clock end times and token counts; `summary` turns the steps after warm-up into rates."""

    def __init__(self, pad_token_id: int, cuda: bool):
        self.pad_token_id, self.cuda = pad_token_id, cuda
        self.ends, self.cpu_ends, self.counts, self.losses = [], [], [], []
        self._pending = [0, 0, 0]  # real, supervised, processed tokens of the forwards since the last step end
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def begin(self):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def count(self, input_ids, attention_mask, labels):
        real = attention_mask.sum() if attention_mask is not None else (input_ids != self.pad_token_id).sum()
        self._pending[0] = self._pending[0] + real
        self._pending[1] = self._pending[1] + (labels[..., 1:] != -100).sum()
        self._pending[2] += input_ids.numel()

    def step_end(self, loss=None):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())
        self.counts.append(self._pending)
        self.losses.append(loss)
        self._pending = [0, 0, 0]

    def summary(self, warmup: int) -> dict:
        steps = len(self.ends) - warmup
        if steps < 1:
            raise RuntimeError(f"only {len(self.ends)} steps ran; need more than --warmup={warmup}")
        seconds = self.ends[-1] - (self.ends[warmup - 1] if warmup else self.start)
        cpu_seconds = self.cpu_ends[-1] - (self.cpu_ends[warmup - 1] if warmup else self.cpu_start)
        timed = [[int(x) for x in c] for c in self.counts[warmup:]]
        real, supervised, processed = (sum(c[i] for c in timed) for i in range(3))
        losses = [float(x) for x in self.losses if x is not None]
        return {
            "steps_timed": steps,
            "seconds": seconds,
            "s_per_step": seconds / steps,
            "real_tokens": real,
            "supervised_tokens": supervised,
            "processed_tokens": processed,
            "cpu_s_per_step": cpu_seconds / steps,
            "real_tok_s": real / seconds,
            "real_tok_cpu_s": real / cpu_seconds,
            "supervised_tok_s": supervised / seconds,
            "pad_fraction": 1 - real / processed if processed else 0.0,
            "train_loss_last5": sum(losses[-5:]) / len(losses[-5:]) if losses else None,
            "train_losses": losses,
        }


def trainer_callback(meter: StepMeter):
    from transformers import TrainerCallback

    class MeterCallback(TrainerCallback):
        """Counts tokens from the model's inputs (forward pre-hook), stamps the end of every optimizer step."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            def count(module, call_args, call_kwargs):
                if module.training:
                    ids = call_kwargs.get("input_ids", call_args[0] if call_args else None)
                    meter.count(ids, call_kwargs.get("attention_mask"), call_kwargs["labels"])

            def loss(module, call_args, call_kwargs, output):
                if module.training and getattr(output, "loss", None) is not None:
                    self.loss = output.loss.detach()

            self.loss = None
            self.hooks = [
                model.register_forward_pre_hook(count, with_kwargs=True),
                model.register_forward_hook(loss, with_kwargs=True),
            ]
            meter.begin()

        def on_step_end(self, args, state, control, **kwargs):
            meter.step_end(self.loss)

        def on_train_end(self, args, state, control, **kwargs):
            for hook in self.hooks:
                hook.remove()

    return MeterCallback()


def peak_memory_mb(cuda: bool) -> float:
    if cuda:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _padded_batches(features, batch_size: int):
    """``features`` sorted by length in batches: (input_ids, labels, attention_mask), right-padded."""
    import torch

    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    for start in range(0, len(order), batch_size):
        batch = [features[i] for i in order[start : start + batch_size]]
        width = max(len(f["input_ids"]) for f in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, f in enumerate(batch):
            n = len(f["input_ids"])
            ids[row, :n], labels[row, :n], mask[row, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
        yield ids, labels, mask


def heldout_loss(model, features, batch_size: int = 16) -> float:
    """Token-weighted cross-entropy over the supervised tokens of ``features``, fp32, dynamic padding."""
    import torch
    import torch.nn.functional as F

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, labels, mask in _padded_batches(features, batch_size):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            targets = labels[:, 1:].to(device)
            total += F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
            ).item()
            count += int((targets != -100).sum())
    return total / count


def heldout_aux_loss(model, features, batch_size: int = 16) -> float:
    """MoE: MiniMind's load-balancing loss (unweighted, over the real tokens) on ``features``, averaged over the
    batches weighted by their real tokens; how evenly the trained router spreads unseen tokens."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, _, mask in _padded_batches(features, batch_size):
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_router_logits=True)
            total += out.aux_loss.item() * int(mask.sum())
            count += int(mask.sum())
    return total / count
