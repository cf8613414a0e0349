"""Batching tokenized SFT samples (``input_ids`` + ``labels`` from `minimind_hf.data`).

* padded (default): right-padded to the longest sample (optionally to a multiple of ``pad_to_multiple_of``); labels
  are -100 on padding. Samples without ``labels`` (pretraining text) train on every token. There is no
  ``attention_mask``, as in MiniMind's loop: in a causal model a real token attends only to earlier positions, so
  padding on the right changes neither its logits nor the loss, and without a mask SDPA runs its causal kernel (flash
  on GPU) instead of a masked one. The mask is kept only when the pad id is the eos id (a tokenizer without a pad
  token), so that real eos tokens stay distinguishable from padding for token counts.
* packed (``packing=True``): padding-free. The batch's samples are concatenated into one row whose ``position_ids``
  restart at 0 for every sample, and there is NO ``attention_mask``: transformers' mask utilities then detect the
  sample boundaries from the position_ids (sdpa / eager), and flash-attention takes the varlen path. The first label
  of every sample is -100, so no sample is predicted from the tail of the previous one. Models must run with
  ``use_cache=False`` (Trainer's default for training); with a cache, packed boundaries are not detected.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DataCollatorWithFlattening

from .constants import IGNORE_INDEX


def build_collator(tokenizer, packing: bool = False, pad_to_multiple_of: int | None = None):
    """Collator for `transformers.Trainer`; see the module docstring for the two batch layouts."""
    pad_token_id = _pad_id(tokenizer)
    if packing:
        return PackingCollator(pad_token_id=pad_token_id, pad_to_multiple_of=pad_to_multiple_of)
    return PaddingCollator(
        pad_token_id=pad_token_id,
        pad_to_multiple_of=pad_to_multiple_of,
        return_attention_mask=pad_token_id == tokenizer.eos_token_id,
    )


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token to pad with")
    return pad


def _round_up(length: int, multiple: int | None) -> int:
    return length if not multiple else -(-length // multiple) * multiple


@dataclass
class PaddingCollator:
    """Right padding to the batch's longest sample. Kept independent of ``tokenizer.padding_side``, which inference
    code often sets to "left"; training on right padding keeps positions identical to the unpadded sample."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    return_attention_mask: bool = False

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = _round_up(max(len(f["input_ids"]) for f in features), self.pad_to_multiple_of)
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        for row, feature in enumerate(features):
            n = len(feature["input_ids"])
            input_ids[row, :n] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.as_tensor(feature.get("labels", feature["input_ids"]), dtype=torch.long)
        batch = {"input_ids": input_ids, "labels": labels}
        if self.return_attention_mask:
            lengths = torch.tensor([len(f["input_ids"]) for f in features])
            batch["attention_mask"] = (torch.arange(width)[None] < lengths[:, None]).long()
        return batch


class PackingCollator(DataCollatorWithFlattening):
    """transformers' flattening collator (position_ids restart per sample, first label of each sample -100), plus
    optional padding of the packed row to a multiple: the pad tokens form one more sample, with labels -100."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        super().__init__(return_position_ids=True, separator_id=IGNORE_INDEX)
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features, return_tensors=None, separator_id=None):
        features = [{"input_ids": list(f["input_ids"]), "labels": list(f["labels"])} for f in features]
        total = sum(len(f["input_ids"]) for f in features)
        padding = _round_up(total, self.pad_to_multiple_of) - total
        if padding:
            features.append({"input_ids": [self.pad_token_id] * padding, "labels": [IGNORE_INDEX] * padding})
        return super().__call__(features, return_tensors, separator_id)
