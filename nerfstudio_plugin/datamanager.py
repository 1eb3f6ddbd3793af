"""splatfacto's full-image datamanager, with a scene-folder check first.

nerfstudio 1.1.5 reports some broken scene folders cryptically (an empty ``frames`` list ends in an
``IndexError``; a wrong image size in an assertion that does not name the file). Before loading,
:func:`check_scene` validates nerfstudio-data (``transforms.json``) and blender-data
(``transforms_<split>.json``) folders and raises :class:`~splatent_viewer.errors.SplatentError`
naming the file and the fix. Other dataparsers are passed through unchecked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Type

from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager, FullImageDatamanagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.datasets.base_dataset import InputDataset

from splatent_viewer.data.scene import image_size
from splatent_viewer.errors import SplatentError


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise SplatentError(f"{path} does not exist; point --data at a scene folder that has it.")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SplatentError(f"{path} is not readable JSON ({e}); fix or regenerate it.") from e
    if not isinstance(meta, dict):
        raise SplatentError(f"{path} must hold a JSON object with a 'frames' list.")
    return meta


def _check_frames(meta: dict, *, json_path: Path, root: Path, suffix: str = "") -> None:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise SplatentError(f"{json_path} lists no frames; add camera frames (file_path + transform_matrix).")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
            raise SplatentError(f"{json_path}: frame {i} lacks 'file_path' or 'transform_matrix'.")
        path = root / (str(frame["file_path"]) + suffix)
        width, height = image_size(path, json_path)
        want_w, want_h = frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))
        if want_w is not None and want_h is not None and (int(want_w), int(want_h)) != (width, height):
            raise SplatentError(
                f"Image {path} is {width}x{height} but {json_path} says {int(want_w)}x{int(want_h)} (WxH); "
                "resize the image or fix 'w'/'h'."
            )


def check_scene(dataparser_config) -> None:
    """Validates the scene folder of a nerfstudio-data or blender-data dataparser config."""
    data = Path(dataparser_config.data)
    if isinstance(dataparser_config, NerfstudioDataParserConfig):
        if not data.exists():
            raise SplatentError(f"Scene folder {data} does not exist; pass --data <folder with transforms.json>.")
        json_path = data if data.suffix == ".json" else data / "transforms.json"
        _check_frames(_load_json(json_path), json_path=json_path, root=json_path.parent)
    elif isinstance(dataparser_config, BlenderDataParserConfig):
        if not data.is_dir():
            raise SplatentError(f"Scene folder {data} does not exist; pass --data <folder with transforms_train.json>.")
        json_path = data / "transforms_train.json"
        _check_frames(_load_json(json_path), json_path=json_path, root=data, suffix=".png")


class SplatentDatamanager(FullImageDatamanager[InputDataset]):
    """:class:`FullImageDatamanager` that checks the scene folder before loading it."""

    def __init__(self, config: "SplatentDatamanagerConfig", *args, **kwargs) -> None:
        if config.data is not None:  # what FullImageDatamanager does first, too
            config.dataparser.data = Path(config.data)
        if kwargs.get("test_mode", "val") != "inference":
            check_scene(config.dataparser)
        super().__init__(config, *args, **kwargs)


@dataclass
class SplatentDatamanagerConfig(FullImageDatamanagerConfig):
    """Full-image datamanager (as splatfacto's) with a clear error for broken scene folders."""

    _target: Type = field(default_factory=lambda: SplatentDatamanager)


__all__ = ["SplatentDatamanager", "SplatentDatamanagerConfig", "check_scene"]
