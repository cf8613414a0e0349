"""Write the bundled demo data into minimind_hf/demo_data/: sft.jsonl, pretrain.jsonl and prompts.jsonl.

    python recipes/make_demo_data.py

What the data says is hand-written in recipes/demo_data/content/*.yaml (capitals, words, facts, writing, code, tool
specs, prose, ...); the modules next to it turn those tables into records. Answers are computed (arithmetic, unit
conversion, tool results), looked up in the tables or hand-written, so the data is correct by construction. A fixed
seed makes the output byte-for-byte reproducible: edit a YAML file, rerun, commit the three files with it.

SFT records use MiniMind-3's layout: {"conversations": [{"role", "content", ...}]}. Tool definitions ride on the
system message as a JSON string under "tools"; an assistant's calls are a JSON string under "tool_calls" (strings keep
the Arrow schema uniform when `datasets` loads the file); reasoning sits under "reasoning_content".
"""

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

from demo_data.content import load
from demo_data.multi_turn import follow_up_conversations, mixed_conversations
from demo_data.pretraining import pretraining_lines
from demo_data.reasoning import reasoning_items
from demo_data.single_turn import (
    IDENTITY,
    arithmetic_items,
    capital_items,
    hand_written_items,
    identity_items,
    translation_items,
    unit_items,
)
from demo_data.tools import tool_conversations

OUT_DIR = Path(__file__).resolve().parents[1] / "minimind_hf" / "demo_data"
SEED = 1234


def build_sft(rng):
    singles = identity_items() + capital_items() + arithmetic_items(rng) + unit_items(rng)
    singles += translation_items() + hand_written_items() + reasoning_items(rng)
    convs = singles + identity_items() + follow_up_conversations(rng) + mixed_conversations(rng, singles, 10, 6)
    for conv in convs:  # some conversations open with a system prompt
        if rng.random() < 0.15:
            system = rng.choice(IDENTITY["system_prompts"][conv["lang"]])
            conv["messages"] = [{"role": "system", "content": system}] + conv["messages"]
    convs += tool_conversations(rng)
    rng.shuffle(convs)
    return convs


def build_prompts(convs, prompts):
    """Seen prompts take their reference from the one SFT conversation that asks exactly that and nothing else;
    held-out prompts must not be asked anywhere in the SFT set."""
    answers = defaultdict(set)
    for conv in convs:
        if len(conv["messages"]) == 2:
            question, answer = (m["content"] for m in conv["messages"])
            answers[question].add(answer)
    asked = {m["content"] for c in convs for m in c["messages"] if m["role"] == "user"}
    rows = []
    for question in prompts["seen"]:
        if len(answers[question]) != 1:
            raise ValueError(
                f"prompts.yaml: seen prompt {question!r} has {len(answers[question])} single-turn answers"
            )
        rows.append({"prompt": question, "reference": answers[question].pop(), "seen": True})
    for item in prompts["held_out"]:
        if item["prompt"] in asked:
            raise ValueError(f"prompts.yaml: held-out prompt {item['prompt']!r} is asked in the SFT set")
        rows.append({"prompt": item["prompt"], "reference": item["reference"], "seen": False})
    return rows


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(out_dir=OUT_DIR):
    rng = random.Random(SEED)
    convs = build_sft(rng)
    pretrain = [{"text": line} for line in pretraining_lines(rng)]
    prompts = build_prompts(convs, load("prompts"))
    if any(len(row["text"]) >= 512 for row in pretrain):
        raise ValueError("a pretraining line is 512 characters or longer: split it")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "sft.jsonl", [{"conversations": c["messages"]} for c in convs])
    write_jsonl(out_dir / "pretrain.jsonl", pretrain)
    write_jsonl(out_dir / "prompts.jsonl", prompts)
    print(f"wrote {len(convs)} conversations, {len(pretrain)} pretraining lines, {len(prompts)} prompts to {out_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", type=Path, default=OUT_DIR)
    main(parser.parse_args().out_dir)
