"""The model card (README.md) the recipes write next to the final model: Hub metadata, what was trained on what, the
hyperparameters as run, the results and the launch command, and how to use the model."""

import os
import re
import shlex
import sys
from pathlib import Path


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
