"""`minimind-hf inspect`: what SFT preprocessing makes of a recipe's data, before a long run.

    minimind-hf inspect configs/sft.yaml --n 3        # samples with the supervised tokens marked, then statistics
    minimind-hf inspect data.jsonl --tokens           # every token: position, id, supervised

A YAML is read by the recipe's own `parse_args`, so samples and statistics are exactly what training gets, and the
tokenized cache it fills is the one the training run reuses.
"""

import argparse
import logging
import sys

from transformers import AutoTokenizer

from .arguments import parse_args
from .constants import BUNDLED_TOKENIZER_DIR, IGNORE_INDEX
from .data import load_sft_dataset
from .errors import user_errors
from .locations import check_pretrained
from .text_safety import escape_unsafe

# Alternating shades show where tokens start and end: green backgrounds for supervised tokens, greys otherwise.
_SUPERVISED_COLOURS = ("\033[30;42m", "\033[30;102m")
_CONTEXT_COLOURS = ("\033[37m", "\033[90m")
_RESET = "\033[0m"


def format_sample(input_ids, labels, tokenizer, colour: bool) -> str:
    """The sample's text; supervised tokens highlighted token by token (colour) or wrapped in ``[[ ]]`` (plain)."""
    groups = []  # [token ids, supervised]: one token each in colour (several when a token is a partial character)
    for token, label in zip(input_ids, labels, strict=True):
        supervised = label != IGNORE_INDEX
        if groups and groups[-1][1] == supervised and (not colour or _partial(tokenizer, groups[-1][0])):
            groups[-1][0].append(token)
        else:
            groups.append([[token], supervised])
    out = []
    for i, (ids, supervised) in enumerate(groups):
        text = escape_unsafe(tokenizer.decode(ids, skip_special_tokens=False))  # no raw ESC/BEL to the terminal
        if colour:
            out.append((_SUPERVISED_COLOURS if supervised else _CONTEXT_COLOURS)[i % 2] + text + _RESET)
        else:
            out.append(f"[[{text}]]" if supervised else text)
    return "".join(out)


def format_tokens(input_ids, labels, tokenizer) -> str:
    """One line per token: position, id, supervised mark, and the token's text."""
    lines = []
    for position, (token, label) in enumerate(zip(input_ids, labels, strict=True)):
        mark = "*" if label != IGNORE_INDEX else " "
        lines.append(f"{position:5d} {token:6d} {mark} {tokenizer.decode([token], skip_special_tokens=False)!r}")
    return "\n".join(lines)


def _partial(tokenizer, ids) -> bool:
    return tokenizer.decode(ids, skip_special_tokens=False).endswith("\ufffd")


def main(argv=None, prog: str = "python -m minimind_hf.inspector") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Inspect SFT preprocessing.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print samples with their supervised tokens marked, then stats")
    inspect.add_argument("source", help="a data file / dir / glob / mixture, or a recipe YAML with dataset_name")
    inspect.add_argument("--n", type=int, default=3, help="samples to print")
    inspect.add_argument("--tokenizer", help="tokenizer path or hub id (default: the recipe's, else the bundled one)")
    inspect.add_argument(
        "--max-length", type=int, help="truncation (default: a YAML's as training uses it; none for files)"
    )
    inspect.add_argument("--colour", choices=("auto", "always", "never"), default="auto")
    inspect.add_argument("--tokens", action="store_true", help="also list every token: position, id, supervised (*)")
    inspect.add_argument("--cache-dir", help="datasets cache folder (default: datasets' own)")
    inspect.add_argument("--skip-invalid", action="store_true", help="skip (and count) malformed records, not fail")
    args = parser.parse_args(argv)

    source, options = args.source, {"max_length": args.max_length}
    tokenizer_path, revision = args.tokenizer or str(BUNDLED_TOKENIZER_DIR), None
    if args.source.endswith((".yaml", ".yml")):
        # The recipe's own parsing, so samples and statistics are what training gets (its defaults included).
        overrides = ["--max_length", str(args.max_length)] if args.max_length else []
        model_args, data_args, training_args = parse_args([args.source, *overrides])
        source, options = data_args.dataset_name, data_args.load_options(training_args)
        if not args.tokenizer:
            tokenizer_path, revision = model_args.tokenizer_name_or_path, model_args.model_revision
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_pretrained(tokenizer_path, revision, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, revision=revision)
    options["skip_invalid"] = options.get("skip_invalid", False) or args.skip_invalid
    dataset, stats = load_sft_dataset(source, tokenizer, cache_dir=args.cache_dir, return_stats=True, **options)
    colour = args.colour == "always" or (args.colour == "auto" and sys.stdout.isatty())
    legend = "supervised tokens highlighted" if colour else "supervised tokens inside [[ ]]"
    print(f"tokenizer {tokenizer_path}, max_length {options['max_length']}; {legend}\n")
    for index in range(min(args.n, len(dataset))):
        sample = dataset[index]
        supervised = sum(label != IGNORE_INDEX for label in sample["labels"])
        print(f"--- sample {index}: {sample['length']} tokens, {supervised} supervised")
        print(format_sample(sample["input_ids"], sample["labels"], tokenizer, colour))
        if args.tokens:
            print(format_tokens(sample["input_ids"], sample["labels"], tokenizer))
    print(f"\n{stats.summary()}")


if __name__ == "__main__":
    with user_errors("minimind-hf inspect"):
        main()
