"""`minimind-hf convert`: native .pth <-> HF folder <-> Qwen3 / Qwen3-MoE / Llama, LoRA merge, and the refusals.

Native checkpoints are written here the way MiniMind saves them (its module names spelled out below, random fp16,
both tied keys as separate tensors), so these tests do not lean on our modeling file for the layout.
"""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sft_testing import REFERENCE_DIR, REFERENCE_TOKENIZERS, run, subprocess_env
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from minimind_hf import BUNDLED_TOKENIZER_DIR, MiniMindConfig, MiniMindForCausalLM
from minimind_hf.configuration_minimind import MINIMIND_PRESETS
from minimind_hf.convert import _fuse_experts, _unfuse_experts, convert, export_config, main, read_checkpoint
from minimind_hf.errors import CheckpointError
from minimind_hf.native_checkpoint import check_state, config_from_state

TOKENIZERS = REFERENCE_TOKENIZERS
needs_tokenizers = pytest.mark.skipif(REFERENCE_DIR is None, reason="reference MiniMind tokenizers not present")

TINY = dict(hidden=64, layers=2, heads=4, kv=2, inter=128)
DENSE_QK = dict(TINY, qk_norm=True)  # minimind-3 shaped
DENSE_NO_QK = dict(TINY, heads=8, qk_norm=False)  # MiniMind2 shaped (8 heads: what the converter assumes)
MOE_QK = dict(TINY, qk_norm=True, experts=4, moe_inter=48)  # minimind-3-MoE shaped
MOE_SHARED = dict(TINY, heads=8, qk_norm=False, experts=4, shared=1, moe_inter=48)  # MiniMind2-MoE shaped


def native_state_dict(hidden, layers, heads, kv, inter=0, qk_norm=True, experts=0, shared=0, moe_inter=0,
                      vocab=6400, head_dim=None, meta=False, seed=0):  # fmt: skip
    """MiniMind's `model.state_dict()` names and shapes; random fp16 (norms around 1) or meta tensors."""
    head_dim = head_dim or hidden // heads
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes[p + "self_attn.q_proj.weight"] = (heads * head_dim, hidden)
        shapes[p + "self_attn.k_proj.weight"] = (kv * head_dim, hidden)
        shapes[p + "self_attn.v_proj.weight"] = (kv * head_dim, hidden)
        shapes[p + "self_attn.o_proj.weight"] = (hidden, heads * head_dim)
        if qk_norm:
            shapes[p + "self_attn.q_norm.weight"] = shapes[p + "self_attn.k_norm.weight"] = (head_dim,)
        shapes[p + "input_layernorm.weight"] = shapes[p + "post_attention_layernorm.weight"] = (hidden,)
        ffns = [(p + "mlp.", inter)]
        if experts:
            shapes[p + "mlp.gate.weight"] = (experts, hidden)
            ffns = [(p + f"mlp.experts.{e}.", moe_inter) for e in range(experts)]
            ffns += [(p + f"mlp.shared_experts.{s}.", moe_inter) for s in range(shared)]
        for prefix, size in ffns:
            shapes[prefix + "gate_proj.weight"] = shapes[prefix + "up_proj.weight"] = (size, hidden)
            shapes[prefix + "down_proj.weight"] = (hidden, size)
    if meta:
        state = {k: torch.empty(s, dtype=torch.float16, device="meta") for k, s in shapes.items()}
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
        return state
    gen = torch.Generator().manual_seed(seed)
    state = {k: (torch.randn(s, generator=gen) * 0.1 + (len(s) == 1)).half() for k, s in shapes.items()}
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()  # MiniMind saves `v.half()` per key
    return state


def write_native(tmp_path, name="full_sft_64.pth", **shape) -> tuple[Path, dict]:
    state = native_state_dict(**shape)
    torch.save(state, tmp_path / name)
    return tmp_path / name, state


def reference_model(state, **config_fields) -> MiniMindForCausalLM:
    """Our model on the native weights in fp32, config from explicit fields (not from the converter's inference)."""
    model = MiniMindForCausalLM(MiniMindConfig(**config_fields))
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def load(folder, **kwargs):
    model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True, **kwargs)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


def logits(model, seed=1):
    ids = torch.randint(0, 6400, (2, 11), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(ids).logits


def assert_same_tensors(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


DENSE_QK_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       intermediate_size=128, qk_norm=True)  # fmt: skip


@needs_tokenizers
@pytest.mark.parametrize("shape", [DENSE_QK, MOE_QK], ids=["dense", "moe"])
def test_native_to_hf_to_native_is_bit_exact(tmp_path, shape):
    pth, state = write_native(tmp_path, **shape)
    hf = convert(pth, tmp_path / "hf", "hf", tokenizer=TOKENIZERS["minimind3"], num_experts_per_tok=2)
    config = json.loads((hf / "config.json").read_text())
    assert config["model_type"] == "minimind" and config["dtype"] == "float32"
    assert config["use_moe"] == bool(shape.get("experts")) and config["qk_norm"]
    fields = dict(DENSE_QK_CONFIG)
    if shape.get("experts"):
        fields.update(use_moe=True, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=48)
    assert torch.equal(logits(load(hf)), logits(reference_model(state, **fields)))

    back = convert(hf, tmp_path / "back.pth", "native")
    restored = torch.load(back, weights_only=True)
    assert_same_tensors(restored, state)  # fp16, MiniMind's names, both tied keys


@needs_tokenizers
@pytest.mark.parametrize(
    ("shape", "target", "model_type", "cls"),
    [(DENSE_QK, "qwen3", "qwen3", "Qwen3ForCausalLM"), (DENSE_NO_QK, "llama", "llama", "LlamaForCausalLM")],
)
def test_hf_to_qwen3_or_llama_and_back(tmp_path, shape, target, model_type, cls):
    pth, _ = write_native(tmp_path, **shape)
    # MiniMind's YaRN switch on: its rope parameters must reach the export too.
    tokenizer = TOKENIZERS["minimind3" if shape["qk_norm"] else "minimind2"]  # each era's own
    hf = convert(pth, tmp_path / "hf", "hf", tokenizer=tokenizer, inference_rope_scaling=True)
    out = convert(hf, tmp_path / target, target)

    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == model_type and "auto_map" not in config and not list(out.glob("*.py"))
    assert config["rope_parameters"]["rope_type"] == "yarn" and config["rope_parameters"]["attention_factor"] == 1
    generation = json.loads((out / "generation_config.json").read_text())
    for name, token_id in (("bos_token_id", 1), ("eos_token_id", 2), ("pad_token_id", 0)):
        assert config[name] == generation[name] == token_id
    exported = load(out, trust_remote_code=False)
    assert type(exported).__name__ == cls
    assert torch.equal(logits(exported), logits(load(hf)))
    assert AutoTokenizer.from_pretrained(out).convert_ids_to_tokens(2) == "<|im_end|>"  # carried from the hf folder

    again = convert(out, tmp_path / "again", "hf")
    assert_same_tensors(load_file(again / "model.safetensors"), load_file(hf / "model.safetensors"))


def test_moe_to_qwen3_moe_and_back(tmp_path):
    pth, state = write_native(tmp_path, **MOE_QK)
    # A native file keeps fp16 with dtype auto; only the weights matter here.
    out = convert(pth, tmp_path / "qwen3", "qwen3", no_tokenizer=True, num_experts_per_tok=2)
    on_disk = load_file(out / "model.safetensors")
    assert "model.layers.1.mlp.experts.3.up_proj.weight" in on_disk  # per-expert, as vLLM / llama.cpp read it
    assert on_disk["model.layers.0.mlp.gate.weight"].dtype == torch.float16
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "qwen3_moe" and config["num_experts"] == 4 and config["norm_topk_prob"]
    exported = load(out)
    assert type(exported).__name__ == "Qwen3MoeForCausalLM"
    ours = reference_model(state, **DENSE_QK_CONFIG, use_moe=True, num_experts=4, num_experts_per_tok=2,
                           moe_intermediate_size=48)  # fmt: skip
    # Not bit-equal, and by design: transformers 5 fuses each expert's gate and up projections into one gate_up_proj
    # matmul, so fp32 sums run in another order. Routing and weights are identical (the round trip below is bit-exact).
    torch.testing.assert_close(logits(exported), logits(ours), rtol=0, atol=1e-5)

    back = convert(out, tmp_path / "back.pth", "native")
    assert_same_tensors(torch.load(back, weights_only=True), state)


def test_fused_experts_round_trip():
    state = native_state_dict(**MOE_QK)
    config = MiniMindConfig(**DENSE_QK_CONFIG, use_moe=True, num_experts=4, moe_intermediate_size=48)
    fused = _fuse_experts(state, config)
    assert fused["model.layers.0.mlp.experts.gate_up_proj"].shape == (4, 96, 64)
    assert_same_tensors(_unfuse_experts(fused), state)


def test_exports_that_would_change_the_model_are_refused(tmp_path):
    pth, _ = write_native(tmp_path, **MOE_SHARED)
    with pytest.raises(CheckpointError, match="shared expert.*no Qwen3-MoE slot"):
        convert(pth, tmp_path / "qwen3", "qwen3")
    assert not (tmp_path / "qwen3").exists()
    with pytest.raises(CheckpointError, match="Llama is dense"):
        convert(pth, tmp_path / "llama", "llama")
    with pytest.raises(CheckpointError, match="qk-norm, which Llama lacks"):
        export_config(MiniMindConfig(**DENSE_QK_CONFIG), "llama")
    with pytest.raises(CheckpointError, match="use --to llama"):
        export_config(MiniMindConfig(**{**DENSE_QK_CONFIG, "qk_norm": False}), "qwen3")


def test_minimind_v1_checkpoint_is_refused(tmp_path):
    v1 = {
        "tok_embeddings.weight": torch.zeros(6400, 64),
        "layers.0.attention.wq.weight": torch.zeros(64, 64),
        "layers.0.feed_forward.w1.weight": torch.zeros(128, 64),
        "norm.weight": torch.ones(64),
        "output.weight": torch.zeros(6400, 64),
    }
    torch.save(v1, tmp_path / "full_sft_512.pth")
    with pytest.raises(
        CheckpointError, match=r"MiniMind v1 checkpoint \(before 2025-04-26.*different, interleaved RoPE"
    ):
        convert(tmp_path / "full_sft_512.pth", tmp_path / "hf", "hf")


def test_pickled_objects_and_unreadable_files_are_refused_by_name(tmp_path, capsys):
    """`torch.save(model)` pickles the module itself; weights_only=True refuses to rebuild it, and says so here."""
    whole = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Linear(4, 4), whole)
    message = rf"{whole} is not a plain state dict: torch.load\(weights_only=True\) refused it \(it pickles a torch"
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(whole)
    argv = [str(whole), str(tmp_path / "hf"), "--to", "hf"]
    with pytest.raises(CheckpointError, match="not a plain state dict"):
        main(argv)
    result = run([sys.executable, "-m", "minimind_hf.convert", *argv], subprocess_env(), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"minimind-hf convert: error: {whole} is not a plain state dict" in result.stderr

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"{truncated} cannot be read by torch.load: empty, truncated"):
        read_checkpoint(truncated)


def test_missing_and_unexpected_keys_are_reported_by_name(tmp_path):
    state = native_state_dict(**DENSE_QK)
    del state["model.layers.1.self_attn.k_norm.weight"]
    state["model.layers.0.mlp.extra.weight"] = torch.zeros(3)
    state["model.layers.1.mlp.up_proj.weight"] = torch.zeros(100, 64, dtype=torch.float16)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError) as err:
        convert(tmp_path / "broken.pth", tmp_path / "hf", "hf")
    message = str(err.value)
    assert "1 missing key(s):\n    model.layers.{1}.self_attn.k_norm.weight" in message
    assert "1 unexpected key(s):\n    model.layers.{0}.mlp.extra.weight" in message
    assert "model.layers.1.mlp.up_proj.weight: (100, 64), expected (128, 64)" in message


def test_wrapped_and_resume_checkpoints_are_unwrapped(tmp_path):
    state = native_state_dict(**DENSE_QK)
    wrapped = {"module._orig_mod." + k: v for k, v in state.items()} | {"model.freqs_cos": torch.zeros(8, 16)}
    torch.save({"model": wrapped, "optimizer": {"state": {}}, "epoch": 1, "step": 7}, tmp_path / "resume.pth")
    assert_same_tensors(read_checkpoint(tmp_path / "resume.pth").state, {**state, "lm_head.weight": state[
        "model.embed_tokens.weight"]})  # fmt: skip


@pytest.mark.parametrize("name", sorted(MINIMIND_PRESETS))
def test_architecture_inferred_for_every_preset(name):
    preset = MiniMindConfig.from_preset(name)
    shape = dict(hidden=preset.hidden_size, layers=preset.num_hidden_layers, heads=preset.num_attention_heads,
                 kv=preset.num_key_value_heads, inter=preset.intermediate_size, qk_norm=preset.qk_norm,
                 experts=preset.num_experts if preset.use_moe else 0, shared=preset.n_shared_experts,
                 moe_inter=preset.moe_intermediate_size, head_dim=preset.head_dim, meta=True)  # fmt: skip
    state = native_state_dict(**shape)
    config = config_from_state(state)  # no preset given: the era is guessed from the structure
    check_state(state, config, name)
    for field in (*MINIMIND_PRESETS[name], "num_attention_heads", "num_key_value_heads", "head_dim"):
        assert getattr(config, field) == getattr(preset, field), field


def test_attention_heads_without_qk_norm_come_from_the_flag():
    state = native_state_dict(**dict(DENSE_NO_QK, meta=True))  # q_proj 64 outputs, k_proj 16
    assert (config_from_state(state).num_attention_heads, config_from_state(state).head_dim) == (8, 8)
    config = config_from_state(state, num_attention_heads=4)
    assert (config.head_dim, config.num_key_value_heads) == (16, 1)
    with pytest.raises(CheckpointError, match="not divisible into 5 heads"):
        config_from_state(state, num_attention_heads=5)
    with pytest.raises(CheckpointError, match="num_attention_heads=8 contradicts"):
        config_from_state(native_state_dict(**dict(DENSE_QK, meta=True)), num_attention_heads=8)


@needs_tokenizers
@pytest.mark.parametrize("era", sorted(TOKENIZERS))
def test_tokenizer_and_chat_template_are_shipped(tmp_path, era):
    pth, _ = write_native(tmp_path, **(DENSE_QK if era == "minimind3" else DENSE_NO_QK))
    out = convert(pth, tmp_path / "hf", "hf", tokenizer=TOKENIZERS[era])
    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 0)
    text = tok.apply_chat_template([{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n" in text
    assert ("You are a helpful assistant" in text) == (era == "minimind2")  # each era's own template
    assert tok.chat_template == AutoTokenizer.from_pretrained(TOKENIZERS[era]).chat_template
    generation = json.loads((out / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"], generation["pad_token_id"]) == (1, 2, 0)


def test_lora_adapter_is_merged(tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    pth, _ = write_native(tmp_path, **DENSE_QK)
    hf = convert(pth, tmp_path / "hf", "hf", tokenizer=BUNDLED_TOKENIZER_DIR)
    lora = get_peft_model(load(hf), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:  # peft starts B at zero, which would make the merge a no-op
                param.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    lora.save_pretrained(tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(hf)

    merged = load(convert(tmp_path / "adapter", tmp_path / "merged", "hf"))
    expected = logits(PeftModel.from_pretrained(load(hf), tmp_path / "adapter").eval())
    torch.testing.assert_close(logits(merged), expected, rtol=0, atol=1e-5)
    assert not torch.allclose(logits(merged), logits(load(hf)), atol=1e-3)
    assert (tmp_path / "merged" / "tokenizer.json").is_file()  # the base's, as the adapter folder has none


def test_minimind_custom_code_export_is_read(tmp_path):
    """MiniMind2's own `convert_torch2transformers_minimind` folder: custom config names, pytorch_model.bin."""
    state = native_state_dict(**MOE_SHARED)
    folder = tmp_path / "MiniMind2-MoE"
    folder.mkdir()
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["MiniMindForCausalLM"], "auto_map": {"AutoConfig": "model_minimind.MiniMindConfig"},
        "model_type": "minimind", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 5e4, "use_moe": True, "n_routed_experts": 4,
        "n_shared_experts": 1, "num_experts_per_tok": 2, "aux_loss_alpha": 0.1, "seq_aux": True,
    }))  # fmt: skip
    ckpt = read_checkpoint(folder)
    assert (ckpt.config.num_experts, ckpt.config.n_shared_experts, ckpt.config.num_experts_per_tok) == (4, 1, 2)
    assert (ckpt.config.router_aux_loss_coef, ckpt.config.aux_loss_type, ckpt.config.rms_norm_eps) == (
        0.1, "sequence", 1e-5)  # fmt: skip
    assert ckpt.config.rope_parameters["rope_theta"] == 5e4  # not MiniMind's default 1e6
    hf = convert(folder, tmp_path / "hf", "hf", no_tokenizer=True)
    assert json.loads((hf / "config.json").read_text())["rope_parameters"]["rope_theta"] == 5e4
    back = convert(folder, tmp_path / "back.pth", "native")
    assert_same_tensors(torch.load(back, weights_only=True), state)


def test_a_pth_without_tokenizer_is_refused_unless_opted_out(tmp_path, capsys):
    pth, _ = write_native(tmp_path, **DENSE_QK)
    with pytest.raises(CheckpointError, match=r"carries no tokenizer.*--tokenizer path/to/minimind/model.*--no-tok"):
        convert(pth, tmp_path / "hf", "hf")
    assert not (tmp_path / "hf").exists()
    with pytest.raises(CheckpointError, match="Pass --tokenizer DIR"):
        main([str(pth), str(tmp_path / "hf"), "--to", "qwen3"])
    assert not (tmp_path / "hf").exists()

    assert main([str(pth), str(tmp_path / "hf"), "--to", "hf", "--no-tokenizer"]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file() and not (tmp_path / "hf" / "tokenizer.json").exists()
    with pytest.raises(SystemExit):
        main(
            [str(pth), str(tmp_path / "x"), "--to", "hf", "--no-tokenizer", "--tokenizer", str(BUNDLED_TOKENIZER_DIR)]
        )
    assert "not allowed with argument" in capsys.readouterr().err
    assert convert(pth, tmp_path / "native.pth", "native").is_file()  # MiniMind's .pth never holds one


@needs_tokenizers
def test_cli(tmp_path, capsys):
    pth, _ = write_native(tmp_path, **DENSE_NO_QK)
    out = tmp_path / "MiniMind2-Small"
    argv = [str(pth), str(out), "--to", "hf", "--tokenizer", str(TOKENIZERS["minimind2"]), "--dtype", "float16"]
    assert main([*argv, "--num-attention-heads", "4", "--set", "rms_norm_eps=1e-6"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["num_attention_heads"], config["head_dim"], config["rms_norm_eps"]) == (4, 16, 1e-6)
    assert config["dtype"] == "float16" and config["rms_norm_eps"] == 1e-6
    with pytest.raises(CheckpointError, match="use --to llama"):
        main([str(out), str(tmp_path / "q"), "--to", "qwen3"])
    with pytest.raises(SystemExit):
        main([*argv, "--set", "hidden_size=3"])
    assert "KEY one of" in capsys.readouterr().err


@needs_tokenizers
def test_minimind3_qwen3_export_folder_is_read(tmp_path):
    """A folder as MiniMind-3's convert_model.py writes its Qwen3 export: transformers-4 config layout (rope_theta at
    the top, no rope_parameters), bos/eos/pad ids null, fp16 safetensors, its tokenizer copied beside them."""
    state = native_state_dict(**DENSE_QK)
    qwen3 = Qwen3ForCausalLM(Qwen3Config(vocab_size=6400, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                         tie_word_embeddings=True))  # fmt: skip
    qwen3.load_state_dict(state, strict=True)
    source = tmp_path / "minimind-3-qwen3"
    qwen3.half().save_pretrained(source)
    AutoTokenizer.from_pretrained(TOKENIZERS["minimind3"]).save_pretrained(source)
    config = json.loads((source / "config.json").read_text())
    config.pop("rope_parameters")
    config.update(rope_theta=5e4, rope_scaling=None, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    (source / "config.json").write_text(json.dumps(config))
    (source / "generation_config.json").write_text(json.dumps({"bos_token_id": None, "eos_token_id": None}))

    hf = convert(source, tmp_path / "hf", "hf")
    ours = json.loads((hf / "config.json").read_text())
    assert ours["rope_parameters"] == {"rope_type": "default", "rope_theta": 5e4}
    generation = json.loads((hf / "generation_config.json").read_text())
    for name, token_id in (("bos_token_id", 1), ("eos_token_id", 2), ("pad_token_id", 0)):
        assert ours[name] == generation[name] == token_id
    assert torch.equal(logits(load(hf)), logits(load(source)))  # a dropped theta would rotate q and k differently
    back = convert(hf, tmp_path / "back.pth", "native")
    assert_same_tensors(torch.load(back, weights_only=True), state)


@needs_tokenizers
def test_minimind2_round_trip_through_llama_is_bit_exact(tmp_path):
    """MiniMind2-shaped (no qk-norm, 8 heads) weights with MiniMind2's own tokenizer: native -> hf -> llama -> hf ->
    native loses nothing, and every folder keeps MiniMind2's chat template."""
    pth, state = write_native(tmp_path, "full_sft_64.pth", **DENSE_NO_QK)
    hf = convert(pth, tmp_path / "hf", "hf", tokenizer=TOKENIZERS["minimind2"])
    llama = convert(hf, tmp_path / "llama", "llama")
    again = convert(llama, tmp_path / "again", "hf")
    back = convert(again, tmp_path / "back.pth", "native")
    assert_same_tensors(torch.load(back, weights_only=True), state)

    assert json.loads((llama / "config.json").read_text())["model_type"] == "llama"
    assert torch.equal(logits(load(llama)), logits(load(again)))
    template = AutoTokenizer.from_pretrained(TOKENIZERS["minimind2"]).chat_template
    for folder in (hf, llama, again):
        assert AutoTokenizer.from_pretrained(folder).chat_template == template, folder


def test_preset_sets_what_the_tensors_cannot_show(tmp_path):
    pth, state = write_native(tmp_path, **MOE_QK)
    guessed = read_checkpoint(pth).config  # qk-norm MoE: the minimind-3-moe era's router
    assert (guessed.num_experts_per_tok, guessed.aux_loss_type, guessed.rms_norm_eps) == (1, "batch", 1e-6)
    out = convert(pth, tmp_path / "hf", "hf", preset="minimind2-moe", no_tokenizer=True)
    config = json.loads((out / "config.json").read_text())
    assert (config["num_experts_per_tok"], config["router_aux_loss_coef"], config["aux_loss_type"]) == (
        2, 0.01, "sequence")  # fmt: skip
    assert config["rms_norm_eps"] == 1e-5
    assert (config["hidden_size"], config["qk_norm"], config["n_shared_experts"]) == (64, True, 0)  # shapes win
    reference = reference_model(state, **DENSE_QK_CONFIG, use_moe=True, num_experts=4, num_experts_per_tok=2,
                                moe_intermediate_size=48, rms_norm_eps=1e-5)  # fmt: skip
    assert torch.equal(logits(load(out)), logits(reference))

    # Without qk-norm the head count is not in the shapes: the preset's (minimind-tiny: 4) instead of MiniMind's 8.
    small, _ = write_native(tmp_path, "small.pth", **DENSE_NO_QK)
    argv = [str(small), str(tmp_path / "small"), "--to", "hf", "--no-tokenizer", "--preset", "minimind-tiny"]
    assert main(argv) == 0
    config = json.loads((tmp_path / "small" / "config.json").read_text())
    assert (config["num_attention_heads"], config["head_dim"], config["rms_norm_eps"]) == (4, 16, 1e-6)
    with pytest.raises(CheckpointError, match="unknown preset 'minimind-4'; choose one of"):
        convert(small, tmp_path / "x", "hf", preset="minimind-4", no_tokenizer=True)


@needs_tokenizers
def test_a_tokenizer_of_the_other_era_is_refused_naming_both_unless_allowed(tmp_path):
    pth, _ = write_native(tmp_path, **DENSE_QK)  # minimind-3 shaped: qk-norm
    argv = [str(pth), str(tmp_path / "hf"), "--to", "hf", "--tokenizer", str(TOKENIZERS["minimind2"])]
    result = run([sys.executable, "-m", "minimind_hf.cli", "convert", *argv], subprocess_env(), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "is a MiniMind-3-era model (qk_norm=True) but --tokenizer" in result.stderr
    assert "is MiniMind2's tokenizer" in result.stderr and "--allow-tokenizer-era-mismatch" in result.stderr
    assert not (tmp_path / "hf").exists()
    assert main([*argv, "--allow-tokenizer-era-mismatch"]) == 0
    assert (
        AutoTokenizer.from_pretrained(tmp_path / "hf").chat_template
        == AutoTokenizer.from_pretrained(TOKENIZERS["minimind2"]).chat_template
    )


def test_missing_inputs_are_named_without_traceback(tmp_path):
    """A missing .pth says no such file; a missing --tokenizer folder names it; merge wants an adapter folder."""
    pth, _ = write_native(tmp_path, **DENSE_QK)
    missing = tmp_path / "full_sft_768.pth"
    cases = {
        f"{missing}: no such file or folder": ["convert", str(missing), str(tmp_path / "a"), "--to", "hf"],
        "--tokenizer missing/dir/x: neither a local folder nor reachable on the Hugging Face Hub: no such folder": [
            "convert", str(pth), str(tmp_path / "b"), "--to", "hf", "--tokenizer", "missing/dir/x"],
        f"{tmp_path} is not a LoRA adapter folder (no adapter_config.json)": ["merge", str(tmp_path), str(tmp_path / "c")],
    }  # fmt: skip
    for message, argv in cases.items():
        result = run([sys.executable, "-m", "minimind_hf.cli", *argv], subprocess_env(), check=False, timeout=60)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"minimind-hf {argv[0]}: error: {message}" in result.stderr
    assert not any((tmp_path / name).exists() for name in "abc")
