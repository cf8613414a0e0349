"""YAML + command line -> (ModelArguments, DataArguments, SFTConfig): defaults, overrides, errors, shipped configs."""

import json
import os
import shlex
from pathlib import Path

import pytest
import yaml
from sft_testing import REPO_DIR

from minimind_hf import BUNDLED_TOKENIZER_DIR
from minimind_hf.arguments import PRETRAIN_ARGUMENTS, SFT_ARGUMENTS, parse_args
from minimind_hf.hardware import bf16_supported

CONFIGS = sorted((REPO_DIR / "configs").glob("*.yaml"))
RECIPE_ARGUMENTS = {"recipes/sft.py": SFT_ARGUMENTS, "recipes/pretrain.py": PRETRAIN_ARGUMENTS}


def _yaml(tmp_path, **fields) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model_name_or_path": "minimind-tiny", "dataset_name": "data.jsonl", **fields}))
    return str(path)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_parses(config):
    header = config.read_text().splitlines()[:6]
    recipes = {recipe for recipe in RECIPE_ARGUMENTS if any(recipe in line for line in header)}
    assert any("Tuned for" in line for line in header) and len(recipes) == 1, "header: hardware + launch command"
    # Through the dataclasses of the recipe its launch command names, so recipe-specific keys are checked too.
    model_args, data_args, training_args = parse_args([str(config)], RECIPE_ARGUMENTS[recipes.pop()])
    assert training_args.lr_scheduler_type == "cosine_with_min_lr"
    assert training_args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert data_args.dataset_name and training_args.output_dir.startswith("outputs/")


def test_shipped_configs_follow_minimind():
    full = parse_args([str(REPO_DIR / "configs/sft.yaml")])
    assert (full[2].learning_rate, full[2].max_length, full[2].per_device_train_batch_size) == (1e-5, 768, 16)
    assert (full[2].num_train_epochs, full[2].weight_decay, full[2].max_grad_norm) == (2, 0.01, 1.0)
    minimind2 = parse_args([str(REPO_DIR / "configs/sft_minimind2.yaml")])  # train_full_sft.py of MiniMind2
    assert (minimind2[2].learning_rate, minimind2[2].max_length, minimind2[2].per_device_train_batch_size) == (1e-6, 340, 16)  # fmt: skip
    assert minimind2[2].num_train_epochs == 2 and minimind2[2].bf16 == bf16_supported(minimind2[2].use_cpu)
    assert minimind2[1].dataset_name.endswith("/sft_mini_512.jsonl")
    lora = parse_args([str(REPO_DIR / "configs/sft_lora.yaml")])
    assert lora[0].use_peft and lora[0].lora_r == 16 and lora[0].lora_targets == ["q_proj", "o_proj"]
    assert lora[2].learning_rate == 1e-4
    tiny = parse_args([str(REPO_DIR / "configs/sft_tiny_cpu.yaml")])
    assert tiny[0].is_preset and tiny[0].model_name_or_path == "minimind-tiny"
    assert Path(REPO_DIR, tiny[1].dataset_name).is_file() and Path(REPO_DIR, tiny[1].sample_prompts_file).is_file()


def test_defaults_are_minimind_sft(tmp_path):
    model_args, data_args, args = parse_args([_yaml(tmp_path)])
    assert (args.learning_rate, args.weight_decay, args.max_grad_norm) == (1e-5, 0.01, 1.0)
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.max_length) == (2, 16, 768)
    assert args.lr_scheduler_type == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert args.bf16 == bf16_supported(args.use_cpu)
    assert args.report_to == ["tensorboard"] and args.save_total_limit == 2 and args.hub_strategy == "end"
    assert (model_args.lora_r, model_args.lora_alpha, model_args.lora_targets) == (16, 16, ["q_proj", "o_proj"])
    assert (data_args.train_on, data_args.system_prompt_ratio, data_args.empty_think_ratio) == ("assistant", 0.2, 0.2)
    assert model_args.tokenizer_name_or_path == str(BUNDLED_TOKENIZER_DIR)  # a preset has no tokenizer of its own


def test_command_line_overrides_yaml(tmp_path):
    config = _yaml(tmp_path, learning_rate="3e-4", num_train_epochs=5, lora_target_modules=["q_proj"])
    _, _, args = parse_args([config])
    assert args.learning_rate == 3e-4 and isinstance(args.learning_rate, float)  # YAML reads 3e-4 as a string
    model_args, _, args = parse_args([config, "--learning_rate", "1e-5", "--num_train_epochs", "1",
                                      "--lora_target_modules", "all-linear", "--bf16", "false"])  # fmt: skip
    assert (args.learning_rate, args.num_train_epochs, args.bf16) == (1e-5, 1, False)
    assert model_args.lora_targets == "all-linear"


def test_lora_defaults_to_minimind_lora_learning_rate_unless_one_is_given(tmp_path):
    """train_lora.py's 1e-4 when neither YAML nor command line sets a rate; a given rate, even 1e-5, stays."""
    lora = {"model_name_or_path": str(tmp_path), "use_peft": True}
    assert parse_args([_yaml(tmp_path, **lora)])[2].learning_rate == 1e-4
    assert parse_args([_yaml(tmp_path)])[2].learning_rate == 1e-5  # full SFT
    assert parse_args([_yaml(tmp_path, **lora, learning_rate="1e-5")])[2].learning_rate == 1e-5
    assert parse_args([_yaml(tmp_path, **lora), "--learning_rate", "1e-5"])[2].learning_rate == 1e-5
    assert parse_args([_yaml(tmp_path, **lora), "--learning_rate=2e-5"])[2].learning_rate == 2e-5
    assert parse_args([_yaml(tmp_path, model_name_or_path=str(tmp_path)), "--use_peft", "true"])[2].learning_rate == 1e-4  # fmt: skip
    pretrain = parse_args([_yaml(tmp_path, **lora)], PRETRAIN_ARGUMENTS)[2]
    assert pretrain.learning_rate == 5e-4  # no MiniMind LoRA-pretraining rate to switch to


def test_weight_decay_spares_norm_weights_as_the_help_says(tmp_path, tiny_config, capsys):
    """0.01 on every matrix as in MiniMind, but Trainer's optimizer exempts the RMSNorm weights (MiniMind decays them
    too): the help text must say so."""
    from transformers import Trainer

    from minimind_hf import MiniMindForCausalLM

    _, _, args = parse_args([_yaml(tmp_path, output_dir=str(tmp_path / "out"), report_to="none")])
    model = MiniMindForCausalLM(tiny_config)
    optimizer = Trainer(model=model, args=args).create_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {group["weight_decay"]: {names[id(p)] for p in group["params"]} for group in optimizer.param_groups}
    assert decay.keys() == {0.01, 0.0}
    assert decay[0.0] and all("norm" in name for name in decay[0.0])
    assert {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"} <= decay[0.01]
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "0.01 is MiniMind's. Norm weights and biases are exempt" in help_text


@pytest.mark.parametrize("tracker", ["wandb", "swanlab"])
def test_missing_tracker_package_fails_at_startup_with_the_install_command(tmp_path, tracker):
    import importlib.util

    from transformers.integrations import get_reporting_integration_callbacks

    if importlib.util.find_spec(tracker) is not None:
        pytest.skip(f"{tracker} is installed")
    (callback,) = get_reporting_integration_callbacks([tracker])  # transformers knows the tracker...
    with pytest.raises(RuntimeError, match=f"pip install {tracker}"):
        callback()  # ...and would only fail when Trainer is built, after the data is tokenized
    with pytest.raises(ValueError, match=f"report_to: {tracker} needs the {tracker} package.*`pip install {tracker}`"):
        parse_args([_yaml(tmp_path, report_to=tracker)])
    with pytest.raises(ValueError, match=f"report_to: {tracker} needs"):
        parse_args([_yaml(tmp_path, report_to=["tensorboard", tracker])])
    with pytest.raises(ValueError, match=f"report_to: {tracker} needs"):
        parse_args([_yaml(tmp_path), "--report_to", tracker])
    assert parse_args([_yaml(tmp_path, report_to="tensorboard")])[2].report_to == ["tensorboard"]
    with pytest.raises(ValueError, match="unknown tracker 'tensorbord'; choose from .*swanlab"):
        parse_args([_yaml(tmp_path, report_to="tensorbord")])


def test_unknown_keys_are_errors_that_name_them(tmp_path):
    with pytest.raises(
        ValueError, match=r"Unknown key 'lerning_rate' in .*run.yaml \(did you mean 'learning_rate'\?\)"
    ):
        parse_args([_yaml(tmp_path, lerning_rate=1e-4)])
    with pytest.raises(ValueError, match="Unknown command-line argument.*--lora_rank 8"):
        parse_args([_yaml(tmp_path), "--lora_rank", "8"])
    with pytest.raises(ValueError, match="--learning 1e-3"):  # no silent prefix matching
        parse_args([_yaml(tmp_path), "--learning", "1e-3"])


def test_help_lists_every_field(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert all(f"--{name} " in help_text for name in ("model_name_or_path", "dataset_name", "lora_r", "max_length"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"use_peft": True}, "use_peft needs a trained base model"),
        ({"save_merged_model": True}, "save_merged_model only applies to LoRA"),
        ({"eval_strategy": "steps", "eval_steps": 10}, "needs eval_split_ratio or eval_dataset_name"),
        ({"eval_split_ratio": 0.1, "eval_dataset_name": "eval.jsonl"}, "not both"),
        ({"eval_split_ratio": 1.0}, "eval_split_ratio must be in"),
        ({"lora_r": 0}, "lora_r and lora_alpha must be positive"),
        ({"max_length": 0}, "max_length must be positive"),
        ({"train_on": "users"}, "users"),
        ({"lr_scheduler_type": "cosine_to_zero"}, "cosine_to_zero"),
    ],
)
def test_invalid_settings_are_rejected(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        parse_args([_yaml(tmp_path, **fields)])


@pytest.mark.parametrize(("value", "expected"), [(True, "latest"), ("latest", "latest"), (False, None)])
def test_resume_from_checkpoint_true_means_latest(tmp_path, value, expected):
    assert parse_args([_yaml(tmp_path, resume_from_checkpoint=value)])[2].resume_from_checkpoint == expected
    assert parse_args([_yaml(tmp_path), "--resume_from_checkpoint", "outputs/x/checkpoint-5"])[2].resume_from_checkpoint == "outputs/x/checkpoint-5"  # fmt: skip


def test_tokenizer_defaults_to_the_models_own(tmp_path, monkeypatch):
    with_tokenizer, without = tmp_path / "with", tmp_path / "without"
    with_tokenizer.mkdir(), without.mkdir()
    (with_tokenizer / "tokenizer.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert parse_args([_yaml(tmp_path, model_name_or_path="with")])[0].tokenizer_name_or_path == str(with_tokenizer)
    assert parse_args([_yaml(tmp_path, model_name_or_path="without")])[0].tokenizer_name_or_path == str(BUNDLED_TOKENIZER_DIR)  # fmt: skip
    assert parse_args([_yaml(tmp_path, model_name_or_path="org/model")])[0].tokenizer_name_or_path == "org/model"
    explicit = parse_args([_yaml(tmp_path, model_name_or_path="with", tokenizer_name_or_path="org/tok")])[0]
    assert explicit.tokenizer_name_or_path == "org/tok" and explicit.model_name_or_path == str(with_tokenizer)


def test_deepspeed_configs_resolve_against_training_arguments(tmp_path):
    """ds_zero*.json leave batch, accumulation, clipping and precision to the recipe YAML ("auto")."""
    from transformers import AutoModelForCausalLM
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    from minimind_hf import MiniMindConfig

    _, _, args = parse_args([_yaml(tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=3)])
    model = AutoModelForCausalLM.from_config(MiniMindConfig.from_preset("minimind-tiny"))
    for stage in (2, 3):
        path = REPO_DIR / f"configs/accelerate/ds_zero{stage}.json"
        try:
            ds = HfTrainerDeepSpeedConfig(json.loads(path.read_text()))
            ds.trainer_config_process(args)
            ds.trainer_config_finalize(args, model, num_training_steps=10)
            config = ds.config
        finally:
            unset_hf_deepspeed_config()
        assert "auto" not in json.dumps(config)
        assert config["zero_optimization"]["stage"] == stage
        assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]) == (4, 3)
        assert config["gradient_clipping"] == 1.0 and config["bf16"]["enabled"] == args.bf16
    assert json.loads((REPO_DIR / "configs/accelerate/ds_zero3.json").read_text())["zero_optimization"][
        "stage3_gather_16bit_weights_on_model_save"
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_DIR / "configs/accelerate").glob("*.yaml")))
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(REPO_DIR / "configs/accelerate" / name))
    assert config.mixed_precision in (None, "no")  # precision comes from the recipe YAML's bf16
    ds_file = (config.deepspeed_config or {}).get("deepspeed_config_file")
    assert ds_file is None or (REPO_DIR / ds_file).is_file()

    # The header shows the launch command with this file, a recipe and a recipe YAML that exist.
    header = ""
    for line in (REPO_DIR / "configs/accelerate" / name).read_text().splitlines():
        if not line.startswith("#"):
            break
        header += line.lstrip("# ").rstrip() + "\n"
    commands = [line for line in header.replace("\\\n", " ").splitlines() if line.startswith("accelerate launch ")]
    assert commands, f"{name}: no `accelerate launch` command in the header"
    for command in commands:
        words = shlex.split(command)
        assert words[words.index("--config_file") + 1] == f"configs/accelerate/{name}"
        recipe = next(w for w in words if w.startswith("recipes/"))
        assert recipe in RECIPE_ARGUMENTS and (REPO_DIR / recipe).is_file()
        run_config = words[words.index(recipe) + 1]
        assert run_config.startswith("configs/") and (REPO_DIR / run_config).is_file()


def test_sample_answers_turn_off_with_null_and_a_missing_prompts_file_fails_at_startup(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    config = _yaml(tmp_path, sample_prompts_file=str(prompts))
    assert parse_args([config])[1].sample_prompts_file == str(prompts)
    for off in ("null", "none", ""):
        assert parse_args([config, "--sample_prompts_file", off])[1].sample_prompts_file is None
    assert parse_args([_yaml(tmp_path, sample_prompts_file=None)])[1].sample_prompts_file is None
    with pytest.raises(ValueError, match=r"sample_prompts_file .*nope.jsonl: no such file \(set it to null"):
        parse_args([config, "--sample_prompts_file", str(tmp_path / "nope.jsonl")])


def test_command_line_typos_get_did_you_mean(tmp_path):
    for typo, meant in (("--skip_invalid", "skip_invalid_samples"), ("--lora_rank", "lora_r"),
                        ("--lerning_rate", "learning_rate")):  # fmt: skip
        with pytest.raises(ValueError, match=f"did you mean --{meant} for {typo}"):
            parse_args([_yaml(tmp_path), typo, "1"])
    with pytest.raises(ValueError, match="nope.yaml: no such config file"):
        parse_args([str(tmp_path / "nope.yaml")])


def test_bad_values_and_missing_required_fields_are_one_line_naming_the_option(tmp_path):
    with pytest.raises(ValueError, match=r"argument --optim: invalid choice: 'foo'.*\(--help lists every option\)"):
        parse_args([_yaml(tmp_path), "--optim", "foo"])
    with pytest.raises(ValueError, match="argument --max_steps.*invalid int value: 'x'"):
        parse_args([_yaml(tmp_path), "--max_steps", "x"])
    with pytest.raises(ValueError, match=r"optim: 'foo' in .*run.yaml is not one of \["):
        parse_args([_yaml(tmp_path, optim="foo")])
    config = tmp_path / "no_model.yaml"
    config.write_text("dataset_name: data.jsonl\nlearning_rate: 1e-5\n")
    with pytest.raises(ValueError, match="model_name_or_path is not set: give it in the YAML config or as --"):
        parse_args([str(config)])
    model_args, _, training_args = parse_args([str(config), "--model_name_or_path", "minimind-tiny"])
    assert model_args.model_name_or_path == "minimind-tiny" and training_args.learning_rate == 1e-5


@pytest.mark.parametrize("launcher_value", ["False", None])
def test_torch_compile_under_accelerate_launch_keeps_dynamic_shapes(tmp_path, monkeypatch, launcher_value):
    """`accelerate launch` exports ACCELERATE_DYNAMO_USE_DYNAMIC=False, which would make Trainer's compile recompile
    for every new packed length; with `torch_compile` the Trainer's accelerator leaves the choice to torch.compile."""
    from transformers import Trainer

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    if launcher_value is None:
        monkeypatch.delenv("ACCELERATE_DYNAMO_USE_DYNAMIC", raising=False)
    else:
        monkeypatch.setenv("ACCELERATE_DYNAMO_USE_DYNAMIC", launcher_value)
    _, _, args = parse_args([_yaml(tmp_path, output_dir=str(tmp_path / "out"), torch_compile=True)])
    trainer = Trainer(model=MiniMindForCausalLM(MiniMindConfig.from_preset("minimind-tiny")), args=args)
    plugin = trainer.accelerator.state.dynamo_plugin
    assert plugin.backend.value.lower() == "inductor" and plugin.dynamic is None


def test_without_torch_compile_the_launchers_dynamo_settings_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_DYNAMO_USE_DYNAMIC", "False")
    parse_args([_yaml(tmp_path)])
    assert os.environ["ACCELERATE_DYNAMO_USE_DYNAMIC"] == "False"
