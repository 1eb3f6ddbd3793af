"""The project's own procedural "tabletop" scenes: layout from a seed, cameras, and a writer
of nerfstudio-format folders (``transforms.json`` + PNG views + ``sparse_pc.ply``).

World is z-up, the table top is the plane z = 0 and the scene centre is near the origin.
Seed 0 is the shipped ``assets/demo_scene``; other seeds give other layouts, textures and sun
directions (for refiner training data).
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from splatent_viewer.cameras import intrinsics_matrix
from splatent_viewer.data import textures as tx
from splatent_viewer.data.ply import write_ply_points
from splatent_viewer.data.raytracer import (
    Box,
    Cylinder,
    Lighting,
    Plane,
    Primitive,
    Sphere,
    Torus,
    World,
    camera_rays,
    render_view,
)
from splatent_viewer.errors import SplatentError

#: Marker key in the written transforms.json (nerfstudio ignores unknown keys); lets a rerun
#: replace a folder it made and refuse to clobber anything else.
MARKER_KEY = "splatent_demo_scene"
#: Point the cameras look at (a little above the table centre).
LOOK_AT = (0.0, 0.0, 0.2)
TABLE_TOP = 0.0
FLOOR = -0.9


@dataclass
class DemoSceneConfig:
    """Options of :func:`render_demo_scene` (and of ``python -m splatent_viewer.scripts.make_demo_scene``)."""

    output: Path = Path("assets/demo_scene")
    """Folder to write. A folder made by an earlier run is replaced (atomically); any other
    non-empty folder is refused."""
    num_views: int = 36
    """Number of views, on three rings around the table (one ring below 12 views)."""
    resolution: int = 256
    """Image width and height in pixels (a multiple of 8, so latents of an 8× VAE align)."""
    seed: int = 0
    """Seed of the layout, textures and sun; 0 is the shipped demo scene."""
    fov_degrees: float = 50.0
    """Horizontal (= vertical) field of view of the pinhole cameras."""
    camera_distance: float = 3.5
    """Distance of the cameras from the look-at point (world units; the table is 3.4 wide)."""
    supersample: int = 3
    """Rays per pixel along each axis (3 → 9 rays, anti-aliasing the fine textures)."""
    num_points: int = 12000
    """Points in sparse_pc.ply (the initial Gaussians), sampled uniformly over the views' pixels."""
    far_radius: float = 12.0
    """Distance from the camera at which sky / fogged pixels get their (far) points."""


# ----------------------------------------------------------------------------- layout


def _colour(
    rng: np.random.Generator, *, sat: tuple[float, float], val: tuple[float, float]
) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val))
    return float(r), float(g), float(b)


_KINDS = ("bricks", "glyphs", "checker", "stripes", "dots", "marble")


def _texture(kind: str, rng: np.random.Generator) -> tx.Texture:
    seed = int(rng.integers(1 << 30))
    if kind == "bricks":
        return tx.Bricks(
            brick=(rng.uniform(0.09, 0.14), rng.uniform(0.04, 0.06)),
            mortar=rng.uniform(0.007, 0.011),
            color=_colour(rng, sat=(0.5, 0.8), val=(0.45, 0.7)),
            seed=seed,
        )
    if kind == "glyphs":
        pixel = rng.uniform(0.018, 0.024)
        return tx.Glyphs(
            pixel=pixel,
            title_every=int(rng.choice([6, 8, 10])),
            offset=(rng.uniform(0, 100), -9 * pixel * rng.uniform(1.5, 4)),
            ink=_colour(rng, sat=(0.3, 0.8), val=(0.05, 0.25)),
            band=_colour(rng, sat=(0.6, 0.9), val=(0.4, 0.75)),
            seed=seed,
        )
    if kind == "checker":
        return tx.Checker(
            size=rng.uniform(0.035, 0.07),
            color_a=_colour(rng, sat=(0.0, 0.3), val=(0.8, 0.95)),
            color_b=_colour(rng, sat=(0.4, 0.9), val=(0.15, 0.4)),
        )
    if kind == "stripes":
        return tx.Stripes(
            period=rng.uniform(0.035, 0.07),
            angle=rng.uniform(0, math.pi),
            colors=tuple(_colour(rng, sat=(0.4, 0.9), val=(0.4, 0.95)) for _ in range(int(rng.integers(2, 5)))),
        )
    if kind == "dots":
        spacing = rng.uniform(0.045, 0.07)
        return tx.Dots(
            spacing=spacing,
            radius=spacing * rng.uniform(0.2, 0.35),
            color=_colour(rng, sat=(0.5, 0.9), val=(0.2, 0.6)),
            background=_colour(rng, sat=(0.05, 0.3), val=(0.8, 0.95)),
        )
    if kind == "marble":
        return tx.Marble(scale=rng.uniform(4.0, 8.0), vein=_colour(rng, sat=(0.2, 0.6), val=(0.15, 0.4)), seed=seed)
    raise ValueError(kind)


def demo_world(seed: int = 0) -> World:
    """The scene of ``seed``: a wooden table on legs over a tiled floor, with 6–8 textured
    objects (boxes, spheres, cylinders, a torus) standing on it and a random sun."""
    rng = np.random.default_rng(seed)
    prims: list[Primitive] = []
    wood_hue, wood_sat, wood_val = rng.uniform(0.05, 0.1), rng.uniform(0.5, 0.65), rng.uniform(0.62, 0.8)
    wood = tx.Wood(
        light=colorsys.hsv_to_rgb(wood_hue, wood_sat, wood_val),
        dark=colorsys.hsv_to_rgb(wood_hue, wood_sat + 0.1, wood_val * 0.55),
        seed=int(rng.integers(1 << 30)),
    )
    table_yaw = float(rng.uniform(0, math.pi / 2))
    half = 1.7
    prims.append(Box(texture=wood, centre=(0.0, 0.0, TABLE_TOP - 0.06), half=(half, half, 0.06), yaw=table_yaw))
    leg_texture = tx.Wood(
        light=(0.5, 0.33, 0.18), dark=(0.3, 0.18, 0.09), plank_width=0.5, seed=int(rng.integers(1 << 30))
    )
    for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        lx, ly = sx * (half - 0.15), sy * (half - 0.15)
        c, s = math.cos(table_yaw), math.sin(table_yaw)
        prims.append(
            Cylinder(
                texture=leg_texture, xy=(c * lx - s * ly, s * lx + c * ly), radius=0.07, z0=FLOOR, z1=TABLE_TOP - 0.12
            )
        )
    floor_tex = tx.Checker(
        size=0.4,
        color_a=_colour(rng, sat=(0.0, 0.15), val=(0.7, 0.85)),
        color_b=_colour(rng, sat=(0.1, 0.4), val=(0.3, 0.45)),
    )
    prims.append(Plane(texture=floor_tex, height=FLOOR))

    first = ["sphere", "cylinder", "torus"]
    rng.shuffle(first)
    shapes = ["box", *first, "box", "cylinder", "sphere", "box"]  # the first four cover every shape
    num = int(rng.integers(6, 9))
    kinds: list[str] = []
    placed: list[tuple[float, float, float]] = []  # (x, y, footprint radius)
    boxes: list[Box] = []
    for shape in shapes[:num]:
        if not kinds:
            kinds = list(_KINDS)
            rng.shuffle(kinds)
        kind = kinds.pop()
        if shape == "box":
            hx, hy, hz = rng.uniform(0.14, 0.32), rng.uniform(0.14, 0.32), rng.uniform(0.1, 0.32)
            foot = math.hypot(hx, hy)
        elif shape == "sphere":
            r = rng.uniform(0.16, 0.3)
            foot = r
        elif shape == "cylinder":
            r, h = rng.uniform(0.1, 0.22), rng.uniform(0.25, 0.7)
            foot = r
        else:
            big, small = rng.uniform(0.2, 0.3), rng.uniform(0.05, 0.08)
            foot = big + small
        for _ in range(300):
            rad, ang = 1.25 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            x, y = rad * math.cos(ang), rad * math.sin(ang)
            if rad + foot < 1.45 and all(math.hypot(x - px, y - py) > foot + pf + 0.06 for px, py, pf in placed):
                break
        else:
            continue  # no room left on the table
        placed.append((x, y, foot))
        tex = _texture(kind, rng)
        if shape == "box":
            top = _texture(str(rng.choice([k for k in _KINDS if k != kind])), rng)
            box = Box(
                texture=tx.PerFace(side=tex, top=top),
                centre=(x, y, TABLE_TOP + hz),
                half=(hx, hy, hz),
                yaw=float(rng.uniform(0, math.pi)),
            )
            prims.append(box)
            boxes.append(box)
        elif shape == "sphere":
            prims.append(Sphere(texture=tex, centre=(x, y, TABLE_TOP + r), radius=r))
        elif shape == "cylinder":
            cap = tx.Marble(scale=10.0, seed=int(rng.integers(1 << 30)))
            prims.append(
                Cylinder(
                    texture=tx.PerFace(side=tex, top=cap, top_faces=(4, 5)),
                    xy=(x, y),
                    radius=r,
                    z0=TABLE_TOP,
                    z1=TABLE_TOP + h,
                )
            )
        else:
            prims.append(Torus(texture=tex, centre=(x, y, TABLE_TOP + small), major=big, minor=small))
    # a ball resting on the first box's top gives a stacked object (and a shadow on a texture)
    if boxes:
        b = boxes[0]
        r = 0.6 * min(b.half[0], b.half[1])
        tex = _texture(str(rng.choice(["marble", "stripes", "checker"])), rng)
        prims.append(Sphere(texture=tex, centre=(b.centre[0], b.centre[1], b.centre[2] + b.half[2] + r), radius=r))

    az, el = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(35, 60))
    sun = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    return World(primitives=prims, lighting=Lighting(sun_direction=sun))


# ----------------------------------------------------------------------------- cameras


def look_at_c2w(
    eye: Float[Tensor, "3"], target: Float[Tensor, "3"], up: tuple[float, float, float] = (0.0, 0.0, 1.0)
) -> Float[Tensor, "4 4"]:
    """OpenGL camera-to-world of a camera at ``eye`` looking at ``target`` (x right, y up, -z forward)."""
    forward = torch.nn.functional.normalize(target - eye, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, torch.tensor(up, dtype=eye.dtype)), dim=0)
    cam_up = torch.linalg.cross(right, forward)
    c2w = torch.eye(4, dtype=eye.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, -forward, eye
    return c2w


def ring_cameras(*, num_views: int, distance: float, seed: int) -> Float[Tensor, "N 4 4"]:
    """Cameras on rings at 18°, 32° and 48° elevation (one ring at 30° below 12 views), evenly
    spread in azimuth, staggered between rings, all looking at :data:`LOOK_AT`."""
    elevations = [18.0, 32.0, 48.0] if num_views >= 12 else [30.0]
    per_ring = [num_views // len(elevations) + (i < num_views % len(elevations)) for i in range(len(elevations))]
    start = np.random.default_rng(seed + 7919).uniform(0, 360)
    target = torch.tensor(LOOK_AT, dtype=torch.float64)
    c2ws = []
    for ring, (el, n) in enumerate(zip(elevations, per_ring)):
        for k in range(n):
            az = math.radians(start + 360.0 * (k + ring / len(elevations)) / n)
            e = math.radians(el)
            eye = target + distance * torch.tensor(
                [math.cos(e) * math.cos(az), math.cos(e) * math.sin(az), math.sin(e)], dtype=torch.float64
            )
            c2ws.append(look_at_c2w(eye, target))
    return torch.stack(c2ws)


def focal_length(*, resolution: int, fov_degrees: float) -> float:
    return 0.5 * resolution / math.tan(math.radians(fov_degrees) / 2)


# ----------------------------------------------------------------------------- writer


def _check(config: DemoSceneConfig) -> None:
    if config.resolution <= 0 or config.resolution % 8:
        raise SplatentError(f"--resolution {config.resolution} must be a positive multiple of 8 (e.g. 256).")
    if config.num_views < 2:
        raise SplatentError(f"--num-views {config.num_views}: need at least 2 views.")
    if config.supersample < 1:
        raise SplatentError("--supersample must be at least 1.")
    if not 1.0 < config.fov_degrees < 170.0:
        raise SplatentError(f"--fov-degrees {config.fov_degrees} must be between 1 and 170.")
    out = Path(config.output)
    if out.exists():
        if not out.is_dir():
            raise SplatentError(f"{out} exists and is not a folder. Choose another --output.")
        ours = False
        try:
            ours = MARKER_KEY in json.loads((out / "transforms.json").read_text())
        except (OSError, ValueError):
            pass
        if any(out.iterdir()) and not ours:
            raise SplatentError(
                f"{out} is not empty and was not made by make_demo_scene. Choose another --output or remove it."
            )


def _readme(config: DemoSceneConfig, num_points: int) -> str:
    rings = "three rings" if config.num_views >= 12 else "one ring"
    res = f"{config.resolution}x{config.resolution}"
    ss = f"{config.supersample}x{config.supersample}"
    return f"""# Splatent demo scene (procedural, generated)

A small tabletop scene rendered by this project's own ray tracer
(`splatent_viewer/data/raytracer.py`; layout, textures and cameras in
`splatent_viewer/data/demo_scene.py`). No third-party data is involved.

- {config.num_views} views at {res}, pinhole cameras with a {config.fov_degrees:g} degree field of view on
  {rings} around the table, looking at its centre; {ss} supersampling; Lambert shading with
  hard sun shadows.
- `transforms.json`: nerfstudio format, OpenGL camera-to-world matrices in a z-up world
  (table top at z = 0), global `fl_x fl_y cx cy w h`, `camera_model` OPENCV with zero
  distortion, `ply_file_path` pointing at the point cloud.
- `images/frame_XXXXX.png`: the views.
- `sparse_pc.ply`: {num_points} points with colours, sampled from the views' pixel-centre
  hits; sky and fogged-floor pixels get a point {config.far_radius} units along their ray
  (nerfstudio-data uses the file to initialise splatfacto).

Regenerate (deterministic, seed {config.seed}):

    python -m splatent_viewer.scripts.make_demo_scene --output {config.output} --num-views {config.num_views} --resolution {config.resolution} --seed {config.seed}

License: Apache-2.0, the same as the splatent-viewer project that generated it.
"""


def render_demo_scene(config: DemoSceneConfig, *, progress: bool = False) -> Path:
    """Render the scene of ``config.seed`` and write a nerfstudio-format folder at
    ``config.output`` (built in a temporary sibling folder, then renamed into place).
    Returns the output folder."""
    _check(config)
    out = Path(config.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    world = demo_world(config.seed)
    res = config.resolution
    fl = focal_length(resolution=res, fov_degrees=config.fov_degrees)
    K = intrinsics_matrix(
        fx=torch.tensor(fl), fy=torch.tensor(fl), cx=torch.tensor(res / 2), cy=torch.tensor(res / 2)
    ).float()
    c2ws = ring_cameras(num_views=config.num_views, distance=config.camera_distance, seed=config.seed)
    rng = np.random.default_rng(config.seed + 104729)
    per_view = math.ceil(config.num_points * 1.5 / config.num_views)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp creates it private
        (tmp / "images").mkdir()
        frames, pts, cols = [], [], []
        bar = None
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

            from splatent_viewer.progress import Progress

            bar = Progress(TextColumn("rendering views"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            bar.start()
            task = bar.add_task("render", total=config.num_views)
        for i in range(config.num_views):
            r = render_view(world, c2w=c2ws[i].float(), K=K, width=res, height=res, supersample=config.supersample)
            img = (r.image.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
            name = f"images/frame_{i:05d}.png"
            Image.fromarray(img.numpy()).save(tmp / name, optimize=True)
            frames.append({"file_path": name, "transform_matrix": c2ws[i].tolist()})
            # Points on visible surfaces, plus (like the far points of a real capture's SfM) points for
            # sky and fogged floor on a far sphere along the pixel rays, so Gaussians start everywhere.
            pick = torch.from_numpy(rng.choice(res * res, size=min(per_view, res * res), replace=False))
            far = r.centre_fog.reshape(-1)[pick] >= 0.2
            points = r.centre_points.reshape(-1, 3)[pick]
            if far.any():
                ys, xs = pick[far] // res, pick[far] % res
                origins, dirs = camera_rays(c2w=c2ws[i].float(), K=K, pixels=torch.stack([xs + 0.5, ys + 0.5]).float())
                points[far] = (origins + dirs * config.far_radius).T
            pts.append(points)
            cols.append(img.reshape(-1, 3)[pick])
            if bar is not None:
                bar.advance(task)
        if bar is not None:
            bar.stop()
        all_pts, all_cols = torch.cat(pts), torch.cat(cols)
        keep = torch.from_numpy(rng.choice(len(all_pts), size=min(config.num_points, len(all_pts)), replace=False))
        write_ply_points(tmp / "sparse_pc.ply", points=all_pts[keep], colors=all_cols[keep])
        meta = {
            "camera_model": "OPENCV",
            "fl_x": fl, "fl_y": fl, "cx": res / 2, "cy": res / 2, "w": res, "h": res,
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
            "ply_file_path": "sparse_pc.ply",
            MARKER_KEY: {"seed": config.seed, "up": "+z", "look_at": list(LOOK_AT), "supersample": config.supersample},
            "frames": frames,
        }  # fmt: skip
        (tmp / "transforms.json").write_text(json.dumps(meta, indent=1))
        (tmp / "README.md").write_text(_readme(config, len(keep)))
        # swap into place: the old folder (if any) is moved aside first, then deleted
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "x")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
