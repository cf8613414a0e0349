"""Pretraining: {"text"} records -> bos...eos documents -> packed rows (data), and recipes/pretrain.py end to end."""

import json
import math
import shutil
import sys
from itertools import chain
from pathlib import Path

import pytest
import torch
from sft_testing import RECIPE as SFT_RECIPE
from sft_testing import REPO_DIR, logged_losses, make_sft_data, run, subprocess_env, weights, write_config
from transformers import AutoModelForCausalLM, AutoTokenizer

import minimind_hf.pretrain_data as pretrain_data
from minimind_hf import BUNDLED_TOKENIZER_DIR, DEMO_DATA_DIR
from minimind_hf.arguments import PRETRAIN_ARGUMENTS, parse_args
from minimind_hf.collator import build_collator
from minimind_hf.data import load_sft_dataset
from minimind_hf.pretrain_data import DataError, load_pretrain_dataset, pack_documents

RECIPE = REPO_DIR / "recipes" / "pretrain.py"
RANDOM_INIT_LOSS = math.log(6400)  # cross-entropy of a freshly initialised model over the 6400-token vocabulary
# make, pointed at the running interpreter's venv and told its install stamp is current, so it never reinstalls.
VENV = Path(sys.executable).parents[1]
MAKE = ["make", "-o", str(VENV / ".installed-minimind-hf"), f"VENV={VENV}"]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
TEXTS = [
    "我是 MiniMind，一个小型语言模型。",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up.",
    "短",
    "春天来了，河边的柳树长出了嫩绿的新芽。孩子们在草地上放风筝，笑声传得很远。",
    "1 + 1 = 2",
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER_DIR)


def _write_jsonl(path: Path, records) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _documents(tokenizer, texts, max_length=None):
    """MiniMind's PretrainDataset, without its padding: bos + tokens (cut to max_length - 2) + eos."""
    kwargs = {"max_length": max_length - 2, "truncation": True} if max_length else {}
    ids = [tokenizer(text, add_special_tokens=False, **kwargs).input_ids for text in texts]
    return [[tokenizer.bos_token_id, *tokens, tokenizer.eos_token_id] for tokens in ids]


def test_pack_documents_cuts_the_stream_into_full_rows():
    rows = pack_documents([[1, 5, 2], [1, 7, 8, 9, 2], [1, 2]], max_length=4)
    assert [list(row) for row in rows] == [[1, 5, 2, 1], [7, 8, 9, 2], [1, 2]]
    assert [list(row) for row in pack_documents([[1, 5, 2]], max_length=3)] == [[1, 5, 2]]


def test_documents_are_wrapped_in_bos_eos_and_packed_to_max_length(tokenizer, tmp_path):
    path = _write_jsonl(tmp_path / "text.jsonl", [{"text": text} for text in TEXTS])
    dataset = load_pretrain_dataset(str(path), tokenizer, max_length=16, cache_dir=str(tmp_path / "cache"))
    rows = dataset["input_ids"]
    assert dataset.column_names == ["input_ids"]
    assert all(len(row) == 16 for row in rows[:-1]) and 0 < len(rows[-1]) <= 16
    # Every document, in file order, as bos + its tokens + eos: nothing dropped, truncated or padded.
    expected = list(chain.from_iterable(_documents(tokenizer, TEXTS)))
    assert list(chain.from_iterable(rows)) == expected
    assert len(expected) > 3 * 16 and tokenizer.pad_token_id not in expected

    batch = build_collator(tokenizer)([dataset[i] for i in range(len(dataset))])
    assert batch["labels"][:-1].tolist() == batch["input_ids"][:-1].tolist()  # every token of a full row is trained
    last = len(rows[-1])
    assert batch["labels"][-1, :last].tolist() == rows[-1] and (batch["labels"][-1, last:] == -100).all()
    assert (batch["input_ids"][-1, last:] == tokenizer.pad_token_id).all() and "attention_mask" not in batch


def test_map_batches_and_worker_processes_keep_every_document_in_order(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain_data, "MAP_BATCH_SIZE", 2)  # each map batch packs alone; its last row may be short
    path = _write_jsonl(tmp_path / "text.jsonl", [{"text": text} for text in TEXTS * 3])
    dataset = load_pretrain_dataset(str(path), tokenizer, max_length=16, num_proc=2, cache_dir=str(tmp_path))
    assert list(chain.from_iterable(dataset["input_ids"])) == list(
        chain.from_iterable(_documents(tokenizer, TEXTS * 3))
    )
    assert all(0 < len(row) <= 16 for row in dataset["input_ids"])


def test_without_packing_each_row_is_one_document_as_in_minimind(tokenizer, tmp_path):
    path = _write_jsonl(tmp_path / "text.jsonl", [{"text": text} for text in TEXTS])
    dataset = load_pretrain_dataset(str(path), tokenizer, max_length=12, packing=False, cache_dir=str(tmp_path))
    assert dataset["input_ids"] == _documents(tokenizer, TEXTS, max_length=12)
    assert max(len(row) for row in dataset["input_ids"]) == 12  # the long texts were cut, bos and eos kept


def test_bad_records_name_file_and_line(tokenizer, tmp_path):
    cache = str(tmp_path / "cache")
    for bad, message in [
        ('{"text": "ok"', r"malformed JSON"),
        ({"content": "no text key"}, r"expected a \{\"text\": string\} record, got keys \['content'\]"),
        ({"text": ["not", "a", "string"]}, r"expected a \{\"text\": string\} record, got 'text' of type list"),
        ({"text": "  "}, r"empty text"),
    ]:
        path = _write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, {"text": "also fine"}, bad, {"text": "ok"}])
        with pytest.raises(DataError, match=rf"bad\.jsonl:3: {message}"):
            load_pretrain_dataset(str(path), tokenizer, max_length=8, cache_dir=cache)
    dataset = load_pretrain_dataset(str(path), tokenizer, max_length=64, skip_invalid=True, cache_dir=cache)
    assert list(chain.from_iterable(dataset["input_ids"])) == list(
        chain.from_iterable(_documents(tokenizer, ["fine", "also fine", "ok"]))
    )
    with pytest.raises(DataError, match="no such file"):
        load_pretrain_dataset(str(tmp_path / "missing.jsonl"), tokenizer, cache_dir=cache)


def test_rerun_hits_the_cache_and_changes_retokenize(tokenizer, tmp_path, monkeypatch):
    calls = []
    real = pretrain_data._tokenize_and_pack
    monkeypatch.setattr(pretrain_data, "_tokenize_and_pack", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = _write_jsonl(tmp_path / "text.jsonl", [{"text": text} for text in TEXTS])

    def load(**options):
        before = len(calls)
        dataset = load_pretrain_dataset(str(path), tokenizer, cache_dir=str(tmp_path / "cache"), **options)
        return dataset, len(calls) > before

    first, tokenized = load(max_length=16)
    assert tokenized
    again, tokenized = load(max_length=16)
    assert not tokenized and again.cache_files == first.cache_files and again["input_ids"] == first["input_ids"]
    for change in ({"max_length": 32}, {"max_length": 16, "packing": False}):
        assert load(**change)[1], change
    _write_jsonl(path, [{"text": text} for text in TEXTS[:2]])
    edited, tokenized = load(max_length=16)
    assert tokenized and len(list(chain.from_iterable(edited["input_ids"]))) < len(
        list(chain.from_iterable(first["input_ids"]))
    )


def test_same_file_read_as_text_and_as_conversations(tokenizer, tmp_path):
    """The raw-read cache is keyed by the reader too: one file feeds both pipelines without mixing them up."""
    record = {"text": "预训练的文本。", "conversations": [{"role": "user", "content": "你好"},
                                                          {"role": "assistant", "content": "你好！"}]}  # fmt: skip
    path = _write_jsonl(tmp_path / "both.jsonl", [record])
    cache = str(tmp_path / "cache")
    sft = load_sft_dataset(str(path), tokenizer, system_prompt_ratio=0.0, cache_dir=cache)
    text = load_pretrain_dataset(str(path), tokenizer, max_length=64, cache_dir=cache)
    assert text["input_ids"] == _documents(tokenizer, [record["text"]])
    assert "你好！" in tokenizer.decode(sft[0]["input_ids"]) and sft[0]["input_ids"] != text[0]["input_ids"]


def test_pretrain_arguments_follow_minimind(tmp_path):
    _, data_args, args = parse_args([str(REPO_DIR / "configs/pretrain.yaml")], PRETRAIN_ARGUMENTS)
    assert (args.learning_rate, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (5e-4, 32, 8)
    assert (args.num_train_epochs, args.max_length, args.packing, args.bf16) == (1, 512, True, True)
    assert data_args.dataset_name.endswith("pretrain_hq.jsonl")
    # A minimal YAML gets the same defaults; SFT-only keys are unknown here.
    minimal = tmp_path / "run.yaml"
    minimal.write_text("model_name_or_path: minimind-tiny\ndataset_name: text.jsonl\n")
    _, _, defaults = parse_args([str(minimal)], PRETRAIN_ARGUMENTS)
    assert (defaults.learning_rate, defaults.per_device_train_batch_size, defaults.max_length) == (5e-4, 32, 512)
    assert defaults.lr_scheduler_kwargs == {"min_lr_rate": 0.1} and defaults.packing
    with pytest.raises(ValueError, match="Unknown command-line argument.*--train_on"):
        parse_args([str(minimal), "--train_on", "all"], PRETRAIN_ARGUMENTS)
    tiny = parse_args([str(REPO_DIR / "configs/pretrain_tiny_cpu.yaml")], PRETRAIN_ARGUMENTS)
    assert tiny[0].is_preset and Path(REPO_DIR, tiny[1].dataset_name) == DEMO_DATA_DIR / "pretrain.jsonl"


def test_recipe_builds_a_base_model_from_scratch(tmp_path):
    """recipes/pretrain.py on a slice of the bundled text: the tiny preset from random init, 6 steps, eval at the end."""
    texts = (DEMO_DATA_DIR / "pretrain.jsonl").read_text(encoding="utf-8").splitlines()[:80]
    data = _write_jsonl(tmp_path / "text.jsonl", texts)
    out = tmp_path / "out"
    config = write_config(tmp_path / "pretrain.yaml", model_name_or_path="minimind-tiny", dataset_name=data,
                          max_length=64, eval_split_ratio=0.1, gradient_accumulation_steps=1, output_dir=out)  # fmt: skip
    result = run([sys.executable, RECIPE, config, "--max_steps", "6", "--learning_rate", "3e-3"], subprocess_env())
    assert "Pretraining data" in result.stderr and "rows (" in result.stderr

    config_json = json.loads((out / "config.json").read_text())
    assert config_json["use_cache"] is True and config_json["auto_map"]["AutoModelForCausalLM"]
    losses = logged_losses(out)
    assert len(losses) == 6 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0] - 0.5  # from ~ln(6400) = 8.8 at random init
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    # Packed rows are all-real tokens: every token but each row's first is a prediction target.
    first_log = next(e for e in history if "loss" in e)
    assert first_log["supervised_tokens_per_second"] == pytest.approx(first_log["tokens_per_second"] * 63 / 64, 0.01)
    eval_results = json.loads((out / "eval_results.json").read_text())
    assert eval_results["eval_loss"] < losses[0] - 0.3  # held-out text too, not only the rows trained on

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(tokenizer.bos_token + "我是", return_tensors="pt", add_special_tokens=False)
    generated = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4
    card = (out / "README.md").read_text()
    for expected in ("- pretrain", "pretrained (a base model", "minimind-tiny preset, random init",
                     "packed into 64-token rows", "recipes/pretrain.py"):  # fmt: skip
        assert expected in card, expected

    # The output folder is a base for recipes/sft.py. At learning rate 0 its weights come out exactly as they went in,
    # so any difference means SFT started from something else (a random init, a lost tie, a cast).
    sft_out = _sft(tmp_path, out, "--max_steps", "2", "--learning_rate", "0")
    assert len(logged_losses(sft_out)) == 2 and all(math.isfinite(loss) for loss in logged_losses(sft_out))
    pretrained, fine_tuned = weights(out), weights(sft_out)
    assert fine_tuned.keys() == pretrained.keys()
    assert all(torch.equal(fine_tuned[key], pretrained[key]) for key in pretrained)


def _sft(tmp_path: Path, base, *overrides) -> Path:
    """recipes/sft.py on 24 bundled conversations from `base` (a model folder or a preset name)."""
    name = Path(str(base)).name
    data = make_sft_data(tmp_path / "sft.jsonl", 24)
    out = tmp_path / f"sft-from-{name}"
    config = write_config(tmp_path / f"sft-{name}.yaml", model_name_or_path=base, dataset_name=data, output_dir=out)
    run([sys.executable, SFT_RECIPE, config, *overrides], subprocess_env())
    return out


@pytest.mark.slow
@needs_make
def test_make_pretrain_then_sft_starts_from_the_pretrained_model(tmp_path):
    """`make pretrain` exactly as shipped (configs/pretrain_tiny_cpu.yaml, only output_dir moved), then its output as
    recipes/sft.py's base, against the same SFT run from random init."""
    out = tmp_path / "minimind-tiny-pretrain"
    run([*MAKE, "pretrain", f"ARGS=--output_dir {out}"], subprocess_env())
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["epoch"] == 30 and (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert json.loads((out / "eval_results.json").read_text())["eval_loss"] < RANDOM_INIT_LOSS - 3

    pretrained = logged_losses(_sft(tmp_path, out, "--max_steps", "3"))
    scratch = logged_losses(_sft(tmp_path, "minimind-tiny", "--max_steps", "3"))
    assert scratch[0] == pytest.approx(RANDOM_INIT_LOSS, abs=0.2)
    # Chat markup is new to the base model, so its first loss is only somewhat lower; it then learns far faster.
    # Measured with the bundled tokenizer whose newlines are tokens of their own (#12): 0.34 lower at step 1, 3.2 lower
    # at step 3 (with the old newline merges: 0.80 and 2.35).
    assert pretrained[0] < scratch[0] - 0.25
    assert pretrained[-1] < scratch[-1] - 2.5


@needs_make
def test_make_pretrain_and_test_slow_targets():
    dry_run = run([*MAKE, "-n", "pretrain", "ARGS=--max_steps 1"], subprocess_env()).stdout
    assert "accelerate launch" in dry_run
    assert "recipes/pretrain.py configs/pretrain_tiny_cpu.yaml --max_steps 1" in dry_run
    # No test selected is pytest's exit code 5: `make test-slow` must still succeed, and real failures still fail.
    nothing = run([*MAKE, "test-slow", "PYTEST_ARGS=--ignore-glob=*/test_*.py"], subprocess_env(), check=False)
    assert nothing.returncode == 0 and "no tests ran" in nothing.stdout, nothing.stdout + nothing.stderr
    broken = run([*MAKE, "test-slow", "PYTEST_ARGS=--no-such-pytest-option"], subprocess_env(), check=False)
    assert broken.returncode != 0 and "unrecognized arguments" in broken.stderr
