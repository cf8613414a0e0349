"""Training benchmark: MiniMind's native loop vs minimind-hf on `transformers.Trainer` vs TRL's `SFTTrainer`.

    .venv/bin/python bench/bench_train.py                                   # minimind2-small, default variants
    .venv/bin/python bench/bench_train.py --presets minimind2-small,minimind-3 --variants native,ours --steps 20
    .venv/bin/python bench/bench_train.py --data dataset/sft_512.jsonl      # a real MiniMind jsonl instead

Every run sees the same ``(warmup + steps) * batch_size`` conversations once (one epoch), from the same initial
weights, in its own subprocess (so peak RSS is per run). Runs are interleaved, variant by variant, and with
``--repeats`` > 1 each figure is the best of its repeats (``--parity-repeats`` runs the variants of the
identical-work comparison, native, native_step0 and ours_fp32_fixed, more often). A step is timed from the end of the previous step to the end
of this one (data loading, forward, backward, clipping, optimizer step), after ``--warmup`` untimed steps.

* native: bench/native_loop.py on bench/native_sft_dataset.py — MiniMind's own path, fp32 on CPU.
* ours*: the product path — `minimind_hf.arguments.parse_args` on ``--config`` (the recipe's YAML) plus the workload
  overrides below, `load_sft_dataset`, `build_collator`, `build_trainer`, as recipes/sft.py does. ``ours`` keeps
  the YAML's speed settings (precision, packing, sampler, optimizer, compile); the other ``ours_*`` variants set them.
* trl: `trl.SFTTrainer` on the same model object and the same tokenized dataset (input_ids + labels).

Held-out loss: mean cross-entropy over the supervised tokens of ``--eval-n`` other conversations, fp32, after training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFERENCE = ROOT.parent / "shared" / "reference"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

DEFAULT_CONFIG = ROOT / "configs" / "sft_tiny_cpu.yaml"
TOKENIZER_OF = {"minimind2": "minimind2-tokenizer", "minimind-3": "minimind3-tokenizer"}
RESULT_TAG = "BENCH_RESULT "

# How each variant trains. "args" are recipe (parse_args) overrides on top of the YAML; None keeps the YAML's value.
SPEED_KEYS = ("bf16", "packing", "pad_to_multiple_of", "train_sampling_strategy", "optim", "torch_compile")
VARIANTS = {
    "native": {"side": "native", "label": "MiniMind native loop (fp32, pad to max_length)"},
    "native_step0": {
        "side": "native",
        "label": "MiniMind native loop, cosine from step 0 as Trainer's (its only change)",
        "args": {"first_lr_step": 0},
    },
    "ours_fp32_fixed": {
        "side": "ours",
        "label": "ours, fp32, pad to max_length (native's padding)",
        "args": {"bf16": False, "packing": False, "pad_to_multiple_of": "MAX", "train_sampling_strategy": "random"},
    },
    "ours": {"side": "ours", "label": "ours, recommended CPU config (YAML as is)", "args": {}},
    "ours_bf16_fixed": {
        "side": "ours",
        "label": "ours, bf16, pad to max_length",
        "args": {"bf16": True, "packing": False, "pad_to_multiple_of": "MAX", "train_sampling_strategy": "random"},
    },
    "ours_bf16_dynamic": {
        "side": "ours",
        "label": "ours, bf16, pad to longest in batch",
        "args": {"bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "random"},
    },
    "ours_bf16_grouped": {
        "side": "ours",
        "label": "ours, bf16, pad to longest + group_by_length",
        "args": {
            "bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
        },
    },
    "ours_bf16_packed": {
        "side": "ours",
        "label": "ours, bf16, padding-free packing",
        "args": {"bf16": True, "packing": True, "pad_to_multiple_of": None, "train_sampling_strategy": "random"},
    },
    "ours_fp32_grouped": {
        "side": "ours",
        "label": "ours, fp32, pad to longest + group_by_length",
        "args": {
            "bf16": False, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
        },
    },
    "ours_bf16_grouped_foreach": {
        "side": "ours",
        "label": "ours, bf16, grouped, optim adamw_torch (foreach, not fused)",
        "args": {
            "bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
            "optim": "adamw_torch",
        },
    },
    "ours_bf16_grouped_compile": {
        "side": "ours",
        "label": "ours, bf16, grouped, torch_compile",
        "args": {
            "bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
            "torch_compile": True,
        },
    },
    "ours_bf16_packed_varlen": {
        "side": "ours",
        "label": "ours, bf16, packing + per-sequence SDPA (bench prototype, not in minimind_hf)",
        "args": {
            "bf16": True, "packing": True, "pad_to_multiple_of": None, "train_sampling_strategy": "random",
            "attn_implementation": "sdpa_packed",
        },
    },
    "trl": {"side": "trl", "label": "TRL SFTTrainer, same speed settings as `ours`"},
    # GPU: MiniMind trains under bf16 autocast there; "ours_fast" packs with flash-attention varlen when installed.
    "ours_bf16_fixed_gpu": {
        "side": "ours",
        "label": "ours, bf16, pad to max_length (native's padding)",
        "args": {"bf16": True, "packing": False, "pad_to_multiple_of": "MAX", "train_sampling_strategy": "random"},
    },
    "ours_fast_gpu": {"side": "ours", "label": "ours, bf16 + packing (flash-attn varlen if installed)", "args": "GPU"},
}  # fmt: skip
CPU_DEFAULT = "native,native_step0,ours_fp32_fixed,ours,trl"
CPU_SWEEP = (
    "ours_bf16_fixed,ours_bf16_dynamic,ours_bf16_grouped,ours_bf16_packed,ours_fp32_grouped,ours_bf16_grouped_foreach,"
    "ours_bf16_grouped_compile,ours_bf16_packed_varlen"
)
GPU_DEFAULT = "native,native_step0,ours_bf16_fixed_gpu,ours_fast_gpu,trl"

# bf16 dense tensor-core peaks (TFLOP/s), matched as substrings of torch.cuda.get_device_name(), first match wins.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("H800", 989.0), ("GH200", 989.0),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
    ("RTX 4090", 165.0), ("RTX 3090", 71.0), ("B200", 2250.0),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------- measuring


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


def register_packed_sdpa() -> None:
    """Prototype attention "sdpa_packed": SDPA run per sequence of a padding-free packed row (position_ids restarting
    at 0), instead of one SDPA over the whole row with a block-diagonal mask, whose cost grows with the square of the
    row length. Everything else (padded batches, generation with a cache) goes to transformers' sdpa."""
    import torch
    import torch.nn.functional as F
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    def sdpa_packed(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        position_ids = kwargs.get("position_ids")
        if position_ids is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
        starts = (position_ids[0] == 0).nonzero().flatten().tolist()
        if len(starts) < 2 or starts[0] != 0:
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
        key, value = repeat_kv(key, module.num_key_value_groups), repeat_kv(value, module.num_key_value_groups)
        bounds = zip(starts, [*starts[1:], query.shape[2]], strict=True)
        out = [
            F.scaled_dot_product_attention(
                query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=dropout, is_causal=True, scale=scaling
            )
            for a, b in bounds
        ]
        return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None

    AttentionInterface.register("sdpa_packed", sdpa_packed)
    AttentionMaskInterface.register("sdpa_packed", ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def peak_memory_mb(cuda: bool) -> float:
    if cuda:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def heldout_loss(model, features, batch_size: int = 16) -> float:
    """Token-weighted cross-entropy over the supervised tokens of ``features``, fp32, dynamic padding."""
    import torch
    import torch.nn.functional as F

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = [features[i] for i in order[start : start + batch_size]]
            width = max(len(f["input_ids"]) for f in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, f in enumerate(batch):
                n = len(f["input_ids"])
                ids[row, :n], labels[row, :n], mask[row, :n] = (
                    torch.tensor(f["input_ids"]),
                    torch.tensor(f["labels"]),
                    1,
                )
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            targets = labels[:, 1:].to(device)
            total += F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
            ).item()
            count += int((targets != -100).sum())
    return total / count


# --------------------------------------------------------------------------------------------------- one run (worker)


def worker(spec: dict) -> dict:
    import torch

    torch.manual_seed(spec["seed"])
    meter_result = {"native": run_native, "ours": run_ours, "trl": run_trl}[VARIANTS[spec["variant"]]["side"]](spec)
    return {**spec, **meter_result, "load_avg": os.getloadavg()[0]}


def _eval_features(spec, tokenizer):
    from minimind_hf.data import tokenize_conversation

    with open(spec["eval_path"], encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return [tokenize_conversation(r["conversations"], tokenizer, max_length=spec["max_length"]) for r in records]


def run_native(spec: dict) -> dict:
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

    meter.begin()
    train_native(
        model, dataset, batch_size=spec["batch_size"], learning_rate=spec["learning_rate"],
        max_steps=spec["total_steps"], device="cuda" if cuda else "cpu", dtype="bfloat16",
        num_workers=spec["num_workers"], seed=spec["seed"], on_step=on_step,
        model_kwargs={"skip_logits": False},  # MiniMind's model projects every position through its LM head
        **VARIANTS[spec["variant"]].get("args", {}),
    )  # fmt: skip
    optim = "torch.optim.AdamW (" + ("foreach" if cuda else "for-loop: torch's default on CPU") + ")"
    settings = {"bf16": cuda, "packing": False, "padding": "max_length", "sampler": "randperm(42)", "optim": optim,
                "lm_head": "every position"}  # fmt: skip
    return _result(spec, meter, model, tokenizer, settings)


def _result(spec, meter, model, tokenizer, settings) -> dict:
    """A run's figures: step rates, peak memory, parameters, held-out loss after training, and its settings."""
    result = {**meter.summary(spec["warmup"]), "peak_mem_mb": peak_memory_mb(spec["device"] == "cuda")}
    result["params"] = sum(p.numel() for p in model.parameters())
    result["heldout_loss"] = heldout_loss(model.float(), _eval_features(spec, tokenizer))
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


def _recipe_setup(spec: dict):
    """Tokenizer, model, training data and arguments exactly as recipes/sft.py builds them."""
    from transformers import AutoTokenizer, set_seed

    from minimind_hf.arguments import parse_args
    from minimind_hf.data import load_sft_dataset
    from minimind_hf.recipe_utils import load_model

    model_args, data_args, training_args = parse_args(recipe_argv(spec))
    set_seed(training_args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path)
    model = load_model(model_args, tokenizer)
    data_options = {**data_args.load_options(training_args), "cache_dir": spec["workdir"] + "/datasets-cache"}
    train_dataset = load_sft_dataset(data_args.dataset_name, tokenizer, **data_options)
    return model_args, training_args, tokenizer, model, train_dataset


def _settings(training_args, model) -> dict:
    return {
        "bf16": bool(training_args.bf16),
        "packing": bool(training_args.packing),
        "padding": "max_length" if training_args.pad_to_multiple_of == training_args.max_length else "longest",
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

    settings = VARIANTS[spec["variant"]].get("args")
    if isinstance(settings, dict) and settings.get("attn_implementation") == "sdpa_packed":
        register_packed_sdpa()
    _, training_args, tokenizer, model, train_dataset = _recipe_setup(spec)
    collator = build_collator(
        tokenizer, packing=training_args.packing, pad_to_multiple_of=training_args.pad_to_multiple_of
    )
    meter = StepMeter(tokenizer.pad_token_id, spec["device"] == "cuda")
    trainer = build_trainer(model, training_args, tokenizer, collator, train_dataset, None)  # as the recipe builds it
    trainer.add_callback(trainer_callback(meter))
    trainer.train()
    return _result(spec, meter, model, tokenizer, _settings(training_args, model))


def run_trl(spec: dict) -> dict:
    """TRL on our model and our tokenized rows. TRL's own tokenization cannot reproduce MiniMind's labels here:
    ``assistant_only_loss`` needs ``{% generation %}`` markers that MiniMind's chat templates lack, so the dataset is
    handed over pre-tokenized (input_ids + labels), which TRL uses as is."""
    import dataclasses

    from trl import SFTConfig, SFTTrainer

    model_args, training_args, tokenizer, model, train_dataset = _recipe_setup(spec)
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
    settings = _settings(trl_args, model) | {"packing": bool(trl_args.padding_free), "lm_head": "TRL's fused head"}
    result = _result(spec, meter, model, tokenizer, settings)
    result["train_loss_last5"] = sum(losses[-5:]) / len(losses[-5:]) if losses else None
    result["train_losses"] = losses
    return result


# --------------------------------------------------------------------------------------------------- orchestration


def tokenizer_dir(preset: str) -> Path:
    return REFERENCE / TOKENIZER_OF["minimind2" if preset.startswith("minimind2") else "minimind-3"]


def prepare(workdir: Path, args) -> dict:
    """Data files and, per preset, one set of initial weights (with its tokenizer) shared by every run."""
    import torch
    from synth_sft import generate
    from transformers import AutoTokenizer

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    paths = {}
    n_train = max(args.total_steps(p) for p in args.preset_list) * args.batch_size
    if args.data:
        with open(args.data, encoding="utf-8") as f:
            lines = list(islice(f, n_train + args.eval_n))
        if len(lines) < n_train + args.eval_n:
            raise SystemExit(f"{args.data} has {len(lines)} lines; need {n_train + args.eval_n}")
        (workdir / "train.jsonl").write_text("".join(lines[:n_train]), encoding="utf-8")
        (workdir / "eval.jsonl").write_text("".join(lines[n_train:]), encoding="utf-8")
    else:
        generate(str(workdir / "train.jsonl"), n_train, seed=args.seed)
        generate(str(workdir / "eval.jsonl"), args.eval_n, seed=args.seed + 1)
    paths["eval"] = str(workdir / "eval.jsonl")
    for preset in args.preset_list:
        n = args.total_steps(preset) * args.batch_size
        path = workdir / f"train-{n}.jsonl"
        if not path.exists():
            with open(workdir / "train.jsonl", encoding="utf-8") as f:
                path.write_text("".join(islice(f, n)), encoding="utf-8")
        paths[f"train/{preset}"] = str(path)
        init_dir = workdir / f"init-{preset}"
        torch.manual_seed(args.seed)
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(preset))
        model.save_pretrained(init_dir)
        AutoTokenizer.from_pretrained(tokenizer_dir(preset)).save_pretrained(init_dir)
        paths[f"init/{preset}"] = str(init_dir)
    return paths


def run_one(spec: dict, log_path: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface"))
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(spec["threads"])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = log_path.read_text()[-3000:]
    return {**spec, "error": f"exit {proc.returncode}: {tail}"}


# The identical-work comparison (same padding, fp32, same model): a few percent apart at most, so the run-to-run noise
# of a shared 2-core box (~10%) decides it unless each side gets its best of several runs.
PARITY_VARIANTS = ("native", "native_step0", "ours_fp32_fixed")


def run_train_bench(args, log=print) -> list[dict]:
    """All (preset, variant) runs, interleaved; best of ``--repeats`` per run. Returns one dict per run."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        return _run_all(workdir, args, log)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_all(workdir: Path, args, log) -> list[dict]:
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    paths = prepare(workdir, args)
    flash = _flash_attn_available() if cuda else False
    best: dict[tuple, dict] = {}
    for preset in args.preset_list:
        variants = args.variant_list(cuda, preset)
        for repeat in range(max(args.repeats, args.parity_repeats)):
            for variant in variants:
                if repeat >= args.repeats and variant not in PARITY_VARIANTS:
                    continue
                spec = {
                    "preset": preset, "variant": variant, "device": "cuda" if cuda else "cpu",
                    "init_dir": paths[f"init/{preset}"], "train_path": paths[f"train/{preset}"],
                    "eval_path": paths["eval"], "workdir": str(workdir), "config": str(args.config),
                    "max_length": args.max_length, "batch_size": args.batch_size, "warmup": args.warmup_for(preset),
                    "total_steps": args.total_steps(preset), "learning_rate": args.learning_rate, "seed": args.seed,
                    "num_workers": args.num_workers, "flash_attn": flash, "threads": args.threads,
                }  # fmt: skip
                started = time.perf_counter()
                result = run_one(spec, workdir / f"{preset}-{variant}-{repeat}.log")
                result["wall_s"] = time.perf_counter() - started
                if "error" in result:
                    log(f"  {preset} {variant}: FAILED\n{result['error']}")
                else:
                    log(
                        f"  {preset} {variant}: {result['real_tok_s']:,.0f} real tok/s, {result['s_per_step']:.2f} s/step,"
                        f" held-out loss {result['heldout_loss']:.4f}, load {result['load_avg']:.1f} ({result['wall_s']:.0f} s)"
                    )
                key = (preset, variant)
                old = best.get(key)
                if (
                    old is None
                    or "error" in old
                    or ("error" not in result and result["real_tok_s"] > old["real_tok_s"])
                ):
                    best[key] = result
    return list(best.values())


def _flash_attn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def padding_at_scale(preset: str, batch_size: int, max_length: int, n: int = 4000, seed: int = 0, data=None) -> dict:
    """Padding share of each batching scheme over ``n`` conversations, with the megabatches group_by_length uses in
    a full epoch (50 batches; a short benchmark run only has a few, so it pads more than real training would)."""
    import numpy as np
    import torch
    from synth_sft import generate
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from minimind_hf.data import load_sft_dataset

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(preset))
    with tempfile.TemporaryDirectory() as tmp:
        path = data or generate(f"{tmp}/sft.jsonl", n, seed=seed)
        dataset = load_sft_dataset(path, tokenizer, max_length=max_length, cache_dir=f"{tmp}/cache")
        lengths = np.asarray(dataset["length"])[:n]
    real = lengths.sum()

    def padded(order):
        batches = [lengths[order[i : i + batch_size]] for i in range(0, len(order), batch_size)]
        return 1 - real / sum(b.max() * len(b) for b in batches)

    generator = torch.Generator().manual_seed(seed)
    grouped = get_length_grouped_indices(lengths.tolist(), batch_size, generator=generator)
    return {
        "n": len(lengths),
        "mean_length": float(lengths.mean()),
        "max_length": 1 - real / (len(lengths) * max_length),
        "longest": padded(torch.randperm(len(lengths), generator=generator).numpy()),
        "group_by_length": padded(np.asarray(grouped)),
    }


# --------------------------------------------------------------------------------------------------- reporting


def device_peak_tflops(override: float | None) -> tuple[float | None, str]:
    """bf16 peak of this device: ``--peak-tflops``, else the GPU table, else a measured CPU bf16 matmul."""
    import torch

    if override:
        return override, "--peak-tflops"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for key, peak in GPU_PEAK_TFLOPS:
            if key in name:
                return peak, f"{name} bf16 dense peak (table)"
        return None, f"{name}: unknown peak, pass --peak-tflops"
    a = torch.randn(2048, 2048, dtype=torch.bfloat16)
    best = min(_timed(lambda: a @ a) for _ in range(5))
    return 2 * 2048**3 / best / 1e12, "measured CPU bf16 matmul 2048³ (best of 5)"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def format_train_tables(results: list[dict], peak: tuple[float | None, str]) -> str:
    peak_tflops, peak_source = peak
    lines = []
    for preset in dict.fromkeys(r["preset"] for r in results):
        rows = [r for r in results if r["preset"] == preset]
        base = next((r for r in rows if r["variant"] == "native" and "error" not in r), None)
        step0 = next((r for r in rows if r["variant"] == "native_step0" and "error" not in r), None)
        ok = [r for r in rows if "error" not in r]
        if not ok:
            continue
        first = ok[0]
        lines += [
            f"### {preset} ({first['params'] / 1e6:.1f}M parameters), batch {first['batch_size']}, max_length "
            f"{first['max_length']}, {first['device']}",
            "",
            f"{first['total_steps']} steps of {first['batch_size']} conversations ({first['total_steps'] * first['batch_size']}"
            f" samples, the same for every run); the first {first['warmup']} untimed.",
            "",
            "| run | real tok/s | × native | × native, CPU time | supervised tok/s | padding | s/step | peak mem (MB) | model TFLOP/s"
            + (" | MFU" if peak_tflops else "") + " | train loss (last 5) | held-out loss | Δ held-out vs native |"
            + (" Δ vs native_step0 |" if step0 else ""),
            "|---|---|---|---|---|---|---|---|---" + ("|---" if peak_tflops else "") + "|---|---|---|"
            + ("---|" if step0 else ""),
        ]  # fmt: skip
        for r in rows:
            label = VARIANTS[r["variant"]]["label"]
            if "error" in r:
                lines.append(f"| `{r['variant']}` {label} | failed: {r['error'].splitlines()[-1][:120]} |")
                continue
            tflops = 6 * r["params"] * r["real_tok_s"] / 1e12
            ratio = f"{r['real_tok_s'] / base['real_tok_s']:.2f}×" if base else "–"
            cpu_ratio = f"{r['real_tok_cpu_s'] / base['real_tok_cpu_s']:.2f}×" if base else "–"
            delta = f"{(r['heldout_loss'] / base['heldout_loss'] - 1) * 100:+.2f}%" if base else "–"
            train_loss = f"{r['train_loss_last5']:.4f}" if r.get("train_loss_last5") is not None else "–"
            cells = [
                f"`{r['variant']}` {label}", f"{r['real_tok_s']:,.0f}", ratio, cpu_ratio, f"{r['supervised_tok_s']:,.0f}",
                f"{r['pad_fraction']:.0%}", f"{r['s_per_step']:.2f}", f"{r['peak_mem_mb']:,.0f}", f"{tflops:.3f}",
            ]  # fmt: skip
            if peak_tflops:
                cells.append(f"{tflops / peak_tflops:.1%}")
            cells += [train_loss, f"{r['heldout_loss']:.4f}", delta]
            if step0:
                cells.append(f"{(r['heldout_loss'] / step0['heldout_loss'] - 1) * 100:+.2f}%")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Settings as the runs saw them:", ""]
        for r in ok:
            if r["variant"] != "native":
                s = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
                lines.append(f"- `{r['variant']}`: {s}")
        lines.append("")
    if peak_tflops:
        lines.append(
            f"Model TFLOP/s = 6 · parameters · real tokens/s; MFU over {peak_tflops:.1f} TFLOP/s ({peak_source})."
        )
    else:
        lines.append(f"Model TFLOP/s = 6 · parameters · real tokens/s; no MFU: {peak_source}.")
    return "\n".join(lines)


def target_checks(results: list[dict], preset: str = "minimind2-small") -> list[tuple[str, bool | None, str]]:
    """(target, met?, figure) for the issue's training targets."""
    by = {r["variant"]: r for r in results if r["preset"] == preset and "error" not in r}
    checks = []
    base = by.get("native")
    if not base:
        return checks
    # native and native_step0 do the same work, yet run to run they differ by up to ~10% on a 2-core box: the speed
    # targets are checked against the faster of them.
    natives = [r for v, r in by.items() if v.startswith("native")]
    fastest = max(natives, key=lambda r: r["real_tok_s"])
    for variant, need, what in (
        ("ours", 2.0, "recommended CPU config ≥ 2.0× native real tokens/s"),
        ("ours_fp32_fixed", 1.0, "fp32 with native's padding ≥ 1.0× native (no Trainer overhead)"),
    ):
        if variant in by:
            ratio = by[variant]["real_tok_s"] / fastest["real_tok_s"]
            what += f" (vs the faster native run, `{fastest['variant']}`)" if len(natives) > 1 else ""
            checks.append((what, ratio >= need, f"{ratio:.2f}×"))
    # MiniMind's get_lr counts steps from 1, so on a short run its rates sit one step further down the cosine than
    # Trainer's; native_step0 removes only that, and is the baseline the loss target is checked against.
    loss_base_name = "native_step0" if "native_step0" in by else "native"
    loss_base = by[loss_base_name]
    for variant, r in by.items():
        if not variant.startswith("native"):
            delta = r["heldout_loss"] / loss_base["heldout_loss"] - 1
            what = f"`{variant}` held-out loss within 2% of `{loss_base_name}`"
            checks.append((what, abs(delta) <= 0.02, f"{delta * 100:+.2f}%"))
    return checks


# --------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", default="minimind2-small", help="comma-separated MiniMind presets")
    parser.add_argument("--variants", default=None, help=f"comma-separated; known: {', '.join(VARIANTS)}")
    parser.add_argument("--sweep", action="store_true", help=f"add the CPU sweep: {CPU_SWEEP}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--big-steps", type=int, default=None, help="timed steps for minimind-3 (default: --steps)")
    parser.add_argument(
        "--big-variants", default=None, help="variants for presets other than minimind2-* (default: --variants)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=340)
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="high, so the loss moves from random init")
    parser.add_argument("--data", default=None, help="a MiniMind SFT jsonl instead of the synthetic conversations")
    parser.add_argument("--eval-n", type=int, default=64, help="held-out conversations for the loss comparison")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="the recipe YAML the `ours` runs start from")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers, both sides")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: all cores)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant; the fastest is reported")
    parser.add_argument(
        "--parity-repeats", type=int, default=1, help=f"runs of {', '.join(PARITY_VARIANTS)} (at least --repeats)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cpu", action="store_true", help="stay on CPU even with a GPU")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (data, logs) for inspection")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak for MFU")


def finalize(args) -> None:
    args.preset_list = args.presets.split(",")

    def timed_steps(preset):
        return args.big_steps if args.big_steps and not preset.startswith("minimind2") else args.steps

    args.warmup_for = lambda preset: args.warmup
    args.total_steps = lambda preset: args.warmup + timed_steps(preset)

    def variant_list(cuda, preset="minimind2-small"):
        names = (args.variants or (GPU_DEFAULT if cuda else CPU_DEFAULT)).split(",")
        if not preset.startswith("minimind2") and args.big_variants:
            names = args.big_variants.split(",")
        elif args.sweep:
            names += [v for v in CPU_SWEEP.split(",") if v not in names]
        unknown = [v for v in names if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
        return names

    args.variant_list = variant_list


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        result = worker(json.loads(sys.argv[2]))
        print(RESULT_TAG + json.dumps(result), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    finalize(args)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    results = run_train_bench(args)
    print()
    print(format_train_tables(results, device_peak_tflops(args.peak_tflops)))
    for what, met, figure in target_checks(results):
        print(f"- {'met' if met else 'NOT met'}: {what}: {figure}")


if __name__ == "__main__":
    main()
