"""Steps every recipe (recipes/sft.py, recipes/pretrain.py) takes the same way: logging setup, model and data
loading, training followed by evaluation."""

import logging
import math

import datasets
import transformers
from transformers import AutoModelForCausalLM, Trainer

from .callbacks import SFTMetricsCallback
from .checkpoints import RunShape, reached_the_end, resolve_resume_checkpoint
from .configuration_minimind import MiniMindConfig
from .disk_space import disk_full_reported
from .generation import configure_generation
from .guards import TrainingGuard, check_finite_weights, first_non_finite
from .native import CheckpointError
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


def load_model(model_args, tokenizer):
    """A preset name starts from random init, anything else from its weights; generation set up to stop at
    `<|im_end|>` and sample like MiniMind."""
    model_kwargs = {"dtype": model_args.dtype, "attn_implementation": model_args.attn_implementation}
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
        raise ValueError(
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
    every checkpoint) and `GracefulShutdown` (SIGTERM checkpoints the current step and exits)."""
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
