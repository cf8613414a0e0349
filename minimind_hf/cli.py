"""`minimind-hf` console script.

minimind-hf chat MODEL_DIR [--prompt TEXT] [--system TEXT] ...     # streaming chat (minimind_hf.chat)
minimind-hf inspect CONFIG_OR_DATA [...]                            # what the SFT data supervises (minimind_hf.data)
minimind-hf merge ADAPTER_DIR OUT_DIR                               # LoRA adapter + base -> one full model
minimind-hf convert ...                                             # MiniMind .pth <-> HF (minimind_hf.convert)
"""

import argparse
import importlib
import sys

# subcommand -> (module, function, arguments put in front of the user's)
COMMANDS = {
    "chat": ("minimind_hf.chat", "main", []),
    "inspect": ("minimind_hf.data", "main", ["inspect"]),
    "merge": ("minimind_hf.cli", "merge_main", []),
    "convert": ("minimind_hf.convert", "main", []),
}


def merge_adapter(adapter_dir: str, output_dir: str) -> str:
    """Fold a LoRA adapter into its base model and save a plain model that AutoModelForCausalLM loads."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    import minimind_hf  # noqa: F401  (the base model's type must be registered to resolve it)

    from .chat import configure_generation

    model = AutoPeftModelForCausalLM.from_pretrained(adapter_dir, dtype=torch.float32)
    merged = model.merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    merged.config.use_cache = True
    configure_generation(merged, tokenizer)
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def merge_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="minimind-hf merge", description=merge_adapter.__doc__)
    parser.add_argument("adapter_dir", help="Folder with adapter_config.json (a LoRA output of recipes/sft.py)")
    parser.add_argument("output_dir", help="Where to write the merged model")
    args = parser.parse_args(argv)
    print(f"Merged model written to {merge_adapter(args.adapter_dir, args.output_dir)}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    module_name, function, prefix = COMMANDS[argv[0]]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        sys.exit(f"minimind-hf {argv[0]}: {module_name} is not available in this installation")
    command = getattr(module, function, None)
    if command is None:
        sys.exit(f"minimind-hf {argv[0]}: {module_name} has no {function}()")
    status = command([*prefix, *argv[1:]])
    if isinstance(status, int):
        sys.exit(status)


if __name__ == "__main__":
    main()
