"""The end of a recipe: the trained model saved through Trainer (weights gathered from every rank, DeepSpeed and FSDP
included), its model card, the optional merged copy of a LoRA run, the Hub push, and the processes' orderly exit."""

import logging
import os

from .convert import convert
from .disk_space import disk_full_reported
from .hub import push_folder_to_hub
from .model_card import write_model_card

logger = logging.getLogger(__name__)


def save_final_model(trainer, model_args, data_args, num_train, num_eval, eval_metrics, stage="sft") -> str:
    """Save the trained model to output_dir (ready to chat: use_cache on, generation config), write its card, merge a
    LoRA adapter into `output_dir/merged` when `save_merged_model`, and push when `push_to_hub`; returns the folder
    that holds the final model. A full disk ends the run with one message (see `disk_space`)."""
    args = trainer.args
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    (unwrapped.get_base_model() if model_args.use_peft else unwrapped).config.use_cache = True  # Trainer disabled it
    # Trainer's save_model pushes the folder itself when push_to_hub is set, with its own card and everything in
    # output_dir but checkpoints; the push below sends the final folder with this card and without local-only files.
    push, args.push_to_hub = args.push_to_hub, False
    try:
        with disk_full_reported(args.output_dir, "the final model", trainer.is_world_process_zero(), final=True):
            trainer.save_model(args.output_dir)
    finally:
        args.push_to_hub = push
    final_dir = args.output_dir
    if not trainer.is_world_process_zero():
        return final_dir
    card = (model_args, data_args, args, trainer.state, num_train, num_eval, eval_metrics, stage)
    write_model_card(args.output_dir, *card)
    if model_args.save_merged_model:
        final_dir = convert(args.output_dir, os.path.join(args.output_dir, "merged"), to="hf")
        write_model_card(final_dir, *card)
    logger.info(f"Model saved to {final_dir}")
    if args.push_to_hub:
        push_folder_to_hub(final_dir, args)
    return final_dir


def finish(trainer) -> None:
    """Wait for every process, then end the run: trackers closed, the process group destroyed (accelerate's)."""
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
