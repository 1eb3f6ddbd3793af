"""Scene adaptation: leave-some-out units of a run's training views, a fine-tuned refiner written into the run, and
no held-out view (image or pose) anywhere near the adaptation data."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from splatent_viewer.data.scene import Scene, load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.refine.checkpoint import load_refiner
from splatent_viewer.refine.refiner import guided_from
from splatent_viewer.refiner_training import build_dataset
from splatent_viewer.refiner_training.adapt import (
    AdaptationConfig,
    AdaptConfig,
    adapt_refiner,
    held_out_unit,
    leave_some_out_folds,
)
from splatent_viewer.refiner_training.dataset import read_index
from splatent_viewer.trained import ADAPTATION_RECORD, ADAPTED_REFINER_DIR, load_trained_scene


def test_folds_cover_the_training_views_once() -> None:
    views = [0, 2, 3, 5, 7, 8, 9]
    folds = leave_some_out_folds(views, 3)
    assert sorted(v for f in folds for v in f) == views and all(folds)
    with pytest.raises(SplatentError, match="--folds"):
        leave_some_out_folds(views, 1)
    with pytest.raises(SplatentError, match="fewer than --folds"):
        leave_some_out_folds(views[:2], 3)


def test_adaptation_sees_only_training_views_and_writes_the_refiner_into_the_run(
    tiny_trained_scene_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    before = load_trained_scene(run, refiner="auto")
    scene = load_scene(before.scene_path, size_multiple=8)
    train = list(before.train_indices)
    held_out = sorted(set(range(len(scene))) - set(train))
    assert held_out  # the tiny scene holds one view out

    loaded_images: list[int] = []
    original_load = Scene.load_image

    def recording_load(self: Scene, i: int) -> torch.Tensor:
        loaded_images.append(int(i))
        return original_load(self, i)

    rendered_poses: list[torch.Tensor] = []
    original_render = build_dataset.render_frame

    def recording_render(**kwargs):
        rendered_poses.append(kwargs["c2w"].detach().cpu().float())
        return original_render(**kwargs)

    monkeypatch.setattr(Scene, "load_image", recording_load)
    monkeypatch.setattr(build_dataset, "render_frame", recording_render)
    settings = AdaptationConfig(folds=2, unit_steps=15, steps=3, batch_size=2)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    monkeypatch.undo()

    # Only training views were read, rendered, used as references or as targets.
    assert loaded_images and not set(loaded_images) & set(held_out)
    eval_poses = scene.camera_to_worlds[held_out]
    for pose in rendered_poses:
        assert (pose - eval_poses).abs().amax(dim=(-1, -2)).min() > 1e-3, "a held-out pose was rendered"
    index = read_index(run / "adaptation" / "dataset")
    assert {s["view"] for s in index["samples"]} == set(train)  # every training view once, rendered by a unit
    assert all(set(s["ref_views"]) <= set(train) for s in index["samples"])
    assert all(set(u["train_views"]) <= set(train) for u in index["units"])
    assert result.samples == len(train) and result.steps == 3

    adapted = load_trained_scene(run, refiner="auto")  # the default of the viewer and splatent-render
    assert result.refiner == run / ADAPTED_REFINER_DIR and adapted.refiner is not None and adapted.refiner.config.guided
    assert adapted.refiner.config.residual and adapted.refiner.config.correction_blur == settings.correction_blur == 1.0
    assert before.refiner.config.guided and "generic (shipped)" in before.refiner_label  # the shipped one, made guided
    assert load_trained_scene(run, refiner="embedded").refiner.config.guided is False
    assert not list(run.glob(f".{ADAPTED_REFINER_DIR}*"))  # no staging folder left

    # The last fold's unit was held out of the fine-tuning and scored both refiners; the record says which one the run has.
    assert result.validation is not None and result.validation["unit"] == "fold-1"
    # it was built first, its Gaussians trained as long as the run's (150 steps; at most 4 × the units' 15)
    assert [(u["key"], u["steps"]) for u in index["units"]] == [("fold-1", 60), ("fold-0", 15)]
    assert result.validation["unit_steps"] == 60 and held_out_unit(index) == "fold-1"  # what benchmarks hold out
    assert result.validation["views"] == len([s for s in index["samples"] if s["unit"] == "fold-1"])
    log = json.loads((run / "adaptation" / "train" / "train_log.json").read_text())
    assert log["config"]["exclude_units"] == ["fold-1"]
    record = json.loads((run / ADAPTATION_RECORD).read_text())
    assert record["kept"] == result.validation["kept"] and record["validation"] == result.validation
    assert record["correction_blur"] == 1.0
    # The do-no-harm guard: the run's own renders of training views, each referencing other training views only.
    run_check = read_index(run / "adaptation" / "run_check")
    assert run_check["samples"] and {s["view"] for s in run_check["samples"]} <= set(train)
    assert all(set(s["ref_views"]) <= set(train) - {s["view"]} for s in run_check["samples"])
    assert result.validation["guard"] == {"views": len(run_check["samples"]), "tolerance": 0.0}
    assert all(c["guard_psnr"] is not None for c in result.validation["candidates"] if c["psnr"] is not None)
    # the validation's seconds are a part of the fine-tuning phase's
    assert 0 < record["seconds"]["validation"] <= record["seconds"]["fine_tune"] and record["seconds"] == result.seconds


def test_validation_keeps_the_start_when_fine_tuning_hurts(tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    # a learning rate that wrecks the refiner in 3 steps: the held-out unit must catch it
    settings = AdaptationConfig(folds=2, unit_steps=15, steps=3, batch_size=2, lr=1.0)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    assert result.validation is not None
    adapted_psnr, start_psnr = result.validation["adapted_psnr"], result.validation["start_psnr"]
    assert start_psnr is not None and (adapted_psnr is None or adapted_psnr < start_psnr)  # None: it diverged
    assert result.validation["kept"] == "start"
    start = guided_from(load_refiner("embedded", device="cpu", dtype=torch.float32))  # the shipped body, guided
    kept = load_refiner(run / ADAPTED_REFINER_DIR, device="cpu", dtype=torch.float32)
    assert kept.config.guided and kept.state_dict().keys() == start.state_dict().keys()
    assert all(torch.equal(v, kept.state_dict()[k]) for k, v in start.state_dict().items())
    scene = load_trained_scene(run, refiner="auto")
    assert scene.refiner_label.startswith("start weights (adaptation did not beat them")


def test_a_run_without_its_scene_folder_is_refused_with_the_fix(tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    from splatent_viewer.splats.io import load_splats, save_splats

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    splats = load_splats(run / "splats.safetensors")
    extra = {**splats.extra, "scene": str(tmp_path / "gone")}
    save_splats(
        path=run / "splats.safetensors",
        params=splats.params,
        codec=splats.codec,
        sh_degree=splats.sh_degree,
        extra=extra,
    )
    with pytest.raises(SplatentError, match="no longer exists"):
        adapt_refiner(AdaptConfig(load_config=run, device="cpu"), progress=False)


def test_a_fresh_start_is_guided_and_only_this_scene_shapes_it(tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    with pytest.raises(SplatentError, match="--refiner fresh"):
        adapt_refiner(
            AdaptConfig(load_config=run, adaptation=AdaptationConfig(refiner="fresh", guided=False), device="cpu"),
            progress=False,
        )
    settings = AdaptationConfig(refiner="fresh", folds=2, unit_steps=10, steps=2, batch_size=2)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    adapted = load_trained_scene(run, refiner="auto").refiner
    shipped = load_trained_scene(run, refiner="embedded").refiner
    assert result.steps == 2 and adapted is not None and shipped is not None and adapted.config.guided
    # a new body, not the shipped refiner's: its first convolution differs in the channels both have
    key = "backbone.unet.conv_in.weight"
    base = shipped.state_dict()[key].float()
    first = adapted.state_dict()[key].float()[:, : base.shape[1]]
    assert first.shape != base.shape or not torch.allclose(first, base)


def test_a_residual_adaptation_starts_as_the_rgb_splats(tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    """--residual: the units keep their RGB splats, the fine-tuned refiner enhances them, and its start scores exactly
    the RGB splats on the validation unit (no codec round trip)."""
    from splatent_viewer.refiner_training.dataset import RefinerDataset

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    settings = AdaptationConfig(residual=True, folds=2, unit_steps=10, steps=2, batch_size=2)
    adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    dataset = RefinerDataset(run / "adaptation" / "dataset")
    assert dataset.has_rgb and dataset.has_guides
    item = dataset[0]
    assert item["rgb"].shape == item["image"].shape
    record = json.loads((run / ADAPTATION_RECORD).read_text())
    assert record["residual"] is True
    # a residual refiner fine-tunes on the enhanced view's losses alone (no latent target) unless told otherwise
    train_log = json.loads((run / "adaptation" / "train" / "train_log.json").read_text())
    assert train_log["config"]["latent_weight"] == record["latent_weight"] == 0.0
    assert AdaptationConfig(residual=False).fine_tuning_latent_weight() == 1.0
    assert AdaptationConfig(residual=True, latent_weight=0.5).fine_tuning_latent_weight() == 0.5
    adapted = load_trained_scene(run, refiner="auto").refiner
    assert adapted is not None and adapted.config.guided and adapted.config.residual
    validation = record["validation"]
    held = [m for m in read_index(run / "adaptation" / "dataset")["samples"] if m["unit"] == validation["unit"]]
    rgb_psnr = sum(m["rgb_psnr"] for m in held) / len(held)
    start = next(c for c in validation["candidates"] if c["alpha"] == 0)
    assert start["psnr"] == pytest.approx(rgb_psnr, abs=0.05)  # the RGB splats (stored as 8-bit)


def test_units_leave_the_fine_tuning_its_share_of_the_time_budget(
    tiny_trained_scene_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from splatent_viewer.refiner_training import adapt

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    clock = SimpleNamespace(now=0.0)
    real_unit_samples = adapt.unit_samples

    def slow_unit(**kwargs):  # every unit "takes" 100 s on adaptation's clock
        clock.now += 100.0
        return real_unit_samples(**kwargs)

    monkeypatch.setattr(adapt, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    monkeypatch.setattr(adapt, "unit_samples", slow_unit)
    settings = AdaptationConfig(
        folds=3, unit_steps=3, validation_steps=3, steps=2, batch_size=2, max_seconds=300.0, units_share=0.5,
        validate=False,
    )  # fmt: skip
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    # unit 1 ends at 100 s; unit 2 would end at ~200 s > 50 % of 300 s: not started, the fine-tuning keeps ~200 s
    assert [u["key"] for u in read_index(run / "adaptation" / "dataset")["units"]] == ["fold-0"]
    assert result.steps == 2 and result.seconds["units"] == 100.0
    # with validation (the default) one unit leaves nothing to check a fine-tuning against: the start is kept as is
    shutil.rmtree(run / "adaptation")
    checked = replace(settings, validate=True)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=checked, device="cpu"), progress=False)
    record = json.loads((run / ADAPTATION_RECORD).read_text())
    assert result.steps == 0 and record["kept"] == "start" and record["validation"] is None
    scene = load_trained_scene(run, refiner="auto")
    assert scene.refiner is not None and "not fine-tuned" in scene.refiner_label
    start = guided_from(load_refiner("embedded"), residual=True)
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in scene.refiner.state_dict().items())
    with pytest.raises(SplatentError, match="--units-share"):
        adapt_refiner(
            AdaptConfig(load_config=run, adaptation=AdaptationConfig(units_share=0.0), device="cpu"), progress=False
        )


def test_choose_candidate_takes_the_best_psnr_then_ssim_within_the_tolerance() -> None:
    from splatent_viewer.refiner_training.adapt import choose_candidate

    start = {"alpha": 0.0, "psnr": 18.874, "ssim": 0.476}
    tuned = {"alpha": 1.0, "psnr": 18.599, "ssim": 0.491}
    quarter = {"alpha": 0.25, "psnr": 18.870, "ssim": 0.482}  # the CPU demo's held-out unit, 25 steps
    half = {"alpha": 0.5, "psnr": 18.819, "ssim": 0.487}
    diverged = {"alpha": 0.75, "psnr": None, "ssim": None}
    candidates = [start, tuned, quarter, half, diverged]
    assert choose_candidate(candidates, psnr_tolerance=0.0) is start  # PSNR alone
    assert choose_candidate(candidates, psnr_tolerance=0.02) is quarter  # 0.004 dB for +0.006 SSIM
    assert choose_candidate(candidates, psnr_tolerance=0.1) is half
    assert choose_candidate([start, {**quarter, "ssim": 0.476}], psnr_tolerance=0.02) is start  # tie: the start
    assert choose_candidate([diverged, tuned], psnr_tolerance=0.02) is tuned
    early = {**tuned, "step": 100, "early": True}
    assert choose_candidate([{**tuned, "step": 400}, early], psnr_tolerance=0.0) is early  # tie: the earlier step


def test_the_guard_rejects_candidates_that_lower_the_runs_own_renders() -> None:
    from splatent_viewer.refiner_training.adapt import choose_guarded

    start = {"alpha": 0.0, "step": 0, "psnr": 21.45, "ssim": 0.772, "guard_psnr": 30.00}
    tuned = {"alpha": 1.0, "step": 300, "psnr": 23.61, "ssim": 0.795, "guard_psnr": 29.20}  # best on the unit
    half = {"alpha": 0.5, "step": 300, "psnr": 23.10, "ssim": 0.787, "guard_psnr": 29.97}
    assert choose_guarded([start, tuned, half], psnr_tolerance=0.02, guard_tolerance=0.05) is half
    assert [c["guard_ok"] for c in (start, tuned, half)] == [True, False, True]
    assert choose_guarded([start, tuned], psnr_tolerance=0.02, guard_tolerance=0.05) is start
    assert choose_guarded([start, tuned], psnr_tolerance=0.02, guard_tolerance=1.0) is tuned
    diverged = {"alpha": 1.0, "step": 300, "psnr": None, "ssim": None, "guard_psnr": None}
    assert choose_guarded([start, diverged], psnr_tolerance=0.02, guard_tolerance=0.05) is start
    assert diverged["guard_ok"] is False
    unguarded = [{**start, "guard_psnr": None}, {**tuned, "guard_psnr": None}]  # no guard: the unit alone decides
    assert choose_guarded(unguarded, psnr_tolerance=0.02, guard_tolerance=0.05) is unguarded[1]


def test_evenly_spaced_views_spans_the_views() -> None:
    from splatent_viewer.refiner_training.build_dataset import evenly_spaced_views

    views = [0, 2, 3, 5, 7, 8, 9, 11, 12]
    assert evenly_spaced_views(views, 3) == [0, 7, 12]
    assert evenly_spaced_views(views, 20) == views
    assert evenly_spaced_views(views, 1) == [0] and evenly_spaced_views(views, 0) == []


def test_interpolate_refiners_lerps_every_weight() -> None:
    from splatent_viewer.refiner_training.adapt import interpolate_refiners

    start = guided_from(load_refiner("embedded", device="cpu", dtype=torch.float32))
    tuned = guided_from(load_refiner("embedded", device="cpu", dtype=torch.float32))
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(torch.randn_like(p))
    a, b = start.state_dict(), tuned.state_dict()
    for alpha in (0.0, 0.25, 1.0):
        mixed = interpolate_refiners(start, tuned, alpha).state_dict()
        for k in a:
            torch.testing.assert_close(mixed[k], a[k] + alpha * (b[k] - a[k]), rtol=1e-5, atol=1e-5)
    assert interpolate_refiners(start, tuned, 0.5).config == tuned.config


def test_an_interpolated_adaptation_is_named_in_the_stats_label(tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    settings = AdaptationConfig(folds=2, unit_steps=15, steps=1, batch_size=2)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    assert result.validation is not None
    assert [c["alpha"] for c in result.validation["candidates"]] == [0.0, 1.0, 0.25, 0.5]
    record = json.loads((run / ADAPTATION_RECORD).read_text())
    record.update(kept="interpolated", validation={**record["validation"], "kept": "interpolated", "alpha": 0.25})
    (run / ADAPTATION_RECORD).write_text(json.dumps(record))
    label = load_trained_scene(run, refiner="auto").refiner_label
    assert label.startswith("adapted to this scene (0.25 of the way from the start to the fine-tuned weights)")
    # the start kept because the guard rejected what the held-out unit preferred: the label says so
    validation = {**record["validation"], "kept": "start", "alpha": 0.0, "unguarded": {"alpha": 1.0, "step": 1}}
    (run / ADAPTATION_RECORD).write_text(json.dumps({**record, "kept": "start", "validation": validation}))
    label = load_trained_scene(run, refiner="auto").refiner_label
    assert label.startswith("start weights (the adapted ones lowered this run's own renders of its training views)")


def test_the_validation_can_stop_the_fine_tuning_early(
    tiny_trained_scene_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each snapshot of the fine-tuning is a validation candidate; the one picked is what the run gets, and the
    checkpoints are pruned to the latest afterwards (a resume needs no more)."""
    from splatent_viewer.refiner_training import adapt
    from splatent_viewer.refiner_training.train import checkpoints

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    seen: dict[int, dict[str, torch.Tensor]] = {}
    real_validate, real_choose = adapt.validate_adaptation, adapt.choose_guarded

    def spying_validate(**kwargs):
        seen.update({step: {k: v.clone() for k, v in r.state_dict().items()} for step, r in kwargs["earlier"]})
        return real_validate(**kwargs)

    def choose_step_two(candidates, *, psnr_tolerance, guard_tolerance):
        real_choose(candidates, psnr_tolerance=psnr_tolerance, guard_tolerance=guard_tolerance)  # real scores
        return next(c for c in candidates if c["step"] == 2)  # the pick is forced to step 2

    monkeypatch.setattr(adapt, "validate_adaptation", spying_validate)
    monkeypatch.setattr(adapt, "choose_guarded", choose_step_two)
    settings = AdaptationConfig(folds=2, unit_steps=15, steps=4, batch_size=2, snapshots=4)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    monkeypatch.undo()

    assert result.validation is not None and result.steps == 4
    assert [(c["alpha"], c["step"], c["early"]) for c in result.validation["candidates"]] == [
        (0.0, 0, False), (1.0, 4, False), (0.25, 4, False), (0.5, 4, False),
        (1.0, 1, True), (1.0, 2, True), (1.0, 3, True),
    ]  # fmt: skip
    assert all(c["psnr"] is not None for c in result.validation["candidates"])
    assert result.validation["kept"] == "stopped early" and result.validation["step"] == 2
    assert sorted(seen) == [1, 2, 3]
    written = load_refiner(run / ADAPTED_REFINER_DIR, device="cpu", dtype=torch.float32).state_dict()
    assert all(torch.equal(written[k], v) for k, v in seen[2].items())
    assert not all(torch.equal(written[k], v) for k, v in seen[3].items())
    assert [step for step, _ in checkpoints(run / "adaptation" / "train")] == [4]
    label = load_trained_scene(run, refiner="auto").refiner_label
    assert label.startswith("adapted to this scene (stopped early, at step 2 of 4)")


def test_anchor_views_add_the_runs_own_renders_of_other_training_views_to_the_fine_tuning(
    tiny_trained_scene_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    train = list(load_trained_scene(run, refiner="none").train_indices)
    settings = AdaptationConfig(folds=2, unit_steps=15, steps=2, batch_size=2, guard_views=3, anchor_views=4)
    result = adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    index = read_index(run / "adaptation" / "dataset")
    anchors = [s for s in index["samples"] if s["unit"] == "run-anchor"]
    guarded = {s["view"] for s in read_index(run / "adaptation" / "run_check")["samples"]}
    assert len(anchors) == 4 and len(guarded) == 3
    assert {s["view"] for s in anchors} <= set(train) - guarded  # training views the guard does not score
    assert all(set(s["ref_views"]) <= set(train) - {s["view"]} for s in anchors)
    # the validation holds out a unit's renders, never the anchors; the fine-tuning trains on the anchors
    assert result.validation is not None and result.validation["unit"] == "fold-1"
    log = json.loads((run / "adaptation" / "train" / "train_log.json").read_text())
    assert log["config"]["exclude_units"] == ["fold-1"]
    assert result.samples == len(train) + 4
    # the same folder adapted again without anchors: the anchors left there are not trained on
    again = replace(settings, anchor_views=0, steps=1)
    adapt_refiner(AdaptConfig(load_config=run, adaptation=again, device="cpu"), progress=False)
    log = json.loads((run / "adaptation" / "train" / "train_log.json").read_text())
    assert log["config"]["exclude_units"] == ["fold-1", "run-anchor"]
