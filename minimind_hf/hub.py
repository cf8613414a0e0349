"""The final Hub push of a recipe: the saved model folder in one commit, without what only this machine needs."""

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# Checkpoints, TensorBoard runs, the merged copy (pushed on its own) and the pickled training arguments stay local;
# huggingface_hub already leaves out .git and its own .cache folder.
LOCAL_ONLY = ["checkpoint-*", "runs/*", "merged/*", "*training_args.bin", ".*"]


def push_folder_to_hub(folder, training_args, commit_message: str = "End of training"):
    """Upload `folder` to `hub_model_id` (default: output_dir's name) in one commit, on `hub_revision`, private as
    `hub_private_repo` says; the token is huggingface_hub's (HF_TOKEN, where `--hub_token` was moved)."""
    from huggingface_hub import HfApi

    api = HfApi()
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).resolve().name
    repo_id = api.create_repo(repo_id, private=training_args.hub_private_repo, exist_ok=True).repo_id
    logger.info("Pushing %s to %s", folder, repo_id)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        commit_message=commit_message,
        revision=training_args.hub_revision,
        ignore_patterns=LOCAL_ONLY,
    )
