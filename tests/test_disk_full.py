"""A disk that fills up while a checkpoint is written: one message naming the folder and what to free, the half-written
checkpoint removed (so a resume on the same disk does not trip over it), the older complete one untouched. The disk
is a 9 MiB tmpfs: one tiny checkpoint (~6 MiB) fits, the second does not (needs root to mount; skipped otherwise).
The same for the datasets cache on a 64 KiB disk."""

import subprocess

import pytest
from sft_testing import DEMO_SFT, launch, make_base_model, make_sft_data, write_config

from minimind_hf.checkpoints import checkpoint_problem


@pytest.fixture
def small_disk(tmp_path, request):
    disk = tmp_path / "disk"
    disk.mkdir()
    size = getattr(request, "param", "9m")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
def test_full_disk_during_a_checkpoint_is_one_message_and_no_partial_folder(tmp_path, small_disk):
    out = small_disk / "out"
    run = write_config(tmp_path / "run.yaml", model_name_or_path=make_base_model(tmp_path / "base"),
                       dataset_name=make_sft_data(tmp_path / "data.jsonl", 16), max_steps=3, save_strategy="steps",
                       save_steps=1, output_dir=out)  # fmt: skip
    result = launch(run, tmp_path=tmp_path, check=False)
    output = result.stdout + result.stderr

    assert result.returncode == 1, output[-4000:]
    assert f"No space left on the disk of {out} while writing a checkpoint" in output, output[-4000:]
    assert f"Removed the half-written {out / 'checkpoint-2'}." in output
    assert f"{out / 'checkpoint-1'} is complete and untouched" in output and "Free at least" in output
    assert "Traceback" not in output
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert checkpoint_problem(out / "checkpoint-1") is None


@pytest.mark.slow
@pytest.mark.parametrize("small_disk", ["64k"], indirect=True)
def test_full_disk_in_the_datasets_cache_is_one_message(tmp_path, small_disk):
    run = write_config(tmp_path / "run.yaml", model_name_or_path=make_base_model(tmp_path / "base"),
                       dataset_name=DEMO_SFT, max_steps=1, output_dir=tmp_path / "out")  # fmt: skip
    result = launch(run, tmp_path=tmp_path, check=False, HF_DATASETS_CACHE=small_disk)
    output = result.stdout + result.stderr

    assert result.returncode == 1, output[-4000:]
    assert f"No space left on the disk of {small_disk} while writing the datasets cache" in output, output[-4000:]
    assert "set HF_DATASETS_CACHE / output_dir to a larger disk" in output
    assert "Traceback" not in output


@pytest.mark.slow
@pytest.mark.parametrize("small_disk", ["1m"], indirect=True)
def test_full_disk_during_the_final_save_says_the_final_model_is_incomplete(tmp_path, small_disk):
    out = small_disk / "out"
    run = write_config(tmp_path / "run.yaml", model_name_or_path=make_base_model(tmp_path / "base"),
                       dataset_name=make_sft_data(tmp_path / "data.jsonl", 8), max_steps=1, save_strategy="no",
                       output_dir=out, report_to="none")  # fmt: skip
    result = launch(run, tmp_path=tmp_path, check=False)
    output = result.stdout + result.stderr

    assert result.returncode == 1, output[-4000:]
    assert f"No space left on the disk of {out} while writing the final model" in output, output[-4000:]
    assert f"The final model in {out} is incomplete: do not load it." in output
    assert "Traceback" not in output
