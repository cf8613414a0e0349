"""One training run, in its own process: the native loop, the recipe's Trainer path (``ours*``) or TRL's SFTTrainer,
each returning its step rates, peak memory, parameters, held-out loss and settings."""

from __future__ import annotations

import json
import os

from step_meter import StepMeter, heldout_aux_loss, heldout_loss, peak_memory_mb, trainer_callback
from train_variants import VARIANTS


def worker(spec: dict) -> dict:
    import torch

    torch.manual_seed(spec["seed"])
    meter_result = {"native": run_native, "native_ref": run_native_ref, "ours": run_ours, "trl": run_trl}[
        VARIANTS[spec["variant"]]["side"]
    ](spec)
    return {**spec, **meter_result, "load_avg": os.getloadavg()[0]}


def _eval_features(spec, tokenizer):
    from minimind_hf.data import tokenize_conversation

    with open(spec["eval_path"], encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return [tokenize_conversation(r["conversations"], tokenizer, max_length=spec["max_length"]) for r in records]


def run_native(spec: dict) -> dict:
    from contextlib import nullcontext

    import bench_moe
    from native_loop import train_native
    from native_sft_dataset import NativeSFTDataset
    from transformers import AutoTokenizer

    from minimind_hf import MiniMindForCausalLM

    cuda = spec["device"] == "cuda"
    tokenizer = AutoTokenizer.from_pretrained(spec["init_dir"])
    dataset = NativeSFTDataset(
        spec["train_path"], tokenizer, max_length=spec["max_length"], cache_dir=spec["workdir"] + "/native-cache"
    )
    model = MiniMindForCausalLM.from_pretrained(spec["init_dir"], attn_implementation="sdpa")
    meter = StepMeter(tokenizer.pad_token_id, cuda)

    def on_step(step, input_ids, labels, loss):
        meter.count(input_ids, None, labels)
        meter.step_end(loss)

    loop_args = {"seed": spec["seed"], **VARIANTS[spec["variant"]].get("args", {})}  # a variant may set its own seed
    # MoE: MiniMind's own expert dispatch (bench_moe's re-implementation), as its loop runs it
    dispatch = bench_moe.using(bench_moe.dispatch_minimind) if model.config.use_moe else nullcontext()
    meter.begin()
    with dispatch:
        train_native(
            model, dataset, batch_size=spec["batch_size"], learning_rate=spec["learning_rate"],
            max_steps=spec["total_steps"], device="cuda" if cuda else "cpu", dtype="bfloat16",
            num_workers=spec["num_workers"], on_step=on_step,
            model_kwargs={"skip_logits": False},  # MiniMind's model projects every position through its LM head
            **loop_args,
        )  # fmt: skip
    optim = "torch.optim.AdamW (" + ("foreach" if cuda else "for-loop: torch's default on CPU") + ")"
    settings = {"bf16": cuda, "packing": False, "padding": "max_length", "sampler": f"randperm({loop_args['seed']})",
                "optim": optim, "lm_head": "every position"}  # fmt: skip
    if model.config.use_moe:
        settings["moe_dispatch"] = "MiniMind's (bench_moe.dispatch_minimind)"
    return _result(spec, meter, model, tokenizer, settings)


def run_native_ref(spec: dict) -> dict:
    """MiniMind's own training code from the checkout at ``spec["native_ref"]`` (bench/native_ref.py)."""
    import native_ref
    from transformers import AutoConfig, AutoTokenizer

    import minimind_hf  # noqa: F401  (registers the config class)

    tokenizer = AutoTokenizer.from_pretrained(spec["init_dir"])
    meter = StepMeter(tokenizer.pad_token_id, spec["device"] == "cuda")
    model = native_ref.run(spec, meter, tokenizer, AutoConfig.from_pretrained(spec["init_dir"]))
    settings = {"code": spec["native_ref"], "bf16": spec["device"] == "cuda", "padding": "max_length",
                "sampler": "randperm(42)", "optim": "torch.optim.AdamW", "lm_head": "every position"}  # fmt: skip
    return _result(spec, meter, model, tokenizer, settings)


def _result(spec, meter, model, tokenizer, settings) -> dict:
    """A run's figures: step rates, peak memory, parameters, held-out loss after training, and its settings."""
    result = {**meter.summary(spec["warmup"]), "peak_mem_mb": peak_memory_mb(spec["device"] == "cuda")}
    result["params"] = sum(p.numel() for p in model.parameters())
    config = model.config
    if getattr(config, "use_moe", False):  # a token runs through top_k of the routed experts
        routed = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        result["active_params"] = result["params"] - routed * (1 - config.num_experts_per_tok / config.num_experts)
    features = _eval_features(spec, tokenizer)
    result["heldout_loss"] = heldout_loss(model.float(), features)
    if getattr(model.config, "use_moe", False) and type(model).__module__.startswith("minimind_hf"):
        result["heldout_aux_loss"] = heldout_aux_loss(model, features)
    result["settings"] = settings
    return result


def recipe_argv(spec: dict) -> list[str]:
    """``parse_args`` argv: the recipe's YAML, the workload (same for every variant), then the variant's settings."""
    workload = {
        "model_name_or_path": spec["init_dir"],
        "dataset_name": spec["train_path"],
        "eval_split_ratio": 0.0,
        # MiniMind's data augmentation, as the native dataset does it (the YAML may tune these for its own demo).
        "train_on": "assistant",
        "system_prompt_ratio": 0.2,
        "empty_think_ratio": 0.2,
        "eval_strategy": "no",
        "save_strategy": "no",
        "report_to": "none",
        "output_dir": spec["workdir"] + f"/out-{spec['variant']}",
        "max_length": spec["max_length"],
        "per_device_train_batch_size": spec["batch_size"],
        "gradient_accumulation_steps": 1,
        "max_steps": spec["total_steps"],
        "num_train_epochs": 1,
        "learning_rate": spec["learning_rate"],
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": json.dumps({"min_lr_rate": 0.1}),
        "warmup_steps": 0,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "logging_steps": 1 if VARIANTS[spec["variant"]]["side"] == "trl" else 10**6,
        "logging_first_step": False,
        "disable_tqdm": True,
        "seed": spec["seed"],
        "dataloader_num_workers": spec["num_workers"],
    }
    settings = VARIANTS[spec["variant"]].get("args", {})
    if settings == "GPU":
        settings = {"bf16": True, "packing": True, "train_sampling_strategy": "random"}
        if spec.get("flash_attn"):
            settings["attn_implementation"] = "flash_attention_2"
    if spec["device"] == "cuda":
        workload["use_cpu"] = False
    argv = [spec["config"]]
    for key, value in {**workload, **settings}.items():
        if value == "MAX":
            value = spec["max_length"]
        if value is None:
            continue  # "pad to longest": leave pad_to_multiple_of unset (the recipe's default is None)
        argv += [f"--{key}", str(value)]
    if settings.get("pad_to_multiple_of", "") is None:
        argv += ["--pad_to_multiple_of", "1"]  # a multiple of 1 is no rounding, whatever the YAML sets
    return argv


def recipe_setup(spec: dict):
    """Tokenizer, model, training data and arguments exactly as recipes/sft.py builds them."""
    from transformers import AutoTokenizer, set_seed

    from minimind_hf.arguments import parse_args
    from minimind_hf.data import load_sft_dataset
    from minimind_hf.recipe_utils import load_model

    model_args, data_args, training_args = parse_args(recipe_argv(spec))
    set_seed(training_args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path)
    model = load_model(model_args, tokenizer, packing=training_args.packing)
    data_options = {**data_args.load_options(training_args), "cache_dir": spec["workdir"] + "/datasets-cache"}
    train_dataset = load_sft_dataset(data_args.dataset_name, tokenizer, **data_options)
    return model_args, training_args, tokenizer, model, train_dataset


def padding_of(training_args) -> str:
    if training_args.packing or getattr(training_args, "padding_free", False):  # ours / TRL's SFTConfig
        return "none (packed)"
    return "max_length" if training_args.pad_to_multiple_of == training_args.max_length else "longest"


def settings_of(training_args, model) -> dict:
    return {
        "bf16": bool(training_args.bf16),
        "packing": bool(training_args.packing),
        "padding": padding_of(training_args),
        "sampler": str(getattr(training_args.train_sampling_strategy, "value", training_args.train_sampling_strategy)),
        "optim": str(getattr(training_args.optim, "value", training_args.optim)),
        "torch_compile": bool(training_args.torch_compile),
        "attn": model.config._attn_implementation,
        "num_workers": training_args.dataloader_num_workers,
        "lm_head": "supervised positions (skip_logits)",
    }


def run_ours(spec: dict) -> dict:
    from minimind_hf.collator import build_collator
    from minimind_hf.recipe_utils import build_trainer

    _, training_args, tokenizer, model, train_dataset = recipe_setup(spec)
    collator = build_collator(
        tokenizer, packing=training_args.packing, pad_to_multiple_of=training_args.pad_to_multiple_of
    )
    meter = StepMeter(tokenizer.pad_token_id, spec["device"] == "cuda")
    trainer = build_trainer(model, training_args, tokenizer, collator, train_dataset, None)  # as the recipe builds it
    trainer.add_callback(trainer_callback(meter))
    trainer.train()
    return _result(spec, meter, model, tokenizer, settings_of(training_args, model))


def run_trl(spec: dict) -> dict:
    """TRL on our model and our tokenized rows. TRL's own tokenization cannot reproduce MiniMind's labels here:
    ``assistant_only_loss`` needs ``{% generation %}`` markers that MiniMind's chat templates lack, so the dataset is
    handed over pre-tokenized (input_ids + labels), which TRL uses as is."""
    import dataclasses

    from trl import SFTConfig, SFTTrainer

    model_args, training_args, tokenizer, model, train_dataset = recipe_setup(spec)
    fields = {f.name for f in dataclasses.fields(SFTConfig) if f.init}
    kwargs = {f.name: getattr(training_args, f.name) for f in dataclasses.fields(training_args) if f.init}
    kwargs = {k: v for k, v in kwargs.items() if k in fields and k not in ("packing", "max_length")}
    # TRL's packing is padding-free (bfd) repacking into max_length rows; its plain padding-free mode is the
    # equivalent of our packing collator (same samples per step, concatenated).
    kwargs.update(
        padding_free=bool(training_args.packing), max_length=None if training_args.packing else spec["max_length"]
    )
    kwargs.update(pad_to_multiple_of=training_args.pad_to_multiple_of, dataset_num_proc=None)
    trl_args = SFTConfig(**kwargs)
    meter = StepMeter(tokenizer.pad_token_id, spec["device"] == "cuda")
    trainer = SFTTrainer(
        model=model,
        args=trl_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=[trainer_callback(meter)],
    )
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    settings = settings_of(trl_args, model) | {"packing": bool(trl_args.padding_free), "lm_head": "TRL's fused head"}
    result = _result(spec, meter, model, tokenizer, settings)
    result["train_loss_last5"] = sum(losses[-5:]) / len(losses[-5:]) if losses else None
    result["train_losses"] = losses
    return result
