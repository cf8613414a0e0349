"""Supervised fine-tuning of MiniMind on transformers.Trainer: full model or LoRA, 1 device to many, DeepSpeed ZeRO.

    accelerate launch recipes/sft.py configs/sft.yaml
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml --num_processes 8 \
        recipes/sft.py configs/sft.yaml --learning_rate 2e-5      # any field overrides the YAML
    python recipes/sft.py configs/sft_tiny_cpu.yaml               # the CPU demo (make sft)
"""

import logging
import sys

from peft import get_peft_model
from transformers import set_seed
from transformers.integrations import is_deepspeed_zero3_enabled

from minimind_hf.arguments import DataArguments, ModelArguments, SFTConfig, parse_args
from minimind_hf.chat import format_answers, read_prompts
from minimind_hf.collator import build_collator
from minimind_hf.data import load_sft_dataset
from minimind_hf.errors import user_errors
from minimind_hf.final_model import finish, save_final_model
from minimind_hf.recipe_utils import (
    build_trainer,
    load_datasets,
    load_model,
    load_tokenizer,
    log_arguments,
    log_run_header,
    sample_answers,
    setup_logging,
    train_and_evaluate,
)

logger = logging.getLogger(__name__)


def main(model_args: ModelArguments, data_args: DataArguments, training_args: SFTConfig) -> None:
    # ---- Setup logging
    setup_logging(training_args, __name__)
    log_arguments(model_args, data_args, training_args)  # hub_token is masked
    set_seed(training_args.seed)

    # ---- Load tokenizer: the model's own, else the bundled MiniMind tokenizer
    tokenizer = load_tokenizer(model_args)

    # ---- Load model: a preset name starts from random init, anything else from its weights
    model = load_model(model_args, tokenizer, packing=training_args.packing)
    if model_args.use_peft:
        model = get_peft_model(model, model_args.lora_config())
        trainable, total = model.get_nb_trainable_parameters()
        logger.info(f"LoRA trains {trainable:,} of {total:,} parameters ({trainable / total:.2%})")

    # ---- Load data (a held-out split or file for eval loss)
    train_dataset, eval_dataset = load_datasets(load_sft_dataset, tokenizer, data_args, training_args)

    # Answers to the sample prompts before training, to show next to the trained model's (rank 0 holds full weights
    # unless ZeRO-3 shards them).
    samples = (
        read_prompts(data_args.sample_prompts_file)[: data_args.sample_max_prompts]
        if data_args.sample_prompts_file
        else []
    )
    show_samples = bool(samples) and training_args.process_index == 0 and not is_deepspeed_zero3_enabled()
    before = sample_answers(model, tokenizer, samples, data_args, "before training") if show_samples else None

    # ---- Trainer
    collator = build_collator(
        tokenizer, packing=training_args.packing, pad_to_multiple_of=training_args.pad_to_multiple_of
    )
    trainer = build_trainer(model, training_args, tokenizer, collator, train_dataset, eval_dataset)
    log_run_header(trainer, train_dataset, eval_dataset, "packed rows" if training_args.packing else "conversations")

    # ---- Train (resume_from_checkpoint: true = the newest complete checkpoint in output_dir), then evaluate
    eval_metrics = train_and_evaluate(trainer, training_args)

    # ---- Save: weights, tokenizer, chat-ready config and generation config, model card, the merged copy of a LoRA
    # run (save_merged_model); push when push_to_hub
    final_dir = save_final_model(
        trainer, model_args, data_args, len(train_dataset), len(eval_dataset or []), eval_metrics
    )

    if show_samples:
        model = trainer.accelerator.unwrap_model(trainer.model)
        answers = sample_answers(model, tokenizer, samples, data_args, "after training")
        print(f"\nSample answers from {final_dir}:\n\n{format_answers(samples, answers, before)}\n", flush=True)
    finish(trainer)


if __name__ == "__main__":
    with user_errors("recipes/sft.py"):
        main(*parse_args(sys.argv[1:]))
