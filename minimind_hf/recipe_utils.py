"""Steps every recipe (recipes/sft.py, recipes/pretrain.py) takes the same way: logging setup, model and data
loading, training followed by evaluation."""

import dataclasses
import enum
import logging
import math
import time

import datasets
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
from transformers.trainer_callback import ProgressCallback

from .callbacks import LossProgressCallback, SFTMetricsCallback
from .chat import generate_answers
from .checkpoints import RunShape, reached_the_end, resolve_resume_checkpoint
from .configuration_minimind import MiniMindConfig
from .cpu_memory import keep_freed_memory
from .disk_space import disk_full_reported
from .errors import CheckpointError, UserError
from .generation import configure_generation
from .guards import TrainingGuard, check_finite_weights
from .integrity import first_non_finite
from .locations import check_pretrained
from .packed_attention import PACKED_SDPA
from .shutdown import GracefulShutdown

logger = logging.getLogger(__name__)


def setup_logging(training_args, *logger_names: str) -> None:
    """Trainer's per-process log levels for transformers and datasets; `logger_names` (the recipe's own and this
    package's) log at INFO on the main process, even when log_level is "passive"."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=[logging.StreamHandler()])
    log_level = training_args.get_process_log_level()
    for name in (*logger_names, "minimind_hf"):
        logging.getLogger(name).setLevel(min(log_level, logging.INFO) if training_args.should_log else log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)


# Set by TrainingArguments itself from other fields or the launcher, so no sign of what the user chose.
DERIVED_FIELDS = ("logging_dir", "local_rank", "use_cpu", "bf16", "tokenizer_name_or_path")


def log_arguments(*arguments) -> None:
    """Every field at DEBUG (`--log_level debug`); at INFO only the fields that differ from their defaults."""
    logger.debug("Arguments:\n%s", "\n".join(map(str, arguments)))
    changed = []
    for args in arguments:
        for f in dataclasses.fields(args):
            if not f.init or f.name in DERIVED_FIELDS:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            value = getattr(args, f.name)
            if _plain(value) != _plain(default):
                changed.append(f"{f.name}={'<set>' if f.name.endswith('token') else _plain(value)}")
    logger.info("Settings that differ from the defaults: %s", ", ".join(changed) or "none")


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple) and len(value) == 1:
        return _plain(value[0])
    return value


def log_run_header(trainer, train_dataset, eval_dataset, unit: str = "conversations") -> None:
    """One line that says how the run is laid out: processes, batch per device and per optimizer step, data, steps."""
    args = trainer.args
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    if args.max_steps > 0:
        steps = args.max_steps
    else:  # as Trainer counts: each process's batches, grouped into optimizer steps, times the epochs
        batches = math.ceil(len(train_dataset) / (args.per_device_train_batch_size * args.world_size))
        steps = math.ceil(args.num_train_epochs * max(math.ceil(batches / args.gradient_accumulation_steps), 1))
    held_out = f" (+{len(eval_dataset)} held out)" if eval_dataset is not None else ""
    logger.info(
        f"Training on {args.world_size} process{'es' if args.world_size > 1 else ''} ({args.device.type}, "
        f"{'bf16' if args.bf16 else 'fp32'}): {args.per_device_train_batch_size} per device x "
        f"{args.gradient_accumulation_steps} accumulation x {args.world_size} = {per_step} {unit} per optimizer "
        f"step; {len(train_dataset)} {unit}{held_out}, {args.num_train_epochs:g} epochs -> {steps} steps"
    )


def sample_answers(model, tokenizer, samples: list[dict], data_args, when: str) -> list[str]:
    """Greedy answers to the sample prompts, announced first (generation on CPU can take minutes) and timed."""
    logger.info(
        f"Sample answers {when}: {len(samples)} prompts from {data_args.sample_prompts_file}, up to "
        f"{data_args.sample_max_new_tokens} new tokens each (sample_prompts_file: null turns them off)"
    )
    start = time.perf_counter()
    answers = generate_answers(model, tokenizer, [s["prompt"] for s in samples], data_args.sample_max_new_tokens)
    logger.info(f"Sample answers {when}: done in {time.perf_counter() - start:.1f} s")
    return answers


def load_tokenizer(model_args):
    """The run's tokenizer (the model's own, else the bundled one), after checking that the model and tokenizer
    locations exist: a missing folder or unreachable hub id fails here in seconds, naming it."""
    if not model_args.is_preset:
        check_pretrained(model_args.model_name_or_path, model_args.model_revision, "model_name_or_path")
    check_pretrained(model_args.tokenizer_name_or_path, model_args.model_revision, "tokenizer_name_or_path")
    return AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path, revision=model_args.model_revision)


def load_model(model_args, tokenizer, packing: bool = False):
    """A preset name starts from random init, anything else from its weights; generation set up to stop at
    `<|im_end|>` and sample like MiniMind. Packed training (``packing``) without an ``attn_implementation`` runs
    `minimind_hf.packed_attention`'s SDPA per packed sample, whose cost is the samples' own attention rather than the
    square of the packed row."""
    attn_implementation = model_args.attn_implementation
    if packing and attn_implementation is None:
        attn_implementation = PACKED_SDPA
    model_kwargs = {"dtype": model_args.dtype, "attn_implementation": attn_implementation}
    if model_args.is_preset:
        model = AutoModelForCausalLM.from_config(
            MiniMindConfig.from_preset(model_args.model_name_or_path), **model_kwargs
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=model_args.trust_remote_code,
            **model_kwargs,
        )
    broken = first_non_finite(model)
    if broken is not None:
        raise CheckpointError(
            f"{model_args.model_name_or_path}: weight {broken} holds NaN/inf values: the weights file is corrupt"
        )
    if len(tokenizer) > model.config.vocab_size:
        raise UserError(
            f"Tokenizer has {len(tokenizer)} tokens, the model's vocabulary only {model.config.vocab_size}"
        )
    configure_generation(model, tokenizer)
    return model


def load_datasets(load, tokenizer, data_args, training_args):
    """``(train, eval or None)`` through ``load`` (`load_sft_dataset` / `load_pretrain_dataset`) with the run's data
    options; eval from ``eval_dataset_name`` or a seeded ``eval_split_ratio`` split. Rank 0 tokenizes first, the other
    ranks then read its cache."""
    options = data_args.load_options(training_args)
    cache = options.get("cache_dir") or datasets.config.HF_DATASETS_CACHE
    with (
        disk_full_reported(cache, "the datasets cache", is_main_process=False),
        training_args.main_process_first(desc=f"{load.__name__} {data_args.dataset_name}"),
    ):
        train_dataset = load(data_args.dataset_name, tokenizer, **options)
        if data_args.eval_dataset_name:
            return train_dataset, load(data_args.eval_dataset_name, tokenizer, **options)
        if data_args.eval_split_ratio:
            split = train_dataset.train_test_split(test_size=data_args.eval_split_ratio, seed=training_args.seed)
            return split["train"], split["test"]
    return train_dataset, None


def build_trainer(model, training_args, tokenizer, collator, train_dataset, eval_dataset) -> Trainer:
    """`transformers.Trainer` with `SFTMetricsCallback` ahead of the reporting callbacks, so TensorBoard / W&B receive
    its throughput and aux-loss numbers, `TrainingGuard` (divergence stops the run) and `RunShape` (the batch shape in
    every checkpoint) and `GracefulShutdown` (SIGTERM checkpoints the current step and exits). On CPU, glibc's malloc
    keeps freed memory for the next step (`cpu_keep_freed_memory`)."""
    if training_args.use_cpu and training_args.cpu_keep_freed_memory and keep_freed_memory():
        logger.info("CPU training: freed memory stays mapped for the next step (cpu_keep_freed_memory)")
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=collator,
    )
    trainer.callback_handler.callbacks.insert(0, SFTMetricsCallback())
    trainer.add_callback(TrainingGuard(getattr(training_args, "loss_spike_factor", None)))
    trainer.add_callback(RunShape())
    trainer.add_callback(GracefulShutdown())
    if not training_args.disable_tqdm:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LossProgressCallback)
    return trainer


def train_and_evaluate(trainer, training_args) -> dict | None:
    """Train (resuming from the newest complete checkpoint when asked), save metrics and state, then evaluate on the
    trainer's eval dataset if it has one; returns the eval metrics, perplexity included, or None. A checkpoint that
    already reached the run's last step ends the process (exit 0): there is nothing to train."""
    args = training_args
    checkpoint = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir, args)
    if checkpoint and reached_the_end(checkpoint, args):
        logger.warning(f"Nothing to train: {checkpoint} already reached the run's last step; output_dir left as it is")
        raise SystemExit(0)
    with disk_full_reported(args.output_dir, "a checkpoint", trainer.is_world_process_zero()):
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
    check_finite_weights(trainer.model, f"the final model to {args.output_dir}")
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    if trainer.eval_dataset is None:
        return None
    eval_metrics = trainer.evaluate()
    eval_metrics["eval_perplexity"] = math.exp(min(eval_metrics["eval_loss"], 50.0))
    trainer.log_metrics("eval", eval_metrics)
    trainer.save_metrics("eval", eval_metrics)
    return eval_metrics
