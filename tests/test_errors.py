"""User errors end in one line and a non-zero exit, bugs keep their traceback; missing model paths and unreachable
hub ids are named within seconds, offline or not."""

import sys
import time

import pytest
from sft_testing import RECIPE, make_sft_data, run, subprocess_env, write_config

from minimind_hf.arguments import parse_args
from minimind_hf.data import load_sft_dataset
from minimind_hf.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, CheckpointError, UserError, user_errors
from minimind_hf.formats import DataError


def test_user_errors_print_one_line_and_bugs_keep_their_traceback(capsys):
    assert issubclass(DataError, UserError) and issubclass(CheckpointError, UserError)
    with pytest.raises(SystemExit) as exit_info, user_errors("prog"):
        raise DataError("data.jsonl:8: malformed JSON")
    assert exit_info.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err == "prog: error: data.jsonl:8: malformed JSON\n"
    with pytest.raises(SystemExit) as exit_info, user_errors("prog"):
        raise KeyboardInterrupt
    assert exit_info.value.code == EXIT_INTERRUPTED and "prog: interrupted" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError), user_errors("prog"):
        1 / 0  # noqa: B018  (a bug: not ours to hide)


def _recipe(tmp_path, *overrides, **env):
    config = write_config(tmp_path / "run.yaml", model_name_or_path="minimind-tiny", output_dir=tmp_path / "out",
                          dataset_name=make_sft_data(tmp_path / "sft.jsonl", 4))  # fmt: skip
    start = time.perf_counter()
    result = run([sys.executable, RECIPE, config, *overrides], subprocess_env(**env), check=False, timeout=120)
    return result, time.perf_counter() - start


def test_recipe_reports_bad_data_and_options_in_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = make_sft_data(tmp_path / "good.jsonl", 1).read_text(encoding="utf-8")
    bad.write_text(good + "this is not json\n", encoding="utf-8")
    result, _ = _recipe(tmp_path, "--dataset_name", bad)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"recipes/sft.py: error: {bad}:2: malformed JSON, Expecting value at 'this is not json'" in result.stderr
    assert "skip_invalid_samples: true in the recipe YAML" in result.stderr and "at column" not in result.stderr
    # The same wrapper reports what parsing and loading raise (the messages, tested here in-process):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope.jsonl'}: no such file or directory"):
        load_sft_dataset(str(tmp_path / "nope.jsonl"), None)
    with pytest.raises(UserError, match="did you mean --skip_invalid_samples for --skip_invalid"):
        parse_args([str(tmp_path / "run.yaml"), "--skip_invalid", "True"])


@pytest.mark.parametrize("online", [False, True], ids=["offline", "hub-unreachable"])
def test_missing_model_paths_and_hub_ids_fail_fast_naming_them(tmp_path, online):
    # Online: HF_ENDPOINT on a closed local port stands in for an unreachable hub (without HF_HUB_OFFLINE set).
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"} if online else {}
    # Shaped like a path (three parts): missing. Shaped like a hub id: not here, and the hub does not answer.
    name, message = (
        ("checkpoints/minimind-3-pretrain", "the hub: cannot reach")
        if online
        else ("some/missing/dir", "no such folder")
    )
    result, seconds = _recipe(tmp_path, "--model_name_or_path", name, **env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"model_name_or_path {name}: neither a local folder nor reachable on the Hugging Face Hub" in result.stderr
    assert message in result.stderr and "Retrying" not in result.stderr
    assert seconds < 45, seconds  # startup (imports) only, on a loaded 2-core box: no retries
    model = "outputs/does-not-exist" if online else "x/does-not-exist/y"
    result = run([sys.executable, "-m", "minimind_hf.cli", "chat", model, "--prompt", "hi"],
                 subprocess_env(**env), check=False, timeout=60)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"minimind-hf chat: error: model {model}: neither a local folder" in result.stderr
