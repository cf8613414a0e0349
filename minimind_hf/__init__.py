"""minimind-hf: MiniMind small LLMs as a registered transformers model, with an SFT stack on Trainer."""

import warnings

from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .configuration_minimind import MiniMindConfig
from .constants import BUNDLED_TOKENIZER_DIR, DEMO_DATA_DIR
from .modeling_minimind import MiniMindForCausalLM, MiniMindModel, MiniMindPreTrainedModel
from .packed_attention import PACKED_SDPA  # registers the attention "sdpa_packed" with transformers

# peft reads the deprecated `is_gradient_checkpointing` alias on every PeftModel it builds: noise the user can't act on.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

AutoConfig.register(MiniMindConfig.model_type, MiniMindConfig, exist_ok=True)
AutoModel.register(MiniMindConfig, MiniMindModel, exist_ok=True)
AutoModelForCausalLM.register(MiniMindConfig, MiniMindForCausalLM, exist_ok=True)
# save_pretrained then writes `auto_map` and copies configuration_/modeling_minimind.py next to the weights, so the
# folder loads with trust_remote_code=True where minimind_hf is not installed.
MiniMindConfig.register_for_auto_class()
MiniMindModel.register_for_auto_class("AutoModel")
MiniMindForCausalLM.register_for_auto_class("AutoModelForCausalLM")
# `LoraConfig()` without `target_modules` takes peft's per-model-type default: MiniMind's own LoRA targets, the square
# attention projections q_proj/o_proj (its `apply_lora` wraps the square Linear layers; k/v are narrower under GQA).
TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.setdefault(MiniMindConfig.model_type, ["q_proj", "o_proj"])

__all__ = [
    "BUNDLED_TOKENIZER_DIR",
    "DEMO_DATA_DIR",
    "PACKED_SDPA",
    "MiniMindConfig",
    "MiniMindForCausalLM",
    "MiniMindModel",
    "MiniMindPreTrainedModel",
]
