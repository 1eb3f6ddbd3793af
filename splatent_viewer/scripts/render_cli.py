"""``splatent-render``: flythrough videos (or PNG frames) of a trained scene, like nerfstudio's ``ns-render``.

Subcommands pick the camera path:

- ``orbit``: a circle around the scene focus (radius, height and field of view from the training cameras);
- ``spiral``: a spiral around one training camera, looking at the scene;
- ``interpolate``: a smooth path through the training cameras in scene order;
- ``camera-path``: a nerfstudio camera-path JSON (the viewer's render panel), as ``ns-render camera-path``.

Examples::

    splatent-render orbit --load-config outputs/demo --output renders/orbit.mp4 --mode side-by-side
    splatent-render camera-path --load-config outputs/x/splatent/2025-01-01_000000/config.yml \\
        --camera-path-filename camera_paths/path.json --output renders/path.mp4 --mode enhanced
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal, Union

import torch
import tyro
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from splatent_viewer.codecs import describe_codec
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.export.camera_paths import (
    CameraPath,
    interpolate_path,
    intrinsics_for_fov,
    look_target,
    nearest_neighbour_order,
    orbit_path,
    round_to_multiple,
    scene_focus,
    spiral_path,
    vertical_fov,
)
from splatent_viewer.export.flythrough import (
    DEFAULT_FPS,
    ExportConfig,
    ExportResult,
    check_output_location,
    export_flythrough,
)
from splatent_viewer.export.nerfstudio_camera_path import (
    load_dataparser_transform,
    load_nerfstudio_camera_path,
    to_dataparser_world,
    write_nerfstudio_camera_path,
)
from splatent_viewer.progress import Progress
from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.trained import TrainedScene

CONSOLE = Console()


@dataclass
class _RenderOptions:
    """Options every subcommand shares: the scene, the export, the frame size and an optional camera-path copy."""

    scene: Annotated[TrainedSceneConfig, tyro.conf.arg(name="")]
    """The trained scene and how to load it (--load-config, --device, --refiner, ...)."""
    export: Annotated[ExportConfig, tyro.conf.arg(name="")] = field(default_factory=ExportConfig)
    """Output, mode, frame rate, references, video quality (--output, --mode, --fps, ...)."""
    width: int | None = None
    """Frame width (rounded to the codec's downscale, with a note). Default: the path's or the first training image's."""
    height: int | None = None
    """Frame height (rounded likewise). Default: the path's or the first training image's."""
    save_camera_path: Path | None = None
    """Also write the path as a nerfstudio camera-path JSON (for ns-render or the nerfstudio viewer), once the
    export is complete."""

    def interrupted_message(self) -> str:
        """What ``exit_on_error`` reports after Ctrl+C: outputs appear only when complete."""
        return "nothing written (outputs appear only when complete)"

    def cameras(self, scene: TrainedScene) -> CameraPath:
        raise NotImplementedError


@dataclass
class _GeneratedPath(_RenderOptions):
    """A path made from the training cameras."""

    seconds: float | None = None
    """Video length; the frame count is fps x seconds (``--num-frames`` overrides)."""
    num_frames: int | None = None
    """Frames in the path (overrides ``--seconds``)."""

    def _num_frames(self, default_seconds: float) -> int:
        if self.num_frames is not None:
            n = self.num_frames
        else:
            n = round(
                (self.export.fps or DEFAULT_FPS) * (self.seconds if self.seconds is not None else default_seconds)
            )
        if n < 1:
            raise SplatentError(f"The path would have {n} frames; pass --num-frames N (N >= 1) or a longer --seconds.")
        return n

    def _size(self, scene: TrainedScene) -> tuple[int, int, float]:
        """Output width, height, and the first training camera's vertical field of view."""
        h0, w0 = (int(v) for v in scene.references.sizes[0])
        fov = vertical_fov(K=scene.references.Ks[0].cpu(), height=h0)
        return self.width or w0, self.height or h0, fov

    def _path(self, scene: TrainedScene, c2ws: torch.Tensor, fovs: torch.Tensor | float) -> CameraPath:
        width, height, _ = self._size(scene)
        n = c2ws.shape[0]
        fovs = torch.as_tensor(fovs, dtype=torch.float64).expand(n)
        return CameraPath(
            c2ws=c2ws.float(),
            Ks=intrinsics_for_fov(fov=fovs, width=width, height=height).float(),
            width=width,
            height=height,
        )


@dataclass
class OrbitCommand(_GeneratedPath):
    """Circle around the scene focus at the training cameras' mean distance and height."""

    radius_scale: float = 1.0
    """Multiplies the orbit radius (the training cameras' mean distance from the focus)."""
    elevation: float = 0.0
    """Raises the orbit plane by this many radii along the up axis."""
    turns: float = 1.0
    """Revolutions over the video."""

    def cameras(self, scene: TrainedScene) -> CameraPath:
        train = scene.references.c2w.detach().cpu().double()
        c2ws = orbit_path(
            train_c2ws=train,
            num_frames=self._num_frames(5.0),
            radius_scale=self.radius_scale,
            elevation_offset=self.elevation,
            turns=self.turns,
        )
        return self._path(scene, c2ws, self._size(scene)[2])


@dataclass
class SpiralCommand(_GeneratedPath):
    """Spiral around one training camera, looking at the scene (nerfstudio's / LLFF's spiral)."""

    camera_index: int | None = None
    """Training camera to spiral around (index into the reference bank). Default: the one nearest the cameras' mean centre."""
    radius: float = 0.1
    """Spiral radius, in scene scales (the largest camera distance from the cameras' mean centre)."""
    rotations: float = 2.0
    """Turns over the video."""
    zrate: float = 0.5
    """Forward/back oscillation rate relative to the turns."""

    def cameras(self, scene: TrainedScene) -> CameraPath:
        bank = scene.references
        train = bank.c2w.detach().cpu().double()
        centres = train[:, :3, 3]
        idx = self.camera_index
        if idx is None:
            idx = int((centres - centres.mean(0)).norm(dim=-1).argmin())
        if not 0 <= idx < train.shape[0]:
            raise SplatentError(
                f"--camera-index {idx} is out of range: the scene has {train.shape[0]} training cameras."
            )
        scale = bank.scene_scale
        target = look_target(c2w=train[idx], focus=scene_focus(train), min_distance=0.5 * scale)
        c2ws = spiral_path(
            center_c2w=train[idx],
            focus=target,
            num_frames=self._num_frames(4.0),
            radius=self.radius * scale,
            rotations=self.rotations,
            zrate=self.zrate,
        )
        h = int(bank.sizes[idx][0])
        return self._path(scene, c2ws, vertical_fov(K=bank.Ks[idx].cpu(), height=h))


@dataclass
class InterpolateCommand(_GeneratedPath):
    """Smooth path through the training cameras (Catmull-Rom positions, quaternion spline rotations)."""

    order: Literal["scene", "nearest"] = "scene"
    """Visit the cameras in scene order, or as a greedy nearest-neighbour chain from the first."""
    loop: bool = False
    """Return to the first camera at the end."""

    def cameras(self, scene: TrainedScene) -> CameraPath:
        bank = scene.references
        train = bank.c2w.detach().cpu().double()
        order = list(range(train.shape[0])) if self.order == "scene" else nearest_neighbour_order(train)
        fovs = torch.tensor([vertical_fov(K=bank.Ks[i].cpu(), height=int(bank.sizes[i][0])) for i in order])
        # Default length: half a second per training camera, as ns-render's 10 steps per transition at 20 fps.
        c2ws, fov = interpolate_path(
            keyframes=train[order], num_frames=self._num_frames(0.5 * len(order)), fovs=fovs, closed=self.loop
        )
        assert fov is not None  # given fovs, the path interpolates them
        return self._path(scene, c2ws, fov)


@dataclass
class CameraPathCommand(_RenderOptions):
    """Render a nerfstudio camera-path JSON (the viewer's render panel), in the scene's world as ns-render does."""

    camera_path_filename: Path = Path("camera_path.json")
    """The camera-path JSON (keys camera_path[].camera_to_world / fov, render_width/height, seconds)."""
    data_transforms: Path | None = None
    """A nerfstudio run's dataparser_transforms.json when the path is in the original data coordinates
    (e.g. copied from transforms.json) rather than in the viewer's world; it is then transformed like the data."""

    def cameras(self, scene: TrainedScene) -> CameraPath:
        path = load_nerfstudio_camera_path(self.camera_path_filename)
        if self.data_transforms is not None:
            transform, scale = load_dataparser_transform(self.data_transforms)
            path.c2ws = to_dataparser_world(path.c2ws, transform=transform, scale=scale)
        if self.width is not None and self.height is not None:
            path = path.resized(width=self.width, height=self.height)
        elif self.width is not None:  # keep the path's aspect ratio
            path = path.resized(width=self.width, height=round(path.height * self.width / path.width))
        elif self.height is not None:
            path = path.resized(width=round(path.width * self.height / path.height), height=self.height)
        return path


Command = Union[
    Annotated[OrbitCommand, tyro.conf.subcommand("orbit")],
    Annotated[SpiralCommand, tyro.conf.subcommand("spiral")],
    Annotated[InterpolateCommand, tyro.conf.subcommand("interpolate")],
    Annotated[CameraPathCommand, tyro.conf.subcommand("camera-path")],
]


def _summary(result: ExportResult) -> Table:
    table = Table(title=f"{result.output} ({result.mode})", show_header=False)
    table.add_row(
        "frames", f"{result.frames} at {result.width}x{result.height}, {result.fps:g} fps ({result.seconds:.1f} s)"
    )
    if result.decoder:
        table.add_row("decoder", result.decoder)
    table.add_row("render time", f"{result.wall_seconds:.1f} s ({result.fps_achieved:.2f} frames/s)")
    for stream, value in result.flicker.items():
        table.add_row(f"flicker {stream}", f"{value:.4f} (mean |Δ| of consecutive frames, [0, 1])")
    for stream, value in result.warped_flicker.items():
        table.add_row(
            f"warped flicker {stream}",
            f"{value:.4f} (the same after warping along the Gaussians' depth: the motion taken out; "
            f"{result.warped_coverage or 0:.0%} of the pixels scored)",
        )
    if result.reference_switches is not None:
        table.add_row(
            "reference switches", f"{result.reference_switches} (plain nearest: {result.nearest_reference_switches})"
        )
    return table


def main(command: _RenderOptions) -> ExportResult:
    """Loads the scene, builds the path and exports it; returns what the export measured."""
    export = command.export
    check_output_location(export.output, option="--output")  # before minutes of loading and rendering
    if command.save_camera_path is not None:
        check_output_location(command.save_camera_path, option="--save-camera-path")
    scene_config = command.scene
    if export.mode in ("decoded", "rgb"):
        scene_config = replace(scene_config, refiner="none")  # nothing to refine: skip loading it
    device = scene_config.resolved_device()
    scene = scene_config.setup(device=device)
    cameras = command.cameras(scene)
    if command.width or command.height:
        if not isinstance(command, CameraPathCommand):
            cameras = cameras.resized(width=command.width or cameras.width, height=command.height or cameras.height)
    rounded, note = round_to_multiple(
        cameras, multiple=scene.codec.downscale
    )  # the export rounds it too (and records the note)
    if note:
        CONSOLE.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    decoder = "" if export.mode == "rgb" else f"[bold]decoder[/] {escape(describe_codec(scene.codec))} · "
    CONSOLE.print(
        f"[bold]scene[/] {escape(str(scene_config.load_config))} · [bold]{len(rounded)} frames[/] "
        f"{rounded.width}x{rounded.height} · [bold]mode[/] {export.mode} · {decoder}[bold]device[/] {device}",
        soft_wrap=True,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.2f} frames/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=CONSOLE) as progress:
        task = progress.add_task("rendering", total=len(cameras), fps=0.0)

        def on_frame(done: int, total: int) -> None:
            elapsed = progress.tasks[task].elapsed or 0.0
            progress.update(task, completed=done, fps=done / elapsed if elapsed > 0 else 0.0)

        result = export_flythrough(scene=scene, cameras=cameras, config=export, progress_callback=on_frame)
    if command.save_camera_path is not None:
        fov = [math.degrees(vertical_fov(K=K, height=rounded.height)) for K in rounded.Ks]
        write_nerfstudio_camera_path(
            path=command.save_camera_path,
            c2ws=rounded.c2ws,
            fov_degrees=torch.tensor(fov),
            width=rounded.width,
            height=rounded.height,
            seconds=result.seconds,
        )
    CONSOLE.print(_summary(result))
    if result.stats_path is not None:
        CONSOLE.print(f"wrote {escape(str(result.output))} and {escape(str(result.stats_path))}", soft_wrap=True)
    return result


def entrypoint() -> None:
    """CLI entry point."""
    command = tyro.cli(
        Command, description="splatent-render: flythrough videos or PNG frames of a trained scene (like ns-render)."
    )
    exit_on_error(main, command)


if __name__ == "__main__":
    entrypoint()
