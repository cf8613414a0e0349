"""Train the bundled MiniMind tokenizer: byte-level BPE, vocab 6400, minimind-3's added tokens at minimind-3's ids.

    python recipes/train_tokenizer.py --output_dir minimind_hf/tokenizer

Trains on the bundled demo text (minimind_hf/demo_data/pretrain.jsonl, plus sft.jsonl rendered through the chat
template, so the chat markup gets merges of its own), attaches the template minimind_hf/tokenizer/chat_template.jinja
(the one copy of MiniMind's template in the repository) and saves a PreTrainedTokenizerFast. Runs in about a second; the same data always gives the same tokenizer.json.

Every newline stays a token of its own (`newline_alone`), so that a prompt ending in "\n" tokenizes the same alone as
inside a training sample: see that function for why.
"""

import argparse
import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = Path(__file__).resolve().parents[1]
VOCAB_SIZE = 6400
# ids 0-20: control tokens, "special" (skipped when decoding with skip_special_tokens=True).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>", "<tts_pad>",
    "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>",
]  # fmt: skip
NEWLINE = "\u010a"  # "\n" in the byte-level alphabet
# ids 21-35: plain added tokens; decoding with skip_special_tokens=True keeps them, so tool calls and reasoning show.
TEXT_TOKENS = [
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>",
    *(f"<|buffer{i}|>" for i in range(1, 10)),
]  # fmt: skip


def read_texts(data_dir: Path, chat_template: str) -> list[str]:
    """The pretraining lines, then every SFT conversation rendered exactly as the model will see it."""
    with open(data_dir / "pretrain.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    with open(data_dir / "sft.jsonl", encoding="utf-8") as f:
        for line in f:
            messages = json.loads(line)["conversations"]
            # MiniMind stores tool specs and tool calls as JSON strings; the template wants objects.
            tools = next((m["tools"] for m in messages if m["role"] == "system" and m.get("tools")), None)
            tools = json.loads(tools) if isinstance(tools, str) else tools
            messages = [
                {**m, "tool_calls": json.loads(m["tool_calls"])} if isinstance(m.get("tool_calls"), str) else m
                for m in messages
            ]
            texts += render_jinja_template([messages], tools=tools, chat_template=chat_template)[0]
    return texts


def train_bpe(texts: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = [AddedToken(token, normalized=False, special=True) for token in SPECIAL_TOKENS]

    def text_tokens():  # fresh objects each time: the trainer marks the ones it is handed as special
        return [AddedToken(token, normalized=False, special=False) for token in TEXT_TOKENS]

    # Registered before training so the rendered chat markup around them never feeds the merges.
    tokenizer.add_special_tokens(special)
    tokenizer.add_tokens(text_tokens())
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=special + text_tokens(),  # the trainer puts them first, at ids 0-35
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    # The trainer re-registers all of them as special; re-adding flips ids 21-35 back to plain text tokens.
    tokenizer.add_tokens(text_tokens())
    if tokenizer.get_vocab_size() != VOCAB_SIZE:
        raise ValueError(f"the corpus only supports {tokenizer.get_vocab_size()} tokens, {VOCAB_SIZE} are needed")
    return tokenizer


def newline_alone(tokenizer: Tokenizer) -> Tokenizer:
    r"""Drop the merges that build a token holding a newline and anything else ("\n\n", "\n  ", ...); ids stay.

    Why: every chat template prompt a runtime builds (`apply_chat_template(..., add_generation_prompt=True)`) ends in
    "\n" — "assistant\n", "<think>\n", "</think>\n\n" — and is tokenized alone, while training tokenizes it followed
    by the answer. The byte-level pre-tokenizer (GPT-2's regex, `\s+(?!\S)`) keeps trailing whitespace in one piece
    at the end of a text but splits it before a word, so a merge such as "\n\n" gives a prompt ending a token training
    never put there (the model then starts from an unseen context). Once no token holds a newline with other
    characters, a newline always ends a token and the two tokenizations agree up to the prompt's end. MiniMind's own
    tokenizers have no "\n\n" token, so their prompts already agree. The dropped tokens stay in the vocabulary
    (unused) so ids, and models trained before, keep their meaning.
    """
    spec = json.loads(tokenizer.to_str())
    spec["model"]["merges"] = [pair for pair in spec["model"]["merges"] if NEWLINE not in "".join(pair)]
    return Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))


def main(data_dir: Path, output_dir: Path, template_path: Path) -> PreTrainedTokenizerFast:
    # ---- train
    chat_template = template_path.read_text(encoding="utf-8")
    backend = newline_alone(train_bpe(read_texts(data_dir, chat_template)))

    # ---- wrap for transformers: ChatML ids, no automatic bos/eos, the project's chat template
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens=SPECIAL_TOKENS[3:],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        chat_template=chat_template,
    )

    # ---- save
    tokenizer.save_pretrained(output_dir)
    # transformers 5 records its backend class name; PreTrainedTokenizerFast (an alias it still maps) also loads in 4.x.
    config_path = Path(output_dir) / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"saved a {len(tokenizer)}-token tokenizer to {output_dir}")
    return tokenizer


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=ROOT / "minimind_hf" / "demo_data")
    parser.add_argument("--output_dir", type=Path, default=ROOT / "minimind_hf" / "tokenizer")
    parser.add_argument(
        "--chat_template", type=Path, default=ROOT / "minimind_hf" / "tokenizer" / "chat_template.jinja"
    )
    args = parser.parse_args()
    main(args.data_dir, args.output_dir, args.chat_template)
