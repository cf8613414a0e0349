"""Cache keys follow the code: editing a module that produces rows rebuilds the cached dataset, with no version
constant to bump, while an unchanged rerun still reuses the cache."""

import importlib
import sys

from transformers import AutoTokenizer

from minimind_hf import BUNDLED_TOKENIZER_DIR, DEMO_DATA_DIR, fingerprints, masking
from minimind_hf.data import load_sft_dataset
from minimind_hf.fingerprints import code_fingerprint


def _module(tmp_path, monkeypatch, source: str):
    (tmp_path / "row_maker.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("row_maker", None)
    fingerprints._module_source_hash.cache_clear()
    return importlib.import_module("row_maker")


def test_code_fingerprint_changes_with_the_source(tmp_path, monkeypatch):
    before = code_fingerprint(_module(tmp_path, monkeypatch, "def rows(x):\n    return x\n"))
    again = code_fingerprint(_module(tmp_path, monkeypatch, "def rows(x):\n    return x\n"))
    edited = code_fingerprint(_module(tmp_path, monkeypatch, "def rows(x):\n    return x[:-1]\n"))
    assert before == again != edited


def test_editing_the_masking_code_rebuilds_the_tokenized_cache(tmp_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER_DIR)
    data, cache = str(DEMO_DATA_DIR / "sft.jsonl"), str(tmp_path / "cache")
    first = load_sft_dataset(data, tokenizer, max_length=64, cache_dir=cache)
    assert load_sft_dataset(data, tokenizer, max_length=64, cache_dir=cache).cache_files == first.cache_files

    real_source = fingerprints.inspect.getsource

    def edited_masking(module):  # what an edit to masking.py looks like to the fingerprint
        source = real_source(module)
        return source + "\n# edited\n" if module is masking else source

    monkeypatch.setattr(fingerprints.inspect, "getsource", edited_masking)
    fingerprints._module_source_hash.cache_clear()
    rebuilt = load_sft_dataset(data, tokenizer, max_length=64, cache_dir=cache)
    fingerprints._module_source_hash.cache_clear()
    assert rebuilt.cache_files != first.cache_files
    assert rebuilt["input_ids"] == first["input_ids"]
