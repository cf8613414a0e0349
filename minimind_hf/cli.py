"""`minimind-hf` console script.

minimind-hf chat MODEL_DIR [--prompt TEXT] [--system TEXT] ...     # streaming chat (minimind_hf.chat)
minimind-hf inspect CONFIG_OR_DATA [...]                            # what the SFT data supervises (minimind_hf.data)
minimind-hf merge ADAPTER_DIR OUT_DIR                               # LoRA adapter + base -> one full model
minimind-hf convert ...                                             # MiniMind .pth <-> HF (minimind_hf.convert)
"""

import importlib
import sys

# subcommand -> (module, function, arguments put in front of the user's)
COMMANDS = {
    "chat": ("minimind_hf.chat", "main", []),
    "inspect": ("minimind_hf.data", "main", ["inspect"]),
    "merge": ("minimind_hf.convert", "main", ["--to", "hf"]),  # an adapter folder as INPUT is merged
    "convert": ("minimind_hf.convert", "main", []),
}


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
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
