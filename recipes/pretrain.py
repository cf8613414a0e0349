"""Pretraining MiniMind from scratch on transformers.Trainer: {"text": ...} jsonl -> bos...eos documents packed into
max_length rows -> a base model, 1 device to many, DeepSpeed ZeRO.

    accelerate launch recipes/pretrain.py configs/pretrain.yaml
    accelerate launch --config_file configs/accelerate/ddp.yaml --num_processes 8 \
        recipes/pretrain.py configs/pretrain.yaml --learning_rate 1e-3     # any field overrides the YAML
    python recipes/pretrain.py configs/pretrain_tiny_cpu.yaml              # the CPU demo (make pretrain)

The output folder is what recipes/sft.py takes as `model_name_or_path`.
"""

import logging
import sys

from transformers import set_seed

from minimind_hf.arguments import PRETRAIN_ARGUMENTS, ModelArguments, PretrainConfig, PretrainDataArguments, parse_args
from minimind_hf.collator import build_collator
from minimind_hf.errors import ConfigError, user_errors
from minimind_hf.final_model import finish, save_final_model
from minimind_hf.pretrain_data import load_pretrain_dataset
from minimind_hf.recipe_utils import (
    build_trainer,
    load_datasets,
    load_model,
    load_tokenizer,
    log_arguments,
    log_run_header,
    setup_logging,
    train_and_evaluate,
)

logger = logging.getLogger(__name__)


def main(model_args: ModelArguments, data_args: PretrainDataArguments, training_args: PretrainConfig) -> None:
    # ---- Setup logging
    setup_logging(training_args, __name__)
    if model_args.use_peft:
        raise ConfigError("recipes/pretrain.py trains every weight; LoRA (use_peft) is for recipes/sft.py")
    log_arguments(model_args, data_args, training_args)  # hub_token is masked
    set_seed(training_args.seed)

    # ---- Load tokenizer (the bundled MiniMind one for a preset) and model (a preset = random init)
    tokenizer = load_tokenizer(model_args)
    model = load_model(model_args, tokenizer)
    logger.info(f"{model.config.model_type} with {model.num_parameters():,} parameters")

    # ---- Load data: documents wrapped in bos/eos, packed into max_length rows
    train_dataset, eval_dataset = load_datasets(load_pretrain_dataset, tokenizer, data_args, training_args)

    # ---- Trainer: rows are already packed, so the collator only pads a short last row (labels = input_ids)
    collator = build_collator(tokenizer, pad_to_multiple_of=training_args.pad_to_multiple_of)
    trainer = build_trainer(model, training_args, tokenizer, collator, train_dataset, eval_dataset)
    log_run_header(trainer, train_dataset, eval_dataset, "rows")

    # ---- Train (resume_from_checkpoint: true = the newest complete checkpoint in output_dir), then evaluate
    eval_metrics = train_and_evaluate(trainer, training_args)

    # ---- Save: weights, tokenizer, generation-ready config, model card; push when push_to_hub
    save_final_model(trainer, model_args, data_args, len(train_dataset), len(eval_dataset or []), eval_metrics,
                     stage="pretrain")  # fmt: skip
    finish(trainer)


if __name__ == "__main__":
    with user_errors("recipes/pretrain.py"):
        main(*parse_args(sys.argv[1:], PRETRAIN_ARGUMENTS))
