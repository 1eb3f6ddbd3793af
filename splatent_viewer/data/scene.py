"""Scene loader for nerfstudio ``transforms.json`` folders and blender-format folders, without
nerfstudio (the nerfstudio plugin uses nerfstudio's own dataparsers; this serves tests, the demo
trainer, benchmarks and the refiner dataset).

Poses are returned exactly as stored: OpenGL camera-to-world matrices in the file's world frame.
Unlike nerfstudio's dataparsers there is NO auto-orientation, recentring or rescaling, so the
point cloud in ``ply_file_path`` stays aligned with the cameras as they are.

Matches nerfstudio 1.1.5 where it matters for comparisons:

- nerfstudio format: frames are sorted by file path, and the train/eval split is nerfstudio-data's
  default ``eval_mode="fraction"`` (``train_split_fraction=0.9``: ``ceil(0.9 N)`` evenly spaced
  training frames from ``np.linspace(0, N-1)``, the rest for eval; "val" and "test" are both the
  eval frames), or the ``train_filenames`` / ``val_filenames`` / ``test_filenames`` lists when the
  file has them.
- blender format: ``transforms_{train,val,test}.json``, ``file_path`` + ".png", focal length from
  ``camera_angle_x`` and the image width, principal point at the image centre; RGBA images are
  composited on white (nerfstudio's blender ``alpha_color="white"`` default). We composite RGBA
  images of either format on ``alpha_color`` (white by default).
- ``downscale=d`` uses ``images_{d}/<name>`` when that folder exists (nerfstudio's layout) and
  otherwise resizes on load (area filter); sizes are ``floor(w / d)`` and intrinsics are scaled by
  ``1 / d``, as nerfstudio's ``rescale_output_resolution`` does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from splatent_viewer.cameras import intrinsics_matrix, opengl_c2w_to_viewmat, scale_intrinsics
from splatent_viewer.errors import SplatentError

Split = Literal["train", "val", "test", "all"]
_SPLITS = ("train", "val", "test")
_PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".exr"}


@dataclass
class Scene:
    """Posed pinhole views of one scene (all tensors on the CPU)."""

    root: Path
    """Folder holding the transforms file(s)."""
    image_paths: list[Path]
    """One image per view (the ``images_{d}`` copy when downscaling and it exists)."""
    camera_to_worlds: Float[Tensor, "N 4 4"]
    """OpenGL camera-to-world (x right, y up, looking down -z), as stored in the file."""
    Ks: Float[Tensor, "N 3 3"]
    """Pinhole intrinsics at the loaded (downscaled) resolution, pixel centres at i + 0.5."""
    widths: Int[Tensor, " N"]
    heights: Int[Tensor, " N"]
    split_indices: dict[str, Int[Tensor, " M"]]
    """Indices into this scene's views of the "train", "val" and "test" frames."""
    ply_path: Path | None = None
    """Point cloud named by ``ply_file_path`` (nerfstudio format), or None."""
    downscale: int = 1
    alpha_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background that RGBA images are composited on."""
    cache_images: bool = False
    """Keep decoded images in memory after the first :meth:`load_image`."""
    _cache: dict[int, Tensor] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_image(self, i: int) -> Float[Tensor, "H W 3"]:
        """View ``i`` as RGB in [0, 1] at ``(heights[i], widths[i])``."""
        if i in self._cache:
            return self._cache[i]
        path = self.image_paths[i]
        size = (int(self.widths[i]), int(self.heights[i]))
        try:
            with Image.open(path) as im:
                im.load()
                rgb = _to_rgb_array(im, self.alpha_color)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise SplatentError(f"Cannot decode image {path} ({e}). Replace the file with a valid image.") from e
        if (rgb.shape[1], rgb.shape[0]) != size:
            resized = [np.asarray(Image.fromarray(rgb[..., c]).resize(size, Image.Resampling.BOX)) for c in range(3)]
            rgb = np.stack(resized, -1)
        img = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).clamp_(0.0, 1.0)
        if self.cache_images:
            self._cache[i] = img
        return img

    def viewmats(self) -> Float[Tensor, "N 4 4"]:
        """OpenCV world-to-camera matrices (gsplat ``viewmats``)."""
        return opengl_c2w_to_viewmat(self.camera_to_worlds)

    def camera_centres(self) -> Float[Tensor, "N 3"]:
        return self.camera_to_worlds[:, :3, 3]

    def scene_scale(self) -> float:
        """Largest distance of a camera centre from the mean camera centre (gsplat's
        ``simple_trainer`` scene scale, without its 1.1 margin). Small for forward-facing
        captures; 0 for a single view."""
        c = self.camera_centres()
        return float((c - c.mean(0)).norm(dim=1).max())

    def subset(self, indices: Int[Tensor, " M"] | list[int]) -> Scene:
        """The views ``indices`` (in that order); split indices are remapped to the subset."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        position = {int(j): k for k, j in enumerate(idx)}
        splits = {
            name: torch.tensor([position[int(j)] for j in ind if int(j) in position], dtype=torch.long)
            for name, ind in self.split_indices.items()
        }
        return replace(
            self,
            image_paths=[self.image_paths[int(j)] for j in idx],
            camera_to_worlds=self.camera_to_worlds[idx],
            Ks=self.Ks[idx],
            widths=self.widths[idx],
            heights=self.heights[idx],
            split_indices=splits,
            _cache={position[j]: img for j, img in self._cache.items() if j in position},
        )

    def split(self, name: Literal["train", "val", "test"]) -> Scene:
        """The views of one split."""
        return self.subset(self.split_indices[name])

    def load_points(self) -> tuple[Float[Tensor, "P 3"], Float[Tensor, "P 3"] | None] | None:
        """Positions and colours in [0, 1] of the ``ply_path`` point cloud (None without one)."""
        if self.ply_path is None:
            return None
        from splatent_viewer.data.ply import read_ply_points

        return read_ply_points(self.ply_path)


def _to_rgb_array(im: Image.Image, alpha_color: tuple[float, float, float]) -> np.ndarray:
    """PIL image → float RGB array in [0, 1], compositing any alpha (straight) on ``alpha_color``."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        g = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() > 255 else 255.0)
        return np.repeat(g[..., None], 3, axis=-1)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if has_alpha:
        a = arr[..., 3:4]
        return arr[..., :3] * a + np.asarray(alpha_color, dtype=np.float32) * (1.0 - a)
    return arr


# ----------------------------------------------------------------------------- parsing helpers


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SplatentError(f"Cannot read {path} ({e}). Check the file's permissions and encoding (UTF-8).") from e
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise SplatentError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. Fix that line or re-export the file.") from e
    if not isinstance(meta, dict):
        raise SplatentError(f"{path} must hold a JSON object with a 'frames' list, not a {type(meta).__name__}.")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise SplatentError(f"{path} has no frames (its 'frames' list is missing or empty). Add the posed images to it.")
    return meta


def _frame_entry(frames_json: Path, frame: Any, k: int) -> tuple[str, Float[Tensor, "4 4"]]:
    if not isinstance(frame, dict) or "file_path" not in frame:
        raise SplatentError(f"{frames_json}: frame {k} has no 'file_path'. Give every frame the image path relative to the JSON file.")
    if "transform_matrix" not in frame:
        raise SplatentError(f"{frames_json}: frame {k} ({frame['file_path']}) has no 'transform_matrix'. Give every frame its 4x4 camera-to-world matrix.")
    try:
        m = torch.tensor(frame["transform_matrix"], dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise SplatentError(f"{frames_json}: frame {k} ({frame['file_path']}) has a non-numeric 'transform_matrix'. Use a 4x4 list of numbers.") from e
    if m.shape == (3, 4):
        m = torch.cat([m, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)])
    if m.shape != (4, 4) or not torch.isfinite(m).all():
        raise SplatentError(f"{frames_json}: frame {k} ({frame['file_path']}) has a 'transform_matrix' of shape {tuple(m.shape)} or non-finite values; it must be a finite 4x4 matrix.")
    return str(frame["file_path"]), m


def image_size(path: Path, frames_json: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels; one clear
    :class:`SplatentError` naming the image and ``frames_json`` when it is missing or unreadable."""
    if not path.is_file():
        raise SplatentError(f"Image {path} listed in {frames_json} does not exist. Restore it or fix its 'file_path'.")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise SplatentError(f"Image {path} listed in {frames_json} is unreadable or corrupt ({e}). Replace it with a valid image.") from e


def _float_key(meta: dict, frame: dict, key: str, frames_json: Path) -> float | None:
    value = frame.get(key, meta.get(key))
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise SplatentError(f"{frames_json}: '{key}' must be a number, not {value!r}.") from e


def _check_camera_model(meta: dict, frame: dict, frames_json: Path) -> None:
    model = frame.get("camera_model", meta.get("camera_model", "OPENCV"))
    if model not in _PINHOLE_MODELS:
        raise SplatentError(
            f"{frames_json}: camera_model {model!r} is not supported; only pinhole cameras ({', '.join(_PINHOLE_MODELS)}) "
            "without distortion are. Undistort the images (e.g. with COLMAP's image_undistorter) and re-export."
        )
    for key in _DISTORTION_KEYS:
        value = _float_key(meta, frame, key, frames_json)
        if value:
            raise SplatentError(f"{frames_json}: distortion {key}={value:g} is not supported (pinhole only). Undistort the images and set k1..p2 to 0.")
    params = frame.get("distortion_params", meta.get("distortion_params"))
    if params is not None and any(float(p) != 0.0 for p in params):
        raise SplatentError(f"{frames_json}: non-zero distortion_params are not supported (pinhole only). Undistort the images first.")


def _resolve_image(data_dir: Path, file_path: str, downscale: int) -> Path:
    rel = Path(file_path)
    if downscale > 1:
        smaller = data_dir / f"images_{downscale}" / rel.name
        if smaller.is_file():
            return smaller
    return data_dir / rel


def _fraction_split(n: int, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """nerfstudio's ``get_train_eval_split_fraction``."""
    num_train = math.ceil(n * train_fraction)
    i_train = np.linspace(0, n - 1, num_train, dtype=int)
    i_eval = np.setdiff1d(np.arange(n), i_train)
    return i_train, i_eval


# ----------------------------------------------------------------------------- formats


@dataclass
class _Views:
    paths: list[Path] = field(default_factory=list)
    c2ws: list[Tensor] = field(default_factory=list)
    intrinsics: list[tuple[float, float, float, float]] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)


def _load_nerfstudio(json_path: Path, *, downscale: int, train_fraction: float) -> tuple[_Views, dict[str, np.ndarray | None], Path | None]:
    meta = _read_json(json_path)
    data_dir = json_path.parent
    entries = [(*_frame_entry(json_path, f, k), f) for k, f in enumerate(meta["frames"])]
    # nerfstudio sorts frames by image path before splitting
    order = sorted(range(len(entries)), key=lambda k: (data_dir / entries[k][0]).parts)
    views = _Views()
    for k in order:
        file_path, c2w, frame = entries[k]
        _check_camera_model(meta, frame, json_path)
        full = data_dir / file_path
        w_img, h_img = image_size(full, json_path)
        w, h = frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))
        if (w is not None and int(w) != w_img) or (h is not None and int(h) != h_img):
            raise SplatentError(
                f"Image {full} is {w_img}x{h_img} but {json_path} says w={w}, h={h}. Fix w/h in the JSON or use the original images."
            )
        fx, fy = _float_key(meta, frame, "fl_x", json_path), _float_key(meta, frame, "fl_y", json_path)
        if fx is None or fy is None:
            raise SplatentError(f"{json_path}: frame {k} ({file_path}) has no focal length (fl_x and fl_y). Set them for all frames or per frame.")
        cx, cy = _float_key(meta, frame, "cx", json_path), _float_key(meta, frame, "cy", json_path)
        views.paths.append(_resolve_image(data_dir, file_path, downscale))
        views.c2ws.append(c2w)
        views.intrinsics.append((fx, fy, w_img / 2 if cx is None else cx, h_img / 2 if cy is None else cy))
        views.sizes.append((w_img, h_img))

    splits: dict[str, np.ndarray | None]
    if any(f"{s}_filenames" in meta for s in _SPLITS):
        full_paths = [data_dir / entries[k][0] for k in order]
        splits = {}
        for s in _SPLITS:
            names = meta.get(f"{s}_filenames")
            if names is None:
                splits[s] = None  # nerfstudio refuses to load a split missing from the lists
                continue
            wanted = {data_dir / n for n in names}
            missing = wanted.difference(full_paths)
            if missing:
                raise SplatentError(f"{json_path}: {s}_filenames lists {sorted(map(str, missing))[:3]} which no frame has. Fix the list.")
            splits[s] = np.array([i for i, p in enumerate(full_paths) if p in wanted], dtype=np.int64)
    else:
        i_train, i_eval = _fraction_split(len(views.paths), train_fraction)
        splits = {"train": i_train, "val": i_eval, "test": i_eval}

    ply_path = None
    if meta.get("ply_file_path"):
        ply_path = data_dir / str(meta["ply_file_path"])
        if not ply_path.is_file():
            raise SplatentError(f"Point cloud {ply_path} named by ply_file_path in {json_path} does not exist. Restore it or remove ply_file_path.")
    return views, splits, ply_path


def _load_blender(root: Path, *, downscale: int) -> tuple[_Views, dict[str, np.ndarray | None], Path | None]:
    views = _Views()
    index: dict[Path, int] = {}
    splits: dict[str, np.ndarray | None] = {}
    for s in _SPLITS:
        json_path = root / f"transforms_{s}.json"
        if not json_path.exists():
            splits[s] = None
            continue
        meta = _read_json(json_path)
        if "camera_angle_x" not in meta:
            raise SplatentError(f"{json_path} has no 'camera_angle_x' (the horizontal field of view). Add it, in radians.")
        angle = _float_key(meta, {}, "camera_angle_x", json_path)
        ids = []
        for k, frame in enumerate(meta["frames"]):
            file_path, c2w = _frame_entry(json_path, frame, k)
            rel = Path(file_path)
            if rel.suffix.lower() not in _IMAGE_SUFFIXES:
                rel = Path(file_path + ".png")  # nerfstudio's blender parser appends .png
            full = root / rel  # pathlib drops a leading "./"
            if full not in index:
                w, h = image_size(full, json_path)
                fl = 0.5 * w / math.tan(0.5 * angle)
                index[full] = len(views.paths)
                views.paths.append(_resolve_image(root, str(rel), downscale))
                views.c2ws.append(c2w)
                views.intrinsics.append((fl, fl, w / 2, h / 2))
                views.sizes.append((w, h))
            ids.append(index[full])
        splits[s] = np.array(ids, dtype=np.int64)
    return views, splits, None


def load_scene(
    path: Path | str,
    *,
    split: Split = "all",
    downscale: int = 1,
    alpha_color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    train_split_fraction: float = 0.9,
    cache_images: bool = False,
) -> Scene:
    """Load a nerfstudio-format folder (or its ``transforms.json``) or a blender-format folder.

    Every image is checked to exist and its size read from its header (no decoding) at load time;
    :meth:`Scene.load_image` decodes lazily. ``split="all"`` keeps every view (for blender
    folders, each image once, even if listed by several splits) with ``scene.split_indices``
    giving the splits; another ``split`` keeps that split's views only.
    """
    path = Path(path)
    if not isinstance(downscale, int) or downscale < 1:
        raise SplatentError(f"downscale must be a positive integer, not {downscale!r}.")
    if split not in ("all", *_SPLITS):
        raise SplatentError(f"split must be one of train, val, test, all; not {split!r}.")
    if not path.exists():
        raise SplatentError(f"Scene folder {path} does not exist. Check the path.")
    if path.is_file():
        if path.suffix != ".json":
            raise SplatentError(f"{path} is not a transforms JSON file. Pass the scene folder or its transforms.json.")
        root = path.parent
        if path.name.startswith("transforms_") and path.name[len("transforms_") : -5] in _SPLITS:
            views, splits, ply = _load_blender(root, downscale=downscale)
        else:
            views, splits, ply = _load_nerfstudio(path, downscale=downscale, train_fraction=train_split_fraction)
    elif (path / "transforms.json").exists():
        root = path
        views, splits, ply = _load_nerfstudio(path / "transforms.json", downscale=downscale, train_fraction=train_split_fraction)
    elif (path / "transforms_train.json").exists():
        root = path
        views, splits, ply = _load_blender(path, downscale=downscale)
    else:
        raise SplatentError(
            f"No transforms.json in {path} (nor blender-style transforms_train.json). "
            "Point to a nerfstudio-format folder, e.g. made with ns-process-data."
        )

    fx, fy, cx, cy = (torch.tensor(v, dtype=torch.float32) for v in zip(*views.intrinsics))
    Ks = intrinsics_matrix(fx=fx, fy=fy, cx=cx, cy=cy)
    sizes = torch.tensor(views.sizes, dtype=torch.long)
    if downscale > 1:
        Ks = scale_intrinsics(Ks, 1.0 / downscale)
        sizes = sizes // downscale
    scene = Scene(
        root=root,
        image_paths=views.paths,
        camera_to_worlds=torch.stack(views.c2ws).to(torch.float32),
        Ks=Ks,
        widths=sizes[:, 0].clone(),
        heights=sizes[:, 1].clone(),
        split_indices={s: torch.as_tensor(v if v is not None else [], dtype=torch.long) for s, v in splits.items()},
        ply_path=ply,
        downscale=downscale,
        alpha_color=tuple(float(c) for c in alpha_color),
        cache_images=cache_images,
    )
    if split == "all":
        return scene
    if splits[split] is None:
        source = "transforms.json lists no" if (root / "transforms.json").exists() else f"there is no transforms_{split}.json for the"
        raise SplatentError(f"Scene {root}: {source} {split} split. Load split='all' or add it.")
    return scene.subset(scene.split_indices[split])
