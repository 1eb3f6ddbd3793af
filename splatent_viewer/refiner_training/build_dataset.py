"""Building the refiner dataset (``splatent-refiner make-dataset``): train latent Gaussians on part
of each scene's views, render the views they did not see, and store (render, target, references).

Units (one trained set of Gaussians each):

- scene × training fraction: ``fraction`` of the scene's train split, evenly spaced and
  deterministic, trained with the core trainer; every other view (val views included) becomes a
  sample. ``1.0`` is the scene's own train split rendering its held-out views; smaller fractions
  give sparser, blurrier renders (Splatent's data recipe).
- an already trained run (``--runs``): its recorded scene and training views; every other view.

Procedural scenes (``--procedural N``) are made with the demo-scene generator, seeds
``procedural_seed`` … ``+N-1`` (seed 0 is the shipped demo scene, kept out by default); they
train at ``--procedural-fractions`` (default: ``--train-fractions``).
Scenes load through the one scene loader with sizes fitted to the codec's downscale (``--fit``: crop or
resize), as ``splatent-demo`` and ``ns-train splatent`` load them; training latents go through the latent
cache, so the units of one scene at several fractions encode each view once.

Every sample also records the PSNR/SSIM of the same Gaussians' RGB (SH) splats at that view (the
RGB-splat baseline of the evaluation tables).

``--workers N`` builds units and procedural scenes in N spawned worker processes (each with its
own codec and a 1/N share of the CPU threads): one unit uses the GPU only lightly and the ray
tracer is CPU-bound, so workers add up. On CUDA the workers are spread round-robin over the
visible GPUs (``CUDA_VISIBLE_DEVICES`` picks them); on one GPU, NVIDIA's MPS daemon lets their
kernels overlap instead of time-slicing. Workers write their units' shards;
the main process alone writes ``index.json`` (atomically, one unit at a time, as units finish)
and at the end puts the units in the order a one-worker build writes. A worker's exception
stops the build with one error naming the unit (the units committed so far stay: rerun to resume).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from jaxtyping import Float
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from torch import Tensor

from splatent_viewer.codecs import CodecConfig, LatentCodec
from splatent_viewer.data.fit import FitMode
from splatent_viewer.data.scene import Scene, load_scene
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import reference_latents, render_frame
from splatent_viewer.progress import Progress, track
from splatent_viewer.refiner_training.dataset import K_MAX, DatasetWriter, RefinerSample, UnitRecord, write_unit_shards
from splatent_viewer.trained import TrainedScene, load_trained_scene, trained_scene_from_splats
from splatent_viewer.training.encode import LatentCache, encode_images
from splatent_viewer.training.losses import psnr, ssim
from splatent_viewer.training.trainer import LatentSplatTrainerConfig, train_latent_splats

CONSOLE = Console()


@dataclass
class MakeDatasetConfig:
    """Build a refiner dataset from scenes (trained here on fractions of their views) and trained runs."""

    output: Path = Path("outputs/refiner_dataset")
    """Dataset folder (index.json + shards/). An existing one is resumed: units already in its index are skipped."""
    scenes: tuple[Path, ...] = ()
    """Scene folders (nerfstudio transforms.json or blender format)."""
    train_fractions: tuple[float, ...] = (1.0, 0.5, 0.25)
    """Fractions of each scene's train split to train on (one unit each); 1.0 = the scene's own split."""
    procedural_fractions: Optional[tuple[float, ...]] = None
    """Fractions for the procedural scenes (default: --train-fractions)."""
    runs: tuple[Path, ...] = ()
    """Already trained runs (splatent-demo folders or nerfstudio config.yml) whose held-out views become samples."""
    procedural: int = 0
    """Make this many procedural scenes (under OUTPUT/scenes/) and add them to --scenes."""
    procedural_seed: int = 1
    """Seed of the first procedural scene (seed 0 is the shipped demo scene)."""
    procedural_views: int = 36
    """Views of each procedural scene."""
    procedural_resolution: int = 256
    """Image width and height of the procedural scenes."""
    downscale: int = 1
    """Load scene images at 1/downscale (nerfstudio images_{d} folders when present, else resized)."""
    fit: FitMode = "crop"
    """Images whose size is not a multiple of the codec's downscale: crop (top-left, intrinsics kept) or resize."""
    latent_cache_dir: Optional[Path] = None
    """Where encoded training latents are cached (default: $SPLATENT_LATENT_CACHE, else ~/.cache/splatent/latents)."""
    min_train_views: int = 2
    """Skip a fraction that leaves fewer training views than this."""
    steps: Optional[int] = None
    """Training steps per unit (default: 400 on CPU, 3000 on CUDA); overrides trainer.steps."""
    densify: Optional[bool] = None
    """Densify while training (default: on for CUDA, off on CPU)."""
    trainer: LatentSplatTrainerConfig = field(default_factory=LatentSplatTrainerConfig)
    """Core trainer settings."""
    codec: CodecConfig = field(default_factory=CodecConfig)
    """Latent codec (default: the embedded TAEF2)."""
    device: DeviceName = "auto"
    """Compute device; auto = cuda when available."""
    shard_size: int = 64
    """Samples per shard file."""
    workers: int = 1
    """Worker processes building units and procedural scenes at once on the same device (1 = in this process)."""
    worker_threads: Optional[int] = None
    """CPU threads per worker (default: the CPUs this process may use / --workers, at least 1)."""
    max_seconds: Optional[float] = None
    """Start no new unit or procedural scene after this many seconds (the running ones finish): a time budget.
    The units built so far are in the index; rerun the same command (without it) to build the rest."""

    def interrupted_message(self) -> str:
        """What Ctrl+C leaves behind (printed by the CLI)."""
        return f"the units finished so far are in {self.output}: rerun the same command to resume"


def evenly_spaced(indices: list[int], fraction: float) -> list[int]:
    """``round(fraction · n)`` (at least 1) of ``indices``, evenly spaced from the first to the last."""
    if not 0.0 < fraction <= 1.0:
        raise SplatentError(f"Training fraction {fraction} must be in (0, 1].")
    return evenly_spaced_views(indices, max(1, round(fraction * len(indices))))


def evenly_spaced_views(indices: list[int], count: int) -> list[int]:
    """``count`` of ``indices`` (all of them when there are fewer, none for 0), evenly spaced from the first to the
    last."""
    count = min(count, len(indices))
    if count == len(indices):
        return list(indices)
    if count <= 0:
        return []
    return [indices[int(i)] for i in np.linspace(0, len(indices) - 1, count).round().astype(int)]


def similarity_to(
    *, source: Float[Tensor, "N 4 4"], target: Float[Tensor, "N 4 4"]
) -> tuple[Float[Tensor, "3 3"], float, Float[Tensor, "3"]]:
    """(R, s, t) with ``target ≈ [R·rot | s·R·pos + t]`` for camera-to-worlds of the same views in two
    worlds (nerfstudio's dataparser transform + scale); identity when the worlds agree."""
    src, dst = source.double(), target.double()
    rots = dst[:, :3, :3] @ src[:, :3, :3].transpose(1, 2)
    u, _, vh = torch.linalg.svd(rots.mean(0))
    R = u @ vh
    p, q = src[:, :3, 3] @ R.T, dst[:, :3, 3]
    pc, qc = p - p.mean(0), q - q.mean(0)
    s = float((pc * qc).sum() / (pc * pc).sum().clamp_min(1e-12)) if len(p) > 1 else 1.0
    return R.float(), s, (q.mean(0) - s * p.mean(0)).float()


def _to_world(c2w: Float[Tensor, "4 4"], R: Tensor, s: float, t: Tensor) -> Float[Tensor, "4 4"]:
    out = c2w.clone()
    out[:3, :3] = R @ c2w[:3, :3]
    out[:3, 3] = s * (R @ c2w[:3, 3]) + t
    return out


@torch.no_grad()
def heldout_samples(
    *, trained: TrainedScene, scene: Scene, views: list[int], train_indices: list[int], desc: str, progress: bool = True
) -> list[RefinerSample]:
    """Renders ``views`` of ``scene`` with ``trained`` and pairs each with its target latent and references.

    ``train_indices`` are the scene indices of ``trained.references`` (the bank's order). Cameras
    are mapped into the trained scene's world when it differs from the scene file's (nerfstudio runs).
    The RGB splats are rendered too, scored against the stored (uint8) ground truth, and encoded as the sample's RGB
    guide (the frame's ``guide``, what a guided refiner gets when it renders).
    """
    codec: LatentCodec = trained.codec
    dev = trained.device
    R, s, t = similarity_to(source=scene.camera_to_worlds[train_indices], target=trained.references.c2w.cpu())
    samples = []
    for v in track(views, description=desc, console=CONSOLE, transient=True, disable=not progress):
        image = scene.load_image(v)
        H, W = image.shape[:2]
        c2w = _to_world(scene.camera_to_worlds[v], R, s, t)
        frame = render_frame(
            scene=trained, c2w=c2w, K=scene.Ks[v], width=W, height=H, outputs=("latent", "rgb", "guide")
        )
        assert frame.latent is not None and frame.rgb is not None and frame.guide is not None
        h, w = frame.latent.shape[-2:]
        # one spare: a rendered training view (the adaptation's guard) never references itself, even where the
        # mapping into the run's world moved its pose past the bank's exact-pose test
        ref_idx = [i for i in trained.references.nearest(c2w=c2w, k=K_MAX + 1) if train_indices[i] != v][:K_MAX]
        refs = reference_latents(scene=trained, indices=ref_idx, height=h, width=w)
        target = encode_images(images=[image], codec=codec, device=dev)[0][0]
        image_u8 = (image * 255.0 + 0.5).to(torch.uint8)
        gt = image_u8.to(dev).float().div(255.0).permute(2, 0, 1)[None]
        rgb = frame.rgb.float().permute(2, 0, 1)[None]
        samples.append(
            RefinerSample(
                target=target,
                render=frame.latent.float(),
                refs=refs.float(),
                image=image_u8,
                view=v,
                ref_views=[train_indices[i] for i in ref_idx],
                rgb_psnr=psnr(rgb, gt),
                rgb_ssim=float(ssim(rgb, gt)),
                guide=frame.guide.float(),
                rgb=(frame.rgb.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu(),
            )
        )
    return samples


def procedural_scene_folder(config: MakeDatasetConfig, seed: int) -> Path:
    """Where the procedural scene of ``seed`` lives: OUTPUT/scenes/procedural-SSS."""
    return config.output / "scenes" / f"procedural-{seed:03d}"


def make_procedural_scene(*, config: MakeDatasetConfig, seed: int, progress: bool = True) -> Path:
    """Makes the procedural scene of ``seed`` (a folder an earlier, interrupted build made is reused)."""
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene

    folder = procedural_scene_folder(config, seed)
    if not (folder / "transforms.json").is_file():
        with torch.no_grad():
            render_demo_scene(
                DemoSceneConfig(
                    output=folder, seed=seed, num_views=config.procedural_views, resolution=config.procedural_resolution
                ),
                progress=progress,
            )
    return folder


def _scene_names(paths: list[Path]) -> list[str]:
    """Folder names, made unique with a suffix when two scenes share one."""
    names: list[str] = []
    for p in paths:
        base = p.parent.name if p.is_file() else p.name
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


@dataclass(frozen=True)
class UnitJob:
    """One unit to build: a scene trained on ``fraction`` of its train split."""

    number: int
    """1-based position in the build's unit list; seeds the core trainer (trainer.seed + number)."""
    path: Path
    """Scene folder."""
    name: str
    """Scene name in the dataset."""
    fraction: float
    """Fraction of the scene's train split to train on."""

    @property
    def key(self) -> str:
        """The unit's key in the index, e.g. ``temple@0.5``."""
        return f"{self.name}@{self.fraction:g}"


@dataclass
class UnitResult:
    """A built unit: its shards are written, :meth:`DatasetWriter.commit` adds it to the index."""

    record: UnitRecord
    """Shards and samples of the unit."""
    seconds: float
    """Wall time of training and rendering."""
    message: str
    """One line for the log."""


def plan_units(config: MakeDatasetConfig) -> tuple[list[UnitJob], dict[str, int]]:
    """Every unit of the build in order (each scene at each of its fractions; procedural scenes last), and
    the procedural seed of each procedural unit's key."""
    seeds = list(range(config.procedural_seed, config.procedural_seed + config.procedural))
    paths = [*config.scenes, *(procedural_scene_folder(config, s) for s in seeds)]
    fractions = [config.train_fractions] * len(config.scenes) + [
        config.procedural_fractions or config.train_fractions
    ] * len(seeds)
    units: list[UnitJob] = []
    seed_of: dict[str, int] = {}
    for i, (path, name, fracs) in enumerate(zip(paths, _scene_names(paths), fractions)):
        for f in fracs:
            units.append(UnitJob(number=len(units) + 1, path=Path(path), name=name, fraction=float(f)))
            if i >= len(config.scenes):
                seed_of[units[-1].key] = seeds[i - len(config.scenes)]
    return units, seed_of


def unit_samples(
    *,
    scene: Scene,
    train_views: list[int],
    heldout_views: list[int],
    codec: LatentCodec,
    trainer: LatentSplatTrainerConfig,
    device: torch.device,
    cache: LatentCache | None = None,
    name: str = "unit",
    progress: bool = True,
) -> list[RefinerSample]:
    """One unit's samples: the core trainer fits Gaussians to ``train_views`` of ``scene`` only, then renders each of
    ``heldout_views`` (references among ``train_views``). Shared by ``make-dataset`` and scene adaptation."""
    sub = replace(scene, split_indices={**scene.split_indices, "train": torch.tensor(train_views)})  # what it trains on
    result = train_latent_splats(scene=sub, codec=codec, config=trainer, device=device, progress=progress, cache=cache)
    trained = trained_scene_from_splats(
        scene=scene,
        params=result.params,
        codec=codec,
        sh_degree=result.sh_degree,
        train_indices=train_views,
        device=device,
        name=name,
        train_latents=result.train_latents,
        rgb_background=result.rgb_background,
        latent_background=result.latent_background,
    )  # the trainer's targets: not encoded again
    return heldout_samples(
        trained=trained,
        scene=scene,
        views=heldout_views,
        train_indices=train_views,
        desc=f"rendering {name} held-out views",
        progress=progress,
    )


def build_unit(
    *,
    job: UnitJob,
    config: MakeDatasetConfig,
    trainer: LatentSplatTrainerConfig,
    codec: LatentCodec,
    device: torch.device,
    progress: bool = True,
) -> UnitResult:
    """Trains the unit's Gaussians (core trainer), renders its held-out views and writes its shards.

    The index is not touched (the caller commits the record), so this runs in worker processes too."""
    start = time.perf_counter()
    scene = load_scene(job.path, downscale=config.downscale, size_multiple=codec.downscale, fit=config.fit)
    subset = evenly_spaced(scene.split_indices["train"].tolist(), job.fraction)
    chosen = set(subset)
    heldout = [v for v in range(len(scene)) if v not in chosen]
    info = {"source": str(job.path), "fraction": job.fraction, "num_train_views": len(subset), "train_views": subset}
    if len(subset) < config.min_train_views or not heldout:
        record = write_unit_shards(
            config.output, key=job.key, scene=job.name, info={**info, "skipped": True}, samples=[]
        )
        return UnitResult(
            record=record,
            seconds=time.perf_counter() - start,
            message=f"[yellow]{len(subset)} training / {len(heldout)} held-out views, skipped",
        )
    unit_trainer = replace(trainer, seed=config.trainer.seed + job.number)
    # The unit's core-trainer settings go into the index with it (scalars; the densification strategy is left out).
    info["trainer"] = unit_trainer.scalar_settings()
    samples = unit_samples(
        scene=scene,
        train_views=subset,
        heldout_views=heldout,
        codec=codec,
        trainer=unit_trainer,
        device=device,
        cache=LatentCache(codec_name=codec.name, root=config.latent_cache_dir),
        name=job.key,
        progress=progress,
    )
    record = write_unit_shards(
        config.output, key=job.key, scene=job.name, info=info, samples=samples, shard_size=config.shard_size
    )
    rgb = sum(s.rgb_psnr for s in samples if s.rgb_psnr is not None) / len(samples)  # heldout_samples scores each
    return UnitResult(
        record=record,
        seconds=time.perf_counter() - start,
        message=f"trained on {len(subset)} of {len(scene)} views, {len(samples)} samples, RGB splats {rgb:.2f} dB",
    )


# ----------------------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}
"""Per worker process: its device and codec (loaded by the first unit)."""


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """Ends this worker once its main process is gone (killed: ``kill``, out of memory), which cannot stop it: an
    orphaned worker would otherwise build its unit to the end on a CPU or GPU nobody waits for."""
    while os.getppid() == parent:
        time.sleep(period)
    os.kill(os.getpid(), signal.SIGTERM)


def _init_worker(threads: int, device: str, counter: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the main process's to handle (one line, no tracebacks)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set
        pass
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
        with counter.get_lock():  # the n-th worker started takes GPU n mod count
            number = counter.value
            counter.value += 1
        dev = torch.device("cuda", number % torch.cuda.device_count())
    if dev.type == "cuda" and dev.index is None:  # set_device needs an index (one GPU: the current one)
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    _WORKER["device"] = dev


def _worker_scene(config: MakeDatasetConfig, seed: int) -> Path:
    return make_procedural_scene(config=config, seed=seed, progress=False)


def _worker_unit(config: MakeDatasetConfig, trainer: LatentSplatTrainerConfig, job: UnitJob) -> UnitResult:
    if "codec" not in _WORKER:  # here, not in the initializer, so a failure reaches the main process as an exception
        _WORKER["codec"] = config.codec.setup(device=_WORKER["device"], dtype=torch.float32)
    return build_unit(
        job=job, config=config, trainer=trainer, codec=_WORKER["codec"], device=_WORKER["device"], progress=False
    )


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancels queued jobs and ends the running ones (their uncommitted shards are rewritten on resume)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=30)


def _job_result(fut: Future, what: str, output: Path) -> Any:
    """The job's result, or one :class:`SplatentError` naming the job (the worker's traceback is printed)."""
    resume = f"the units finished so far are in {output}; fix the cause and rerun the same command to resume"
    try:
        return fut.result()
    except BrokenProcessPool as e:
        raise SplatentError(
            f"A make-dataset worker process died (killed, or out of memory?) while {what} was among the "
            f"running jobs; {resume}, perhaps with fewer --workers."
        ) from e
    except SplatentError as e:
        raise SplatentError(f"make-dataset worker failed on {what}: {e} ({resume})") from e
    except Exception as e:
        remote = e.__cause__  # concurrent.futures attaches the worker's formatted traceback here
        CONSOLE.print(
            str(remote) if remote is not None else "".join(traceback.format_exception(e)), markup=False, highlight=False
        )
        raise SplatentError(
            f"make-dataset worker failed on {what}: {type(e).__name__}: {e} (worker traceback above; {resume})"
        ) from e


def _build_in_workers(
    *,
    config: MakeDatasetConfig,
    trainer: LatentSplatTrainerConfig,
    device: torch.device,
    writer: DatasetWriter,
    scene_seeds: list[int],
    todo: list[UnitJob],
    seed_of: dict[str, int],
    num_units: int,
) -> list[str]:
    """Makes ``scene_seeds`` and builds ``todo`` in ``config.workers`` spawned processes (a unit of a procedural
    scene starts once its scene is made), committing each unit to the index as it finishes.

    Jobs are handed out one per free worker (scenes first, then units in plan order), so that after
    ``config.max_seconds`` no new one starts; returns the keys of the units left unbuilt."""
    threads = config.worker_threads or max(1, _cpu_count() // config.workers)
    gpus = torch.cuda.device_count() if device.type == "cuda" and device.index is None else 1
    CONSOLE.print(
        f"[bold]{config.workers} workers[/] × {threads} CPU threads on {device}"
        f"{f' ({gpus} GPUs, round-robin)' if gpus > 1 else ''}: "
        f"{len(scene_seeds)} procedural scenes, {len(todo)} units"
    )
    ctx = torch.multiprocessing.get_context("spawn")  # CUDA cannot be shared with forked children
    pool = ProcessPoolExecutor(
        max_workers=config.workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(threads, str(device), ctx.Value("i", 0)),
    )
    pending: dict[Future, tuple[str, Any]] = {}
    waiting: dict[int, list[UnitJob]] = {}
    # Handed out in this order: units whose scene exists (the shared scenes first: the evaluation needs
    # them), then procedural scenes; a made scene's units go before the scenes not yet started.
    ready: list[tuple[str, Any]] = []
    for job in todo:
        if seed_of.get(job.key) in scene_seeds:
            waiting.setdefault(seed_of[job.key], []).append(job)
        else:
            ready.append(("unit", job))
    ready += [("scene", seed) for seed in scene_seeds]
    started = time.perf_counter()

    def time_is_up() -> bool:
        return config.max_seconds is not None and time.perf_counter() - started > config.max_seconds

    def hand_out() -> None:
        while ready and len(pending) < config.workers and not time_is_up():
            kind, item = ready.pop(0)
            if kind == "scene":
                pending[pool.submit(_worker_scene, config, item)] = (kind, item)
            else:
                pending[pool.submit(_worker_unit, config, trainer, item)] = (kind, item)

    finished = False
    try:
        columns = (TextColumn("[bold]building dataset"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=CONSOLE) as bar:
            task = bar.add_task("build", total=len(scene_seeds) + len(todo))
            hand_out()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    kind, item = pending.pop(fut)
                    if kind == "scene":
                        folder = _job_result(fut, f"procedural scene seed {item}", config.output)
                        bar.console.print(f"made procedural scene {folder}")
                        first_scene = next((i for i, (k, _) in enumerate(ready) if k == "scene"), len(ready))
                        ready[first_scene:first_scene] = [("unit", job) for job in waiting.pop(item, [])]
                    else:
                        result: UnitResult = _job_result(fut, f"unit {item.key}", config.output)
                        writer.commit(result.record)
                        bar.console.print(
                            f"unit {item.number}/{num_units} {item.key}: {result.message} ({result.seconds:.0f} s)"
                        )
                    bar.advance(task)
                hand_out()
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_workers(pool)
    return [job.key for kind, job in ready if kind == "unit"] + [j.key for jobs in waiting.values() for j in jobs]


def make_dataset(config: MakeDatasetConfig) -> Path:
    """Builds (or resumes) the dataset at ``config.output``; returns it."""
    device = resolve_device(config.device)
    on_cpu = device.type == "cpu"
    trainer_cfg = replace(
        config.trainer,
        steps=config.steps if config.steps is not None else (400 if on_cpu else 3000),
        densify=config.densify if config.densify is not None else not on_cpu,
    )
    if on_cpu and config.steps is None:
        trainer_cfg.rgb_downscale = max(trainer_cfg.rgb_downscale, 2)
    if not config.scenes and not config.runs and not config.procedural:
        raise SplatentError("Nothing to build: pass --scenes DIR..., --runs PATH... or --procedural N.")
    if config.workers < 1:
        raise SplatentError(f"--workers must be at least 1, got {config.workers}.")
    for f in (*config.train_fractions, *(config.procedural_fractions or ())):
        evenly_spaced([0], f)  # one clear error for a bad fraction before any work starts
    config.output.mkdir(parents=True, exist_ok=True)
    parallel = config.workers > 1
    # With workers, this process only needs the codec's name and sizes: keep it off the GPU.
    codec = config.codec.setup(device=torch.device("cpu") if parallel else device, dtype=torch.float32)
    writer = DatasetWriter(
        config.output,
        codec=codec.name,
        latent_channels=codec.latent_channels,
        downscale=codec.downscale,
        shard_size=config.shard_size,
    )

    units, seed_of = plan_units(config)
    before = [u["key"] for u in writer.index["units"]]
    todo = []
    for job in units:
        if writer.has_unit(job.key):
            CONSOLE.print(f"[dim]unit {job.number}/{len(units)} {job.key}: already built, skipped")
        else:
            todo.append(job)
    scene_seeds = [
        s
        for s in range(config.procedural_seed, config.procedural_seed + config.procedural)
        if not (procedural_scene_folder(config, s) / "transforms.json").is_file()
    ]
    unbuilt: list[str] = []
    if parallel and (todo or scene_seeds):
        unbuilt = _build_in_workers(
            config=config,
            trainer=trainer_cfg,
            device=device,
            writer=writer,
            scene_seeds=scene_seeds,
            todo=todo,
            seed_of=seed_of,
            num_units=len(units),
        )
    else:
        started = time.perf_counter()
        for n, job in enumerate(todo):
            if config.max_seconds is not None and time.perf_counter() - started > config.max_seconds:
                unbuilt = [j.key for j in todo[n:]]
                break
            seed = seed_of.get(job.key)
            if seed in scene_seeds and not (procedural_scene_folder(config, seed) / "transforms.json").is_file():
                CONSOLE.print(f"[bold]making procedural scene[/] seed {seed} → {procedural_scene_folder(config, seed)}")
                make_procedural_scene(config=config, seed=seed)
            CONSOLE.print(f"[bold]unit {job.number}/{len(units)} {job.key}[/]")
            result = build_unit(job=job, config=config, trainer=trainer_cfg, codec=codec, device=device)
            writer.commit(result.record)
            CONSOLE.print(f"unit {job.number}/{len(units)} {job.key}: {result.message} ({result.seconds:.0f} s)")
    if unbuilt:
        CONSOLE.print(
            f"[yellow]--max-seconds {config.max_seconds:g}: {len(unbuilt)} units not built "
            f"({', '.join(unbuilt)}); rerun without it to build them"
        )
    # Workers commit units as they finish: put this build's units in plan order (what one worker writes).
    plan = {job.key: i for i, job in enumerate(units)}
    new = sorted(
        (u["key"] for u in writer.index["units"] if u["key"] not in before), key=lambda k: plan.get(k, len(plan))
    )
    writer.reorder_units([*before, *new])

    if config.runs and parallel:
        codec = config.codec.setup(device=device, dtype=torch.float32)
    for n, run in enumerate(config.runs, 1):
        trained = load_trained_scene(run, device=device, refiner="none", codec_path=config.codec.path)
        if trained.scene_path is None or trained.train_indices is None:
            raise SplatentError(
                f"Run {run} does not record its scene folder and training views; re-create it with "
                "splatent-demo (or save_trained_run with scene_path and train_indices)."
            )
        name = trained.scene_path.name
        key = f"{name}@run:{trained.name}"
        if writer.has_unit(key):
            CONSOLE.print(f"[dim]run {n}/{len(config.runs)} {key}: already built, skipped")
            continue
        if trained.codec.name != codec.name:
            raise SplatentError(
                f"Run {run} uses codec {trained.codec.name}, the dataset {codec.name}; pass --codec.name {trained.codec.name}."
            )
        scene = load_scene(
            trained.scene_path, downscale=config.downscale, size_multiple=codec.downscale, fit=config.fit
        )
        train = [int(i) for i in trained.train_indices]
        heldout = [v for v in range(len(scene)) if v not in set(train)]
        CONSOLE.print(f"[bold]run {n}/{len(config.runs)} {key}[/]: rendering {len(heldout)} held-out views")
        samples = heldout_samples(
            trained=trained, scene=scene, views=heldout, train_indices=train, desc=f"rendering {key} held-out views"
        )
        writer.add_unit(
            key=key,
            scene=name,
            info={"source": str(run), "fraction": None, "num_train_views": len(train), "train_views": train},
            samples=samples,
        )
    total = len(writer.index["samples"])
    CONSOLE.print(f"wrote {config.output} ({total} samples in {len(writer.index['shards'])} shards)")
    return config.output
