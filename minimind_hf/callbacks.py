"""What the SFT and pretraining recipes add around `transformers.Trainer`: throughput / aux-loss logging, the model
card, and the final Hub push. (The resume checks live in minimind_hf.checkpoints, re-exported here.)"""

import logging
import math
import os
import re
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from .checkpoints import checkpoint_problem, resolve_resume_checkpoint  # noqa: F401  (their old home)
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


# ------------------------------------------------------------------------------------------------ model card, push


def launch_command() -> str:
    """How this run was started, as far as the process can tell, with any --hub_token value masked."""
    argv = [
        "<HUB_TOKEN>" if prev in ("--hub_token", "--hub-token") else arg
        for prev, arg in zip(["", *sys.argv[:-1]], sys.argv, strict=True)
    ]
    argv = [re.sub(r"^(--hub[_-]token=).*", r"\1<HUB_TOKEN>", arg) for arg in argv]
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if "ACCELERATE_MIXED_PRECISION" in os.environ:  # set by `accelerate launch`
        return shlex.join(["accelerate", "launch", "--num_processes", str(world_size), *argv])
    return shlex.join(
        ["torchrun", "--nproc_per_node", str(world_size), *argv] if world_size > 1 else ["python", *argv]
    )


CARD = """---
{metadata}
---

# {name}

A [MiniMind](https://github.com/jingyaogong/minimind) model {trained} with minimind-hf.

## Training

| | |
|---|---|
{table}

```bash
{command}
```

## Use

{use}
"""

USE_CHAT = """```python
import minimind_hf  # registers MiniMind; without it pass trust_remote_code=True
from {library} import {auto_class}
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{location}")
model = {auto_class}.from_pretrained("{location}")
messages = [{{"role": "user", "content": "你好"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
print(tokenizer.decode(model.generate(**inputs, max_new_tokens=128)[0], skip_special_tokens=True))
```

Or chat: `python -m minimind_hf.chat {location}`"""

# A base model continues text; documents started with bos in pretraining, so the prompt does too.
USE_BASE = """```python
import minimind_hf  # registers MiniMind; without it pass trust_remote_code=True
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{location}")
model = AutoModelForCausalLM.from_pretrained("{location}")
inputs = tokenizer(tokenizer.bos_token + "人工智能是", return_tensors="pt", add_special_tokens=False)
print(tokenizer.decode(model.generate(**inputs, max_new_tokens=128)[0], skip_special_tokens=True))
```"""


def write_model_card(
    folder, model_args, data_args, training_args, state, num_train, num_eval, eval_metrics=None, stage="sft"
):
    """README.md with Hub metadata: base model, data, method, hyperparameters, results and the launch command.
    ``stage``: "sft" (a chat model) or "pretrain" (a base model, from recipes/pretrain.py)."""
    from huggingface_hub import ModelCardData

    base, dataset, args = model_args.model_name_or_path, data_args.dataset_name, training_args
    is_adapter = Path(folder, "adapter_config.json").exists()
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    lora = f"LoRA r={model_args.lora_r} alpha={model_args.lora_alpha} on {model_args.lora_targets}"
    if stage == "sft":
        unit, method = "conversations", "full fine-tuning"
        loss_on = f"{data_args.train_on} tokens, max_length {args.max_length}"
    else:
        unit, method, layout = "rows", "pretraining", "packed into" if args.packing else "one per row, cut to"
        loss_on = f"every token; bos...eos documents {layout} {args.max_length}-token rows"
    rows = {
        "base model": f"{base} preset, random init" if model_args.is_preset else base,
        "data": f"{dataset} ({num_train} {unit}, {num_eval} held out)",
        "loss on": loss_on,
        "method": (lora + (" (merged)" if not is_adapter else "")) if model_args.use_peft else method,
        "learning rate": f"{args.learning_rate:g}, {args.lr_scheduler_type.value} {args.lr_scheduler_kwargs or ''}, "
        f"warmup {args.warmup_steps}",
        "batch": f"{args.per_device_train_batch_size} per device x {args.gradient_accumulation_steps} accumulation x "
        f"{args.world_size} processes = {args.train_batch_size * args.gradient_accumulation_steps * args.world_size}",
        "epochs / steps": f"{state.epoch or 0:.3g} / {state.global_step} (as run)",
        "optimizer": f"{args.optim.value}, weight decay {args.weight_decay}, max grad norm {args.max_grad_norm}",
        "precision": "bf16 autocast" if args.bf16 else "fp32",
        "seed": args.seed,
        "final train loss": f"{losses[-1]:.4f}" if losses else "n/a",
    }
    if eval_metrics:
        rows["eval loss / perplexity"] = f"{eval_metrics['eval_loss']:.4f} / {eval_metrics['eval_perplexity']:.2f}"
    hub_dataset = (
        isinstance(dataset, str) and not os.path.exists(dataset) and re.fullmatch(r"([\w.-]+/[\w.-]+)(/.+)?", dataset)
    )
    metadata = ModelCardData(
        library_name="peft" if is_adapter else "transformers",
        base_model=base if not (model_args.is_preset or os.path.isdir(base)) else None,
        datasets=[hub_dataset.group(1)] if hub_dataset else None,
        tags=["minimind", stage, "minimind-hf"],
        pipeline_tag="text-generation",
    )
    location = args.hub_model_id or folder
    use = (USE_CHAT if stage == "sft" else USE_BASE).format(
        library="peft" if is_adapter else "transformers",
        auto_class="AutoPeftModelForCausalLM" if is_adapter else "AutoModelForCausalLM",
        location=location,
    )
    card = CARD.format(
        metadata=metadata.to_yaml(),
        trained="after supervised fine-tuning" if stage == "sft" else "pretrained (a base model: it continues text)",
        name=Path(args.hub_model_id or args.output_dir).name,
        table="\n".join(f"| {key} | {value} |" for key, value in rows.items()),
        command=launch_command(),
        use=use,
    )
    Path(folder, "README.md").write_text(card, encoding="utf-8")


def push_folder_to_hub(folder, training_args, commit_message: str = "End of training"):
    """Upload the final folder (no checkpoints, runs or pickled arguments) to `hub_model_id`, in one commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).resolve().name
    token = training_args.hub_token
    repo_id = api.create_repo(repo_id, token=token, private=training_args.hub_private_repo, exist_ok=True).repo_id
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _ignored(p.relative_to(folder)))
    operations = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(), path_or_fileobj=p) for p in files]
    logger.info("Pushing %d files from %s to %s", len(operations), folder, repo_id)
    return api.create_commit(
        repo_id, operations, commit_message=commit_message, token=token, revision=training_args.hub_revision
    )


def _ignored(relative: Path) -> bool:
    top = relative.parts[0]
    return (
        relative.name == "training_args.bin"
        or top.startswith((".", "checkpoint-"))
        or (len(relative.parts) > 1 and top in ("runs", "merged"))
    )
