"""The hub token never reaches a file: not training_args.bin in output_dir or a checkpoint, not anything Trainer
uploads with a per-checkpoint hub_strategy, while the push itself still authenticates with it."""

import runpy
from concurrent.futures import Future
from pathlib import Path

import pytest
from huggingface_hub import HfApi, RepoUrl, get_token
from sft_testing import RECIPE, make_base_model, make_sft_data, write_config

import minimind_hf  # noqa: F401  (registers MiniMind)
from minimind_hf.arguments import parse_args

SECRET = "hf_test_SECRET_token_456"


@pytest.mark.parametrize("strategy", ["all_checkpoints", "every_save"])
def test_hub_token_is_in_no_file_written_or_uploaded(tmp_path, monkeypatch, strategy):
    monkeypatch.setenv("HF_TOKEN", "placeholder")  # restored after the test: the recipe moves the token here
    uploads, tokens = [], []

    def create_repo(api, repo_id, token=None, **kwargs):
        tokens.append(token if token is not None else get_token())
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(api, repo_id, folder_path, token=None, run_as_future=False, **kwargs):
        tokens.append(token if token is not None else get_token())
        uploads.extend(p.read_bytes() for p in Path(folder_path).rglob("*") if p.is_file())
        done = Future()
        done.set_result(None)
        return done

    def create_commit(api, repo_id, operations, token=None, **kwargs):
        tokens.append(token if token is not None else get_token())
        uploads.extend(Path(op.path_or_fileobj).read_bytes() for op in operations)

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    out = tmp_path / "out"
    run = write_config(tmp_path / "push.yaml", model_name_or_path=make_base_model(tmp_path / "base"),
                       dataset_name=make_sft_data(tmp_path / "data.jsonl", 8), max_steps=2, save_strategy="steps",
                       save_steps=1, push_to_hub=True, hub_model_id="someone/minimind-test", hub_strategy=strategy,
                       output_dir=out)  # fmt: skip
    runpy.run_path(str(RECIPE))["main"](*parse_args([str(run), "--hub_token", SECRET]))

    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in written) and any("checkpoint-" in str(p) for p in written)
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []
    assert len(uploads) > 10 and not any(SECRET.encode() in content for content in uploads)
    assert tokens and set(tokens) == {SECRET}  # every Hub call still authenticates with the user's token
