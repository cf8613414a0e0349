"""Steps every recipe (recipes/sft.py, recipes/pretrain.py) takes the same way: logging setup and model loading."""

import logging

import datasets
import transformers
from transformers import AutoModelForCausalLM

from .chat import configure_generation
from .configuration_minimind import MiniMindConfig


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
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"Tokenizer has {len(tokenizer)} tokens, the model's vocabulary only {model.config.vocab_size}"
        )
    configure_generation(model, tokenizer)
    return model
