"""Scene-folder validation before nerfstudio's dataparsers read it: one clear error naming the file and the fix.

nerfstudio 1.1.5 reports many broken scene folders cryptically (an empty ``frames`` list ends in an
``IndexError``, a missing intrinsic in a bare ``assert``, a wrong image size in an assertion deep in the
datamanager that does not name the file). :func:`check_scene` validates what the nerfstudio-data,
blender-data and COLMAP dataparsers will read and raises :class:`~splatent_viewer.errors.SplatentError`
instead. The core scene loader (:func:`splatent_viewer.data.scene.load_scene`) and the nerfstudio
plugin's datamanager (``ns-train splatent``) both call it, so both refuse the same folders with the
same message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerfstudio.cameras.cameras import CAMERA_MODEL_TO_TYPE, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from PIL import Image, UnidentifiedImageError

from splatent_viewer.errors import SplatentError

SPLITS = ("train", "val", "test")
SUPPORTED_CAMERA_MODELS = tuple(
    m for m, t in CAMERA_MODEL_TO_TYPE.items() if t in (CameraType.PERSPECTIVE, CameraType.FISHEYE)
)
"""nerfstudio camera models whose images are undistorted to pinhole images (PINHOLE, OPENCV, OPENCV_FISHEYE, ...)."""
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


@dataclass(frozen=True)
class CheckedScene:
    """What :func:`check_scene` learnt about a valid scene folder."""

    splits: tuple[str, ...]
    """The splits the dataparser can return (all three unless split lists / files leave some out)."""
    ply_path: Path | None = None
    """The point cloud a nerfstudio-data folder names in ``ply_file_path``."""
    has_points: bool = False
    """Whether the dataparser reads a point cloud (``ply_file_path``, COLMAP ``points3D``) with ``load_3D_points``."""


def image_size(path: Path, frames_json: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels; one clear
    :class:`SplatentError` naming the image and ``frames_json`` when it is missing or unreadable."""
    if not path.is_file():
        raise SplatentError(f"Image {path} listed in {frames_json} does not exist. Restore it or fix its 'file_path'.")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise SplatentError(
            f"Image {path} listed in {frames_json} is unreadable or corrupt ({e}). Replace it with a valid image."
        ) from e


def read_transforms_json(path: Path) -> dict[str, Any]:
    """A transforms JSON object with a non-empty ``frames`` list, or one clear error."""
    if not path.is_file():
        raise SplatentError(f"{path} does not exist. Point to a scene folder that has it.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SplatentError(f"Cannot read {path} ({e}). Check the file's permissions and encoding (UTF-8).") from e
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise SplatentError(
            f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. Fix that line or re-export the file."
        ) from e
    if not isinstance(meta, dict):
        raise SplatentError(f"{path} must hold a JSON object with a 'frames' list, not a {type(meta).__name__}.")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise SplatentError(
            f"{path} lists no frames (its 'frames' list is missing or empty). Add the posed images to it."
        )
    return meta


def check_frame(frames_json: Path, frame: Any, k: int) -> str:
    """A frame's ``file_path`` after checking it has a finite 4x4 ``transform_matrix``."""
    if not isinstance(frame, dict) or "file_path" not in frame:
        raise SplatentError(
            f"{frames_json}: frame {k} has no 'file_path'. Give every frame the image path relative to the JSON file."
        )
    name = frame["file_path"]
    if "transform_matrix" not in frame:
        raise SplatentError(
            f"{frames_json}: frame {k} ({name}) has no 'transform_matrix'. Give every frame its 4x4 camera-to-world matrix."
        )
    m = frame["transform_matrix"]
    ok = isinstance(m, list) and len(m) == 4 and all(isinstance(r, list) and len(r) == 4 for r in m)
    try:
        ok = ok and all(math.isfinite(float(v)) for r in m for v in r)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise SplatentError(
            f"{frames_json}: frame {k} ({name}) has a 'transform_matrix' that is not a finite 4x4 matrix of numbers; "
            "nerfstudio needs all four rows (the last is 0 0 0 1)."
        )
    return str(name)


def _number(value: Any, key: str, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as e:
        raise SplatentError(f"{where}: '{key}' must be a number, not {value!r}.") from e
    if not math.isfinite(out):
        raise SplatentError(f"{where}: '{key}' must be finite, not {value!r}.")
    return out


def _check_camera_model(model: Any, where: str) -> CameraType:
    if model not in CAMERA_MODEL_TO_TYPE:
        raise SplatentError(
            f"{where}: camera_model {model!r} is unknown to nerfstudio. Use one of {', '.join(SUPPORTED_CAMERA_MODELS)}."
        )
    if model not in SUPPORTED_CAMERA_MODELS:
        raise SplatentError(
            f"{where}: camera_model {model!r} is not supported; splatent trains on pinhole images, undistorted on load from "
            f"{', '.join(SUPPORTED_CAMERA_MODELS)}. Convert the images to one of those (e.g. with ns-process-data)."
        )
    return CAMERA_MODEL_TO_TYPE[model]


def _check_split_names(where: Path, split: str, listed: list[Path], known: set[Path]) -> None:
    missing = sorted(str(p) for p in set(listed).difference(known))
    if missing:
        raise SplatentError(
            f"{where}: the {split} split lists {missing[:3]}{' ...' if len(missing) > 3 else ''}, which no frame has. Fix the list."
        )


# ----------------------------------------------------------------------------- nerfstudio-data


def _check_nerfstudio(config: NerfstudioDataParserConfig) -> CheckedScene:
    data = Path(config.data)
    if not data.exists():
        raise SplatentError(
            f"Scene folder {data} does not exist. Pass a folder with transforms.json (e.g. made with ns-process-data)."
        )
    json_path = data if data.suffix == ".json" else data / "transforms.json"
    colmap = next((m for m in ("sparse/0", "colmap/sparse/0") if (data / m).is_dir()), None)
    if not json_path.exists() and colmap is not None:
        raise SplatentError(
            f"{data} has no transforms.json but a COLMAP model in {colmap}: read it with the COLMAP dataparser "
            f"(ns-train splatent colmap --data {data} --colmap-path {colmap}) or convert it with ns-process-data."
        )
    meta = read_transforms_json(json_path)
    data_dir = json_path.parent
    camera_type = _check_camera_model(meta.get("camera_model", "OPENCV"), str(json_path))
    # nerfstudio reads a key from the top level when it is there (for every frame), else from each frame
    distortion_fixed = any(k in meta for k in ("k1", "k2", "k3", "p1", "p2", "distortion_params"))
    downscale = config.downscale_factor
    files: list[Path] = []
    for k, frame in enumerate(meta["frames"]):
        name = check_frame(json_path, frame, k)
        where = f"{json_path}: frame {k} ({name})"
        values = {}
        for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            if key not in meta and key not in frame:
                raise SplatentError(
                    f"{where} has no '{key}' (nor has the file's top level). "
                    "Set fl_x, fl_y, cx, cy, w and h for all frames or per frame."
                )
            values[key] = _number(meta[key] if key in meta else frame[key], key, where)
        source = meta if distortion_fixed else frame
        if "distortion_params" in source:
            params = source["distortion_params"]
            if not isinstance(params, list) or len(params) != 6:
                raise SplatentError(f"{where}: 'distortion_params' must be 6 numbers (k1, k2, k3, k4, p1, p2).")
            coeffs = dict(zip(_DISTORTION_KEYS, (_number(p, "distortion_params", where) for p in params)))
        else:
            coeffs = {key: _number(source.get(key, 0.0), key, where) for key in _DISTORTION_KEYS}
        if camera_type == CameraType.PERSPECTIVE and coeffs["k4"] != 0.0:
            raise SplatentError(
                f"{where}: k4={coeffs['k4']:g} is not supported for perspective cameras (nerfstudio undistorts "
                "k1, k2, k3, p1, p2 only). Use OPENCV_FISHEYE for a fisheye lens or set k4 to 0."
            )
        path = data_dir / name
        width, height = image_size(path, json_path)
        want = (int(values["w"]), int(values["h"]))
        if (width, height) != want:
            raise SplatentError(
                f"Image {path} is {width}x{height} but {json_path} says {want[0]}x{want[1]} (w x h). "
                "Fix 'w'/'h' in the JSON or use the original images."
            )
        if downscale is not None and downscale > 1:
            smaller = data_dir / f"images_{downscale}" / Path(name).name
            if not smaller.is_file():
                raise SplatentError(
                    f"Image {smaller} does not exist: nerfstudio-data with downscale factor {downscale} reads "
                    f"images_{downscale}/. Make it (ns-process-data does) or drop the downscale factor."
                )
        files.append(path)
    known = set(files)
    splits = SPLITS
    if any(f"{s}_filenames" in meta for s in SPLITS):
        splits = tuple(s for s in SPLITS if f"{s}_filenames" in meta)
        for s in splits:
            names = meta[f"{s}_filenames"]
            if not isinstance(names, list):
                raise SplatentError(f"{json_path}: '{s}_filenames' must be a list of image paths.")
            _check_split_names(json_path, s, [data_dir / str(n) for n in names], known)
    ply_path = None
    if meta.get("ply_file_path"):
        ply_path = data_dir / str(meta["ply_file_path"])
        if not ply_path.is_file():
            raise SplatentError(
                f"Point cloud {ply_path} named by ply_file_path in {json_path} does not exist. Restore it or remove ply_file_path."
            )
    return CheckedScene(splits=splits, ply_path=ply_path, has_points=ply_path is not None)


# ----------------------------------------------------------------------------- blender-data


def blender_image_path(root: Path, file_path: str) -> Path:
    """The image nerfstudio's blender-data reads for a frame: ``file_path`` without "./" plus ".png"."""
    return root / Path(file_path.replace("./", "") + ".png")


def _check_blender(config: BlenderDataParserConfig) -> CheckedScene:
    root = Path(config.data)
    if not root.is_dir():
        raise SplatentError(
            f"Scene folder {root} does not exist. Pass a blender-format folder (with transforms_train.json)."
        )
    if not (root / "transforms_train.json").is_file():
        raise SplatentError(
            f"No transforms_train.json in {root}. blender-data needs it (and transforms_val.json for evaluation)."
        )
    splits = []
    for s in SPLITS:
        json_path = root / f"transforms_{s}.json"
        if not json_path.is_file():
            continue
        splits.append(s)
        meta = read_transforms_json(json_path)
        if "camera_angle_x" not in meta:
            raise SplatentError(
                f"{json_path} has no 'camera_angle_x' (the horizontal field of view). Add it, in radians."
            )
        _number(meta["camera_angle_x"], "camera_angle_x", str(json_path))
        first: tuple[Path, tuple[int, int]] | None = None
        for k, frame in enumerate(meta["frames"]):
            name = check_frame(json_path, frame, k)
            path = blender_image_path(root, name)
            if not path.is_file() and (root / name).is_file():
                raise SplatentError(
                    f"Image {path} listed in {json_path} does not exist: blender-data appends '.png' to "
                    f"'file_path' ({name}). Drop the extension from 'file_path'."
                )
            size = image_size(path, json_path)
            if first is None:
                first = (path, size)
            elif size != first[1]:
                raise SplatentError(
                    f"Image {path} is {size[0]}x{size[1]} but {first[0]}, the first image of {json_path}, is "
                    f"{first[1][0]}x{first[1][1]}; blender-data needs one image size per split. Resize it."
                )
    ply_path = None
    if config.ply_path is not None:
        ply_path = root / config.ply_path
        if not ply_path.is_file():
            raise SplatentError(
                f"Point cloud {ply_path} (blender-data ply_path) does not exist. Fix --ply-path or drop it."
            )
    return CheckedScene(splits=tuple(splits), ply_path=ply_path, has_points=ply_path is not None)


# ----------------------------------------------------------------------------- COLMAP


def _colmap_model(recon: Path, name: str, reader_txt, reader_bin) -> dict:
    txt, binary = recon / f"{name}.txt", recon / f"{name}.bin"
    path = txt if txt.is_file() else binary
    if not path.is_file():
        raise SplatentError(
            f"No {name}.txt or {name}.bin in {recon}. Export the COLMAP model there (colmap model_converter)."
        )
    try:
        return (reader_txt if path == txt else reader_bin)(path)
    except Exception as e:  # noqa: BLE001 - any parse failure of the file is the same user error
        raise SplatentError(
            f"{path} is not a readable COLMAP {name} file ({type(e).__name__}: {e}). Re-export the model."
        ) from e


def _check_colmap(config: ColmapDataParserConfig) -> CheckedScene:
    from nerfstudio.data.utils import colmap_parsing_utils as colmap
    from nerfstudio.process_data.colmap_utils import parse_colmap_camera_params

    data = Path(config.data)
    if not data.is_dir():
        raise SplatentError(f"Scene folder {data} does not exist. Pass a COLMAP folder (sparse/0 and images/).")
    recon = data / config.colmap_path
    if not recon.is_dir():
        raise SplatentError(
            f"COLMAP model folder {recon} does not exist. Put the reconstruction there or set colmap_path."
        )
    cameras = _colmap_model(recon, "cameras", colmap.read_cameras_text, colmap.read_cameras_binary)
    images = _colmap_model(recon, "images", colmap.read_images_text, colmap.read_images_binary)
    if not images:
        raise SplatentError(
            f"{recon} has no registered images. Run COLMAP's mapper again or pick another model folder."
        )
    images_file = next(p for p in (recon / "images.txt", recon / "images.bin") if p.is_file())
    models = set()
    for image in images.values():
        where = f"{recon}: image {image.name}"
        if image.camera_id not in cameras:
            raise SplatentError(
                f"{where} uses camera {image.camera_id}, which the cameras file does not have. Re-export the model."
            )
        camera = cameras[image.camera_id]
        try:
            params = parse_colmap_camera_params(camera)
        except NotImplementedError as e:
            raise SplatentError(
                f"{recon}: camera {camera.id} has COLMAP model {camera.model}, which nerfstudio does not read. "
                "Undistort the images (colmap image_undistorter) and use the undistorted model."
            ) from e
        if (
            any(float(params.get(k, 0.0)) != 0.0 for k in ("k4", "k5", "k6"))
            and params["camera_model"] != "OPENCV_FISHEYE"
        ):
            raise SplatentError(
                f"{recon}: camera {camera.id} has non-zero k4..k6, which nerfstudio does not undistort. "
                "Undistort the images with COLMAP first."
            )
        models.add(_check_camera_model(params["camera_model"], f"{recon}: camera {camera.id}"))
        path = data / config.images_path / image.name
        width, height = image_size(path, images_file)
        if (width, height) != (int(camera.width), int(camera.height)):
            raise SplatentError(
                f"Image {path} is {width}x{height} but its COLMAP camera {camera.id} in {recon} is "
                f"{int(camera.width)}x{int(camera.height)}. Use the images the model was made from."
            )
    if len(models) > 1:
        raise SplatentError(
            f"{recon} mixes camera models ({', '.join(sorted(m.name for m in models))}); nerfstudio reads one. "
            "Undistort the images with COLMAP (image_undistorter) first."
        )
    known = {data / config.images_path / image.name for image in images.values()}
    listed = [s for s in SPLITS if (data / f"{s}_list.txt").is_file()]
    has_lists = bool(listed) or (data / "validation_list.txt").is_file()
    for s in listed:
        names = (data / f"{s}_list.txt").read_text(encoding="utf-8").splitlines()
        _check_split_names(data / f"{s}_list.txt", s, [data / config.images_path / n for n in names], known)
    has_points = any((recon / f"points3D.{ext}").is_file() for ext in ("bin", "txt"))
    return CheckedScene(splits=tuple(listed) if has_lists else SPLITS, has_points=has_points)


def check_scene(dataparser_config: DataParserConfig) -> CheckedScene | None:
    """Validates the scene folder of a nerfstudio-data, blender-data or COLMAP dataparser config (one clear
    :class:`SplatentError` naming the file and the fix); other dataparsers pass unchecked (None)."""
    if isinstance(dataparser_config, NerfstudioDataParserConfig):
        return _check_nerfstudio(dataparser_config)
    if isinstance(dataparser_config, BlenderDataParserConfig):
        return _check_blender(dataparser_config)
    if isinstance(dataparser_config, ColmapDataParserConfig):
        return _check_colmap(dataparser_config)
    return None


__all__ = [
    "SPLITS",
    "SUPPORTED_CAMERA_MODELS",
    "CheckedScene",
    "blender_image_path",
    "check_frame",
    "check_scene",
    "image_size",
    "read_transforms_json",
]
