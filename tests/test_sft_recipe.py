"""End-to-end runs of recipes/sft.py on a tiny MiniMind: what the output folder holds and how it loads and chats,
LoRA + merge, the Hub push, eval perplexity, logging, and resume after SIGKILL."""

import json
import math
import runpy
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, get_token
from huggingface_hub.utils import filter_repo_objects
from sft_testing import (
    DEMO_PROMPTS,
    RECIPE,
    assert_weights_close,
    launch,
    logged_losses,
    make_base_model,
    make_sft_data,
    read_records,
    run,
    subprocess_env,
    weights,
    write_config,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

import minimind_hf  # noqa: F401  (registers MiniMind)
from minimind_hf.arguments import parse_args
from minimind_hf.chat import generate_answers
from minimind_hf.checkpoints import checkpoint_problem


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("sft_recipe")


@pytest.fixture(scope="module")
def base_model(workdir, tiny_config_module):
    return make_base_model(workdir / "base", tiny_config_module)


@pytest.fixture(scope="module")
def tiny_config_module():
    from minimind_hf import MiniMindConfig

    return MiniMindConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128
    )


@pytest.fixture(scope="module")
def full_run(workdir):
    """The CPU demo path at toy size: `python recipes/sft.py` from the minimind-tiny preset (random init), with a
    held-out split evaluated during training, sample prompts, TensorBoard, checkpoints."""
    prompts = workdir / "prompts.jsonl"
    prompts.write_text("\n".join(DEMO_PROMPTS.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    config = write_config(
        workdir / "full.yaml",
        model_name_or_path="minimind-tiny",
        dataset_name=make_sft_data(workdir / "data.jsonl", 40),
        eval_split_ratio=0.2,
        eval_strategy="steps",
        eval_steps=2,
        max_steps=4,
        save_strategy="steps",
        save_steps=2,
        report_to="tensorboard",
        sample_prompts_file=prompts,
        sample_max_new_tokens=8,
        output_dir=workdir / "full",
        disable_tqdm=False,
    )
    result = run([sys.executable, RECIPE, config], subprocess_env(threads=2))
    return workdir / "full", result


def test_output_folder_is_complete_and_chat_ready(full_run):
    out, _ = full_run
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["use_cache"] is True
    assert config["auto_map"]["AutoModelForCausalLM"].endswith("MiniMindForCausalLM")
    generation = json.loads((out / "generation_config.json").read_text())
    assert (generation["eos_token_id"], generation["pad_token_id"]) == (2, 0)

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert tokenizer.convert_ids_to_tokens(2) == "<|im_end|>"
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)  # fmt: skip
    saved = weights(out)
    assert_weights_close({name: model.state_dict()[name] for name in saved}, saved, rtol=0, atol=0)
    answer = generate_answers(model, tokenizer, ["你好"], max_new_tokens=5)
    assert isinstance(answer[0], str)


def test_model_card_describes_the_run(full_run):
    out, _ = full_run
    card = (out / "README.md").read_text()
    state = json.loads((out / "trainer_state.json").read_text())
    final_loss = [e["loss"] for e in state["log_history"] if "loss" in e][-1]
    assert card.startswith("---\n") and "pipeline_tag: text-generation" in card
    for expected in ("minimind-tiny preset, random init", "data.jsonl (32 conversations, 8 held out)",
                     "learning rate | 0.001, cosine_with_min_lr {'min_lr_rate': 0.1}", "full fine-tuning",
                     f"final train loss | {final_loss:.4f}", "eval loss / perplexity", "recipes/sft.py",
                     "epochs / steps | 0.5 / 4 (as run)"):  # fmt: skip
        assert expected in card, expected


def test_the_log_says_what_matters(full_run):
    """A one-line run header, the settings that differ from the defaults (not the 100-line dump), the loss on the
    progress bar, announced sample answers, no DeepSpeed device-probe warning."""
    _, result = full_run
    log = result.stderr
    assert "Training on 1 process (cpu, fp32): 4 per device x 1 accumulation x 1 = 4 conversations per optimizer " \
           "step; 32 conversations (+8 held out), 1 epochs -> 4 steps" in log  # fmt: skip
    assert "SFTConfig(" not in log and "local_rank=" not in log
    (settings,) = [line for line in log.splitlines() if "Settings that differ from the defaults:" in line]
    assert "max_steps=4" in settings and "eval_split_ratio=0.2" in settings and "seed=" not in settings
    bar = log.replace("\r", "\n").splitlines()
    assert any("4/4" in line and "loss=" in line and "eval_loss=" in line for line in bar), log[-3000:]
    assert "Sample answers before training: 2 prompts" in log and "sample_prompts_file: null turns them off" in log
    assert "Setting accelerator to CPU" not in log and "is_gradient_checkpointing" not in log


def test_logs_throughput_and_eval_perplexity(full_run):
    out, _ = full_run
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    train_logs = [e for e in history if "loss" in e]
    assert len(train_logs) == 4
    assert all(e["tokens_per_second"] > 0 and 0 < e["supervised_tokens_per_second"] < e["tokens_per_second"]
               for e in train_logs)  # fmt: skip
    assert "aux_loss" not in train_logs[0]  # dense model
    evals = [e for e in history if "eval_loss" in e]
    assert [e["step"] for e in evals] == [2, 4]
    for e in evals:
        assert e["eval_perplexity"] == pytest.approx(math.exp(e["eval_loss"]))
    final_eval = json.loads((out / "eval_results.json").read_text())
    assert final_eval["eval_perplexity"] == pytest.approx(math.exp(final_eval["eval_loss"]))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((out / "runs").glob("*")))).Reload()
    tags = events.Tags()["scalars"]
    assert {"train/tokens_per_second", "train/supervised_tokens_per_second", "eval/perplexity"} <= set(tags)


def test_prints_sample_answers_and_keeps_checkpoints_complete(full_run):
    out, result = full_run
    assert "Sample answers from" in result.stdout
    assert "reference: '我是 MiniMind" in result.stdout and "before:" in result.stdout
    assert [checkpoint_problem(out / f"checkpoint-{step}") for step in (2, 4)] == [None, None]


def test_unknown_key_fails_fast_naming_it(workdir):
    config = write_config(workdir / "bad.yaml", model_name_or_path="minimind-tiny", dataset_name="x.jsonl",
                          learning_rat=1e-4)  # fmt: skip
    result = run([sys.executable, RECIPE, config], subprocess_env(), check=False)
    assert result.returncode != 0 and "Unknown key 'learning_rat'" in result.stderr
    assert "did you mean 'learning_rate'" in result.stderr


def test_lora_adapter_merge_and_logits(workdir, base_model):
    from peft import AutoPeftModelForCausalLM

    from minimind_hf.cli import main as cli_main

    out = workdir / "lora"
    config = write_config(
        workdir / "lora.yaml",
        model_name_or_path=base_model,
        dataset_name=make_sft_data(workdir / "lora_data.jsonl", 16),
        use_peft=True,
        lora_target_modules=["all-linear"],
        learning_rate=1e-2,
        save_merged_model=True,
        output_dir=out,
    )
    result = run([sys.executable, RECIPE, config], subprocess_env(threads=2))
    assert "is_gradient_checkpointing" not in result.stderr  # peft reads the deprecated alias: filtered
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(base_model)
    targets = {name.split(".")[-1] for name in adapter_config["target_modules"]}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}  # not lm_head
    assert "library_name: peft" in (out / "README.md").read_text()

    cli_main(["merge", str(out), str(workdir / "merged_cli")])
    adapter = AutoPeftModelForCausalLM.from_pretrained(out).eval()
    lora_b = [p for n, p in adapter.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # the adapter was trained (B starts at zero)
    merged_cli = AutoModelForCausalLM.from_pretrained(workdir / "merged_cli").eval()
    merged_run = AutoModelForCausalLM.from_pretrained(out / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(base_model).eval()
    ids = torch.tensor([[1, 324, 234, 2793, 2, 234, 1, 329, 234]])
    with torch.no_grad():
        expected = adapter(input_ids=ids).logits
        torch.testing.assert_close(merged_cli(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(merged_run(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(base(input_ids=ids).logits, expected, atol=1e-3)
    assert json.loads((workdir / "merged_cli" / "config.json").read_text())["use_cache"] is True
    assert (workdir / "merged_cli" / "tokenizer.json").is_file()


class _HubRecorder:
    """Stands in for the Hub: records create_repo and, for every upload_folder, the files it would send (selected by
    huggingface_hub's own pattern filter)."""

    def __init__(self, monkeypatch):
        self.repos, self.commits = [], []
        recorder = self

        def create_repo(api, repo_id, token=None, private=None, exist_ok=False, **kwargs):
            from huggingface_hub import RepoUrl

            token = token if token is not None else get_token()  # HfApi's own fallback (HF_TOKEN)
            recorder.repos.append({"repo_id": repo_id, "token": token, "private": private})
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(api, *, repo_id, folder_path, commit_message=None, token=None, ignore_patterns=None, **kw):
            folder = Path(folder_path)
            paths = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
            sent = filter_repo_objects(paths, ignore_patterns=ignore_patterns)
            files = {path: (folder / path).read_bytes() for path in sent}
            token = token if token is not None else get_token()
            recorder.commits.append({"repo_id": repo_id, "files": files, "token": token, "message": commit_message})

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


def test_push_to_hub_sends_the_final_model_without_the_token(workdir, base_model, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_TOKEN", "placeholder")  # restored after the test: the recipe moves --hub_token here
    hub = _HubRecorder(monkeypatch)
    secret = "hf_test_SECRET_token_123"
    out = workdir / "pushed"
    config = write_config(
        workdir / "push.yaml",
        model_name_or_path=base_model,
        dataset_name=make_sft_data(workdir / "push_data.jsonl", 8),
        eval_dataset_name=make_sft_data(workdir / "push_eval.jsonl", 4),
        max_steps=2,
        save_strategy="steps",
        save_steps=1,
        push_to_hub=True,
        hub_model_id="someone/minimind-test",
        output_dir=out,
    )
    main = runpy.run_path(str(RECIPE))["main"]
    main(*parse_args([str(config), "--hub_token", secret]))

    assert hub.repos[-1]["repo_id"] == "someone/minimind-test" and hub.repos[-1]["token"] == secret
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert commit["repo_id"] == "someone/minimind-test" and commit["token"] == secret
    sent = set(commit["files"])
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"} <= sent
    assert not any(f.startswith(("checkpoint-", "runs/")) or f == "training_args.bin" for f in sent), sent
    assert commit["files"]["model.safetensors"] == (out / "model.safetensors").read_bytes()
    assert b"eval loss / perplexity" in commit["files"]["README.md"]
    assert all(secret.encode() not in content for content in commit["files"].values())
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err + caplog.text


@pytest.mark.parametrize("merged", [False, True], ids=["adapter", "merged"])
def test_lora_push_sends_the_adapter_or_the_merged_model(workdir, base_model, monkeypatch, merged):
    hub = _HubRecorder(monkeypatch)
    out = workdir / f"lora_push_{merged}"
    config = write_config(
        workdir / f"lora_push_{merged}.yaml",
        model_name_or_path=base_model,
        dataset_name=make_sft_data(workdir / "lora_push_data.jsonl", 8),
        max_steps=1,
        use_peft=True,
        save_merged_model=merged,
        push_to_hub=True,
        hub_model_id="someone/minimind-lora",
        output_dir=out,
    )
    runpy.run_path(str(RECIPE))["main"](*parse_args([str(config)]))
    sent = set(hub.commits[-1]["files"])
    if merged:
        assert "model.safetensors" in sent and "adapter_config.json" not in sent
        assert hub.commits[-1]["files"]["model.safetensors"] == (out / "merged" / "model.safetensors").read_bytes()
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= sent and "model.safetensors" not in sent
    assert "tokenizer.json" in sent and not any(f.startswith("merged/") for f in sent)


def test_moe_aux_loss_is_logged_on_its_own(workdir, tiny_config_module):
    from minimind_hf import MiniMindConfig

    moe = MiniMindConfig(**{**tiny_config_module.to_dict(), "use_moe": True, "moe_intermediate_size": 64})
    out = workdir / "moe"
    config = write_config(
        workdir / "moe.yaml",
        model_name_or_path=make_base_model(workdir / "moe_base", moe),
        dataset_name=make_sft_data(workdir / "moe_data.jsonl", 8),
        max_steps=2,
        bf16=True,  # bf16 autocast on CPU (needs use_cpu, which the arguments set on CPU-only machines)
        output_dir=out,
    )
    main = runpy.run_path(str(RECIPE))["main"]
    main(*parse_args([str(config)]))
    logs = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert len(logs) == 2 and all(0 < e["aux_loss"] < e["loss"] for e in logs)
    assert "bf16 autocast" in (out / "README.md").read_text()


def test_resume_after_sigkill_matches_an_uninterrupted_run(workdir, base_model, tmp_path):
    """Killed while writing checkpoint-12 (weights on disk, optimizer not), mid-way through epoch 2: checkpoint-8
    must survive rotation, `resume_from_checkpoint: true` must skip the broken checkpoint-12, and the resumed run
    must end on the uninterrupted run's weights (same data order, optimizer and scheduler state)."""
    data = make_sft_data(workdir / "resume_data.jsonl", 40)  # 10 steps per epoch at batch 4
    common = {"model_name_or_path": base_model, "dataset_name": data, "num_train_epochs": 2, "save_strategy": "steps",
              "save_steps": 4, "save_total_limit": 1}  # fmt: skip
    reference = workdir / "uninterrupted"
    reference_config = write_config(tmp_path / "ref.yaml", **common, output_dir=reference)
    launch(reference_config, tmp_path=tmp_path, threads=2, record_dir=tmp_path / "reference_rows")

    out = workdir / "interrupted"
    config = write_config(tmp_path / "run.yaml", **common, output_dir=out, resume_from_checkpoint=True)
    killed = launch(config, tmp_path=tmp_path, check=False, threads=2, SFT_KILL_IN_SAVE_AT_STEP=12)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert checkpoint_problem(out / "checkpoint-8") is None  # the last good checkpoint was not rotated away
    assert checkpoint_problem(out / "checkpoint-12") is not None
    assert not (out / "model.safetensors").exists()

    resumed = launch(config, tmp_path=tmp_path, threads=2, record_dir=tmp_path / "resumed_rows")
    assert "Not resuming from" in resumed.stderr and "checkpoint-12" in resumed.stderr
    # Data order: from step 8 on, the resumed run trains on the same rows, batch for batch, as the uninterrupted one.
    (reference_steps,) = [record["steps"] for record in read_records(tmp_path / "reference_rows")]
    (resumed_steps,) = [record["steps"] for record in read_records(tmp_path / "resumed_rows")]
    assert [s["step"] for s in resumed_steps] == list(range(8, 20))
    assert resumed_steps == [s for s in reference_steps if s["step"] >= 8]
    assert_weights_close(weights(out), weights(reference), rtol=1e-4, atol=1e-4)
    assert logged_losses(out)[-4:] == pytest.approx(logged_losses(reference)[-4:], abs=1e-4)
    counted = [[e["num_tokens"] for e in json.loads((d / "trainer_state.json").read_text())["log_history"]
                if "num_tokens" in e] for d in (out, reference)]  # fmt: skip
    assert counted[0][-1] == counted[1][-1] > 0  # the token counter continued from checkpoint-8's count
