"""Baseline: MiniMind's per-item SFT dataset, re-implemented from its description (the seed posts).

Every ``__getitem__`` renders the conversation with ``apply_chat_template``, optionally adds a random system prompt
and drops the empty think block (minimind-3's pre/post-processing, driven by the global ``random``), tokenizes the
whole text, truncates to ``max_length``, pads to ``max_length``, and scans the token ids for
``<|im_start|>assistant\\n`` ... ``<|im_end|>\\n`` to build the labels. This work is repeated every epoch.
"""

from __future__ import annotations

import json
import random

import torch
from datasets import load_dataset
from torch.utils.data import Dataset

SYSTEM_PROMPTS = (
    "你是一个知识丰富的AI，尽力为用户提供准确的信息。",
    "你是minimind，一个小巧但有用的语言模型。",
    "你是一个专业的AI助手，请提供有价值的回答。",
    "你是minimind，请尽力帮助用户解决问题。",
    "你是一个可靠的AI，请给出准确的回答。",
    "You are a helpful AI assistant.",
    "You are minimind, a lightweight intelligent assistant.",
    "You are a friendly chatbot. Please answer the user's questions carefully.",
    "You are a knowledgeable AI. Try your best to provide accurate information.",
    "You are minimind, a small but useful language model.",
)
EMPTY_THINK = "<think>\n\n</think>\n\n"


class NativeSFTDataset(Dataset):
    def __init__(
        self, jsonl_path, tokenizer, max_length=1024, add_system_ratio=0.2, empty_think_ratio=0.2, cache_dir=None
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.add_system_ratio = add_system_ratio
        self.empty_think_ratio = empty_think_ratio
        self.samples = load_dataset("json", data_files=jsonl_path, split="train", cache_dir=cache_dir)
        # The token ids that open and close a supervised assistant turn.
        self.open_ids = tokenizer(f"{tokenizer.bos_token}assistant\n", add_special_tokens=False).input_ids
        self.close_ids = tokenizer(f"{tokenizer.eos_token}\n", add_special_tokens=False).input_ids

    def __len__(self):
        return len(self.samples)

    def render(self, conversations) -> str:
        messages = [dict(turn) for turn in conversations]
        tools = None
        for message in messages:
            if message.get("role") == "system" and (message.get("tools") or message.get("functions")):
                tools = message.get("tools") or message.get("functions")
                tools = json.loads(tools) if isinstance(tools, str) else tools
            if isinstance(message.get("tool_calls"), str):
                message["tool_calls"] = json.loads(message["tool_calls"])
        if not tools and messages[0].get("role") != "system" and random.random() < self.add_system_ratio:
            messages = [{"role": "system", "content": random.choice(SYSTEM_PROMPTS)}] + messages
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False, tools=tools)
        if EMPTY_THINK in text and random.random() > self.empty_think_ratio:
            text = text.replace(EMPTY_THINK, "")
        return text

    def scan_labels(self, input_ids: list[int]) -> list[int]:
        labels = [-100] * len(input_ids)
        n_open, n_close = len(self.open_ids), len(self.close_ids)
        i = 0
        while i < len(input_ids):
            if input_ids[i : i + n_open] != self.open_ids:
                i += 1
                continue
            start = end = i + n_open
            while end < len(input_ids) and input_ids[end : end + n_close] != self.close_ids:
                end += 1
            for j in range(start, min(end + n_close, self.max_length)):
                labels[j] = input_ids[j]
            i = end + n_close if end < len(input_ids) else len(input_ids)
        return labels

    def __getitem__(self, index):
        text = self.render(self.samples[index]["conversations"])
        input_ids = self.tokenizer(text).input_ids[: self.max_length]
        input_ids += [self.tokenizer.pad_token_id] * (self.max_length - len(input_ids))
        labels = self.scan_labels(input_ids)
        return torch.tensor(input_ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)
