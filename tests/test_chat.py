"""minimind_hf.chat and the minimind-hf console script, on a tiny random MiniMind (greedy, so deterministic)."""

import builtins
import json
import sys
from pathlib import Path

import pytest
import torch
from sft_testing import DEMO_SFT, REFERENCE_DIR, REFERENCE_TOKENIZERS, make_base_model, run, subprocess_env
from transformers import AutoModelForCausalLM, AutoTokenizer

import minimind_hf  # noqa: F401  (registers MiniMind)
from minimind_hf import chat, cli
from minimind_hf.generation import configure_generation


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from minimind_hf import MiniMindConfig

    config = MiniMindConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128
    )
    return make_base_model(tmp_path_factory.mktemp("chat") / "model", config)


@pytest.fixture(scope="module")
def loaded(model_dir):
    return chat.load_model_for_chat(str(model_dir), device="cpu")


def test_generation_config_stops_at_im_end(model_dir):
    generation = json.loads((model_dir / "generation_config.json").read_text())
    assert (generation["eos_token_id"], generation["pad_token_id"], generation["bos_token_id"]) == (2, 0, 1)
    assert generation["do_sample"] and generation["temperature"] == generation["top_p"] == 0.85


def test_prompt_is_the_plain_template_tokenization_and_the_training_prefix(loaded):
    _, tokenizer = loaded
    messages = [{"role": "system", "content": "You are MiniMind."}, {"role": "user", "content": "德国的首都是哪里？"}]
    prompt = chat.chat_inputs(tokenizer, messages, "cpu")["input_ids"][0].tolist()
    conversation = [*messages, {"role": "assistant", "content": "德国的首都是柏林。"}]
    full = tokenizer(tokenizer.apply_chat_template(conversation, tokenize=False), add_special_tokens=False).input_ids
    assert full[: len(prompt)] == prompt
    assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # What any runtime (transformers generate, vLLM, llama.cpp) feeds the model: the same ids, no trick needed.
    alone = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert alone == prompt


def test_generate_answers_is_greedy_and_restores_train_mode(loaded):
    model, tokenizer = loaded
    model.train()
    first = chat.generate_answers(model, tokenizer, ["hi", "你好"], max_new_tokens=6)
    assert model.training and len(first) == 2
    assert chat.generate_answers(model, tokenizer, ["hi", "你好"], max_new_tokens=6) == first
    model.eval()


def test_one_shot_prompt_streams_the_answer(model_dir, loaded, capsys):
    model, tokenizer = loaded
    expected = chat.generate_answers(model, tokenizer, ["Who are you?"], max_new_tokens=12)[0]
    chat.main([str(model_dir), "--prompt", "Who are you?", "--greedy", "--max_new_tokens", "12", "--device", "cpu"])
    assert capsys.readouterr().out.strip() == expected


@pytest.fixture
def generate_calls(monkeypatch):
    """Every model.generate call's keyword arguments and new-token count; the real generate still runs."""
    from minimind_hf import MiniMindForCausalLM

    calls, real_generate = [], MiniMindForCausalLM.generate

    def recording_generate(self, input_ids=None, **kwargs):
        output = real_generate(self, input_ids=input_ids, **kwargs)
        calls.append({**kwargs, "new_tokens": output.shape[1] - input_ids.shape[1], "dtype": self.dtype})
        return output

    monkeypatch.setattr(MiniMindForCausalLM, "generate", recording_generate)
    return calls


def test_sampling_flags_reach_generate(model_dir, generate_calls, capsys):
    """Sampling runs through `FusedSamplingWarper` with the flags' values (generate's own warpers off); --greedy
    turns sampling off."""
    from minimind_hf.generation import FusedSamplingWarper

    def ask(*flags):
        chat.main([str(model_dir), "--prompt", "hi", *flags, "--seed", "0", "--device", "cpu"])
        call = generate_calls[-1]
        assert call["streamer"] is not None and 0 < call["new_tokens"] <= call["max_new_tokens"]
        warpers = [p for p in call.get("logits_processor") or [] if isinstance(p, FusedSamplingWarper)]
        sampled = [(w.temperature, w.top_p, w.top_k) for w in warpers]
        own = tuple(call[key] for key in ("temperature", "top_p", "top_k"))
        return call["do_sample"], sampled, own, call["repetition_penalty"], call["max_new_tokens"]

    flags = ["--temperature", "0.5", "--top_p", "0.7", "--top_k", "20", "--repetition_penalty", "1.3"]
    assert ask(*flags, "--max_new_tokens", "5") == (True, [(0.5, 0.7, 20)], (1.0, 1.0, 0), 1.3, 5)
    assert ask(*flags, "--greedy", "--max_new_tokens", "3") == (False, [], (None, None, None), 1.3, 3)
    # MiniMind's sampling defaults (eval_llm.py; its generate's top_k)
    assert ask("--max_new_tokens", "2") == (True, [(0.85, 0.85, 50)], (1.0, 1.0, 0), 1.0, 2)
    assert ask("--top_k", "0", "--max_new_tokens", "2")[1] == [(0.85, 0.85, None)]


@pytest.mark.parametrize(
    "flags, named",
    [(["--temperature", "0"], "temperature"), (["--top_p", "1.5"], "top_p"), (["--top_k", "-1"], "top_k")],
)
def test_bad_sampling_flags_exit_2_naming_the_flag(model_dir, capsys, flags, named):
    with pytest.raises(SystemExit) as exit_info:
        chat.main([str(model_dir), "--prompt", "hi", *flags, "--device", "cpu"])
    assert exit_info.value.code == 2
    assert f"{named} must be" in capsys.readouterr().err
    chat.main([str(model_dir), "--prompt", "hi", *flags, "--greedy", "--max_new_tokens", "1", "--device", "cpu"])


def test_chat_decodes_in_the_faster_dtype_on_a_cpu_with_native_bf16(model_dir, generate_calls, capsys):
    """On a CPU, "auto" loads fp32 and, where the CPU has native bf16 (this project's has), keeps bf16 only if it
    decodes faster there; the choice is printed. An explicit --dtype is used as given, untimed."""
    from minimind_hf.hardware import bf16_supported

    assert chat.chat_dtype("cpu") == torch.float32
    assert chat.chat_dtype("cpu", "float16") == torch.float16
    chat.main([str(model_dir), "--prompt", "hi", "--greedy", "--max_new_tokens", "2", "--device", "cpu"])
    err = capsys.readouterr().err
    if bf16_supported(use_cpu=True):
        kept = "bfloat16" if generate_calls[-1]["dtype"] == torch.bfloat16 else "float32"
        assert f"(decoding in {kept}: bfloat16 runs " in err and "× float32 on this CPU; --dtype " in err
    else:
        assert generate_calls[-1]["dtype"] == torch.float32 and "decoding in" not in err
    for dtype in ("float32", "bfloat16"):
        chat.main([str(model_dir), "--prompt", "hi", "--greedy", "--max_new_tokens", "2", "--device", "cpu",
                   "--dtype", dtype])  # fmt: skip
        assert generate_calls[-1]["dtype"] == getattr(torch, dtype)
        assert "decoding in" not in capsys.readouterr().err


@pytest.mark.parametrize(("fp32_seconds", "bf16_seconds", "kept"), [(1.0, 0.5, torch.bfloat16), (1.0, 0.95, torch.float32),
                                                                     (1.0, 1.3, torch.float32)])  # fmt: skip
def test_faster_decode_keeps_bf16_only_when_it_decodes_faster(loaded, monkeypatch, fp32_seconds, bf16_seconds, kept):
    """The choice follows the timing (fixed here; the real timing runs in the test above), with fp32 kept unless bf16
    is `BF16_MIN_SPEEDUP` faster; the fp32 model is returned untouched, never a bf16 round trip of it."""
    model, _ = chat.load_model_for_chat(loaded[0].name_or_path, device="cpu", dtype="float32")
    seen = []

    def timed(models, steps=5):
        seen.append([m.dtype for m in models])
        return [fp32_seconds, bf16_seconds]

    monkeypatch.setattr(chat, "decode_step_seconds", timed)
    chosen, speedup = chat.faster_decode(model)
    assert seen == [[torch.float32, torch.bfloat16]]
    assert chosen.dtype == kept and speedup == pytest.approx(fp32_seconds / bf16_seconds)
    assert model.dtype == torch.float32 and (chosen is model) == (kept == torch.float32)


def test_decode_step_seconds_times_each_model(loaded):
    model, _ = loaded
    seconds = chat.decode_step_seconds([model, model])
    assert len(seconds) == 2 and all(0 < s < 60 for s in seconds)


def test_python_m_chat_streams_a_one_shot_answer(model_dir, loaded):
    model, tokenizer = loaded
    expected = chat.generate_answers(model, tokenizer, ["Who are you?"], max_new_tokens=10)[0]
    assert expected  # a random model still says something, so the check below means something
    cmd = [sys.executable, "-m", "minimind_hf.chat", model_dir, "--prompt", "Who are you?", "--greedy",
           "--max_new_tokens", "10", "--device", "cpu"]  # fmt: skip
    result = run(cmd, subprocess_env(), timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == expected


def test_multi_turn_keeps_history_until_clear(model_dir, monkeypatch, capsys):
    typed = iter(["first question", "second question", "/clear", "fresh start", "/exit"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(typed))
    seen = []
    real_chat_inputs = chat.chat_inputs

    def recording_chat_inputs(tokenizer, messages, device, think=False):
        seen.append([(m["role"], m["content"]) for m in messages])
        return real_chat_inputs(tokenizer, messages, device, think)

    monkeypatch.setattr(chat, "chat_inputs", recording_chat_inputs)
    chat.main([str(model_dir), "--system", "Be brief.", "--max_new_tokens", "4", "--seed", "0", "--device", "cpu"])
    assert [[role for role, _ in turn] for turn in seen] == [
        ["system", "user"],
        ["system", "user", "assistant", "user"],
        ["system", "user"],
    ]
    assert seen[1][1][1] == "first question" and seen[2][1][1] == "fresh start"
    assert capsys.readouterr().out.count("assistant> ") == 3


def test_adapter_folder_loads_with_its_base(model_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    adapter = get_peft_model(
        base, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj"], init_lora_weights=False)
    )
    adapter.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp_path)
    model, _ = chat.load_model_for_chat(str(tmp_path), device="cpu", dtype="float32")
    assert isinstance(model, PeftModel)
    ids = torch.tensor([[1, 324, 234]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, adapter.eval()(input_ids=ids).logits)


def test_format_answers_lines_up_before_after_and_reference():
    samples = [{"prompt": "Hello", "reference": "Hi!"}]
    text = chat.format_answers(samples, ["Hi there"], before=["x" * 100])
    assert "prompt:    Hello" in text and "model:     'Hi there'" in text and "reference: 'Hi!'" in text
    assert "before:    '" + "x" * 60 + "...'" in text
    marked = chat.format_answers([{"prompt": "a", "seen": True}, {"prompt": "b", "seen": False}], ["x", "y"])
    assert (
        "prompt:    a (in the training data)" in marked
        and "prompt:    b (held out: not in the training data)" in marked
    )


def test_cli_dispatches_and_explains(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2 and "minimind-hf merge ADAPTER_DIR OUT_DIR" in capsys.readouterr().err
    monkeypatch.setitem(cli.COMMANDS, "convert", ("minimind_hf.not_written_yet", "main", [], {}))
    with pytest.raises(SystemExit, match="minimind_hf.not_written_yet is not available"):
        cli.main(["convert"])
    data = tmp_path / "data.jsonl"
    data.write_text(DEMO_SFT.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    cli.main(["inspect", str(data), "--n", "1", "--colour", "never"])
    assert "1" in capsys.readouterr().out


@pytest.mark.skipif(REFERENCE_DIR is None, reason="MiniMind's reference tokenizers are not on this machine")
@pytest.mark.parametrize("era", sorted(REFERENCE_TOKENIZERS))
def test_minimind_tokenizers_chat_and_train(era, tiny_config, tmp_path, capsys):
    """MiniMind's own tokenizers (MiniMind2: default system prompt; minimind-3: empty <think> block) through a saved
    model: chat prompts with exactly the tokens that precede the answer in training, and the loss on a rendered
    conversation is the cross-entropy of its supervised tokens."""
    from minimind_hf import MiniMindForCausalLM
    from minimind_hf.data import tokenize_conversation

    reference = AutoTokenizer.from_pretrained(REFERENCE_TOKENIZERS[era])
    torch.manual_seed(0)
    model = MiniMindForCausalLM(tiny_config)
    configure_generation(model, reference)
    model.save_pretrained(tmp_path)
    reference.save_pretrained(tmp_path)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tmp_path).eval(), AutoTokenizer.from_pretrained(tmp_path)
    assert len(tokenizer) == model.config.vocab_size and model.generation_config.eos_token_id == 2

    question, answer = "德国的首都是哪里？", "德国的首都是柏林。"
    conversation = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    sample = tokenize_conversation(conversation, tokenizer, system_prompt_ratio=0.0, empty_think_ratio=1.0)
    prompt = chat.chat_inputs(tokenizer, conversation[:1], model.device)["input_ids"][0].tolist()
    assert sample["input_ids"][: len(prompt)] == prompt
    assert tokenizer.decode(sample["input_ids"][len(prompt) :]) == f"{answer}<|im_end|>\n"
    supervised = [i for i, label in zip(sample["input_ids"], sample["labels"], strict=True) if label != -100]
    assert tokenizer.decode(supervised).endswith(f"{answer}<|im_end|>\n") and question not in tokenizer.decode(
        supervised
    )

    answers = chat.generate_answers(model, tokenizer, [question], max_new_tokens=8)
    chat.main([str(tmp_path), "--prompt", question, "--greedy", "--max_new_tokens", "8", "--device", "cpu"])
    assert capsys.readouterr().out.strip() == answers[0]

    input_ids, labels = torch.tensor([sample["input_ids"]]), torch.tensor([sample["labels"]])
    with torch.no_grad():
        output = model(input_ids=input_ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(output.logits[0, :-1], labels[0, 1:], ignore_index=-100)
    torch.testing.assert_close(output.loss, expected)


def test_ctrl_c_stops_the_answer_and_keeps_the_session(model_dir):
    """Through the console script: Ctrl-C mid-answer ends that answer only, /clear confirms, `quit` exits 0."""
    import signal
    import subprocess
    import threading
    import time

    cmd = [sys.executable, "-m", "minimind_hf.cli", "chat", str(model_dir), "--max_new_tokens", "100000",
           "--greedy", "--device", "cpu", "--dtype", "float32"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=subprocess_env(PYTHONUNBUFFERED=1),
    )  # fmt: skip
    out, err = [], []
    for stream, sink in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=lambda s=stream, k=sink: k.extend(iter(lambda: s.read(1), "")), daemon=True).start()

    def wait_for(predicate, what, timeout=90):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert proc.poll() is None and time.monotonic() < deadline, f"{what}: {''.join(out)} {''.join(err)}"
            time.sleep(0.05)

    try:
        wait_for(lambda: "user> " in "".join(out), "no prompt")
        proc.stdin.write("first question\n")
        proc.stdin.flush()
        wait_for(lambda: len("".join(out).partition("assistant> ")[2]) > 20, "no streamed answer")
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: "answer stopped" in "".join(err), "Ctrl-C did not stop the answer")
        wait_for(lambda: "".join(out).count("user> ") == 2, "the session did not continue")
        proc.stdin.write("/clear\nquit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    errors = "".join(err)
    assert "conversation cleared" in errors and "Traceback" not in errors and "KeyboardInterrupt" not in errors


def test_repl_exit_codes(model_dir, monkeypatch):
    def typed(*lines):
        it = iter(lines)

        def fake_input(prompt=""):
            line = next(it)
            if isinstance(line, type) and issubclass(line, BaseException):
                raise line
            return line

        monkeypatch.setattr(builtins, "input", fake_input)

    argv = [str(model_dir), "--max_new_tokens", "2", "--device", "cpu"]
    for lines, status in ((["exit"], 0), (["/quit"], 0), ([EOFError], 0), (["/nope", KeyboardInterrupt], 130)):
        typed(*lines)
        assert chat.main(argv) == status


def test_cli_names_unknown_commands_and_each_command_its_own_prog(capsys, tmp_path):
    script = Path(sys.executable).parent / "minimind-hf"
    result = run([script, "chta"], subprocess_env(), check=False, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "minimind-hf: unknown command 'chta'; did you mean 'chat'? commands: chat, inspect, merge" in result.stderr
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["foo"])
    assert exit_info.value.code == 2 and "unknown command 'foo'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["inspect", "--help"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("usage: minimind-hf inspect ")


def test_inspect_reports_a_bad_record_and_can_skip_it(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text(DEMO_SFT.read_text(encoding="utf-8").splitlines()[0] + "\n{not json\n", encoding="utf-8")
    argv = ["inspect", str(data), "--n", "1", "--colour", "never", "--cache-dir", str(tmp_path / "cache")]
    result = run([sys.executable, "-m", "minimind_hf.cli", *argv], subprocess_env(), check=False, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"minimind-hf inspect: error: {data}:2: malformed JSON" in result.stderr
    assert "--skip-invalid for minimind-hf inspect" in result.stderr
    cli.main([*argv, "--skip-invalid"])
    assert "skipped 1 invalid" in capsys.readouterr().out
