"""Scene adaptation (``splatent-refiner adapt``): fine-tune a run's refiner on that scene's own training views.

A run's held-out views are exactly what the refiner must never see while adapting, so the data comes from the
training views alone, as leave-some-out units:

1. the run's training views are split into ``folds`` interleaved folds;
2. for each fold, the core trainer fits latent Gaussians to the *other* training views and renders the fold's
   views; each becomes a sample (render, target = the view's encoded image, references among the unit's training
   views, and the RGB guide) in a refiner dataset under ``<output>/dataset`` (a unit per fold, resumable);
3. the refiner is fine-tuned on those samples from its starting weights (the shipped refiner by default) for
   ``steps`` steps or the time left in ``max_seconds``, with resumable checkpoints under ``<output>/train``;
4. the result is written into the run as ``refiner_adapted/`` (a whole folder, renamed into place), where
   ``splatent-viewer``, ``splatent-render``, ``ns-eval`` and the viewer's export panel find it by default
   (``--refiner auto``).
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
import tyro

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.codecs import LatentCodec
from splatent_viewer.data.fit import FitMode
from splatent_viewer.data.scene import Scene, load_scene
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.errors import SplatentError
from splatent_viewer.progress import track
from splatent_viewer.refine.checkpoint import load_refiner, save_refiner
from splatent_viewer.refine.refiner import Refiner, with_correction_blur
from splatent_viewer.refiner_training.build_dataset import CONSOLE, evenly_spaced_views, heldout_samples, unit_samples
from splatent_viewer.refiner_training.dataset import DatasetWriter, RefinerDataset
from splatent_viewer.refiner_training.evaluate import ALL, evaluate_refiner
from splatent_viewer.refiner_training.train import (
    REFINER_DIR,
    RefinerTrainConfig,
    checkpoints,
    new_refiner,
    prune_checkpoints,
    train_refiner,
)
from splatent_viewer.trained import (
    ADAPTATION_RECORD,
    ADAPTED_REFINER_DIR,
    TrainedScene,
    load_trained_scene,
    run_folder,
)
from splatent_viewer.training.encode import LatentCache
from splatent_viewer.training.trainer import LatentSplatTrainerConfig

ANCHOR_UNIT = "run-anchor"
"""The fine-tuning dataset's unit of the run's own renders (:attr:`AdaptationConfig.anchor_views`)."""


@dataclass
class AdaptationConfig:
    """How a refiner is adapted to one scene (``splatent-refiner adapt``, ``ns-train splatent``'s last phase,
    ``splatent-demo --adapt``)."""

    refiner: str = "embedded"
    """Weights to start from: embedded (the shipped refiner), a refiner folder, or fresh (a new refiner that starts as
    the identity on the RGB guide, so nothing but this scene's training views shapes it; needs --guided)."""
    guided: bool = True
    """Adapt into an RGB-guided refiner (a pure-latent starting refiner keeps its body and starts as the identity on
    the RGB guide); --no-guided keeps the paper's pure-latent refiner."""
    residual: bool = True
    """With guidance: the adapted refiner enhances the RGB splats (``rgb + decode(refined) - decode(guide)``,
    ``RefinerConfig.residual``), so it starts as the RGB splats themselves, not as their codec round trip (fern on
    the GPU: 1.2 dB below them; the CPU demo: adapted 18.87 dB instead of 18.83, benchmarks/RESULTS.md). --no-residual:
    the decoded refined latent."""
    folds: int = 4
    """Leave-some-out units: the training views are split into this many interleaved folds; a unit trains on the other
    folds and renders its own."""
    unit_steps: Optional[int] = None
    """Core-trainer steps per unit (default: 2000 on CUDA, 300 on the CPU)."""
    validation_steps: Optional[int] = None
    """Core-trainer steps of the validation's unit (the fold held out of the fine-tuning; built first). Default: as
    many as the run's own (``TrainedScene.train_steps``), at most 4 × the units' steps; ``unit_steps`` when the run's
    are not known. A unit trained as long as the run renders the views it did not see about as well as the run
    renders its held-out views, so it ranks the candidates as they do: on the CPU demo (run 1200 steps, units 300)
    the same fold rebuilt at 1200 steps scored start / α=0.25 / 0.5 / 1 at 19.60 / 19.62 / 19.60 / 19.44 dB against
    the held-out views' 19.60 / 19.62 / 19.60 / 19.46, where the 300-step fold ranked α=0.5 and α=1 first (18.76 /
    18.75 against the start's 18.68; benchmarks/RESULTS.md)."""
    trainer: LatentSplatTrainerConfig = field(default_factory=LatentSplatTrainerConfig)
    """Core-trainer settings of the units (``unit_steps`` overrides ``trainer.steps``)."""
    steps: int = 400
    """Refiner fine-tuning steps."""
    lr: float = 5e-5
    """Learning rate of the fine-tuning (a quarter of training from scratch)."""
    batch_size: int = 4
    """Samples per fine-tuning step."""
    latent_weight: Optional[float] = None
    """Weight of the latent loss (refined latent vs the encoded image) beside the image losses on the enhanced view
    (``splatent-refiner train --latent-weight``). Default: 0 for residual refiners (their enhanced view is the RGB
    splats plus the decoded change, and the latent target pulls it toward the image's codec round trip: on the CPU
    demo 100 steps scored +0.13 dB on the validation unit without it and −0.36 dB with weight 1; on one H100 a generic
    guided refiner trained with weight 1 lost 1.4–2.2 dB on fern and lego; benchmarks/RESULTS.md), 1 otherwise."""
    max_seconds: Optional[float] = None
    """Time budget for the whole adaptation (units and fine-tuning); the fine-tuning stops (saving as usual) when it is
    spent."""
    units_share: float = 0.7
    """With --max-seconds, the share of it that building units may take: a fine-tuning unit is not started when its
    expected time (the fine-tuning units' mean so far; for the first, the validation unit's scaled by the steps)
    would overrun it (the validation's unit always is), so the fine-tuning keeps the rest. (Without it, a CPU run
    spent 471 of its 420 s on units and fine-tuned for one step.) 0.7 since the validation unit trains as long as the
    run (on one H100 a 2000-step unit took ~25 s, the run's 7000 steps ~80 s, the 400 fine-tuning steps ~30 s)."""
    validate: bool = True
    """Hold the last fold's unit (built first, its Gaussians trained ``validation_steps``) out of the fine-tuning and
    score the starting refiner, the fine-tuned one, their interpolations (``interpolations``) and the fine-tuning's
    earlier points (``snapshots``) on its renders (enhanced PSNR / SSIM against the images, the refiner's own number
    of references): the run gets the candidate with the best
    PSNR, the best SSIM among those within ``psnr_tolerance`` of it (recorded in ``refiner_adapted.json``). Needs 2
    units: with one (too little time for more) the run keeps the start without fine-tuning — unchecked, 204 steps on
    one 6-view unit lost 0.13 dB on the CPU fern row (benchmarks/RESULTS.md)."""
    interpolations: tuple[float, ...] = (0.25, 0.5)
    """Validation candidates between the start (0) and the fine-tuned weights (1): ``start + α·(fine-tuned − start)``
    for each α (WiSE-FT, Wortsman et al. 2022). Measured on the CPU demo's held-out unit (benchmarks/RESULTS.md): 25
    and 50 fine-tuning steps lose 0.27 / 0.45 dB for +0.014 / +0.012 SSIM; α = 0.25 keeps the PSNR (−0.00 / −0.01
    dB) with +0.006 / +0.008 SSIM."""
    snapshots: int = 4
    """Points of the fine-tuning the validation scores as they are (α = 1): its end and the points after each
    1/snapshots of ``steps`` and of the time budget (4: after ¼, ½, ¾ of either, whichever the fine-tuning reaches; 1:
    the end only), so a fine-tuning that overshoots is stopped where the held-out unit says (early stopping); the end
    is also scored at each of ``interpolations``."""
    psnr_tolerance: float = 0.02
    """Validation candidates within this many dB of the best PSNR count as equal on PSNR, and the higher SSIM among
    them wins (0: PSNR alone decides)."""
    guard_views: int = 8
    """Do no harm: the validation also scores every candidate on the run's own Gaussians, rendering this many of its
    training views (evenly spaced; references among its other training views), and keeps only candidates that do not
    make them worse than the start by more than ``guard_tolerance`` (the start is never rejected). A unit's Gaussians
    see fewer views for fewer steps than the run's, so their renders are weaker (on one H100: dino's validation unit
    21.5 dB, the run's held-out view 25.9 dB) and a refiner that corrects them well can overcorrect the run's. On the
    CPU demo (run 1200 steps, units 300) the unit ranked the fine-tuned end first and it lost 0.22 dB on the held-out
    views; the run's own renders ranked the candidates as the held-out views did and kept α=0.25 (+0.02 dB / +0.004
    SSIM over the RGB splats; benchmarks/RESULTS.md). 0: off. Needs the run's Gaussians (``adapt_to_scene(trained=)``)."""
    guard_tolerance: float = 0.0
    """How many dB below the start a candidate may score on the run's own renders (``guard_views``) and still be
    kept."""
    correction_blur: float = 1.0
    """σ in image pixels of the blur of the adapted refiner's correction (``RefinerConfig.correction_blur``: the
    correction is made on the 1/8 latent grid and its finest detail swims): set on every candidate the validation
    scores and on the refiner written into the run; the fine-tuning itself trains without it. Measured afterwards on
    three CPU runs' adapted refiners (benchmarks/RESULTS.md): σ = 1 px +0.33 dB / +0.009 SSIM on lego (20 test views;
    +1.08 dB over the RGB splats), +0.08 dB on the demo's fine-tuned end, ±0.00 on dino, warped flicker −17 to −20 %;
    σ = 2 and 4 px gave less PSNR. 0: none."""
    anchor_views: int = 0
    """Also fine-tune on the run's own renders of this many of its other training views (evenly spaced among those the
    guard does not score; references among the rest, never the view itself; needs the run's Gaussians): samples where
    the renders are already good, so the refiner learns how little to change there, not only the corrections the
    units' weaker renders need. Rendered once per adaptation folder (a resumed adaptation keeps them). 0: off (the
    units alone; anchors an earlier call left in the folder are not trained on). Measured on the CPU demo (run 1200 steps, units 300, 60
    fine-tuning steps, 16 anchors; benchmarks/RESULTS.md): the fine-tuned end lost 0.03 dB on the held-out views
    instead of 0.22 (SSIM +0.009 over the RGB splats), a safer fine-tuning but no PSNR gain over the RGB splats; not
    yet measured on the GPU, so off by default."""
    seed: int = 0
    """Random seed of the units and the fine-tuning."""

    def fine_tuning_latent_weight(self) -> float:
        """``latent_weight``, or its default: 0 for a residual guided refiner, 1 otherwise."""
        if self.latent_weight is not None:
            return self.latent_weight
        return 0.0 if self.guided and self.residual else 1.0


@dataclass
class AdaptConfig:
    """Fine-tune a run's refiner on the scene's own training views (never its held-out views)."""

    load_config: Path
    """The run: a splatent-demo output folder or an `ns-train splatent` config.yml."""
    adaptation: Annotated[AdaptationConfig, tyro.conf.arg(name="")] = field(default_factory=AdaptationConfig)
    """What is adapted and how (--refiner, --steps, --max-seconds, ...)."""
    fit: FitMode = "crop"
    """How images whose size is not a multiple of the codec's downscale are fitted (as the run was trained)."""
    output: Optional[Path] = None
    """Work folder (dataset + checkpoints). Default: <run folder>/adaptation."""
    resume: bool = False
    """Continue an interrupted fine-tuning from its checkpoints (finished units are kept either way)."""
    device: DeviceName = "auto"
    """Compute device; auto = cuda when available."""

    def interrupted_message(self) -> str:
        """What Ctrl+C leaves behind (printed by the CLI)."""
        work = self.output or run_folder(self.load_config) / "adaptation"
        return (
            f"the finished units and the fine-tuning checkpoints are in {work}: rerun with --resume to continue; "
            "the run's refiner is unchanged"
        )


@dataclass
class AdaptResult:
    """What an adaptation did."""

    refiner: Path
    """The adapted refiner folder inside the run."""
    samples: int
    """Training-view samples it was fine-tuned on."""
    steps: int
    """Fine-tuning steps done."""
    seconds: dict[str, float]
    """Wall seconds of the units and the guard's renders (``units``) and of everything after them (``fine_tune``: the
    training, the validation and writing the refiner), of which the validation took ``validation``."""
    step_seconds: float | None = None
    """Mean wall seconds of a fine-tuning step (None without fine-tuning)."""
    validation: dict | None = None
    """What the validation measured (``unit``, ``views``, ``start_psnr``, ``adapted_psnr`` (None where a refiner
    diverged), ``kept``: start, adapted, interpolated (``alpha``) or stopped early (``step``), ``candidates``); None
    without one."""


def leave_some_out_folds(train_views: list[int], folds: int) -> list[list[int]]:
    """``train_views`` split into ``folds`` interleaved folds (every ``folds``-th view), none empty."""
    if folds < 2:
        raise SplatentError(
            f"--folds must be at least 2 (a unit needs views to train on and views to render), got {folds}."
        )
    if len(train_views) < folds:
        raise SplatentError(
            f"The run has {len(train_views)} training views, fewer than --folds {folds}; use fewer folds."
        )
    return [train_views[f::folds] for f in range(folds)]


def _scene_of(trained: TrainedScene, run: Path) -> tuple[Path, list[int]]:
    if trained.scene_path is None or trained.train_indices is None:
        raise SplatentError(
            f"Run {run} does not record its scene folder and training views; scene adaptation needs "
            "them (re-create it with splatent-demo or ns-train splatent)."
        )
    if not Path(trained.scene_path).exists():
        raise SplatentError(
            f"Run {run} was trained on {trained.scene_path}, which no longer exists; restore the scene "
            "folder (adaptation re-reads its training views)."
        )
    return Path(trained.scene_path), [int(i) for i in trained.train_indices]


def unit_trainer(config: AdaptationConfig, *, device: torch.device) -> LatentSplatTrainerConfig:
    """The core-trainer settings of the fine-tuning's units on ``device`` (``config.trainer`` with ``unit_steps``;
    on the CPU without densification and with the RGB pass at half resolution at most)."""
    on_cpu = device.type == "cpu"
    trainer = replace(
        config.trainer,
        steps=config.unit_steps or (300 if on_cpu else 2000),
        densify=config.trainer.densify and not on_cpu,
    )
    if on_cpu:
        trainer.rgb_downscale = max(trainer.rgb_downscale, 2)
    return trainer


def adapt_refiner(config: AdaptConfig, *, progress: bool = True) -> AdaptResult:
    """Adapts the refiner of the run ``config.load_config`` to its scene (:func:`adapt_to_scene`) and writes it into
    the run as ``refiner_adapted/``."""
    device = resolve_device(config.device)
    run = run_folder(config.load_config)
    trained = load_trained_scene(config.load_config, device=device, refiner="none")
    scene_path, train_views = _scene_of(trained, config.load_config)
    scene = load_scene(scene_path, size_multiple=trained.codec.downscale, fit=config.fit)
    return adapt_to_scene(
        scene=scene,
        train_views=train_views,
        codec=trained.codec,
        run=run,
        config=config.adaptation,
        device=device,
        output=config.output,
        resume=config.resume,
        progress=progress,
        trained=trained,
    )


def adapt_to_scene(
    *,
    scene: Scene,
    train_views: list[int],
    codec: LatentCodec,
    run: Path,
    config: AdaptationConfig,
    device: torch.device,
    output: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    trained: TrainedScene | None = None,
) -> AdaptResult:
    """Builds the leave-some-out units of ``train_views`` (indices into ``scene``, loaded with the codec's
    ``size_multiple``), fine-tunes the refiner on them and writes it to ``run/refiner_adapted`` (whole, renamed into
    place); work files go to ``output`` (default ``run/adaptation``). The other views of ``scene`` are never read.

    ``trained``: the run's own Gaussians (its reference bank in ``train_views`` order); with them the validation also
    checks every candidate on the run's renders of its training views (:attr:`AdaptationConfig.guard_views`)."""
    started = time.perf_counter()
    output = output or run / "adaptation"
    eval_views = set(range(len(scene))) - set(train_views)
    folds = leave_some_out_folds(train_views, config.folds)
    if not 0.0 < config.units_share <= 1.0:
        raise SplatentError(f"--units-share must be in (0, 1], got {config.units_share}.")
    if config.refiner == "fresh" and not config.guided:
        raise SplatentError(
            "--refiner fresh adapts a new refiner, which is only useful RGB-guided (it starts as the "
            "identity on the guide); drop --no-guided or start from embedded / a refiner folder."
        )
    trainer = unit_trainer(config, device=device)
    writer = DatasetWriter(
        output / "dataset", codec=codec.name, latent_channels=codec.latent_channels, downscale=codec.downscale
    )
    cache = LatentCache(codec_name=codec.name)
    CONSOLE.print(
        f"[bold]adapting[/] the refiner to the {len(train_views)} training views of {scene.root} "
        f"({config.folds} leave-some-out units; its {len(eval_views)} other views stay out)"
    )
    # The validation's unit (the last fold) first, as long as the run; then the fine-tuning's units.
    held_fold = len(folds) - 1 if config.validate else None
    run_steps = None if trained is None else trained.train_steps
    validation_steps = config.validation_steps or (
        min(run_steps, 4 * trainer.steps) if run_steps else trainer.steps
    )  # fmt: skip
    order = list(range(len(folds))) if held_fold is None else [held_fold, *range(held_fold)]
    expected: float | None = None  # seconds a fine-tuning unit is expected to take
    fine_tuning_seconds: list[float] = []
    for f in track(order, description="adaptation units", console=CONSOLE, disable=not progress):
        key = f"fold-{f}"
        if writer.has_unit(key):
            continue
        elapsed = time.perf_counter() - started
        if (
            config.max_seconds is not None
            and f != held_fold
            and expected is not None
            and elapsed + expected > config.units_share * config.max_seconds
        ):
            CONSOLE.print(
                f"time budget: units may take {config.units_share:.0%} of {config.max_seconds:g} s; "
                f"unit {key} and later not built, the rest of the time fine-tunes"
            )
            break
        unit_started = time.perf_counter()
        rendered = folds[f]
        fitted = [v for v in train_views if v not in set(rendered)]
        assert not (set(fitted) | set(rendered)) & eval_views  # only the training views, ever
        steps = validation_steps if f == held_fold else trainer.steps
        samples = unit_samples(
            scene=scene,
            train_views=fitted,
            heldout_views=rendered,
            codec=codec,
            trainer=replace(trainer, steps=steps, seed=config.seed + f),
            device=device,
            cache=cache,
            name=key,
            progress=False,
        )
        writer.add_unit(
            key=key,
            scene=scene.root.name,
            info={"source": str(run), "fold": f, "train_views": fitted, "rendered_views": rendered, "steps": steps},
            samples=samples,
        )
        seconds = time.perf_counter() - unit_started
        if f == held_fold:
            expected = seconds * trainer.steps / max(steps, 1)
        else:
            fine_tuning_seconds.append(seconds)
            expected = sum(fine_tuning_seconds) / len(fine_tuning_seconds)
    units_seconds = time.perf_counter() - started
    if not writer.index["samples"]:
        raise SplatentError("No adaptation unit was built within the time budget; give it more time (--max-seconds).")
    units = [u["key"] for u in writer.index["units"] if u["key"] != ANCHOR_UNIT]
    held = held_out_unit(writer.index) if held_fold is not None and len(units) >= 2 else None
    unchecked = config.validate and held is None  # one unit: nothing to check a fine-tuning against
    if unchecked:
        CONSOLE.print(
            "[yellow]one unit only: nothing to check a fine-tuning against, so the run keeps the starting refiner "
            "(more --max-seconds builds more units; --no-validate fine-tunes unchecked)"
        )
    guard, guarded = None, []
    if trained is not None and held is not None and config.guard_views > 0:
        guard, guarded = run_check_dataset(
            trained=trained, scene=scene, train_views=train_views, views=config.guard_views, output=output / "run_check"
        )
        units_seconds = time.perf_counter() - started
    if trained is not None and config.anchor_views > 0 and not unchecked and not writer.has_unit(ANCHOR_UNIT):
        others = [v for v in train_views if v not in guarded]
        chosen = evenly_spaced_views(others, config.anchor_views)
        samples = heldout_samples(
            trained=trained, scene=scene, views=chosen, train_indices=train_views, desc="rendering the run's anchors",
            progress=False,
        )  # fmt: skip
        assert all(s.view not in s.ref_views for s in samples)  # a view is never its own reference
        writer.add_unit(
            key=ANCHOR_UNIT, scene=scene.root.name, info={"source": str(run), "rendered_views": chosen}, samples=samples
        )
        units_seconds = time.perf_counter() - started
    budget = None if config.max_seconds is None else max(config.max_seconds - units_seconds, 1.0)
    # the validation's unit, and anchors an earlier call of this folder built when this one asks for none
    excluded = (() if held is None else (held,)) + (
        (ANCHOR_UNIT,) if config.anchor_views <= 0 and writer.has_unit(ANCHOR_UNIT) else ()
    )
    train_config = RefinerTrainConfig(
        dataset=output / "dataset",
        output=output / "train",
        guided=config.guided,
        residual=config.guided and config.residual,
        init=None if config.refiner == "fresh" else config.refiner,
        steps=config.steps,
        lr=config.lr,
        batch_size=config.batch_size,
        latent_weight=config.fine_tuning_latent_weight(),
        warmup_steps=min(50, config.steps // 10),
        max_seconds=budget,
        resume=resume,
        seed=config.seed,
        device="cuda" if device.type == "cuda" else "cpu",
        checkpoint_every=max(config.steps // max(config.snapshots, 1), 1),
        time_checkpoints=config.snapshots if budget is not None else 0,
        keep_checkpoints=max(2 * config.snapshots, 2),
        exclude_units=excluded,
    )
    validation, adapted, validation_seconds = None, None, 0.0
    result = None if unchecked else train_refiner(train_config, progress=progress)
    steps_done = 0 if result is None else result.steps_done
    blur = config.correction_blur
    start = start_refiner(train_config) if unchecked or held is not None else None
    start = None if start is None else with_correction_blur(start, blur)
    if start is not None and held is not None and result is not None:
        adapted = with_correction_blur(load_refiner(result.refiner_dir, device=device, dtype=torch.float32), blur)
        earlier = [
            (step, with_correction_blur(load_refiner(folder / REFINER_DIR, device=device, dtype=torch.float32), blur))
            for step, folder in checkpoints(train_config.output)
            if 0 < step < steps_done
        ]
        validation_started = time.perf_counter()
        validation = validate_adaptation(
            dataset=output / "dataset", unit=held, start=start, adapted=adapted, codec=codec,
            interpolations=config.interpolations, psnr_tolerance=config.psnr_tolerance,
            steps=steps_done, earlier=earlier, guard=guard, guard_tolerance=config.guard_tolerance,
        )  # fmt: skip
        validation_seconds = time.perf_counter() - validation_started
        validation["unit_steps"] = next(u.get("steps") for u in writer.index["units"] if u["key"] == held)
        if validation["early"]:  # stopped early: that point's weights are the adapted ones
            adapted = dict(earlier)[validation["step"]]
        prune_checkpoints(train_config.output, keep=1)  # a resume needs the latest one only
        CONSOLE.print(
            f"validation on {validation['views']} held-out training views ({held}, "
            f"{validation['unit_steps'] or '?'}-step Gaussians), start α=0 … fine-tuned α=1: "
            f"{describe_candidates(validation)}: keeping {describe_candidate(validation)} ({validation['kept']})"
        )
    target = run / ADAPTED_REFINER_DIR
    staging = run / f".{ADAPTED_REFINER_DIR}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    if start is not None and (result is None or (validation is not None and validation["kept"] == "start")):
        kept = start
    elif start is not None and adapted is not None and validation is not None and validation["kept"] == "interpolated":
        kept = interpolate_refiners(start, adapted, validation["alpha"])
    elif adapted is not None:  # the fine-tuned end, or the point the validation stopped early at
        kept = adapted
    else:  # unvalidated (--no-validate)
        assert result is not None
        kept = load_refiner(result.refiner_dir, device=device, dtype=torch.float32)
    save_refiner(with_correction_blur(kept, blur), staging)
    record = run / ADAPTATION_RECORD
    record.unlink(missing_ok=True)  # never beside weights it does not describe
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    seconds = {
        "units": round(units_seconds, 1),
        "fine_tune": round(time.perf_counter() - started - units_seconds, 1),  # the validation's included
        "validation": round(validation_seconds, 1),
    }
    step_seconds = None if result is None else result.step_seconds
    write_json_atomic(
        record,
        {
            "samples": len(writer.index["samples"]),
            "steps": steps_done,
            "seconds": seconds,
            "step_seconds": step_seconds,
            "start": config.refiner,
            "guided": config.guided,
            "residual": train_config.residual,
            "latent_weight": train_config.latent_weight,
            "correction_blur": kept.config.correction_blur,
            "kept": "start" if result is None else "adapted" if validation is None else validation["kept"],
            "validation": validation,
        },
        indent=1,
    )
    CONSOLE.print(
        f"wrote {target} ({len(writer.index['samples'])} training-view samples, {steps_done} steps, "
        f"{seconds['units']:.0f} s units + {seconds['fine_tune']:.0f} s fine-tuning)"
    )
    return AdaptResult(
        refiner=target,
        samples=len(writer.index["samples"]),
        steps=steps_done,
        seconds=seconds,
        validation=validation,
        step_seconds=step_seconds,
    )


def run_check_dataset(
    *, trained: TrainedScene, scene: Scene, train_views: list[int], views: int, output: Path
) -> tuple[Path, list[int]]:
    """The run's own renders of ``views`` of its training views (evenly spaced), each with references among the
    other training views (never itself), as a one-unit refiner dataset at ``output`` (rebuilt each time: the run's
    Gaussians may have changed since): what :func:`validate_adaptation`'s ``guard`` scores candidates on. Returns
    the dataset's folder and the rendered views (the anchors, :attr:`AdaptationConfig.anchor_views`, avoid them)."""
    chosen = evenly_spaced_views(train_views, views)
    samples = heldout_samples(
        trained=trained, scene=scene, views=chosen, train_indices=train_views, desc="rendering the run's views",
        progress=False,
    )  # fmt: skip
    assert all(s.view not in s.ref_views for s in samples)  # a view is never its own reference
    shutil.rmtree(output, ignore_errors=True)
    writer = DatasetWriter(
        output, codec=trained.codec.name, latent_channels=trained.codec.latent_channels,
        downscale=trained.codec.downscale,
    )  # fmt: skip
    writer.add_unit(key="run", scene=scene.root.name, info={"rendered_views": chosen}, samples=samples)
    return output, chosen


def held_out_unit(index: dict[str, Any]) -> str:
    """The unit :func:`adapt_to_scene`'s validation holds out of the adaptation dataset whose ``index`` this is
    (:func:`~splatent_viewer.refiner_training.dataset.read_index`): the last fold (built first, trained longer)."""
    folds = [u for u in index["units"] if u["key"] != ANCHOR_UNIT and u.get("fold") is not None]
    if not folds:
        raise SplatentError("This dataset has no adaptation units (fold-N); pass an adaptation's dataset folder.")
    return max(folds, key=lambda u: u["fold"])["key"]


def start_refiner(config: RefinerTrainConfig) -> Refiner:
    """The refiner a fine-tuning with ``config`` starts from (as :func:`train_refiner` builds it: same seed)."""
    torch.manual_seed(config.seed)
    dataset = RefinerDataset(config.dataset, exclude_units=config.exclude_units)
    return new_refiner(config, dataset).requires_grad_(False).eval()


def interpolate_refiners(start: Refiner, tuned: Refiner, alpha: float) -> Refiner:
    """A refiner with the weights ``start + alpha·(tuned − start)`` (WiSE-FT; same architecture, ``tuned``'s
    config): ``alpha`` 0 is ``start``'s weights, 1 ``tuned``'s."""
    a, b = start.state_dict(), tuned.state_dict()
    if a.keys() != b.keys():
        raise SplatentError("Cannot interpolate refiners of different architectures.")
    mixed = Refiner(config=tuned.config, backbone=copy.deepcopy(tuned.backbone))
    mixed.load_state_dict({k: torch.lerp(a[k].float(), b[k].float().to(a[k].device), alpha).to(b[k].dtype) for k in b})
    return mixed.to(tuned.device)


def score_refiner(
    refiner: Refiner, dataset: RefinerDataset, *, codec: LatentCodec
) -> tuple[float | None, float | None]:
    """Mean enhanced PSNR / SSIM of ``refiner`` over every sample of ``dataset``, with the refiner's own number of
    references (what the validation scores a candidate by, on a unit or on the guard's renders); None, None when
    it diverged."""
    k = refiner.config.num_references
    rows, _ = evaluate_refiner(dataset=dataset, refiner=refiner, codec=codec, ks=[k], progress=False)
    row = next(r for r in rows if r["scene"] == ALL and r["k"] == k)
    finite = math.isfinite(row["enhanced_psnr"]) and math.isfinite(row["enhanced_ssim"])  # diverged: None
    return (float(row["enhanced_psnr"]), float(row["enhanced_ssim"])) if finite else (None, None)


def choose_candidate(candidates: list[dict[str, Any]], *, psnr_tolerance: float) -> dict[str, Any]:
    """The validation's pick among ``{"alpha", "psnr", "ssim"}`` candidates (and ``"step"``, the point of the
    fine-tuning; None scores: diverged, never picked): the best PSNR, or the best SSIM among those within
    ``psnr_tolerance`` dB of it; ties go to the smaller alpha, then the earlier step (the start is ``alpha`` 0). At
    least one candidate must have scores."""
    scored = [c for c in candidates if c["psnr"] is not None and c["ssim"] is not None]
    best = max(c["psnr"] for c in scored)
    near = [c for c in scored if c["psnr"] >= best - psnr_tolerance]
    return max(near, key=lambda c: (c["ssim"], -c["alpha"], -c.get("step", 0)))


def choose_guarded(
    candidates: list[dict[str, Any]], *, psnr_tolerance: float, guard_tolerance: float
) -> dict[str, Any]:
    """:func:`choose_candidate` among the candidates the guard lets through, marking each with ``guard_ok``: the
    first candidate (the start) always, another when its ``guard_psnr`` (the run's own renders) is at least the
    start's minus ``guard_tolerance`` dB; every candidate when the start has no guard score (no guard)."""
    floor = candidates[0].get("guard_psnr")
    for c in candidates:
        c["guard_ok"] = (
            floor is None
            or c is candidates[0]
            or (c.get("guard_psnr") is not None and c["guard_psnr"] >= floor - guard_tolerance)
        )
    return choose_candidate([c for c in candidates if c["guard_ok"]], psnr_tolerance=psnr_tolerance)


def describe_candidate(candidate: dict[str, Any]) -> str:
    """``α=0.25``, or ``step 200`` for an earlier point of the fine-tuning scored as is."""
    return f"step {candidate['step']}" if candidate.get("early") else f"α={candidate['alpha']:g}"


def describe_candidates(validation: dict[str, Any]) -> str:
    """The validation's candidates with their scores, for a log line or a table's note (with a guard: each one's
    PSNR on the run's own renders, and which ones it rejected)."""

    def scores(c: dict[str, Any]) -> str:
        if c["psnr"] is None:
            return "diverged"
        text = f"{c['psnr']:.2f} dB / {c['ssim']:.3f}"
        if c.get("guard_psnr") is not None:
            text += f" (run {c['guard_psnr']:.2f} dB" + ("" if c["guard_ok"] else ", rejected") + ")"
        return text

    return ", ".join(describe_candidate(c) + " " + scores(c) for c in validation["candidates"])


@torch.no_grad()
def validate_adaptation(
    *,
    dataset: Path,
    unit: str,
    start: Refiner,
    adapted: Refiner,
    codec: LatentCodec,
    interpolations: tuple[float, ...] = (),
    psnr_tolerance: float = 0.0,
    steps: int,
    earlier: Sequence[tuple[int, Refiner]] = (),
    guard: Path | None = None,
    guard_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Scores the start (alpha 0), the fine-tuned refiner (alpha 1, after ``steps`` steps), each interpolation between
    them (:func:`interpolate_refiners`) and the ``earlier`` points of the fine-tuning ``(step, refiner)`` as they are,
    on the samples of ``unit`` (renders of training views its Gaussians did not see, never part of the fine-tuning;
    mean enhanced PSNR / SSIM, each with its own number of references), and picks one (:func:`choose_candidate`):
    ``kept`` is "start", "adapted", "interpolated" (``alpha`` says which) or "stopped early" (``step`` says where).

    ``guard``: a dataset of the run's own renders (:func:`run_check_dataset`); each candidate is scored there too
    (``guard_psnr``) and only those within ``guard_tolerance`` dB of the start's (``guard_ok``) can be picked;
    ``unguarded`` is what the pick would have been without it."""

    held = RefinerDataset(dataset, units=[unit])
    run_renders = None if guard is None else RefinerDataset(guard)
    models = [(0.0, 0, start), (1.0, steps, adapted)]
    models += [
        (float(a), steps, interpolate_refiners(start, adapted, float(a))) for a in interpolations if 0.0 < a < 1.0
    ]
    models += [(1.0, step, refiner) for step, refiner in earlier if step != steps]
    candidates = []
    for alpha, step, refiner in models:
        refiner = refiner.to(codec.device)
        psnr_, ssim_ = score_refiner(refiner, held, codec=codec)
        candidate = {"alpha": alpha, "step": step, "early": 0 < step < steps, "psnr": psnr_, "ssim": ssim_}
        if run_renders is not None:
            candidate["guard_psnr"], candidate["guard_ssim"] = (
                score_refiner(refiner, run_renders, codec=codec) if psnr_ is not None else (None, None)
            )
        candidates.append(candidate)
    unguarded = choose_candidate(candidates, psnr_tolerance=psnr_tolerance)
    chosen = choose_guarded(candidates, psnr_tolerance=psnr_tolerance, guard_tolerance=guard_tolerance)
    kept = "stopped early" if chosen["early"] else {0.0: "start", 1.0: "adapted"}.get(chosen["alpha"], "interpolated")
    return {
        "unit": unit,
        "views": len(held),
        "start_psnr": candidates[0]["psnr"],
        "adapted_psnr": candidates[1]["psnr"],
        "candidates": candidates,
        "psnr_tolerance": psnr_tolerance,
        "guard": None if run_renders is None else {"views": len(run_renders), "tolerance": guard_tolerance},
        "unguarded": {"alpha": unguarded["alpha"], "step": unguarded["step"]},
        "kept": kept,
        "alpha": chosen["alpha"],
        "step": chosen["step"],
        "early": chosen["early"],
    }


__all__ = [
    "AdaptConfig",
    "AdaptResult",
    "AdaptationConfig",
    "adapt_refiner",
    "adapt_to_scene",
    "choose_candidate",
    "choose_guarded",
    "describe_candidate",
    "describe_candidates",
    "held_out_unit",
    "interpolate_refiners",
    "leave_some_out_folds",
    "run_check_dataset",
    "score_refiner",
    "start_refiner",
    "unit_trainer",
    "validate_adaptation",
]
