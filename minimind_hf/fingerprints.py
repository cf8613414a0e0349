"""Cache keys for tokenized datasets: they follow the data, the tokenizer, the options and the code.

`datasets` reuses a cached map whenever its fingerprint matches, so a key that misses a change trains on stale rows.
Keys hash the *source* of the modules that produce the rows instead of a version constant someone must remember to
bump: any edit to those modules rebuilds the cache (a comment edit too, which costs one re-tokenization).
"""

import hashlib
import importlib
import inspect
import json
from functools import cache
from types import ModuleType


def hash_parts(*parts) -> str:
    """A short stable hash of JSON-able parts (anything else by its str)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of everything about a tokenizer that changes tokenization or rendering."""
    parts = (
        type(tokenizer).__name__,
        tokenizer.backend_tokenizer.to_str(),
        tokenizer.chat_template,
        tokenizer.special_tokens_map,
    )
    return hash_parts(*parts)


def code_fingerprint(*modules: ModuleType) -> str:
    """Hash of the source code of ``modules``: the code that turns records into rows."""
    return hash_parts(*(_module_source_hash(module.__name__) for module in modules))


@cache
def _module_source_hash(name: str) -> str:

    return hashlib.blake2b(inspect.getsource(importlib.import_module(name)).encode(), digest_size=16).hexdigest()
