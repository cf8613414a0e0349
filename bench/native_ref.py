"""MiniMind's own SFT code, imported at run time from a checkout the user names (``--native-ref PATH``), never copied.

`run` trains with MiniMind's ``trainer/train_full_sft.py`` ``train_epoch`` (its loop: ``get_lr``, AdamW, clip, scaler),
its ``dataset/lm_dataset.py`` ``SFTDataset`` and its ``model/model_minimind.py`` model, set up as that script's
``__main__`` does (``setup_seed(42 + epoch)``, ``randperm``, ``SkipBatchSampler``, ``DataLoader(pin_memory=True)``),
from the bench's initial weights (MiniMind's weight names, loaded strictly) on the bench's data. ``train_epoch`` reads
module globals; they are set on the imported module. Its ``Logger`` (called every step with ``log_interval=1``) is
wrapped to stamp the end of each step and read its loss; its resume checkpoint (``lm_checkpoint``) is skipped, and the
weights it saves after the last step go to the bench's work folder, outside the timed steps.

The checkout's architecture must be the preset's: MiniMind's current code is minimind-3 (``--presets minimind-3``,
``minimind-3-moe``); the minimind2 presets need a checkout of MiniMind's 2.x code.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from contextlib import nullcontext
from pathlib import Path

# our config field -> MiniMind's MiniMindConfig keyword (same meaning)
CONFIG_FIELDS = (
    "hidden_size", "num_hidden_layers", "use_moe", "vocab_size", "num_attention_heads", "num_key_value_heads",
    "head_dim", "intermediate_size", "max_position_embeddings", "rms_norm_eps", "num_experts", "num_experts_per_tok",
    "moe_intermediate_size", "norm_topk_prob", "router_aux_loss_coef", "hidden_act", "dropout",
)  # fmt: skip


class NativeRefError(SystemExit):
    pass


def check_checkout(path: str) -> Path:
    """The checkout's root, or one clear message when ``path`` is not a MiniMind checkout."""
    root = Path(path).expanduser().resolve()
    missing = [f for f in ("model/model_minimind.py", "dataset/lm_dataset.py", "trainer/train_full_sft.py")
               if not (root / f).is_file()]  # fmt: skip
    if missing:
        raise NativeRefError(f"--native-ref {path}: not a MiniMind checkout (missing {', '.join(missing)})")
    return root


def import_checkout(path: str):
    """MiniMind's model, dataset and SFT-script modules from the checkout at ``path``."""
    sys.path.insert(0, str(check_checkout(path)))
    return (
        importlib.import_module("model.model_minimind"),
        importlib.import_module("dataset.lm_dataset"),
        importlib.import_module("trainer.train_full_sft"),
    )


def build_model(model_module, our_config, init_dir: str):
    """MiniMind's model with our preset's shape, loaded strictly from the bench's initial weights."""
    from safetensors.torch import load_file

    kwargs = {name: getattr(our_config, name) for name in CONFIG_FIELDS if hasattr(our_config, name)}
    kwargs["rope_theta"] = our_config.rope_parameters["rope_theta"]
    config = model_module.MiniMindConfig(**kwargs)
    model = model_module.MiniMindForCausalLM(config)
    state = load_file(str(Path(init_dir) / "model.safetensors"))
    result = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise NativeRefError(
            f"--native-ref: the checkout's model is not this preset's architecture (missing {sorted(missing)[:4]}, "
            f"unexpected {sorted(result.unexpected_keys)[:4]}); use the matching preset or MiniMind version"
        )
    return model, config


def run(spec: dict, meter, tokenizer, our_config) -> object:
    """Train with the checkout's code; ``meter`` gets every step's tokens and end time. Returns the trained model."""
    import torch
    from torch.utils.data import DataLoader

    model_module, dataset_module, sft = import_checkout(spec["native_ref"])
    model, config = build_model(model_module, our_config, spec["init_dir"])
    device = "cuda" if spec["device"] == "cuda" else "cpu"
    model = model.to(device)
    train_ds = dataset_module.SFTDataset(spec["train_path"], tokenizer, max_length=spec["max_length"])

    args = argparse.Namespace(
        device=device, accumulation_steps=1, grad_clip=1.0, log_interval=1, save_interval=10**9, epochs=1,
        learning_rate=spec["learning_rate"], save_dir=spec["workdir"] + "/native-ref-out", save_weight="full_sft",
        dtype="bfloat16",
    )  # fmt: skip
    Path(args.save_dir).mkdir(parents=True, exist_ok=True)
    autocast = nullcontext() if device == "cpu" else torch.autocast("cuda", dtype=torch.bfloat16)
    sft.args, sft.model, sft.lm_config, sft.autocast_ctx = args, model, config, autocast
    sft.optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    sft.scaler = torch.amp.GradScaler(device, enabled=False)
    sft.lm_checkpoint = lambda *a, **k: None  # resume checkpoints: not part of the step

    def logger(message):
        found = re.search(r"loss: ([0-9.]+)", str(message))
        if found:
            meter.step_end(float(found.group(1)))

    sft.Logger = logger
    sft.setup_seed(42)  # as its __main__: setup_seed(42 + epoch), then the epoch's permutation
    indices = torch.randperm(len(train_ds)).tolist()
    loader = DataLoader(
        train_ds, batch_sampler=sft.SkipBatchSampler(indices, spec["batch_size"], 0),
        num_workers=spec["num_workers"], pin_memory=device == "cuda",
    )  # fmt: skip

    def counted(batches):
        for input_ids, labels in batches:
            meter.count(input_ids, None, labels)
            yield input_ids, labels

    meter.begin()
    sft.train_epoch(0, counted(loader), len(loader), 0, None)
    return model
