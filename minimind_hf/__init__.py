"""minimind-hf: MiniMind small LLMs as a registered transformers model, with an SFT stack on Trainer."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .configuration_minimind import MiniMindConfig
from .constants import BUNDLED_TOKENIZER_DIR, DEMO_DATA_DIR
from .modeling_minimind import MiniMindForCausalLM, MiniMindModel, MiniMindPreTrainedModel

AutoConfig.register(MiniMindConfig.model_type, MiniMindConfig, exist_ok=True)
AutoModel.register(MiniMindConfig, MiniMindModel, exist_ok=True)
AutoModelForCausalLM.register(MiniMindConfig, MiniMindForCausalLM, exist_ok=True)
# save_pretrained then writes `auto_map` and copies configuration_/modeling_minimind.py next to the weights, so the
# folder loads with trust_remote_code=True where minimind_hf is not installed.
MiniMindConfig.register_for_auto_class()
MiniMindModel.register_for_auto_class("AutoModel")
MiniMindForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "BUNDLED_TOKENIZER_DIR",
    "DEMO_DATA_DIR",
    "MiniMindConfig",
    "MiniMindForCausalLM",
    "MiniMindModel",
    "MiniMindPreTrainedModel",
]
