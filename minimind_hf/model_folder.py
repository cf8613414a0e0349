"""Is a saved model folder whole? A final save that was killed or ran out of disk half-way leaves weights without a
tokenizer (Trainer writes the weights first), or a weights file cut short; loading it then fails with errors about
sentencepiece / tiktoken or safetensors headers that do not say the save is incomplete."""

import json
from pathlib import Path

from .errors import CheckpointError
from .integrity import safetensors_intact

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def model_folder_problem(path) -> str | None:
    """What is missing or cut short in the local model folder `path` (a full model, not an adapter), or None."""
    path = Path(path)
    if not path.is_dir() or (path / "adapter_config.json").is_file():
        return None  # a hub id, or a LoRA adapter (its base model is checked when loaded)
    if not (path / "config.json").is_file():
        return "config.json is missing"
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            return f"weight shards {', '.join(missing)} are missing"
    weights = sorted(path.glob("*.safetensors"))
    if not weights and not any(path.glob("pytorch_model*.bin")):
        return "it holds no weights file"
    broken = [w.name for w in weights if not safetensors_intact(w)]
    if broken:
        return f"{', '.join(broken)} is cut short"
    missing = [name for name in TOKENIZER_FILES if not (path / name).is_file()]
    if len(missing) == len(TOKENIZER_FILES):
        return f"the tokenizer files ({', '.join(TOKENIZER_FILES)}) are missing"
    return None


def check_model_folder(path) -> None:
    """Refuse a folder whose save never finished, saying so (CheckpointError)."""
    problem = model_folder_problem(path)
    if problem:
        raise CheckpointError(
            f"{path} is an incomplete save: {problem}. The process writing it was stopped or ran out of disk; save it "
            "again (run the recipe again, or resume from its last checkpoint and let it finish)"
        )
