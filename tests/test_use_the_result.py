"""README "Use the result", run as written: the plain transformers snippet answers what `minimind-hf chat` answers
(the prompt boundary), and the no-package snippet loads model, tokenizer and a LoRA adapter without asking
"Do you wish to run the custom code?"."""

import re
import subprocess
import sys

import pytest
from sft_testing import REPO_DIR, make_base_model, subprocess_env
from transformers import AutoModelForCausalLM

from minimind_hf import MiniMindConfig


def readme_snippets() -> list[str]:
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Use the result") : readme.index("### Other runtimes")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def run_python(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(HF_HOME=tmp_path / "hf"),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    config = MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=128)  # fmt: skip
    return make_base_model(tmp_path_factory.mktemp("use") / "model", config)


def test_plain_transformers_snippet_answers_as_chat(model_dir, tmp_path):
    snippet = readme_snippets()[0].replace("outputs/minimind-tiny-sft", str(model_dir))
    prompt = re.search(r'"content": "(.*?)"', snippet).group(1)
    plain = run_python(snippet, tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    chat = subprocess.run([sys.executable, "-m", "minimind_hf.cli", "chat", str(model_dir), "--prompt", prompt,
                           "--greedy", "--dtype", "float32", "--max_new_tokens", "64", "--device", "cpu"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert plain.stdout.strip() and plain.stdout.strip() == chat.stdout.strip()


def test_no_package_snippet_loads_without_asking(model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    adapter = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                             LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj"]))  # fmt: skip
    adapter.save_pretrained(tmp_path / "lora")
    snippet = readme_snippets()[1].replace("you/minimind-sft", str(model_dir))
    snippet = snippet.replace("you/minimind-lora", str(tmp_path / "lora"))
    check = "\nimport sys\nassert 'minimind_hf' not in sys.modules\nprint(type(model).__name__, len(tokenizer))"
    done = run_python(snippet + check, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Do you wish to run the custom code" not in done.stdout + done.stderr
    assert done.stdout.split()[-2:] == ["MiniMindForCausalLM", "6400"]
