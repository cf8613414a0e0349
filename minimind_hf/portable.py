"""What an exported folder writes so that every consumer reads it the same: transformers 5 and 4.57 (MiniMind's pin,
llama.cpp's converter, many serving stacks), vLLM.

transformers 5 writes rope settings only as `rope_parameters` and tokenizers as `TokenizersBackend` with a list of
`extra_special_tokens`. transformers 4 reads none of these: it silently falls back to rope_theta 10000 (wrong logits,
no error) and refuses the tokenizer class. The files below carry both spellings; transformers 5 reads its own and
ignores (or converts) the old ones.
"""

import json
from pathlib import Path

# A class both major versions know for a tokenizer.json-backed tokenizer (an alias of TokenizersBackend in 5).
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"


def _update_json(path: Path, update) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    update(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def add_legacy_rope_fields(config_file: Path) -> None:
    """Top-level `rope_theta` (and `rope_scaling` for YaRN), the layout transformers 4 reads."""

    def update(config: dict) -> None:
        rope = dict(config.get("rope_parameters") or {})
        if "rope_theta" not in rope:
            return
        config["rope_theta"] = rope.pop("rope_theta")
        rope_type = rope.get("rope_type", "default")
        if rope_type != "default":
            config["rope_scaling"] = {**rope, "type": rope_type}

    _update_json(config_file, update)


def save_portable_tokenizer(tokenizer, folder) -> None:
    """`tokenizer.save_pretrained(folder)` with a tokenizer_config.json that transformers 4 loads too."""
    tokenizer.save_pretrained(folder)

    def update(config: dict) -> None:
        config["tokenizer_class"] = PORTABLE_TOKENIZER_CLASS
        extra = config.pop("extra_special_tokens", None)
        if isinstance(extra, list):  # transformers 4 wants a name -> token dict here; its list field is this one
            config["additional_special_tokens"] = extra
        elif extra:
            config["extra_special_tokens"] = extra

    _update_json(Path(folder) / "tokenizer_config.json", update)
