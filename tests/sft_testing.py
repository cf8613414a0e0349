"""Helpers for the SFT recipe tests: a tiny base model, a small data file, a YAML writer, and subprocess runs of
recipes/sft.py (plain, under `accelerate launch`, or instrumented by HARNESS)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from safetensors.torch import load_file

REPO_DIR = Path(__file__).resolve().parents[1]
RECIPE = REPO_DIR / "recipes" / "sft.py"
ACCELERATE = Path(sys.executable).parent / "accelerate"
DEMO_SFT = REPO_DIR / "minimind_hf" / "demo_data" / "sft.jsonl"
DEMO_PROMPTS = REPO_DIR / "minimind_hf" / "demo_data" / "prompts.jsonl"
# MiniMind's real tokenizers (never copied into the repo): $MINIMIND_REFERENCE_DIR, the workspace's shared/reference
# next to this checkout, or the one on this machine (for clones made elsewhere, e.g. /tmp/fresh).
_REFERENCE_CANDIDATES = (os.environ.get("MINIMIND_REFERENCE_DIR"), REPO_DIR.parent / "shared" / "reference",
                         "/work/shared/reference")  # fmt: skip
REFERENCE_DIR = next((Path(p) for p in _REFERENCE_CANDIDATES if p and Path(p).is_dir()), None)
REFERENCE_TOKENIZERS = {
    name: (REFERENCE_DIR / f"{name}-tokenizer") if REFERENCE_DIR else Path(f"<no reference dir>/{name}-tokenizer")
    for name in ("minimind2", "minimind3")
}

# Runs recipes/sft.py with test instrumentation, driven by environment variables:
#   SFT_RECORD_DIR: every process writes rank{R}.json: world size, accelerate's distributed type, DeepSpeed's ZeRO
#   stage, and the rows it trained on, per micro-step.
#   SFT_KILL_IN_SAVE_AT_STEP=N: SIGKILL itself while saving checkpoint-N, after the weights, before the optimizer.
#   SFT_STOP_RANK_AT_STEP=R:N: rank R SIGSTOPs itself (hangs) at the start of step N.
HARNESS = r"""
import json, os, runpy, signal, sys
import torch.distributed as dist
from transformers import Trainer

record_dir, kill_step = os.environ.get("SFT_RECORD_DIR"), int(os.environ.get("SFT_KILL_IN_SAVE_AT_STEP", "0"))
stop_rank, stop_step = (int(x) for x in os.environ.get("SFT_STOP_RANK_AT_STEP", "-1:-1").split(":"))
record = {"rank": int(os.environ.get("RANK", "0")), "world_size": None, "steps": []}
training_step, save_optimizer = Trainer.training_step, Trainer._save_optimizer_and_scheduler

def recorded_training_step(self, model, inputs, num_items_in_batch=None):
    if record["rank"] == stop_rank and self.state.global_step == stop_step:
        os.kill(os.getpid(), signal.SIGSTOP)
    record["world_size"] = dist.get_world_size() if dist.is_initialized() else 1
    record["distributed_type"] = str(self.accelerator.distributed_type)
    plugin = self.accelerator.state.deepspeed_plugin
    record["zero_stage"] = plugin.zero_stage if plugin is not None else None
    pad, rows = self.processing_class.pad_token_id, []
    for ids in inputs["input_ids"].tolist():  # right-padded rows, no mask: drop the trailing pads
        while ids and ids[-1] == pad:
            ids.pop()
        rows.append(ids)
    record["steps"].append({"step": self.state.global_step, "rows": rows})
    return training_step(self, model, inputs, num_items_in_batch)

def killed_mid_save(self, output_dir):
    if self.state.global_step == kill_step:
        os.kill(os.getpid(), signal.SIGKILL)
    return save_optimizer(self, output_dir)

Trainer.training_step, Trainer._save_optimizer_and_scheduler = recorded_training_step, killed_mid_save
recipe = sys.argv[1]
sys.argv = sys.argv[1:]
try:
    runpy.run_path(recipe, run_name="__main__")
finally:
    if record_dir:
        with open(os.path.join(record_dir, f"rank{record['rank']}.json"), "w") as f:
            json.dump(record, f)
"""


# The recipe tests' model: hidden 64, 2 layers, GQA 4/2 heads.
TINY_FIELDS = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "intermediate_size": 128}  # fmt: skip


def make_base_model(folder: Path, config=None) -> Path:
    """A tiny random MiniMind saved like a real checkpoint: weights, config, generation config, bundled tokenizer.
    ``config`` defaults to `TINY_FIELDS`."""
    import torch
    from transformers import AutoTokenizer

    from minimind_hf import BUNDLED_TOKENIZER_DIR, MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.generation import configure_generation

    config = config or MiniMindConfig(**TINY_FIELDS)
    torch.manual_seed(0)
    model = MiniMindForCausalLM(config)
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER_DIR)
    configure_generation(model, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_sft_data(path: Path, n: int) -> Path:
    """The first n distinct short conversations of the bundled demo data (distinct, so per-rank batches can be told
    apart; short, so steps stay cheap)."""
    rows = [line for line in DEMO_SFT.read_text(encoding="utf-8").splitlines() if len(line) < 400]
    path.write_text("\n".join(list(dict.fromkeys(rows))[:n]) + "\n", encoding="utf-8")
    return path


def write_config(path: Path, **fields) -> Path:
    """A recipe YAML for fast, deterministic fp32 test runs; `fields` add to or replace the defaults."""
    config = {
        "max_length": 128,
        "learning_rate": 1e-3,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 4,
        "bf16": False,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": 42,
    }
    config.update({key: str(value) if isinstance(value, Path) else value for key, value in fields.items()})
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def subprocess_env(threads: int = 1, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "RANK", "LOCAL_", "WORLD_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO_DIR), env.get("PYTHONPATH", "")]),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        MASTER_ADDR="127.0.0.1",
    )
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO_DIR / ".cache" / "torch_extensions"))
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run(cmd: list, env: dict, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def harness(tmp_path: Path) -> Path:
    path = tmp_path / "sft_harness.py"
    path.write_text(HARNESS, encoding="utf-8")
    return path


def launch(config: Path, *overrides, processes: int = 1, accelerate_config: str | None = None, record_dir=None,
           tmp_path: Path, check: bool = True, **env) -> subprocess.CompletedProcess:  # fmt: skip
    """recipes/sft.py through the instrumented harness: `python` for 1 process, else `accelerate launch`."""
    if record_dir is not None:
        Path(record_dir).mkdir(parents=True, exist_ok=True)
        env["SFT_RECORD_DIR"] = record_dir
    script = [harness(tmp_path), RECIPE, config, *overrides]
    if processes == 1 and accelerate_config is None:
        cmd = [sys.executable, *script]
    else:
        cmd = [ACCELERATE, "launch", "--num_processes", processes, "--num_machines", 1, "--dynamo_backend", "no"]
        cmd += ["--config_file", REPO_DIR / accelerate_config] if accelerate_config else ["--multi_gpu"]
        cmd += ["--main_process_port", free_port(), *script]
    return run(cmd, subprocess_env(**env), check=check)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_records(record_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(record_dir).glob("rank*.json"))]


def weights(folder: Path) -> dict:
    return load_file(str(Path(folder) / "model.safetensors"))


def logged_losses(folder: Path) -> list[float]:
    state = json.loads((Path(folder) / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def assert_weights_close(actual: dict, expected: dict, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Same tensors; a DeepSpeed save also writes the tied lm_head.weight, which must then equal the embedding."""
    import torch

    actual, expected = _untie(actual), _untie(expected)
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name].float(), tensor.float(), rtol=rtol, atol=atol, msg=name)


def _untie(state: dict) -> dict:
    import torch

    state = dict(state)
    if "lm_head.weight" in state and "model.embed_tokens.weight" in state:
        torch.testing.assert_close(state.pop("lm_head.weight"), state["model.embed_tokens.weight"], rtol=0, atol=0)
    return state
