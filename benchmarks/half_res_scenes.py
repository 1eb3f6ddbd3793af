"""Copies scene folders at 1/FACTOR resolution (images area-averaged, pixel intrinsics scaled), for GPU calls whose
64 MiB carry cannot hold the full-resolution scenes: the refiner recipe's units train at half resolution as the shipped
recipe's did (``.gpu_small/scenes``, benchmarks/guided_refiner_gpu.sh).

    python benchmarks/half_res_scenes.py --scenes .gpu_scenes/fern .gpu_lego/lego --output .gpu_small/scenes

Nerfstudio scenes (transforms.json): fl_x, fl_y, cx, cy, w, h scaled wherever they are given (top level or per frame).
Blender scenes (transforms_<split>.json): images resized, camera_angle_x kept. Only the images (and masks) the transforms
name are copied, and the point cloud of ply_file_path as it is; depth images are refused. An existing output scene is
replaced (written beside it, then renamed).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import tyro
from PIL import Image

from splatent_viewer.errors import SplatentError, exit_on_error

PIXEL_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


@dataclass
class Args:
    scenes: tuple[Path, ...]
    """Scene folders (nerfstudio transforms.json or blender transforms_<split>.json)."""
    output: Path
    """Folder the copies go into (OUTPUT/<scene name>)."""
    factor: int = 2
    """Downscale factor."""


def _image_path(folder: Path, file_path: str) -> Path:
    path = folder / file_path
    return path if path.suffix else path.with_suffix(".png")  # blender lists "./train/r_0" without the extension


def _resize(src: Path, dst: Path, factor: int, *, mask: bool = False) -> None:
    with Image.open(src) as im:
        size = (max(1, round(im.width / factor)), max(1, round(im.height / factor)))
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.resize(size, Image.Resampling.NEAREST if mask else Image.Resampling.BOX).save(dst)


def _scale(entry: dict, factor: int) -> dict:
    out = dict(entry)
    for key in PIXEL_KEYS:
        if key in out:
            value = out[key] / factor
            out[key] = round(value) if key in ("w", "h") else value
    return out


def copy_scene(scene: Path, output: Path, factor: int) -> Path:
    """Writes ``scene`` at 1/``factor`` into ``output``/<name>; returns that folder."""
    transforms = sorted(scene.glob("transforms*.json"))
    if not transforms:
        raise SplatentError(f"{scene} has no transforms*.json: pass a nerfstudio or blender scene folder.")
    target = output / scene.name
    tmp = output / f".{scene.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for path in transforms:
        meta = json.loads(path.read_text())
        meta = _scale(meta, factor)
        if "ply_file_path" in meta:
            (tmp / meta["ply_file_path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(scene / meta["ply_file_path"], tmp / meta["ply_file_path"])
        frames = []
        for frame in meta.get("frames", []):
            if "depth_file_path" in frame:
                raise SplatentError(f"{path} names depth images, which this copy does not resize; drop them first.")
            for key in ("file_path", "mask_path"):
                if key in frame:
                    src = _image_path(scene, frame[key])
                    if not src.is_file():
                        raise SplatentError(f"{path} names {src}, which does not exist.")
                    _resize(src, _image_path(tmp, frame[key]), factor, mask=key == "mask_path")
            frames.append(_scale(frame, factor))
        meta["frames"] = frames
        (tmp / path.name).write_text(json.dumps(meta, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def main(args: Args) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    for scene in args.scenes:
        target = copy_scene(scene, args.output, args.factor)
        print(f"{scene} -> {target} (1/{args.factor})")


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args))
