"""Divergence and precision guards (minimind_hf.guards): a run that goes NaN stops at once, names the step and the last
good checkpoint, and never writes (or rotates in) non-finite weights; a loss spike stops it when asked; float16
settings that cannot work on CPU are refused before anything runs."""

import runpy

import pytest
import torch
from sft_testing import RECIPE, make_base_model, make_sft_data, weights, write_config
from transformers.modeling_outputs import CausalLMOutput

import minimind_hf  # noqa: F401  (registers MiniMind)
from minimind_hf.arguments import parse_args
from minimind_hf.checkpoints import checkpoint_problem
from minimind_hf.guards import TrainingGuard, TrainingStopped, check_finite_weights


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("guards")


@pytest.fixture(scope="module")
def base_model(workdir):
    return make_base_model(workdir / "base")


def test_divergence_stops_at_the_step_keeping_the_last_good_checkpoint(workdir, base_model):
    """learning_rate 1e3 without clipping: the gradient goes NaN at step 10. Trainer alone logs loss 0, saves NaN
    checkpoints (rotating the good one out at save_total_limit 1) and a NaN final model, and exits 0."""
    out = workdir / "diverged"
    config = write_config(workdir / "diverge.yaml", model_name_or_path=base_model, output_dir=out,
                          dataset_name=make_sft_data(workdir / "data.jsonl", 16), per_device_train_batch_size=2,
                          max_steps=40, learning_rate=1e3, max_grad_norm=0, lr_scheduler_type="constant",
                          lr_scheduler_kwargs={}, save_strategy="steps", save_steps=3, save_total_limit=1)  # fmt: skip
    main = runpy.run_path(str(RECIPE))["main"]
    with pytest.raises(TrainingStopped) as stopped:
        main(*parse_args([str(config)]))
    message = str(stopped.value)
    assert "Training stopped at step 10: the gradient norm is NaN/inf" in message
    assert f"the last good checkpoint is {out / 'checkpoint-9'}" in message
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-9"]
    assert checkpoint_problem(out / "checkpoint-9") is None
    assert all(torch.isfinite(t).all() for t in weights(out / "checkpoint-9").values())
    assert not (out / "model.safetensors").exists()  # no final model from a diverged run


class _LossModule(torch.nn.Module):
    """Stands in for the model: returns the loss it is given, as a model output."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))

    def forward(self, loss):
        return CausalLMOutput(loss=loss * self.weight.sum() / 2)


def _steps(guard, losses, args, tmp_path):
    from transformers import TrainerControl, TrainerState

    model, state = _LossModule(), TrainerState()
    guard.on_train_begin(args, state, TrainerControl(), model=model)
    for loss in losses:
        model(torch.tensor(loss)).loss.backward()
        guard.on_pre_optimizer_step(args, state, TrainerControl(), model=model)
        model.zero_grad()
        state.global_step += 1
    return state.global_step


def test_loss_spike_guard_is_opt_in(tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    losses = [2.0 + 0.01 * (i % 3) for i in range(25)] + [9.0, 2.0]
    assert _steps(TrainingGuard(), losses, args, tmp_path) == len(losses)  # off by default
    with pytest.raises(TrainingStopped, match=r"step 26: the loss 9 is 4\.5x the median 2\.01 of the last 20"):
        _steps(TrainingGuard(loss_spike_factor=3.0), losses, args, tmp_path)
    with pytest.raises(TrainingStopped, match="step 3: the loss is NaN/inf"):
        _steps(TrainingGuard(), [2.0, 2.0, float("inf")], args, tmp_path)


def test_non_finite_weights_are_never_saved(tiny_config):
    model = minimind_hf.MiniMindForCausalLM(tiny_config)
    check_finite_weights(model, "the final model")
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(TrainingStopped, match="Not saving the final model: parameter model.layers.1.mlp.up_proj"):
        check_finite_weights(model, "the final model")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--fp16", "true"], "fp16: float16 mixed precision needs a GPU"),
        (["--dtype", "float16"], "dtype: float16 weights overflow to NaN"),
    ],  # fmt: skip
)
def test_float16_on_cpu_is_refused_up_front(tmp_path, base_model, overrides, message):
    config = write_config(tmp_path / "fp16.yaml", model_name_or_path=base_model, dataset_name="unused.jsonl",
                          output_dir=tmp_path / "out")  # fmt: skip
    with pytest.raises(ValueError, match=message):
        parse_args([str(config), *overrides])
