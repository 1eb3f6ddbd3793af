"""Building the refiner dataset (``splatent-refiner make-dataset``): train latent Gaussians on part
of each scene's views, render the views they did not see, and store (render, target, references).

Units (one trained set of Gaussians each):

- scene × training fraction: ``fraction`` of the scene's train split, evenly spaced and
  deterministic, trained with the core trainer; every other view (val views included) becomes a
  sample. ``1.0`` is the scene's own train split rendering its held-out views; smaller fractions
  give sparser, blurrier renders (Splatent's data recipe).
- an already trained run (``--runs``): its recorded scene and training views; every other view.

Procedural scenes (``--procedural N``) are made first with the demo-scene generator, seeds
``procedural_seed`` … ``+N-1`` (seed 0 is the shipped demo scene, kept out by default).
Images whose size is not a multiple of the codec's downscale are top-left-cropped (intrinsics
stay valid), like the nerfstudio plugin does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from jaxtyping import Float, Int
from rich.console import Console
from rich.progress import track
from torch import Tensor

from splatent_viewer.codecs import CodecConfig, LatentCodec
from splatent_viewer.data.scene import Scene, load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import reference_latents, render_frame
from splatent_viewer.refine.dataset import K_MAX, DatasetWriter, RefinerSample
from splatent_viewer.trained import TrainedScene, load_trained_scene, trained_scene_from_splats
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
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Compute device; auto = cuda when available."""
    shard_size: int = 64
    """Samples per shard file."""


@dataclass
class CroppedScene(Scene):
    """A scene whose images are top-left-cropped to ``widths`` x ``heights`` (intrinsics unchanged)."""

    full_widths: Int[Tensor, " N"] | None = None
    """Image widths before cropping."""
    full_heights: Int[Tensor, " N"] | None = None
    """Image heights before cropping."""

    def load_image(self, i: int) -> Float[Tensor, "H W 3"]:
        full = Scene.load_image(replace(self, widths=self.full_widths, heights=self.full_heights), i)
        return full[: int(self.heights[i]), : int(self.widths[i])]

    def subset(self, indices: Int[Tensor, " M"] | list[int]) -> CroppedScene:
        idx = torch.as_tensor(indices, dtype=torch.long)
        sub = super().subset(idx)
        return replace(sub, full_widths=self.full_widths[idx], full_heights=self.full_heights[idx])


def crop_to_multiple(scene: Scene, multiple: int) -> Scene:
    """``scene`` unchanged when every image size is a multiple of ``multiple``, else a :class:`CroppedScene`."""
    widths, heights = scene.widths // multiple * multiple, scene.heights // multiple * multiple
    if bool((widths == scene.widths).all() and (heights == scene.heights).all()):
        return scene
    if bool((widths == 0).any() or (heights == 0).any()):
        raise SplatentError(f"Scene {scene.root} has images smaller than {multiple} px; use a smaller --downscale.")
    fields = {f: getattr(scene, f) for f in Scene.__dataclass_fields__ if f != "_cache"}
    fields.update(widths=widths, heights=heights)
    return CroppedScene(**fields, full_widths=scene.widths, full_heights=scene.heights)


def evenly_spaced(indices: list[int], fraction: float) -> list[int]:
    """``round(fraction · n)`` (at least 1) of ``indices``, evenly spaced from the first to the last."""
    if not 0.0 < fraction <= 1.0:
        raise SplatentError(f"Training fraction {fraction} must be in (0, 1].")
    count = max(1, min(len(indices), round(fraction * len(indices))))
    if count == len(indices):
        return list(indices)
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
    *, trained: TrainedScene, scene: Scene, views: list[int], train_indices: list[int], desc: str
) -> list[RefinerSample]:
    """Renders ``views`` of ``scene`` with ``trained`` and pairs each with its target latent and references.

    ``train_indices`` are the scene indices of ``trained.references`` (the bank's order). Cameras
    are mapped into the trained scene's world when it differs from the scene file's (nerfstudio runs).
    """
    codec: LatentCodec = trained.codec
    dev = trained.device
    R, s, t = similarity_to(source=scene.camera_to_worlds[train_indices], target=trained.references.c2w.cpu())
    samples = []
    for v in track(views, description=desc, console=CONSOLE, transient=True):
        image = scene.load_image(v)
        H, W = image.shape[:2]
        c2w = _to_world(scene.camera_to_worlds[v], R, s, t)
        frame = render_frame(scene=trained, c2w=c2w, K=scene.Ks[v], width=W, height=H, outputs=("latent",))
        h, w = frame.latent.shape[-2:]
        ref_idx = trained.references.nearest(c2w=c2w.to(dev), k=K_MAX)
        refs = reference_latents(scene=trained, indices=ref_idx, height=h, width=w)
        target = codec.encode(image.permute(2, 0, 1)[None].to(dev))[0].float()
        samples.append(RefinerSample(target=target, render=frame.latent.float(), refs=refs.float(),
                                     image=(image * 255.0 + 0.5).to(torch.uint8), view=v,
                                     ref_views=[train_indices[i] for i in ref_idx]))
    return samples


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _procedural_scenes(config: MakeDatasetConfig) -> list[Path]:
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene

    out = []
    for seed in range(config.procedural_seed, config.procedural_seed + config.procedural):
        folder = config.output / "scenes" / f"procedural-{seed:03d}"
        if not (folder / "transforms.json").is_file():  # made by an earlier (interrupted) build: reuse
            CONSOLE.print(f"[bold]making procedural scene[/] seed {seed} → {folder}")
            with torch.no_grad():
                render_demo_scene(DemoSceneConfig(output=folder, seed=seed, num_views=config.procedural_views,
                                                  resolution=config.procedural_resolution), progress=True)
        out.append(folder)
    return out


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


def make_dataset(config: MakeDatasetConfig) -> Path:
    """Builds (or resumes) the dataset at ``config.output``; returns it."""
    device = _device(config.device)
    on_cpu = device.type == "cpu"
    trainer_cfg = replace(config.trainer, steps=config.steps if config.steps is not None else (400 if on_cpu else 3000),
                          densify=config.densify if config.densify is not None else not on_cpu)
    if on_cpu and config.steps is None:
        trainer_cfg.rgb_downscale = max(trainer_cfg.rgb_downscale, 2)
    if not config.scenes and not config.runs and not config.procedural:
        raise SplatentError("Nothing to build: pass --scenes DIR..., --runs PATH... or --procedural N.")
    config.output.mkdir(parents=True, exist_ok=True)
    scene_paths = [*config.scenes, *_procedural_scenes(config)]
    codec = config.codec.setup(device=device, dtype=torch.float32)
    writer = DatasetWriter(config.output, codec=codec.name, latent_channels=codec.latent_channels,
                           downscale=codec.downscale, shard_size=config.shard_size)

    units = [(path, name, f) for path, name in zip(scene_paths, _scene_names(scene_paths)) for f in config.train_fractions]
    for n, (path, name, fraction) in enumerate(units, 1):
        key = f"{name}@{fraction:g}"
        if writer.has_unit(key):
            CONSOLE.print(f"[dim]unit {n}/{len(units)} {key}: already built, skipped")
            continue
        scene = crop_to_multiple(load_scene(path, downscale=config.downscale), codec.downscale)
        train_split = scene.split_indices["train"].tolist()
        subset = evenly_spaced(train_split, fraction)
        chosen = set(subset)
        heldout = [v for v in range(len(scene)) if v not in chosen]
        info = {"source": str(path), "fraction": fraction, "num_train_views": len(subset), "train_views": subset}
        if len(subset) < config.min_train_views or not heldout:
            CONSOLE.print(f"[yellow]unit {n}/{len(units)} {key}: {len(subset)} training / {len(heldout)} held-out views, skipped")
            writer.add_unit(key=key, scene=name, info={**info, "skipped": True}, samples=[])
            continue
        CONSOLE.print(f"[bold]unit {n}/{len(units)} {key}[/]: training on {len(subset)} of {len(scene)} views, "
                      f"rendering {len(heldout)}")
        # The core trainer trains on split_indices["train"]: point it at the subset.
        sub = replace(scene, split_indices={**scene.split_indices, "train": torch.tensor(subset)})
        trainer_cfg.seed = config.trainer.seed + n
        result = train_latent_splats(scene=sub, codec=codec, config=trainer_cfg, device=device)
        trained = trained_scene_from_splats(scene=scene, params=result.params, codec=codec, sh_degree=result.sh_degree,
                                            train_indices=subset, device=device, name=key)
        samples = heldout_samples(trained=trained, scene=scene, views=heldout, train_indices=subset,
                                  desc=f"rendering {key} held-out views")
        writer.add_unit(key=key, scene=name, info=info, samples=samples)

    for n, run in enumerate(config.runs, 1):
        trained = load_trained_scene(run, device=device, refiner="none", codec_path=config.codec.path)
        if trained.scene_path is None or trained.train_indices is None:
            raise SplatentError(f"Run {run} does not record its scene folder and training views; re-create it with "
                                "splatent-demo (or save_trained_run with scene_path and train_indices).")
        name = trained.scene_path.name
        key = f"{name}@run:{trained.name}"
        if writer.has_unit(key):
            CONSOLE.print(f"[dim]run {n}/{len(config.runs)} {key}: already built, skipped")
            continue
        if trained.codec.name != codec.name:
            raise SplatentError(f"Run {run} uses codec {trained.codec.name}, the dataset {codec.name}; pass --codec.name {trained.codec.name}.")
        scene = crop_to_multiple(load_scene(trained.scene_path, downscale=config.downscale), codec.downscale)
        train = [int(i) for i in trained.train_indices]
        heldout = [v for v in range(len(scene)) if v not in set(train)]
        CONSOLE.print(f"[bold]run {n}/{len(config.runs)} {key}[/]: rendering {len(heldout)} held-out views")
        samples = heldout_samples(trained=trained, scene=scene, views=heldout, train_indices=train,
                                  desc=f"rendering {key} held-out views")
        writer.add_unit(key=key, scene=name, info={"source": str(run), "fraction": None, "num_train_views": len(train),
                                                   "train_views": train}, samples=samples)
    total = len(writer.index["samples"])
    CONSOLE.print(f"wrote {config.output} ({total} samples in {len(writer.index['shards'])} shards)")
    return config.output

