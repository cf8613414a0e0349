import json
import math

import pytest
from transformers import AutoConfig

from minimind_hf import MiniMindConfig
from minimind_hf.configuration_minimind import MINIMIND_PRESETS, MINIMIND_YARN_ROPE_PARAMETERS


def test_defaults_are_minimind3():
    config = MiniMindConfig()
    assert config.model_type == "minimind"
    assert (config.hidden_size, config.num_hidden_layers) == (768, 8)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (8, 4, 96)
    assert config.intermediate_size == 2432 == math.ceil(768 * math.pi / 64) * 64
    assert config.vocab_size == 6400
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 1e6}
    assert config.max_position_embeddings == 32768
    assert config.rms_norm_eps == 1e-6
    assert config.hidden_act == "silu" and config.dropout == 0.0
    assert config.tie_word_embeddings is True and config.qk_norm is True
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)
    assert config.use_cache is True
    assert config.use_moe is False
    assert (config.num_experts, config.num_experts_per_tok, config.n_shared_experts) == (4, 1, 0)
    assert config.moe_intermediate_size == config.intermediate_size
    assert config.norm_topk_prob is True and config.router_aux_loss_coef == 5e-4 and config.aux_loss_type == "batch"


def test_derived_sizes_follow_hidden_size():
    config = MiniMindConfig(hidden_size=512, num_attention_heads=8, num_key_value_heads=None)
    assert config.intermediate_size == 1664  # ceil(512·π/64)·64
    assert config.head_dim == 64
    assert config.num_key_value_heads == 8


@pytest.mark.parametrize("name", sorted(MINIMIND_PRESETS))
def test_presets_apply_their_fields_and_overrides(name):
    config = MiniMindConfig.from_preset(name, vocab_size=128)
    for key, value in MINIMIND_PRESETS[name].items():
        assert getattr(config, key) == value, key
    assert config.vocab_size == 128


def test_preset_table():
    rows = {
        name: (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size)
        for name, c in ((name, MiniMindConfig.from_preset(name)) for name in MINIMIND_PRESETS)
    }
    assert rows == {
        "minimind2-small": (512, 8, 8, 2, 1408),
        "minimind2": (768, 16, 8, 2, 2048),
        "minimind2-moe": (640, 8, 8, 2, 1728),
        "minimind-3": (768, 8, 8, 4, 2432),
        "minimind-3-moe": (768, 8, 8, 4, 2432),
        "minimind-tiny": (128, 4, 4, 2, 384),
    }
    moe2, moe3 = MiniMindConfig.from_preset("minimind2-moe"), MiniMindConfig.from_preset("minimind-3-moe")
    assert (moe2.num_experts, moe2.num_experts_per_tok, moe2.n_shared_experts, moe2.aux_loss_type) == (
        4,
        2,
        1,
        "sequence",
    )
    assert moe2.router_aux_loss_coef == 0.01 and moe2.qk_norm is False and moe2.rms_norm_eps == 1e-5
    assert (moe3.num_experts, moe3.num_experts_per_tok, moe3.n_shared_experts, moe3.aux_loss_type) == (
        4,
        1,
        0,
        "batch",
    )
    assert moe3.router_aux_loss_coef == 5e-4 and moe3.moe_intermediate_size == 2432 and moe3.qk_norm is True
    for name in ("minimind2-small", "minimind2", "minimind2-moe"):
        config = MiniMindConfig.from_preset(name)
        assert config.rope_parameters["rope_theta"] == 1e6 and config.max_position_embeddings == 32768


def test_unknown_preset_and_bad_values_raise():
    with pytest.raises(ValueError, match="minimind-3"):
        MiniMindConfig.from_preset("minimind-4")
    with pytest.raises(ValueError, match="aux_loss_type"):
        MiniMindConfig(aux_loss_type="token")
    with pytest.raises(ValueError, match="multiple"):
        MiniMindConfig(num_attention_heads=8, num_key_value_heads=3)


def test_inference_rope_scaling_sets_yarn():
    config = MiniMindConfig(inference_rope_scaling=True)
    assert config.rope_parameters == {**MINIMIND_YARN_ROPE_PARAMETERS, "rope_theta": 1e6}
    assert (
        config.rope_parameters["factor"] == 16 and config.rope_parameters["original_max_position_embeddings"] == 2048
    )
    # explicit YaRN parameters are kept, not overwritten by the switch
    custom = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024, "attention_factor": 1.0}
    config = MiniMindConfig(rope_parameters=dict(custom), inference_rope_scaling=True)
    assert config.rope_parameters["factor"] == 4.0 and config.rope_parameters["rope_theta"] == 1e6


def test_rope_theta_kwarg_and_legacy_rope_scaling():
    assert MiniMindConfig(rope_theta=1e4).rope_parameters == {"rope_type": "default", "rope_theta": 1e4}
    legacy = {"type": "yarn", "factor": 16, "original_max_position_embeddings": 2048, "attention_factor": 1.0}
    config = MiniMindConfig(rope_scaling=legacy)
    assert config.rope_parameters["rope_type"] == "yarn" and config.rope_parameters["rope_theta"] == 1e6


def test_save_load_round_trip_keeps_fields(tmp_path):
    config = MiniMindConfig.from_preset("minimind2-moe", inference_rope_scaling=True, use_cache=False)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "minimind"
    assert saved["use_cache"] is False  # declared field: survives (undeclared generation fields get dropped)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MiniMindConfig)
    for key in ("hidden_size", "aux_loss_type", "n_shared_experts", "rope_parameters", "use_cache", "qk_norm"):
        assert getattr(loaded, key) == getattr(config, key), key


def test_minimind_native_config_json_loads():
    # The config.json MiniMind's own PretrainedConfig writes (extra keys, rope_scaling null, flash_attn).
    native = {
        "model_type": "minimind",
        "hidden_size": 768,
        "num_hidden_layers": 8,
        "use_moe": False,
        "dropout": 0.0,
        "vocab_size": 6400,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "flash_attn": True,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 96,
        "hidden_act": "silu",
        "intermediate_size": 2432,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1e6,
        "tie_word_embeddings": True,
        "inference_rope_scaling": False,
        "rope_scaling": None,
        "num_experts": 4,
        "num_experts_per_tok": 1,
        "moe_intermediate_size": 2432,
        "norm_topk_prob": True,
        "router_aux_loss_coef": 5e-4,
    }
    config = MiniMindConfig.from_dict(native)
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 1e6}
    assert config.intermediate_size == 2432 and config.flash_attn is True


def test_auto_config_registration():
    assert isinstance(AutoConfig.for_model("minimind"), MiniMindConfig)
