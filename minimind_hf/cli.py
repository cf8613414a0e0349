"""`minimind-hf` console script.

minimind-hf chat MODEL_DIR [--prompt TEXT] [--system TEXT] ...     # streaming chat (minimind_hf.chat)
minimind-hf inspect CONFIG_OR_DATA [...]                            # what the SFT data supervises (minimind_hf.inspector)
minimind-hf merge ADAPTER_DIR OUT_DIR                               # LoRA adapter + base -> one full model
minimind-hf convert ...                                             # MiniMind .pth <-> HF (minimind_hf.convert)

`minimind-hf COMMAND --help` describes each. Exit status: 0 done, 1 an error to fix (the message says what),
2 bad usage, 130 interrupted.
"""

import difflib
import importlib
import sys

from .errors import user_errors

# subcommand -> (module, function, arguments put in front of the user's, keyword arguments)
COMMANDS = {
    "chat": ("minimind_hf.chat", "main", [], {}),
    "inspect": ("minimind_hf.inspector", "main", ["inspect"], {"prog": "minimind-hf"}),
    "merge": ("minimind_hf.convert", "merge_main", [], {}),
    "convert": ("minimind_hf.convert", "main", [], {}),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        sys.exit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        print(f"minimind-hf: unknown command {argv[0]!r}; {hint}commands: {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    module_name, function, prefix, kwargs = COMMANDS[argv[0]]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        sys.exit(f"minimind-hf {argv[0]}: {module_name} is not available in this installation")
    command = getattr(module, function, None)
    if command is None:
        sys.exit(f"minimind-hf {argv[0]}: {module_name} has no {function}()")
    with user_errors(f"minimind-hf {argv[0]}"):
        status = command([*prefix, *argv[1:]], **kwargs)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
