"""Refiner training: the loss falls on a fixed batch, checkpoints are complete, and --resume continues exactly."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, load_refiner
from splatent_viewer.refiner_training import train
from splatent_viewer.refiner_training.dataset import RefinerDataset, latent_statistics
from splatent_viewer.refiner_training.train import (
    RefinerTrainConfig,
    latest_checkpoint,
    lr_factor,
    save_checkpoint,
    train_refiner,
)

TINY_UNET = EmbeddedUNetConfig(block_out_channels=(32,), attention_from_level=1)


def _config(dataset, output, **overrides) -> RefinerTrainConfig:
    # Scene "c" has one sample: with whole frames, no flips and a fixed k every batch is the same.
    base = dict(
        dataset=dataset,
        output=output,
        scenes=("c",),
        embedded=TINY_UNET,
        crop=8,
        flip=False,
        k=2,
        batch_size=1,
        lr=1e-3,
        warmup_steps=2,
        device="cpu",
        checkpoint_every=100,
    )
    return RefinerTrainConfig(**{**base, **overrides})


def test_training_lowers_the_loss_and_resume_continues_exactly(refiner_dataset_dir, tmp_path, monkeypatch):
    full = train_refiner(_config(refiner_dataset_dir, tmp_path / "full", steps=4, lr_schedule="cosine"), progress=False)
    totals = [row["total"] for row in full.log]
    assert [row["step"] for row in full.log] == [1, 2, 3, 4]
    assert totals[-1] < 0.97 * totals[0], totals
    assert all({"latent", "image", "ssim", "total"} <= set(row) and row["k"] == 2 for row in full.log)
    logged = json.loads((tmp_path / "full" / "train_log.json").read_text())
    assert [row["total"] for row in logged["steps"]] == totals and logged["lpips"] is False

    # The refiner's normalisation is fitted to the training scenes' target latents.
    refiner = load_refiner(full.refiner_dir)
    mean, std = latent_statistics(RefinerDataset(refiner_dataset_dir, scenes=["c"]))
    torch.testing.assert_close(torch.tensor(refiner.config.latent_shift), mean)
    torch.testing.assert_close(torch.tensor(refiner.config.latent_scale), 1.0 / std)

    # A run of 4 steps that dies after its step-2 checkpoint, resumed: same losses and weights as the uninterrupted
    # run (optimizer state restored, the cosine schedule continues from step 2).
    def crash_after_checkpoint(**kwargs):
        save_checkpoint(**kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "save_checkpoint", crash_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_refiner(
            _config(refiner_dataset_dir, tmp_path / "split", steps=4, checkpoint_every=2, lr_schedule="cosine"),
            progress=False,
        )
    monkeypatch.undo()
    checkpoint = latest_checkpoint(tmp_path / "split")
    assert checkpoint.name == "step-000002" and json.loads((checkpoint / "state.json").read_text()) == {"step": 2}
    assert any(k.endswith(".exp_avg_sq") for k in load_file(str(checkpoint / "optimizer.safetensors")))
    resumed = train_refiner(
        _config(refiner_dataset_dir, tmp_path / "split", steps=4, resume=True, lr_schedule="cosine"), progress=False
    )
    assert [row["step"] for row in resumed.log] == [1, 2, 3, 4]
    assert [row["total"] for row in resumed.log] == pytest.approx(totals, rel=1e-4)
    a, b = load_refiner(full.refiner_dir).state_dict(), load_refiner(resumed.refiner_dir).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    assert latest_checkpoint(tmp_path / "split").name == "step-000004"


def test_training_refuses_bad_reference_counts(refiner_dataset_dir, tmp_path):
    with pytest.raises(SplatentError, match="--k 4"):
        train_refiner(_config(refiner_dataset_dir, tmp_path / "o", steps=1, k=4, num_references=3), progress=False)
    with pytest.raises(SplatentError, match="--backbone sd-turbo needs --base"):
        train_refiner(_config(refiner_dataset_dir, tmp_path / "o", steps=1, backbone="sd-turbo"), progress=False)


def test_guided_training_needs_a_dataset_with_rgb_guides(refiner_dataset_dir, tmp_path):
    from splatent_viewer.refiner_training.dataset import RefinerDataset

    assert not RefinerDataset(refiner_dataset_dir).has_guides  # the fixture's samples are hand-made, without guides
    with pytest.raises(SplatentError, match="no RGB guides"):
        train_refiner(_config(refiner_dataset_dir, tmp_path / "o", steps=1, guided=True), progress=False)


def test_max_seconds_stops_early_and_still_saves_the_refiner(refiner_dataset_dir, tmp_path):
    result = train_refiner(_config(refiner_dataset_dir, tmp_path / "o", steps=50, max_seconds=0.0), progress=False)
    assert result.steps_done == 1 and [row["step"] for row in result.log] == [1]
    logged = json.loads((tmp_path / "o" / "train_log.json").read_text())
    assert logged["steps_done"] == 1 and len(logged["steps"]) == 1
    assert latest_checkpoint(tmp_path / "o").name == "step-000001"
    refiner = load_refiner(result.refiner_dir)  # written, and trained for that one step (no longer the identity)
    assert any(p.abs().sum() > 0 for n, p in refiner.named_parameters() if "conv_out" in n)


def test_cosine_schedule_warms_up_decays_to_the_floor_and_follows_the_time_budget():
    config = RefinerTrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1)
    factors = [lr_factor(step=s, config=config) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[60] == pytest.approx(0.55)  # half-way through the decay
    assert all(a >= b for a, b in zip(factors[10:], factors[11:])) and factors[-1] > 0.1
    assert lr_factor(step=110, config=config) == pytest.approx(0.1)
    # Time budget: at half of --max-seconds the rate is half-way down, whatever the step count says.
    assert lr_factor(step=20, config=config, time_used=0.5) == pytest.approx(0.55)
    assert lr_factor(step=20, config=config, time_used=1.5) == pytest.approx(0.1)
    constant = RefinerTrainConfig(steps=110, warmup_steps=10, lr_schedule="constant")
    assert [lr_factor(step=s, config=constant, time_used=0.9) for s in (0, 9, 50, 109)] == pytest.approx([0.1, 1, 1, 1])


def test_a_time_capped_run_ends_at_the_low_learning_rate(refiner_dataset_dir, tmp_path, monkeypatch):
    clock = {"now": 0.0}

    def perf_counter():  # every call is one second later
        clock["now"] += 1.0
        return clock["now"]

    monkeypatch.setattr(train, "time", SimpleNamespace(perf_counter=perf_counter))
    config = _config(
        refiner_dataset_dir,
        tmp_path / "o",
        steps=1000,
        warmup_steps=1,
        lr=1e-3,
        max_seconds=4.0,
        lr_schedule="cosine",
        min_lr_ratio=0.0,
    )
    result = train_refiner(config, progress=False)
    lrs = [row["lr"] for row in result.log]
    assert result.steps_done == 4 and lrs[0] == pytest.approx(1e-3)
    # One clock read per step: the rows carry it, and the mean step after the first is one (fake) second.
    assert [row["seconds"] for row in result.log] == [1.0, 2.0, 3.0, 4.0] and result.step_seconds == 1.0
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.75)))


def test_training_prints_plain_progress_lines_when_not_on_a_terminal(refiner_dataset_dir, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from splatent_viewer.refiner_training import train as train_module

    out = io.StringIO()
    monkeypatch.setattr(train_module, "CONSOLE", Console(file=out, force_terminal=False, width=100))
    train_refiner(_config(refiner_dataset_dir, tmp_path / "r", steps=20), progress=True)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("training refiner ")]
    assert len(lines) >= 3 and lines[-1].startswith("training refiner 20/20 (100%)"), out.getvalue()


def test_time_checkpoints_leave_points_behind_when_the_budget_ends_the_run(refiner_dataset_dir, tmp_path, monkeypatch):
    # a clock that advances one second a reading: the budget of 8 s ends the run after 8 steps
    clock = iter(range(10_000))
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(next(clock)))
    config = _config(
        refiner_dataset_dir, tmp_path / "t", steps=100, max_seconds=8.0, time_checkpoints=4, keep_checkpoints=10
    )
    result = train_refiner(config, progress=False)
    assert result.steps_done == 8
    # after each quarter of the budget (steps 2, 4, 6) and the end; none from checkpoint_every (100)
    assert [step for step, _ in train.checkpoints(tmp_path / "t")] == [2, 4, 6, 8]
    untimed = train_refiner(_config(refiner_dataset_dir, tmp_path / "u", steps=8, keep_checkpoints=10), progress=False)
    assert untimed.steps_done == 8 and [step for step, _ in train.checkpoints(tmp_path / "u")] == [8]
