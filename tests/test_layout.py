"""The package's layers: imports go one way, so a newcomer can read it bottom up and a checkpoint ships only the model.

The README's "What is inside" lists the same layers in the same order; keep the two together.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minimind_hf"
LAYERS = {
    "shared": ["constants", "errors", "hardware", "fingerprints", "generation", "integrity"],
    "model": ["configuration_minimind", "modeling_minimind", "packed_attention"],
    "data": ["text_safety", "formats", "sources", "masking", "data", "pretrain_data", "collator"],
    "models on disk": ["locations", "native_checkpoint", "model_folder", "portable", "export_gguf", "convert", "chat"],
    "training": [
        "checkpoints",
        "guards",
        "shutdown",
        "disk_space",
        "cpu_memory",
        "arguments",
        "callbacks",
        "model_card",
        "hub",
        "recipe_utils",
        "final_model",
    ],
    "command line": ["inspector", "cli"],
}
ORDER = [module for layer in LAYERS.values() for module in layer]


def _package_imports(module: str) -> set[str]:
    """Sibling modules `module` imports, at any depth of its code (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minimind_hf."):
            found.add(node.module.split(".")[1])
    return found & set(ORDER)


def test_every_module_has_a_layer():
    assert sorted(ORDER) == sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def test_imports_go_one_way():
    backwards = {
        module: sorted(dep for dep in _package_imports(module) if ORDER.index(dep) >= ORDER.index(module))
        for module in ORDER
    }
    assert {module: deps for module, deps in backwards.items() if deps} == {}


def test_model_files_import_only_each_other():
    """register_for_auto_class copies the model files next to a checkpoint: they must stand alone there."""
    assert _package_imports("configuration_minimind") == set()
    assert _package_imports("modeling_minimind") == {"configuration_minimind"}
