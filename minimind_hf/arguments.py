"""Recipe arguments: one YAML of model, data, LoRA and `TrainingArguments` fields, overridable from the command line.

    model_args, data_args, training_args = parse_args(["configs/sft.yaml", "--learning_rate", "1e-5"])
    model_args, data_args, training_args = parse_args(["configs/pretrain.yaml"], PRETRAIN_ARGUMENTS)

The YAML sets the defaults, the command line overrides them, and an unknown key (in either) is an error naming it.
Field names follow TRL (`model_name_or_path`, `dataset_name`, `max_length`, `use_peft`, `lora_*`, `packing`) and the
defaults follow MiniMind's `train_full_sft.py`: cosine decay to 10% of the peak rate, AdamW weight decay 0.01,
gradient clipping at 1.0, 2 epochs of batch 16, bf16 where the hardware has it; learning rate 1e-5, or 1e-4 for LoRA
(`train_lora.py`) when neither the YAML nor the command line sets one. `PretrainConfig` swaps in MiniMind's
`train_pretrain.py` defaults.
"""

import dataclasses
import difflib
import enum
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, get_args, get_origin, get_type_hints

import yaml
from transformers import HfArgumentParser, TrainingArguments
from transformers.integrations import is_deepspeed_zero3_enabled
from transformers.trainer_utils import HubStrategy, SchedulerType

from .configuration_minimind import MINIMIND_PRESETS
from .constants import BUNDLED_TOKENIZER_DIR, TOKENIZER_FILES
from .errors import ConfigError
from .guards import check_precision
from .hardware import bf16_supported, has_accelerator
from .masking import DEFAULT_EMPTY_THINK_RATIO

# Trackers whose pip package has the tracker's name: a missing one is reported before the run starts.
PIP_TRACKERS = ("tensorboard", "wandb", "swanlab", "trackio", "clearml")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=None,
        metadata={
            "help": f"Required. HF-format folder or hub id, or a preset for random init: {', '.join(MINIMIND_PRESETS)}."
        },
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a hub model."})
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Defaults to the model's own tokenizer, else the bundled MiniMind tokenizer."}
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="float32", metadata={"help": "Dtype to load the weights in; mixed precision is `bf16`."}
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa, eager, flash_attention_2, ..."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Only needed for models this package can't load."}
    )
    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (MiniMind's LoRA: 16)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scale is alpha / r; MiniMind's LoRA has none (1)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "o_proj"],
        metadata={"help": "Modules to adapt (MiniMind's LoRA: q_proj o_proj), or `all-linear`."},
    )
    save_merged_model: bool = field(
        default=False,
        metadata={"help": "LoRA: also save base + adapter merged into `{output_dir}/merged`, and push that one."},
    )

    def __post_init__(self):
        _require(self, "model_name_or_path")
        if self.lora_r <= 0 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ConfigError("lora_r and lora_alpha must be positive and lora_dropout in [0, 1)")
        if self.is_preset and self.use_peft:
            raise ConfigError(
                f"use_peft needs a trained base model, not the random-init preset {self.model_name_or_path!r}: "
                "point model_name_or_path at a checkpoint folder or hub id"
            )
        if self.save_merged_model and not self.use_peft:
            raise ConfigError("save_merged_model only applies to LoRA runs (use_peft: true)")
        if self.is_preset and self.dtype == "auto":
            self.dtype = "float32"  # "auto" means the checkpoint's dtype, and random init has none
        if os.path.isdir(self.model_name_or_path):
            # adapter_config.json records this path; make it valid from any working directory.
            self.model_name_or_path = str(Path(self.model_name_or_path).resolve())
        if self.tokenizer_name_or_path is None:
            self.tokenizer_name_or_path = (
                self.model_name_or_path if self._model_has_tokenizer() else bundled_tokenizer()
            )

    @property
    def is_preset(self) -> bool:
        return self.model_name_or_path in MINIMIND_PRESETS

    @property
    def lora_targets(self) -> str | list[str]:
        return "all-linear" if self.lora_target_modules == ["all-linear"] else self.lora_target_modules

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(
            task_type="CAUSAL_LM",
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.lora_targets,
        )

    def _model_has_tokenizer(self) -> bool:
        if self.is_preset:
            return False
        if os.path.isdir(self.model_name_or_path):
            return any((Path(self.model_name_or_path) / name).is_file() for name in TOKENIZER_FILES)
        return True  # a hub id: hub MiniMind checkpoints ship their tokenizer


@dataclass
class _SourceArguments:
    """Where the training data comes from, and the held-out part; shared by the SFT and pretraining arguments."""

    dataset_name: str = field(
        default=None, metadata={"help": "Required. Training data (see the recipe's data arguments)."}
    )
    eval_dataset_name: str | None = field(default=None, metadata={"help": "Held-out data for eval loss."})
    eval_split_ratio: float = field(
        default=0.0, metadata={"help": "Fraction of dataset_name held out for eval loss / perplexity (0 = none)."}
    )
    skip_invalid_samples: bool = field(default=False, metadata={"help": "Drop malformed records, not fail."})

    def __post_init__(self):
        _require(self, "dataset_name")
        if not 0 <= self.eval_split_ratio < 1:
            raise ConfigError(f"eval_split_ratio must be in [0, 1), got {self.eval_split_ratio}")
        if self.eval_split_ratio and self.eval_dataset_name:
            raise ConfigError("Set eval_split_ratio or eval_dataset_name, not both")

    @property
    def has_eval(self) -> bool:
        return bool(self.eval_split_ratio or self.eval_dataset_name)


@dataclass
class DataArguments(_SourceArguments):
    dataset_name: str = field(
        default=None,
        metadata={
            "help": "Required. SFT conversations: a .jsonl/.json/.parquet file, folder, glob or hub dataset (owner/name[/file]), "
            "or a mixture such as `a.jsonl:0.7,b.jsonl:0.3` (see minimind_hf.data.load_sft_dataset)."
        },
    )
    eval_dataset_name: str | None = field(default=None, metadata={"help": "Held-out conversations for eval loss."})
    train_on: Literal["assistant", "last_assistant", "all"] = field(
        default="assistant",
        metadata={"help": "Tokens that carry loss: every assistant turn (MiniMind), the last, all."},
    )
    system_prompt_ratio: float = field(
        default=0.2, metadata={"help": "Share of conversations given a random MiniMind system prompt."}
    )
    empty_think_ratio: float = field(
        default=DEFAULT_EMPTY_THINK_RATIO,
        metadata={"help": "Share of plain answers that keep the template's empty <think> block (MiniMind: 0.2)."},
    )
    sample_prompts_file: str | None = field(
        default=None,
        metadata={
            "help": "JSONL of {prompt, reference, seen}: print the model's answers before and after training "
            "(null: none)."
        },
    )
    sample_max_new_tokens: int = field(default=96, metadata={"help": "Answer length for sample_prompts_file."})
    sample_max_prompts: int = field(default=8, metadata={"help": "Answer at most this many of sample_prompts_file."})

    def __post_init__(self):
        super().__post_init__()
        if self.sample_prompts_file in ("", "null", "none", "None", "false", "False"):
            self.sample_prompts_file = None  # the command line's spelling of YAML's null
        if self.sample_prompts_file is not None and not Path(self.sample_prompts_file).is_file():
            raise ConfigError(
                f"sample_prompts_file {self.sample_prompts_file}: no such file (set it to null for no sample answers)"
            )
        if not 0 <= self.system_prompt_ratio <= 1:
            raise ConfigError(f"system_prompt_ratio must be in [0, 1], got {self.system_prompt_ratio}")

    def load_options(self, training_args: "SFTConfig") -> dict:
        """Keyword arguments of `minimind_hf.data.load_sft_dataset` for this run."""
        return {
            "max_length": training_args.max_length,
            "train_on": self.train_on,
            "system_prompt_ratio": self.system_prompt_ratio,
            "empty_think_ratio": self.empty_think_ratio,
            "seed": training_args.seed,
            "skip_invalid": self.skip_invalid_samples,
            "num_proc": training_args.dataset_num_proc,
        }


@dataclass
class SFTConfig(TrainingArguments):
    """`TrainingArguments` with MiniMind's SFT defaults plus the sequence options (TRL's names)."""

    max_length: int = field(default=768, metadata={"help": "Tokens per conversation (minimind-3: 768, sft_512: 340)."})
    packing: bool = field(default=False, metadata={"help": "Pack conversations into max_length rows."})
    pad_to_multiple_of: int | None = field(default=None, metadata={"help": "Pad batches to a multiple of this."})
    dataset_num_proc: int | None = field(default=None, metadata={"help": "Processes for tokenization."})

    learning_rate: float = field(
        default=1e-5, metadata={"help": "Peak learning rate; unset with use_peft: 1e-4 (MiniMind's train_lora.py)."}
    )
    # The learning rate of a LoRA run that sets none (None: keep `learning_rate`'s default).
    lora_default_learning_rate: ClassVar[float | None] = 1e-4
    lr_scheduler_type: SchedulerType | str = field(default="cosine_with_min_lr", metadata={"help": "Decay shape."})
    lr_scheduler_kwargs: dict | str | None = field(
        default_factory=lambda: {"min_lr_rate": 0.1}, metadata={"help": "MiniMind decays to a tenth of the peak."}
    )
    num_train_epochs: float = field(default=2.0, metadata={"help": "Passes over the data."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Conversations per device per step."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Conversations per device per eval step."})
    weight_decay: float = field(
        default=0.01,
        metadata={
            "help": "AdamW weight decay; 0.01 is MiniMind's. Norm weights and biases are exempt, as everywhere in "
            "transformers (MiniMind's AdamW(model.parameters()) decays its RMSNorm weights too)."
        },
    )
    bf16: bool | None = field(default=None, metadata={"help": "bf16 autocast; unset = on where the device has it."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})
    logging_first_step: bool = field(default=True, metadata={"help": "Log the loss of step 1 too."})
    save_steps: float = field(default=500, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (oldest deleted first)."})
    report_to: None | str | list[str] = field(
        default="tensorboard",
        metadata={
            "help": "Trackers: tensorboard, wandb, swanlab (each needs its package: pip install wandb / swanlab), any "
            "other transformers integration, or none."
        },
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "Every parameter gets a gradient (idle MoE experts included)."}
    )
    hub_strategy: HubStrategy | str = field(
        default="end", metadata={"help": "Push only the final model, not every checkpoint."}
    )
    loss_spike_factor: float | None = field(
        default=None,
        metadata={"help": "Stop when a step's loss exceeds this many times the median of the last 20 (off: unset)."},
    )
    cpu_keep_freed_memory: bool = field(
        default=True,
        metadata={
            "help": "On CPU (Linux, glibc): keep the memory a step frees mapped for the next step (mallopt) rather "
            "than unmapping it, which page-faults every large tensor anew each step (1.07x sft.yaml's step on 2 cores). "
            "Resident memory stays at the largest step's peak (minimind_hf.cpu_memory)."
        },
    )

    def __post_init__(self):
        if self.max_length <= 0:
            raise ConfigError(f"max_length must be positive, got {self.max_length}")
        if self.resume_from_checkpoint in (True, "true", "True", "latest", "last"):
            self.resume_from_checkpoint = "latest"
        elif self.resume_from_checkpoint in (False, "false", "False", "", "none", "None"):
            self.resume_from_checkpoint = None
        if not self.use_cpu and not has_accelerator():
            # On a CPU-only machine say so: otherwise several processes each train alone (accelerate picks
            # NOT_PARALLEL, silently) and bf16 autocast is refused.
            self.use_cpu = True
        if self.use_cpu:
            # accelerate imports an installed DeepSpeed whenever it unwraps a model, and DeepSpeed's device probe
            # then warns "Setting accelerator to CPU" on every run; name the device so it does not guess.
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        if self.bf16 is None:
            self.bf16 = bf16_supported(self.use_cpu)
        if self.use_cpu:
            bounded_cpu_process_group(self.ddp_backend, self.ddp_timeout)
        super().__post_init__()
        if self.torch_compile and os.environ.get("ACCELERATE_DYNAMO_USE_DYNAMIC") == "False":
            # `accelerate launch` exports this unless given --dynamo_use_dynamic, and accelerate's compile then
            # specializes every graph on its shapes: each new packed or padded length recompiles (~50 s on CPU) until
            # torch's recompile limit (8) turns compilation off. Unset, torch.compile recompiles once with dynamic
            # shapes and keeps that graph.
            os.environ.pop("ACCELERATE_DYNAMO_USE_DYNAMIC")
        _check_trackers(self.report_to)
        if self.hub_token:
            # Trainer pickles these arguments into training_args.bin in output_dir and every checkpoint, and pushes
            # that file with hub_strategy every_save / checkpoint / all_checkpoints: keep the token only in this
            # process's environment, where huggingface_hub finds it (HfApi(token=None) reads HF_TOKEN).
            os.environ["HF_TOKEN"] = self.hub_token
            self.hub_token = None


@dataclass
class PretrainDataArguments(_SourceArguments):
    dataset_name: str = field(
        default=None,
        metadata={
            "help": 'Required. Pretraining text, one {"text": ...} per record: a .jsonl/.json/.parquet file, folder, glob, hub '
            "dataset or mixture, as for SFT (see minimind_hf.pretrain_data.load_pretrain_dataset)."
        },
    )
    eval_dataset_name: str | None = field(default=None, metadata={"help": "Held-out text for eval loss."})

    def load_options(self, training_args: "SFTConfig") -> dict:
        """Keyword arguments of `minimind_hf.pretrain_data.load_pretrain_dataset` for this run."""
        return {
            "max_length": training_args.max_length,
            "packing": training_args.packing,
            "seed": training_args.seed,
            "skip_invalid": self.skip_invalid_samples,
            "num_proc": training_args.dataset_num_proc,
        }


@dataclass
class PretrainConfig(SFTConfig):
    """`SFTConfig` with the defaults of MiniMind's `train_pretrain.py` (MiniMind2: pretrain_hq.jsonl)."""

    max_length: int = field(default=512, metadata={"help": "Tokens per row (MiniMind2 pretraining: 512)."})
    packing: bool = field(
        default=True,
        metadata={
            "help": "Concatenate the bos...eos documents and cut them into max_length rows (no padding); false = one "
            "document per row, truncated to max_length, as MiniMind's PretrainDataset does."
        },
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    lora_default_learning_rate: ClassVar[float | None] = None  # MiniMind has no LoRA pretraining to follow
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the data."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Rows per device per step."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Rows per device per eval step."})
    gradient_accumulation_steps: int = field(default=8, metadata={"help": "Micro-batches per optimizer step."})


SFT_ARGUMENTS = (ModelArguments, DataArguments, SFTConfig)
PRETRAIN_ARGUMENTS = (ModelArguments, PretrainDataArguments, PretrainConfig)


def _check_trackers(report_to: list[str]) -> None:
    """Fail at startup, not after tokenizing the data (when Trainer builds its callbacks), on a tracker that is
    unknown or whose package is missing."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    for name in report_to:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ConfigError(f"report_to: unknown tracker {name!r}; choose from {', '.join(INTEGRATION_TO_CALLBACK)}")
        if name in PIP_TRACKERS and name not in get_available_reporting_integrations():
            raise ConfigError(
                f"report_to: {name} needs the {name} package, which is not installed: `pip install {name}`, "
                "or set report_to to tensorboard or none"
            )


def bounded_cpu_process_group(backend: str | None, timeout: int) -> None:
    """Start the process group of a multi-process CPU run with `ddp_timeout`: with use_cpu, transformers passes no
    timeout, so a stopped or hung rank would hold its peers for gloo's default half hour. accelerate then keeps the
    group it finds."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        from datetime import timedelta

        dist.init_process_group(backend or "gloo", timeout=timedelta(seconds=timeout))


def bundled_tokenizer() -> str:
    return str(BUNDLED_TOKENIZER_DIR)


class _Parser(HfArgumentParser):
    """HfArgumentParser whose errors (a bad choice, a value of the wrong type) are one `ConfigError` line naming the
    option, not argparse's full usage text of every TrainingArguments field."""

    def error(self, message):
        raise ConfigError(f"{message} (--help lists every option)")


def _require(args, name: str) -> None:
    if getattr(args, name) is None:
        raise ConfigError(f"{name} is not set: give it in the YAML config or as --{name} on the command line")


def _fields(parser: HfArgumentParser) -> dict:
    """The parser's fields by name, with their resolved types."""
    fields = {}
    for dtype in parser.dataclass_types:
        hints = get_type_hints(dtype)  # once per dataclass: it resolves every annotation of TrainingArguments
        fields.update({f.name: hints[f.name] for f in dataclasses.fields(dtype) if f.init})
    return fields


def _choices(annotation) -> list | None:
    """The values a Literal or Enum field (alone or in a union such as `HubStrategy | str`) accepts."""
    for option in (annotation, *get_args(annotation)):
        if get_origin(option) is Literal:
            return list(get_args(option))
        if isinstance(option, type) and issubclass(option, enum.Enum):
            return [member.value for member in option]
    return None


def _set_yaml_defaults(parser: HfArgumentParser, config_path: str) -> set[str]:
    """Make the YAML's values the parser's defaults (argparse converts string defaults as it does the command line,
    so YAML's `1e-5`, a string, becomes a float); returns the fields the YAML sets."""
    if not Path(config_path).is_file():
        raise ConfigError(f"{config_path}: no such config file")
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path} must hold a mapping of argument names to values")
    fields = _fields(parser)
    for key, value in config.items():
        if key not in fields:
            raise ConfigError(f"Unknown key {key!r} in {config_path}{_did_you_mean(key, parser)}")
        choices = _choices(fields[key])
        if choices is not None and value is not None and value not in choices:
            raise ConfigError(f"{key}: {value!r} in {config_path} is not one of {choices}")
    parser.set_defaults(**config)
    return set(config)


def _closest_field(name: str, parser: HfArgumentParser) -> str | None:
    """The field `name` most likely meant: one it shortens or extends (`skip_invalid` -> `skip_invalid_samples`,
    `lora_rank` -> `lora_r`), else the closest spelling."""
    names = list(_fields(parser))
    related = sorted(
        (n for n in names if n.startswith(name) or name.startswith(n)), key=lambda n: abs(len(n) - len(name))
    )
    close = related[:1] or difflib.get_close_matches(name, names, n=1)
    return close[0] if close else None


def _did_you_mean(name: str, parser: HfArgumentParser) -> str:
    close = _closest_field(name, parser)
    return f" (did you mean {close!r}?)" if close else ""


def _unknown_arguments_message(unknown: list[str], parser: HfArgumentParser) -> str:
    flags = [arg[2:].split("=", 1)[0].replace("-", "_") for arg in unknown if arg.startswith("--")]
    hints = [f"--{close} for --{flag}" for flag in flags if (close := _closest_field(flag, parser))]
    return f"Unknown command-line argument(s): {' '.join(unknown)}" + (
        f" (did you mean {', '.join(hints)}?)" if hints else ""
    )


def parse_args(
    argv: list[str] | None = None, dataclass_types: tuple = SFT_ARGUMENTS
) -> tuple[ModelArguments, DataArguments | PretrainDataArguments, SFTConfig]:
    """`[config.yaml] [--field value ...]` -> (model, data, training) arguments of `dataclass_types` (the SFT ones by
    default; `PRETRAIN_ARGUMENTS` for recipes/pretrain.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(dataclass_types)
    parser.allow_abbrev = False  # `--learning 1e-3` must not silently mean --learning_rate
    explicit = _set_yaml_defaults(parser, argv.pop(0)) if argv and argv[0].endswith((".yaml", ".yml")) else set()
    try:
        model_args, data_args, training_args, unknown = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
    except ConfigError:
        raise
    except ValueError as err:  # TrainingArguments' own checks of the values given: the user's to fix too
        raise ConfigError(str(err)) from err
    if unknown:
        raise ConfigError(_unknown_arguments_message(unknown, parser))
    explicit |= {arg[2:].split("=", 1)[0] for arg in argv if arg.startswith("--")}
    lora_rate = training_args.lora_default_learning_rate
    if model_args.use_peft and lora_rate is not None and "learning_rate" not in explicit:
        training_args.learning_rate = lora_rate
    if training_args.eval_strategy != "no" and not data_args.has_eval:
        raise ConfigError(
            f"eval_strategy={training_args.eval_strategy.value} needs eval_split_ratio or eval_dataset_name"
        )
    check_precision(model_args.dtype, training_args)
    if model_args.save_merged_model and is_deepspeed_zero3_enabled():
        # Merging reloads the base model, which in a live ZeRO-3 process would be partitioned (and can hang).
        raise ConfigError("save_merged_model does not work under ZeRO-3: run `minimind-hf merge ADAPTER OUT` after")
    return model_args, data_args, training_args
