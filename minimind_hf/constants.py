"""Names every layer of the package shares: where the shipped files live, the ignored label, a tokenizer's files.

Imports nothing of the package, so any module can use it without pulling in another layer.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_TOKENIZER_DIR = PACKAGE_DIR / "tokenizer"
DEMO_DATA_DIR = PACKAGE_DIR / "demo_data"

# The label of every position the loss skips (transformers' and PyTorch's cross-entropy default).
IGNORE_INDEX = -100

# A folder holding either file has a tokenizer of its own.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
