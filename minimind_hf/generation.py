"""The generation settings saved with every model this package writes, so any runtime stops and samples alike."""

# MiniMind's eval_llm.py sampling defaults.
TEMPERATURE, TOP_P = 0.85, 0.85


def configure_generation(model, tokenizer) -> None:
    """Stop at `<|im_end|>`, pad with the tokenizer's pad token, sample like MiniMind: saved with the model."""
    config = model.generation_config
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.do_sample, config.temperature, config.top_p = True, TEMPERATURE, TOP_P
