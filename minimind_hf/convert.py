"""Convert MiniMind weights between MiniMind's native `.pth`, this project's HF folder, and the Qwen3 / Qwen3-MoE / Llama
folders that vLLM, llama.cpp, ollama and LLaMA-Factory read. A peft LoRA adapter folder as INPUT is merged into its base.

    minimind-hf convert out/full_sft_768.pth minimind-3 --to hf --tokenizer ../minimind/model
    minimind-hf convert out/full_sft_512.pth MiniMind2-Small --to hf --tokenizer ../minimind/model  # no qk-norm: 8 heads
    minimind-hf convert minimind-3 minimind-3-qwen3 --to qwen3      # Qwen3-MoE when the model is a MoE
    minimind-hf convert MiniMind2-Small MiniMind2-Small-llama --to llama
    minimind-hf convert outputs/sft-lora minimind-3-merged --to hf   # adapter folder: merged into its base
    minimind-hf convert outputs/sft out/full_sft_768.pth --to native  # back to MiniMind's own eval and serving scripts
    minimind-hf convert outputs/sft minimind-3.gguf --to gguf --dtype q8_0  # llama.cpp / Ollama (see export_gguf.py)

INPUT is a `.pth` (native; it holds no tokenizer, so pass --tokenizer with MiniMind's model/ folder, or --no-tokenizer
for weights alone), a folder with config.json (model_type minimind, qwen3, qwen3_moe or llama, including
MiniMind's own transformers exports) or a folder with adapter_config.json. Every tensor is copied unchanged, so round
trips are bit-exact. dtype (`--dtype auto`): hf -> float32, the master weights Trainer trains (fp16 -> fp32 is exact,
so converting back is bit-exact); native -> float16, MiniMind's format; qwen3 / llama -> the source's own dtype
(pass `--dtype float16` for a smaller serving copy); gguf -> f16 unless `--dtype f32|bf16|q8_0` (or a torch name).
Exported folders carry transformers 4's field names too (see portable.py).

Qwen3-MoE routes like MiniMind: softmax in fp32 -> top-k -> divide by the top-k sum when `norm_topk_prob` (MiniMind adds
1e-20 to that sum, below fp32 resolution for a sum >= 1/num_experts). It has no shared experts and always applies
qk-norm, so MiniMind2-MoE is refused; Llama has no qk-norm, so minimind-3 goes to Qwen3 and MiniMind2 to Llama.
"""

import argparse
import copy
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

from .configuration_minimind import MINIMIND_PRESETS, MiniMindConfig
from .constants import TOKENIZER_FILES
from .errors import CheckpointError, user_errors
from .generation import configure_generation
from .locations import check_pretrained
from .modeling_minimind import MiniMindForCausalLM
from .native_checkpoint import (
    CARRIED_FIELDS,
    EMBED,
    LM_HEAD,
    cast_state,
    check_state,
    clean_state_dict,
    config_from_state,
    era_preset,
    infer_architecture,
    load_native,
    save_native,
    summary,
    torch_load,
)
from .portable import add_legacy_rope_fields, save_portable_tokenizer

logger = logging.getLogger(__name__)

TARGETS = ("hf", "native", "qwen3", "llama", "gguf")
FOLDER_MODEL_TYPES = ("minimind", "qwen3", "qwen3_moe", "llama")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
GGUF_NAMES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
TOKEN_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id")


@dataclass
class Checkpoint:
    config: MiniMindConfig
    state: dict[str, torch.Tensor]  # MiniMind names, one tensor per expert, lm_head present (shared when tied)
    tokenizer_dir: Path | None = None
    generation_config: GenerationConfig | None = None


# ----------------------------------------------------------------------------------------------------------- read


def read_checkpoint(path, preset: str | None = None, base=None, **overrides) -> Checkpoint:
    """Any supported INPUT as a checked `Checkpoint`. `overrides` are config fields the tensors cannot show."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder ({path.absolute()} is missing)")
    if path.is_file():
        state, defaults, tokenizer_dir, generation_config = load_native(path), {}, None, None
    elif (path / "adapter_config.json").is_file():
        return _merge_lora(path, base, preset, overrides)
    elif (path / "config.json").is_file():
        source = json.loads((path / "config.json").read_text())
        if source.get("model_type") not in FOLDER_MODEL_TYPES:
            raise CheckpointError(
                f"{path}: model_type {source.get('model_type')!r} is not one of {FOLDER_MODEL_TYPES}"
            )
        _refuse_unsupported(source, path)
        state = clean_state_dict(_unfuse_experts(_load_weights(path)), path)
        if source.get("tie_word_embeddings", True) and EMBED in state:
            state.setdefault(LM_HEAD, state[EMBED])  # transformers stores a tied embedding once
        defaults = _carried_fields(source)
        tokenizer_dir = path if any((path / name).is_file() for name in TOKENIZER_FILES) else None
        generation_config = (
            GenerationConfig.from_pretrained(path) if (path / "generation_config.json").is_file() else None
        )
    else:
        raise CheckpointError(f"{path}: neither a .pth file nor a folder with config.json or adapter_config.json")
    config = config_from_state(state, defaults, preset, **overrides)
    if config.tie_word_embeddings:
        state[LM_HEAD] = state[EMBED]
    check_state(state, config, path)
    origin = "its config.json" if defaults else f"preset {preset or era_preset(infer_architecture(state))}"
    logger.info("%s: %s (fields the tensors cannot show: from %s)", path, summary(config), origin)
    return Checkpoint(config, state, tokenizer_dir, generation_config)


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(file))
    if not state:  # MiniMind's custom-code exports are saved with safe_serialization=False
        for file in sorted(folder.glob("pytorch_model*.bin")):
            state.update(torch_load(file))
    if not state:
        raise CheckpointError(f"{folder}: no *.safetensors or pytorch_model*.bin weights")
    return state


def _refuse_unsupported(source: dict, path: Path) -> None:
    reasons = [
        f"{key}={source[key]}" for key in ("attention_bias", "mlp_bias", "use_sliding_window") if source.get(key)
    ]
    if source.get("mlp_only_layers") or source.get("decoder_sparse_step", 1) != 1:
        reasons.append("dense layers between MoE layers (mlp_only_layers / decoder_sparse_step)")
    if reasons:
        raise CheckpointError(f"{path}: MiniMind has no equivalent of {', '.join(reasons)}")


def _carried_fields(source: dict) -> dict:
    """Non-shape config fields of a source config.json, MiniMind2's custom-code names included."""
    fields = {key: source[key] for key in CARRIED_FIELDS if source.get(key) is not None}
    if "aux_loss_alpha" in source:  # MiniMind2's DeepSeek-style router config
        fields["router_aux_loss_coef"] = source["aux_loss_alpha"]
        fields["aux_loss_type"] = "sequence" if source.get("seq_aux", True) else "batch"
    if not fields.get("rope_parameters"):  # transformers 4 layout, also what MiniMind's exports write
        scaling = dict(source.get("rope_scaling") or {})
        scaling["rope_type"] = scaling.pop("type", scaling.get("rope_type", "default"))
        fields["rope_parameters"] = {**scaling, "rope_theta": source.get("rope_theta", MiniMindConfig.default_theta)}
    return fields


def _unfuse_experts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5 in-memory Qwen3-MoE experts (`experts.gate_up_proj` [E, 2I, H], `experts.down_proj` [E, H, I])
    -> one `experts.{e}.{gate,up,down}_proj.weight` per expert, as MiniMind and Qwen3-MoE files store them."""
    out = {}
    for key, tensor in state.items():
        prefix, _, name = key.rpartition(".")
        if prefix.endswith("mlp.experts") and name == "gate_up_proj":
            gate, up = tensor.chunk(2, dim=1)
            for e in range(tensor.shape[0]):
                out[f"{prefix}.{e}.gate_proj.weight"] = gate[e].contiguous()
                out[f"{prefix}.{e}.up_proj.weight"] = up[e].contiguous()
        elif prefix.endswith("mlp.experts") and name == "down_proj":
            for e in range(tensor.shape[0]):
                out[f"{prefix}.{e}.down_proj.weight"] = tensor[e].contiguous()
        else:
            out[key] = tensor
    return out


def _fuse_experts(state: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """Inverse of `_unfuse_experts`, for loading into transformers' `Qwen3MoeForCausalLM`."""
    out = {key: tensor for key, tensor in state.items() if ".mlp.experts." not in key}
    for layer in range(config.num_hidden_layers):
        p = f"model.layers.{layer}.mlp.experts."
        gate, up, down = (
            torch.stack([state[f"{p}{e}.{proj}.weight"] for e in range(config.num_experts)])
            for proj in ("gate_proj", "up_proj", "down_proj")
        )
        out[p + "gate_up_proj"], out[p + "down_proj"] = torch.cat([gate, up], dim=1), down
    return out


def _merge_lora(adapter_dir: Path, base, preset, overrides) -> Checkpoint:
    """Merge a peft LoRA adapter into its base (any supported INPUT) in float32 on our model class."""
    from peft import PeftModel

    base = base or json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise CheckpointError(f"{adapter_dir}: adapter_config.json names no base model; pass --base PATH")
    if not Path(base).exists():  # a hub id: fetch the base folder
        from huggingface_hub import snapshot_download

        check_pretrained(base, what=f"base model of {adapter_dir}")
        base = snapshot_download(base)
    ckpt = read_checkpoint(base, preset, **overrides)
    model = MiniMindForCausalLM(ckpt.config)
    model.load_state_dict(cast_state(ckpt.state, torch.float32), strict=True)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    state = dict(merged.state_dict())
    if ckpt.config.tie_word_embeddings and not torch.equal(state[LM_HEAD], state[EMBED]):
        raise CheckpointError(f"{adapter_dir} changes lm_head apart from the tied embed_tokens; merge it with peft")
    check_state(state, ckpt.config, adapter_dir)
    logger.info("%s: LoRA merged into %s", adapter_dir, base)
    has_tokenizer = any((adapter_dir / name).is_file() for name in TOKENIZER_FILES)
    return Checkpoint(ckpt.config, state, adapter_dir if has_tokenizer else ckpt.tokenizer_dir, ckpt.generation_config)


# ---------------------------------------------------------------------------------------------------------- write


def export_config(config: MiniMindConfig, target: str):
    """(model class, config) of the transformers architecture `target` that computes exactly what `config` does."""
    if target == "hf":
        return MiniMindForCausalLM, config
    problems = []
    if target == "llama":
        if config.use_moe:
            problems.append("it is a MoE and Llama is dense (MoE models with qk-norm go to --to qwen3, Qwen3-MoE)")
        if config.qk_norm:
            problems.append("it has qk-norm, which Llama lacks: use --to qwen3")
    else:
        if config.use_moe and config.n_shared_experts:
            problems.append(f"its {config.n_shared_experts} shared expert(s) (MiniMind2-MoE) have no Qwen3-MoE slot")
        if not config.qk_norm:
            problems.append("it has no qk-norm (MiniMind2 era) and Qwen3 always normalises q and k"
                            + ("" if config.use_moe else ": use --to llama"))  # fmt: skip
    if problems:
        raise CheckpointError(
            f"cannot write this model as {target}: " + "; ".join(problems) + ". Dropping or faking weights would "
            "change its outputs; keep it as --to hf or --to native."
        )
    common = {key: getattr(config, key) for key in (
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
        "rms_norm_eps", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")}  # fmt: skip
    common.update(rope_parameters=dict(config.rope_parameters), attention_bias=False)
    if target == "llama":
        return LlamaForCausalLM, LlamaConfig(**common, mlp_bias=False)
    if not config.use_moe:
        return Qwen3ForCausalLM, Qwen3Config(**common, use_sliding_window=False)
    moe = {key: getattr(config, key) for key in (
        "num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob", "router_aux_loss_coef")}  # fmt: skip
    return Qwen3MoeForCausalLM, Qwen3MoeConfig(**common, **moe, decoder_sparse_step=1, mlp_only_layers=[])


def convert(
    input_path,
    output_path,
    to: str,
    tokenizer=None,
    preset=None,
    dtype="auto",
    base=None,
    *,
    no_tokenizer=False,
    allow_tokenizer_era_mismatch=False,
    **overrides,
) -> Path:
    """Python entry point of `minimind-hf convert` (same arguments, `overrides` as config fields)."""
    if to not in TARGETS:
        raise CheckpointError(f"--to must be one of {TARGETS}, got {to!r}")
    output_path = Path(output_path)
    if output_path.resolve() == Path(input_path).resolve():
        raise CheckpointError("OUTPUT must differ from INPUT")
    if to == "native" and output_path.suffix != ".pth":
        raise CheckpointError(f"--to native writes one .pth file (e.g. out/full_sft_768.pth), got {output_path}")
    if tokenizer:
        check_pretrained(str(tokenizer), what="--tokenizer")
    if to != "gguf" and dtype in ("f32", "f16", "bf16", "q8_0"):
        raise CheckpointError(f"--dtype {dtype} is a GGUF type; for --to {to} use float32, float16 or bfloat16")
    if to == "gguf" and output_path.suffix != ".gguf":
        raise CheckpointError(f"--to gguf writes one .gguf file (e.g. minimind-3.gguf), got {output_path}")
    ckpt = read_checkpoint(input_path, preset, base, **overrides)
    if to == "gguf":
        from .export_gguf import write_gguf

        tokenizer_dir = tokenizer or ckpt.tokenizer_dir
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir)) if tokenizer_dir else None
        gguf_dtype = GGUF_NAMES.get(dtype, "f16" if dtype == "auto" else dtype)
        write_gguf(ckpt.config, ckpt.state, tok, output_path, gguf_dtype)
        logger.info("wrote %s (%s, llama.cpp's GGUF)", output_path, gguf_dtype)
        return output_path
    if dtype == "auto":  # see the module docstring
        dtype = {"hf": torch.float32, "native": torch.float16}.get(to, ckpt.state[EMBED].dtype)
    state = cast_state(ckpt.state, DTYPES.get(dtype, dtype))
    dtype = str(state[EMBED].dtype).removeprefix("torch.")
    if to == "native":
        output_path.parent.mkdir(parents=True, exist_ok=True)
        save_native(state, output_path, state[EMBED].dtype)
        logger.info("wrote %s (%s, MiniMind's native layout; it carries no tokenizer)", output_path, dtype)
        return output_path

    config = copy.deepcopy(ckpt.config)
    tokenizer_dir = tokenizer or ckpt.tokenizer_dir
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir)) if tokenizer_dir else None
    if tokenizer and tok is not None and not allow_tokenizer_era_mismatch:
        _refuse_other_era_tokenizer(tok, tokenizer, config, input_path)
    if tok is not None:
        if len(tok) > config.vocab_size:
            raise CheckpointError(f"{tokenizer_dir} has {len(tok)} tokens but the model embeds {config.vocab_size}")
        im_end = tok.convert_tokens_to_ids("<|im_end|>")  # chat turns end there, whatever eos_token says
        ids = (tok.bos_token_id, im_end if im_end != tok.unk_token_id else tok.eos_token_id, tok.pad_token_id)
        for name, token_id in zip(TOKEN_ID_FIELDS, ids, strict=True):
            if token_id is not None:
                setattr(config, name, token_id)
    model_class, target_config = export_config(config, to)  # an impossible export is refused first
    if tok is None and not no_tokenizer:
        raise CheckpointError(
            f"{input_path} carries no tokenizer, so {output_path} would have no tokenizer and no chat template "
            "(transformers, vLLM and recipes/sft.py could not use it). Pass --tokenizer DIR with the tokenizer the "
            "checkpoint was trained with: MiniMind's model/ folder, e.g. --tokenizer path/to/minimind/model (a "
            "MiniMind2-era checkpoint needs MiniMind2's). To write the weights alone anyway, pass --no-tokenizer."
        )
    if model_class is Qwen3MoeForCausalLM:
        state = _fuse_experts(state, config)
    with torch.device("meta"):  # weights are assigned below, so skip allocating and initialising them
        model = model_class(target_config)
    model.load_state_dict(state, strict=True, assign=True)
    model.generation_config = copy.deepcopy(ckpt.generation_config) or GenerationConfig()
    for name in TOKEN_ID_FIELDS:  # MiniMind's own exports leave them null under transformers 5
        setattr(model.generation_config, name, getattr(config, name))
    if tok is not None:
        configure_generation(model, tok)  # same stop token and sampling defaults as `minimind-hf chat` / `merge`
    model.save_pretrained(output_path)
    if to != "hf":  # the custom-code folder needs transformers 5 anyway (its configuration file says so)
        add_legacy_rope_fields(output_path / "config.json")
    if model_class is Qwen3MoeForCausalLM:  # transformers writes `num_local_experts`; Qwen's own configs say this
        config_file = output_path / "config.json"
        config_file.write_text(
            json.dumps({**json.loads(config_file.read_text()), "num_experts": config.num_experts}, indent=2)
        )
    if tok is not None:
        save_portable_tokenizer(tok, output_path)
    logger.info("wrote %s (%s, %s)", output_path, type(model).__name__, dtype)
    return output_path


def tokenizer_era(tok) -> str | None:
    """The MiniMind release a tokenizer belongs to: MiniMind-3's (Qwen-style specials from id 3, `<think>`) or
    MiniMind2's (bytes from id 3); None for any other tokenizer."""
    vocab = tok.get_vocab()
    if vocab.get("<|im_start|>") != 1 or vocab.get("<|im_end|>") != 2:
        return None
    return "MiniMind-3" if "<think>" in vocab else "MiniMind2"


def _refuse_other_era_tokenizer(tok, tokenizer_dir, config, input_path) -> None:
    """The two releases' vocabularies share size and chat tokens but map every other id differently: a model with
    the other era's tokenizer loads, and then reads and writes garbage."""
    model_era = "MiniMind-3" if config.qk_norm else "MiniMind2"  # qk-norm arrived with MiniMind-3
    token_era = tokenizer_era(tok)
    if token_era is not None and token_era != model_era:
        raise CheckpointError(
            f"{input_path} is a {model_era}-era model (qk_norm={config.qk_norm}) but --tokenizer {tokenizer_dir} is "
            f"{token_era}'s tokenizer; their vocabularies differ. Pass the tokenizer of {model_era}'s model/ folder, "
            "or --allow-tokenizer-era-mismatch if this model really was trained with that tokenizer."
        )


# ------------------------------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minimind-hf convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", help=".pth, model folder, or LoRA adapter folder")
    parser.add_argument("output", help="folder, or a .pth file with --to native")
    parser.add_argument("--to", required=True, choices=TARGETS)
    shipped = parser.add_mutually_exclusive_group()
    shipped.add_argument("--tokenizer", help="tokenizer folder to ship (default: the input folder's own)")
    shipped.add_argument("--no-tokenizer", action="store_true", help="write a folder without tokenizer (weights only)")
    parser.add_argument(
        "--allow-tokenizer-era-mismatch",
        action="store_true",
        help="ship --tokenizer even though it belongs to the other MiniMind era than the model (refused by default)",
    )
    parser.add_argument("--preset", choices=sorted(MINIMIND_PRESETS), help="defaults for what the tensors cannot show")
    parser.add_argument("--num-attention-heads", type=int, help="needed without qk-norm if not 8 (every release)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=f"one of {CARRIED_FIELDS}")
    parser.add_argument("--dtype", choices=("auto", *DTYPES, "f32", "f16", "bf16", "q8_0"), default="auto",
                        help="see above; f32/f16/bf16/q8_0 are GGUF's names")  # fmt: skip
    parser.add_argument("--base", help="base model of a LoRA adapter (default: its base_model_name_or_path)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {} if args.num_attention_heads is None else {"num_attention_heads": args.num_attention_heads}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in CARRIED_FIELDS:
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY one of {CARRIED_FIELDS}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    convert(args.input, args.output, args.to, args.tokenizer, args.preset, args.dtype, args.base,
            no_tokenizer=args.no_tokenizer, allow_tokenizer_era_mismatch=args.allow_tokenizer_era_mismatch,
            **overrides)  # fmt: skip
    return 0


def merge_main(argv=None) -> int:
    """`minimind-hf merge ADAPTER_DIR OUT_DIR [--base BASE]`: a LoRA adapter folder and its base -> one full model."""
    parser = argparse.ArgumentParser(prog="minimind-hf merge", description=merge_main.__doc__)
    parser.add_argument("adapter", help="a LoRA adapter folder (adapter_config.json), e.g. a use_peft run's output")
    parser.add_argument("output", help="folder for the merged model")
    parser.add_argument("--base", help="base model (default: the adapter's base_model_name_or_path)")
    args = parser.parse_args(argv)
    adapter = Path(args.adapter)
    if not adapter.exists():
        raise CheckpointError(f"{adapter}: no such folder ({adapter.absolute()} is missing)")
    if not (adapter / "adapter_config.json").is_file():
        raise CheckpointError(
            f"{adapter} is not a LoRA adapter folder (no adapter_config.json), so there is nothing to merge; a full "
            "model folder is used as it is, or converted with `minimind-hf convert`"
        )
    return main([args.adapter, args.output, "--to", "hf", *(["--base", args.base] if args.base else [])])


if __name__ == "__main__":
    with user_errors("minimind-hf convert"):
        sys.exit(main())
