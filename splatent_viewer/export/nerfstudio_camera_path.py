"""nerfstudio camera-path JSON (the viewer's render panel / ``ns-render camera-path``), read and written.

Conventions are those of nerfstudio 1.1.5's ``get_path_from_json`` (``cameras/camera_paths.py``):

- ``camera_path[i].camera_to_world``: a flattened 4x4, row-major, OpenGL camera-to-world;
- ``camera_path[i].fov``: the *vertical* field of view in degrees; focal length
  ``render_height / 2 / tan(fov / 2)`` for both axes (square pixels), principal point at the
  image centre ``(render_width / 2, render_height / 2)``;
- ``render_width`` / ``render_height`` in pixels, ``seconds`` the duration: ``ns-render`` plays
  the path at ``len(camera_path) / seconds`` frames per second.

World frame: the render panel writes poses in the world the *model* sees, i.e. nerfstudio's
dataparser-transformed (re-oriented, re-centred and scaled) world, divided by the viewer's
``VISER_NERFSTUDIO_SCALE_RATIO``. ``ns-render`` applies them to the model as they are, and so do
we: a scene loaded from a nerfstudio run's ``config.yml`` lives in that same world. Core-trainer
scenes live in their own data world (no dataparser transform). A path made in the *original*
data coordinates can be brought into the dataparser world with :func:`to_dataparser_world` and
the run's ``dataparser_transforms.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.errors import SplatentError
from splatent_viewer.export.camera_paths import CameraPath, intrinsics_for_fov


def _fail(path: Path, what: str) -> SplatentError:
    return SplatentError(
        f"{path}: {what}. Expected a nerfstudio camera path (the viewer's Render tab → 'Generate command' / "
        "'Save camera path'), with render_width, render_height, seconds and camera_path[].camera_to_world / fov."
    )


def camera_path_from_dict(data: dict[str, Any], *, source: Path = Path("<camera path>")) -> CameraPath:
    """The cameras of a nerfstudio camera-path dictionary (see the module docstring for conventions)."""
    if not isinstance(data, dict):
        raise _fail(source, "the top level is not a JSON object")
    for key in ("render_width", "render_height", "camera_path"):
        if key not in data:
            raise _fail(source, f"missing key '{key}'")
    camera_type = str(data.get("camera_type", "perspective")).lower()
    if camera_type != "perspective":
        raise _fail(
            source,
            f"camera_type '{camera_type}' is not supported (only perspective); "
            "set the render panel's camera type to Perspective",
        )
    width, height = int(data["render_width"]), int(data["render_height"])
    frames = data["camera_path"]
    if not isinstance(frames, list) or not frames:
        raise _fail(source, "camera_path is empty")
    c2ws, fovs = [], []
    for i, cam in enumerate(frames):
        try:
            m = torch.tensor(cam["camera_to_world"], dtype=torch.float64)
            fov = float(cam["fov"])
        except (KeyError, TypeError, ValueError) as e:
            raise _fail(source, f"camera_path[{i}] lacks a numeric camera_to_world/fov ({e})") from None
        if m.numel() != 16:
            raise _fail(source, f"camera_path[{i}].camera_to_world has {m.numel()} numbers, not 16 (a flattened 4x4)")
        c2ws.append(m.view(4, 4))
        fovs.append(math.radians(fov))
    seconds = data.get("seconds")
    fps = len(frames) / float(seconds) if seconds else (float(data["fps"]) if data.get("fps") else None)
    return CameraPath(
        c2ws=torch.stack(c2ws).float(),
        Ks=intrinsics_for_fov(fov=torch.tensor(fovs), width=width, height=height).float(),
        width=width,
        height=height,
        fps=fps,
    )


def load_nerfstudio_camera_path(path: Path) -> CameraPath:
    """Reads a nerfstudio camera-path JSON file; bad files raise one :class:`SplatentError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SplatentError(
            f"{path}: camera path file not found; pass the JSON saved by the nerfstudio viewer's render panel."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _fail(path, f"not valid JSON ({e})") from None
    return camera_path_from_dict(data, source=path)


def camera_path_to_dict(
    *, c2ws: Float[Tensor, "F 4 4"], fov_degrees: Float[Tensor, " F"] | float, width: int, height: int, seconds: float
) -> dict[str, Any]:
    """A nerfstudio camera-path dictionary (the keys ``get_path_from_json`` and ``ns-render`` read)."""
    n = c2ws.shape[0]
    fov = torch.as_tensor(fov_degrees, dtype=torch.float64).expand(n)
    return {
        "camera_type": "perspective",
        "render_width": int(width),
        "render_height": int(height),
        "seconds": float(seconds),
        "fps": n / float(seconds),
        "keyframes": [],
        "camera_path": [
            {"camera_to_world": c2ws[i].double().reshape(-1).tolist(), "fov": float(fov[i]), "aspect": width / height}
            for i in range(n)
        ],
    }


def write_nerfstudio_camera_path(
    *,
    path: Path,
    c2ws: Float[Tensor, "F 4 4"],
    fov_degrees: Float[Tensor, " F"] | float,
    width: int,
    height: int,
    seconds: float,
) -> Path:
    """Writes a camera path that ``ns-render camera-path`` and ``splatent-render camera-path`` read (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(
        path, camera_path_to_dict(c2ws=c2ws, fov_degrees=fov_degrees, width=width, height=height, seconds=seconds)
    )


def load_dataparser_transform(path: Path) -> tuple[Float[Tensor, "3 4"], float]:
    """``transform`` (3x4) and ``scale`` of a nerfstudio run's ``dataparser_transforms.json``."""
    try:
        data = json.loads(Path(path).read_text())
        return torch.tensor(data["transform"], dtype=torch.float64).view(3, 4), float(data["scale"])
    except FileNotFoundError:
        raise SplatentError(f"{path}: not found; it is written next to a nerfstudio run's config.yml.") from None
    except (json.JSONDecodeError, KeyError, RuntimeError, TypeError, ValueError) as e:
        raise SplatentError(
            f"{path}: not a nerfstudio dataparser_transforms.json ({e}); expected keys 'transform' (3x4) and 'scale'."
        ) from None


def to_dataparser_world(
    c2ws: Float[Tensor, "F 4 4"], *, transform: Float[Tensor, "3 4"], scale: float
) -> Float[Tensor, "F 4 4"]:
    """Poses in original data coordinates → nerfstudio's dataparser world (what the dataparser does to
    the training poses: ``transform @ c2w``, then the translation times ``scale``)."""
    T = torch.eye(4, dtype=torch.float64)
    T[:3] = transform.double()
    out = T @ c2ws.double()
    out[:, :3, 3] *= scale
    return out.to(c2ws.dtype)
