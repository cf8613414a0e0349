"""The hand-written tables in content/: one YAML file per subject, zh and en side by side."""

from pathlib import Path

import yaml

CONTENT_DIR = Path(__file__).resolve().parent / "content"


def load(name):
    with open(CONTENT_DIR / f"{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)
