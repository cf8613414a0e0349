"""Resume (minimind_hf.checkpoints): only a checkpoint holding everything resume needs is taken (else an older one, or
a refusal saying what is missing), the run continues at the same sample whatever the world size / batch /
accumulation split of the same global batch (another global batch is refused, naming what changed), and a run that
already reached its last step trains nothing."""

import json
import runpy
import shutil

import pytest
import torch
from safetensors.torch import save_file
from sft_testing import RECIPE, make_base_model, make_sft_data, weights, write_config

import minimind_hf  # noqa: F401  (registers MiniMind)
from minimind_hf.arguments import parse_args
from minimind_hf.checkpoints import CheckpointNotResumable, checkpoint_problem, resolve_resume_checkpoint

# 32 conversations at batch 4: 8 steps per epoch; max_steps 6 ends mid-epoch (where Trainer trained a 7th step).
RUN = {"max_steps": 6, "save_strategy": "steps", "save_steps": 2, "save_total_limit": None,
       "lr_scheduler_type": "linear", "lr_scheduler_kwargs": {}, "warmup_steps": 2}  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="module")
def base(workdir):
    return {"model_name_or_path": make_base_model(workdir / "base"),
            "dataset_name": make_sft_data(workdir / "data.jsonl", 32), **RUN}  # fmt: skip


def _train(workdir, base, name, *overrides, **fields):
    out = workdir / name
    config = write_config(workdir / f"{name}.yaml", **{**base, "output_dir": out, **fields})
    runpy.run_path(str(RECIPE))["main"](*parse_args([str(config), *overrides]))
    return out


@pytest.fixture(scope="module")
def reference(workdir, base):
    return _train(workdir, base, "reference")


def _interrupted_copy(reference, workdir, name, keep=("checkpoint-2", "checkpoint-4")):
    """output_dir of a run killed after its checkpoint-4 save."""
    out = workdir / name
    for checkpoint in keep:
        shutil.copytree(reference / checkpoint, out / checkpoint)
    return out


def _fake_checkpoint(folder, step, skip=(), truncate=()):
    folder.mkdir(parents=True)
    save_file({"w": torch.ones(64)}, folder / "model.safetensors")
    for name, obj in {
        "optimizer.pt": {"state": {}},
        "scheduler.pt": {"last_epoch": step},
        "rng_state.pth": {},
    }.items():
        if name not in skip:
            torch.save(obj, folder / name)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for name in truncate:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return folder


def test_only_a_checkpoint_with_everything_resume_needs_is_complete(tmp_path):
    assert resolve_resume_checkpoint("latest", str(tmp_path)) is None  # nothing yet: fresh start
    good = _fake_checkpoint(tmp_path / "checkpoint-4", 4)
    (tmp_path / "checkpoint-6").mkdir()  # killed before anything was written
    _fake_checkpoint(tmp_path / "checkpoint-8", 8, skip=["optimizer.pt"])
    _fake_checkpoint(tmp_path / "checkpoint-10", 10, truncate=["optimizer.pt"])
    _fake_checkpoint(tmp_path / "checkpoint-12", 12, truncate=["model.safetensors"])
    with pytest.warns(DeprecationWarning, match="moved to minimind_hf.checkpoints"):
        from minimind_hf.callbacks import checkpoint_problem as moved
    assert checkpoint_problem is moved  # the old import keeps working, with a warning
    assert "trainer_state.json is missing" in checkpoint_problem(tmp_path / "checkpoint-6")
    assert "optimizer.pt missing (saved with save_only_model" in checkpoint_problem(tmp_path / "checkpoint-8")
    assert "optimizer.pt truncated or corrupt" in checkpoint_problem(tmp_path / "checkpoint-10")
    assert "model.safetensors truncated" in checkpoint_problem(tmp_path / "checkpoint-12")
    assert resolve_resume_checkpoint("latest", str(tmp_path)) == str(good)
    assert resolve_resume_checkpoint(None, str(tmp_path)) is None
    with pytest.raises(CheckpointNotResumable, match="Cannot resume from .*checkpoint-8: optimizer.pt missing"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-8"), str(tmp_path))
    shutil.rmtree(good)  # only checkpoints that cannot resume are left: refuse rather than restart from scratch
    with pytest.raises(CheckpointNotResumable, match=r"no checkpoint in .* can resume this run \(checkpoint-12"):
        resolve_resume_checkpoint("latest", str(tmp_path))


def test_resume_skips_a_checkpoint_without_optimizer_state_and_ends_on_the_same_weights(workdir, base, reference,
                                                                                        caplog):  # fmt: skip
    out = _interrupted_copy(reference, workdir, "no_optimizer")
    (out / "checkpoint-4" / "optimizer.pt").unlink()
    _train(workdir, base, "no_optimizer", "--resume_from_checkpoint", "true")
    assert "Not resuming from" in caplog.text and "checkpoint-4: optimizer.pt missing" in caplog.text
    for name, tensor in weights(reference).items():
        assert torch.equal(weights(out)[name], tensor), name


def test_resume_refuses_another_global_batch_naming_what_changed(workdir, base, reference):
    out = _interrupted_copy(reference, workdir, "other_batch")
    with pytest.raises(CheckpointNotResumable) as refused:
        _train(workdir, base, "other_batch", "--resume_from_checkpoint", "true", per_device_train_batch_size=8)
    message = str(refused.value)
    assert "checkpoint-4: it was trained with a global batch of 4 (1 processes x 4 per device x 1 accumulation)" in (
        message
    )
    assert "this run has 8 (1 processes x 8 per device x 1 accumulation) (per_device_train_batch_size changed)" in (
        message
    )
    assert not (out / "checkpoint-6").exists()


def test_resume_with_the_same_global_batch_split_otherwise_continues_at_the_same_sample(workdir, base, reference):
    """batch 4 -> batch 2 x 2 accumulation: the same 4 samples per step, so the same weights (up to float rounding
    of the summed micro-batches)."""
    out = _interrupted_copy(reference, workdir, "accumulated")
    _train(workdir, base, "accumulated", "--resume_from_checkpoint", "true", per_device_train_batch_size=2,
           gradient_accumulation_steps=2)  # fmt: skip
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
    for name, tensor in weights(reference).items():
        torch.testing.assert_close(weights(out)[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_resuming_a_finished_run_trains_nothing(workdir, base, reference):
    out = _interrupted_copy(reference, workdir, "finished", keep=("checkpoint-6",))
    with pytest.raises(SystemExit) as exited:
        _train(workdir, base, "finished", "--resume_from_checkpoint", "true")
    assert exited.value.code == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-6"]


def _corrupt(safetensors_file, offset=64):
    """8 bytes of 0xFF into the tensor data (past the header): they read back as NaN."""
    import struct

    data = bytearray(safetensors_file.read_bytes())
    start = 8 + struct.unpack("<Q", data[:8])[0] + offset
    data[start : start + 8] = b"\xff" * 8
    safetensors_file.write_bytes(bytes(data))


def test_corrupt_weights_are_refused_wherever_they_are_read(workdir, reference, tmp_path):
    from minimind_hf.chat import load_model_for_chat
    from minimind_hf.convert import convert
    from minimind_hf.errors import CheckpointError

    model_dir = tmp_path / "model"
    shutil.copytree(reference, model_dir, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    _corrupt(model_dir / "model.safetensors")
    with pytest.raises(CheckpointError, match="holds NaN/inf values: the weights file is corrupt"):
        load_model_for_chat(str(model_dir))
    with pytest.raises(CheckpointError, match="holds NaN/inf values: the file is corrupt"):
        convert(model_dir, tmp_path / "out.pth", to="native")
    checkpoint = tmp_path / "checkpoint-4"
    shutil.copytree(reference / "checkpoint-4", checkpoint)
    _corrupt(checkpoint / "model.safetensors")
    assert "model.safetensors: " in checkpoint_problem(checkpoint) and "holds NaN/inf" in checkpoint_problem(
        checkpoint
    )


def test_resume_is_quiet_about_the_tied_head_and_loud_about_a_really_missing_key(workdir, base, reference, caplog):
    out = _interrupted_copy(reference, workdir, "renamed_key")
    _train(workdir, base, "renamed_key_ok", "--resume_from_checkpoint", str(out / "checkpoint-2"))
    assert "Resuming from" not in caplog.text and "checkpoint-2" in caplog.text
    assert "There were missing keys" not in caplog.text  # the tied lm_head is tied back quietly
    caplog.clear()
    weights_file = out / "checkpoint-4" / "model.safetensors"
    data = weights_file.read_bytes()
    weights_file.write_bytes(data.replace(b"model.embed_tokens.weight", b"model.embed_tokenz.weight", 1))
    _train(workdir, base, "renamed_key", "--resume_from_checkpoint", "true")
    assert "There were missing keys in the checkpoint model loaded: ['model.embed_tokens.weight'" in caplog.text
