"""One scene loader for every tool (``splatent-demo``, ``make-dataset``, benchmarks, tests), built on
nerfstudio's own dataparsers so it reads a folder the way ``ns-train`` does.

Formats, chosen from the folder (:func:`scene_dataparser_config`):

- nerfstudio-data (``transforms.json``; shared or per-frame intrinsics) → ``NerfstudioDataParserConfig``;
- blender-data (``transforms_{train,val,test}.json``) → ``BlenderDataParserConfig``;
- COLMAP (``sparse/0`` or ``colmap/sparse/0`` with ``images/``, no ``transforms.json``) → ``ColmapDataParserConfig``.

The same as ``ns-train`` with that dataparser: the frames, their order and the train/val/test splits
(nerfstudio-data: ``eval_mode="fraction"`` with ``train_split_fraction`` or the ``*_filenames`` lists;
COLMAP: nerfstudio's default ``eval_mode="interval"`` (every 8th image held out) or ``*_list.txt``;
blender: its split files), the intrinsics and distortion, and the undistortion: PINHOLE / OPENCV /
OPENCV_FISHEYE images are undistorted by nerfstudio's own ``_undistort_image``
(:mod:`splatent_viewer.data.undistort`), so :attr:`Scene.Ks`, ``widths`` and ``heights`` are the
undistorted cameras, known at load time, and :meth:`Scene.load_image` returns undistorted pixels.

Different from ``ns-train``'s defaults, on purpose:

- Poses stay as stored: ``orientation_method="none"``, ``center_method="none"``, ``auto_scale_poses=False``,
  ``scale_factor=1`` (``ns-train`` re-orients, recentres and rescales), so point clouds stay aligned with
  the cameras as they are. For COLMAP folders nerfstudio's world convention is applied explicitly
  (``assume_colmap_world_coordinate_convention=True``, its default): COLMAP's world (x, y, z) becomes
  (x, z, -y), so +z is up as in the nerfstudio viewer and as ``ns-process-data`` writes
  ``transforms.json``; cameras go from OpenCV to OpenGL axes. :attr:`Scene.applied_transform` records
  that rotation (identity for the other formats); the point cloud gets it too.
- The dataparsers read full resolution (``downscale_factor=1``, so nothing is ever written to disk: no
  automatic downscaling). ``downscale=d`` uses ``images_{d}/`` when it has the image (nerfstudio's
  layout) and otherwise resizes on load (area filter); intrinsics and sizes follow nerfstudio's
  ``Cameras.rescale_output_resolution(1 / d)`` (sizes rounded down).
- ``size_multiple`` / ``fit`` (:mod:`splatent_viewer.data.fit`): after undistortion, images are cropped
  (top-left, intrinsics unchanged) or resized (intrinsics scaled) to sides that are multiples of the
  codec's downscale, with one log line saying so. The nerfstudio plugin's datamanager applies the same
  function to its cached images.
- :meth:`Scene.load_image` returns float RGB in [0, 1]; RGBA images are composited on ``alpha_color``
  (white, nerfstudio's blender default), for every format.

Broken folders stop with one :class:`~splatent_viewer.errors.SplatentError` naming the file and the fix
(:func:`splatent_viewer.data.check.check_scene`, which the plugin's datamanager calls too).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np
import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig, DataparserOutputs
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from splatent_viewer.cameras import opengl_c2w_to_viewmat
from splatent_viewer.data.check import SPLITS, CheckedScene, check_scene, image_size
from splatent_viewer.data.fit import (
    FitMode,
    check_fit_arguments,
    describe_fit,
    fit_image,
    fit_intrinsics,
    fitted_size,
    log_line,
)
from splatent_viewer.data.undistort import is_distorted, undistort_image, undistorted_camera
from splatent_viewer.errors import SplatentError

Split = Literal["train", "val", "test", "all"]
COLMAP_MODEL_PATHS = (Path("sparse/0"), Path("colmap/sparse/0"))
"""Where :func:`scene_dataparser_config` looks for a COLMAP model (relative to the folder), in order."""


@dataclass
class ImageSources:
    """How each view's pixels are made from its image file (in the scene's view order): read, resized to
    the camera's size when ``images_{d}`` is missing, undistorted as nerfstudio does, fitted."""

    cameras: Cameras
    """nerfstudio cameras [N] of the image files at the loaded resolution (after ``downscale``, before
    undistortion): intrinsics, distortion parameters, camera type, size; OpenGL poses as stored."""
    size_multiple: int = 1
    """Sides of the final images are multiples of this."""
    fit: FitMode = "crop"
    """How images were brought to ``size_multiple``."""

    def subset(self, indices: Int[Tensor, " M"]) -> ImageSources:
        return replace(self, cameras=self.cameras[indices])


@dataclass
class Scene:
    """Posed pinhole views of one scene (all tensors on the CPU)."""

    root: Path
    """Folder holding the transforms file(s) or the COLMAP model's ``images/``."""
    image_paths: list[Path]
    """One image per view (the ``images_{d}`` copy when downscaling and it exists)."""
    camera_to_worlds: Float[Tensor, "N 4 4"]
    """OpenGL camera-to-world (x right, y up, looking down -z), as stored (COLMAP: in nerfstudio's world convention)."""
    Ks: Float[Tensor, "N 3 3"]
    """Pinhole intrinsics of :meth:`load_image`'s images (downscaled, undistorted, fitted), pixel centres at i + 0.5."""
    widths: Int[Tensor, " N"]
    heights: Int[Tensor, " N"]
    split_indices: dict[str, Int[Tensor, " _M"]]
    """Indices into this scene's views of the "train", "val" and "test" frames, in the dataparser's order."""
    ply_path: Path | None = None
    """Point cloud named by ``ply_file_path`` (nerfstudio format), or None."""
    downscale: int = 1
    alpha_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background that RGBA images are composited on."""
    cache_images: bool = False
    """Keep decoded images in memory after the first :meth:`load_image`."""
    sources: ImageSources | None = None
    """How images are made from the files; None for a scene built in code (images are only resized to
    ``widths`` x ``heights``)."""
    dataparser: DataParserConfig | None = None
    """The nerfstudio dataparser config the views were read with (poses as stored); None for a scene built in code."""
    points_from_dataparser: bool = False
    """Whether :meth:`load_points` asks ``dataparser`` (``load_3D_points=True``) for the point cloud."""
    applied_transform: Float[Tensor, "4 4"] = field(default_factory=lambda: torch.eye(4))
    """Rotation from the files' world to this scene's world: identity except for COLMAP (x, y, z) → (x, z, -y)."""
    _cache: dict[int, Tensor] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_image(self, i: int) -> Float[Tensor, "H W 3"]:
        """View ``i`` as RGB in [0, 1] at ``(heights[i], widths[i])``: undistorted and fitted as the intrinsics say."""
        if i in self._cache:
            return self._cache[i]
        path = self.image_paths[i]
        try:
            with Image.open(path) as im:
                im.load()
                rgb = _to_rgb_array(im, self.alpha_color)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise SplatentError(f"Cannot decode image {path} ({e}). Replace the file with a valid image.") from e
        if self.sources is None:
            rgb = _resize_area(rgb, (int(self.widths[i]), int(self.heights[i])))
            img = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        else:
            camera = self.sources.cameras[i]
            rgb = _resize_area(rgb, (int(camera.width), int(camera.height)))
            rgb, K = undistort_image(camera, np.ascontiguousarray(rgb, dtype=np.float32))
            img = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
            img, _ = fit_image(img, K, multiple=self.sources.size_multiple, mode=self.sources.fit)
        if tuple(img.shape[:2]) != (int(self.heights[i]), int(self.widths[i])):
            raise SplatentError(
                f"Image {path} gives a {img.shape[1]}x{img.shape[0]} view where the scene expects "
                f"{int(self.widths[i])}x{int(self.heights[i])}; did it change since the scene was loaded? Load it again."
            )
        img = img.clamp_(0.0, 1.0)
        if self.cache_images:
            self._cache[i] = img
        return img

    def has_alpha(self) -> bool:
        """Whether the scene's images carry alpha (then :meth:`load_image` composites them on ``alpha_color``), read
        from the first image's header (a scene's images share one format: blender-data RGBA, captures RGB)."""
        if not self.image_paths:
            return False
        path = self.image_paths[0]
        try:
            with Image.open(path) as im:
                return _has_alpha(im)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise SplatentError(f"Cannot read image {path} ({e}). Replace the file with a valid image.") from e

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
            sources=self.sources.subset(idx) if self.sources is not None else None,
            _cache={position[j]: img for j, img in self._cache.items() if j in position},
        )

    def split(self, name: Literal["train", "val", "test"]) -> Scene:
        """The views of one split."""
        return self.subset(self.split_indices[name])

    def load_points(self) -> tuple[Float[Tensor, "P 3"], Float[Tensor, "P 3"] | None] | None:
        """Positions and colours in [0, 1] of the scene's point cloud, in the scene's world, or None without one.

        A loaded scene asks its dataparser (``load_3D_points=True``: nerfstudio-data's ``ply_file_path``,
        COLMAP's ``points3D``, blender-data's ``ply_path``), so the points are the ones ``ns-train``
        initialises from; a scene built in code reads ``ply_path``."""
        from splatent_viewer.data.ply import read_ply_points

        if self.dataparser is None:
            return read_ply_points(self.ply_path) if self.ply_path is not None else None
        if not self.points_from_dataparser:
            return None
        config = replace(self.dataparser, load_3D_points=True)
        split = next((s for s in SPLITS if len(self.split_indices.get(s, ())) > 0), "train")
        metadata = _parse(config, split).metadata
        xyz = metadata.get("points3D_xyz")
        if xyz is None or len(xyz) == 0:
            if self.ply_path is not None:  # nerfstudio (open3d) read nothing: say why if the file is broken
                read_ply_points(self.ply_path)
            return None
        rgb = metadata.get("points3D_rgb")
        colours = rgb.float() / 255.0 if rgb is not None and rgb.shape == xyz.shape else None
        return xyz[:, :3].float().contiguous(), colours


def _has_alpha(im: Image.Image) -> bool:
    """Whether a PIL image (its header is enough) carries an alpha channel or a transparent palette entry."""
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def _to_rgb_array(im: Image.Image, alpha_color: tuple[float, float, float]) -> np.ndarray:
    """PIL image → float RGB array in [0, 1], compositing any alpha (straight) on ``alpha_color``."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        g = np.asarray(im, dtype=np.float32) / (
            65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() > 255 else 255.0
        )
        return np.repeat(g[..., None], 3, axis=-1)
    has_alpha = _has_alpha(im)
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if has_alpha:
        a = arr[..., 3:4]
        return arr[..., :3] * a + np.asarray(alpha_color, dtype=np.float32) * (1.0 - a)
    return arr


def _resize_area(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` resized to ``size`` = (width, height) with PIL's box (area) filter, unless it has that size."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return np.stack([np.asarray(Image.fromarray(rgb[..., c]).resize(size, Image.Resampling.BOX)) for c in range(3)], -1)


# ----------------------------------------------------------------------------- dataparsers


class _AsStored(TypedDict):
    """Dataparser settings that keep poses as stored and images at full resolution (module docstring)."""

    orientation_method: Literal["none"]
    center_method: Literal["none"]
    auto_scale_poses: bool
    scale_factor: float
    downscale_factor: int


def scene_dataparser_config(path: Path | str, *, train_split_fraction: float = 0.9) -> DataParserConfig:
    """The nerfstudio dataparser config that reads ``path`` with poses as stored (module docstring):
    nerfstudio-data for a ``transforms.json`` (or that file), blender-data for ``transforms_train.json``
    (or a ``transforms_<split>.json``), COLMAP for ``sparse/0`` or ``colmap/sparse/0`` with ``images/``."""
    path = Path(path)
    if not path.exists():
        raise SplatentError(f"Scene folder {path} does not exist. Check the path.")
    as_stored = _AsStored(
        orientation_method="none", center_method="none", auto_scale_poses=False, scale_factor=1.0, downscale_factor=1
    )
    if path.is_file():
        if path.suffix != ".json":
            raise SplatentError(f"{path} is not a transforms JSON file. Pass the scene folder or its transforms.json.")
        if path.name in (f"transforms_{s}.json" for s in SPLITS):
            return BlenderDataParserConfig(data=path.parent, scale_factor=1.0)
        return NerfstudioDataParserConfig(
            data=path, train_split_fraction=train_split_fraction, load_3D_points=False, **as_stored
        )
    if (path / "transforms.json").exists():
        return NerfstudioDataParserConfig(
            data=path, train_split_fraction=train_split_fraction, load_3D_points=False, **as_stored
        )
    if (path / "transforms_train.json").exists():
        return BlenderDataParserConfig(data=path, scale_factor=1.0)
    for model in COLMAP_MODEL_PATHS:
        if (path / model).is_dir():
            return ColmapDataParserConfig(
                data=path, colmap_path=model, images_path=Path("images"), load_3D_points=False,
                # nerfstudio's COLMAP world convention, stated rather than inherited: (x, y, z) -> (x, z, -y)
                assume_colmap_world_coordinate_convention=True, **as_stored,
            )  # fmt: skip
    raise SplatentError(
        f"No transforms.json in {path} (nor blender-style transforms_train.json, nor a COLMAP model in sparse/0 or "
        "colmap/sparse/0). Point to a nerfstudio-format folder, e.g. made with ns-process-data."
    )


def _parse(config: DataParserConfig, split: str) -> DataparserOutputs:
    """``config``'s dataparser outputs for ``split``; any failure the checks did not foresee as one clear error."""
    try:
        return config.setup().get_dataparser_outputs(split=split)
    except SplatentError:
        raise
    except Exception as e:  # noqa: BLE001 - the dataparser's own asserts/errors, reported with the folder
        raise SplatentError(
            f"nerfstudio's {type(config).__name__} could not read {config.data} ({type(e).__name__}: {e}). "
            "Check the scene folder against nerfstudio's format."
        ) from e


def _all_views(config: DataParserConfig, checked: CheckedScene) -> tuple[list[Path], Cameras, dict[str, list[int]]]:
    """Every view of the dataparser's splits (image file, camera), in its frame order, and each split's views."""
    outputs = {s: _parse(config, s) for s in checked.splits}
    first: dict[Path, tuple[str, int]] = {}
    for s, out in outputs.items():
        for j, name in enumerate(out.image_filenames):
            first.setdefault(Path(name), (s, j))
    if isinstance(config, NerfstudioDataParserConfig):
        files = sorted(first)  # nerfstudio-data sorts its frames by file name
    elif isinstance(config, ColmapDataParserConfig):  # ... COLMAP by image id, which the splits keep
        order = {p: k for k, p in enumerate(_colmap_order(config))}
        files = sorted(first, key=lambda p: order.get(p, len(order)))
    else:
        files = list(first)  # blender: train, then val, then test (each image once)
    cams = [outputs[s].cameras[j] for s, j in (first[p] for p in files)]

    def stack(name: str) -> Tensor:
        return torch.stack([getattr(c, name).reshape(-1) for c in cams])

    distortion = [c.distortion_params if c.distortion_params is not None else torch.zeros(6) for c in cams]
    cameras = Cameras(
        camera_to_worlds=torch.stack([c.camera_to_worlds for c in cams]),
        fx=stack("fx"), fy=stack("fy"), cx=stack("cx"), cy=stack("cy"),
        width=stack("width").long(), height=stack("height").long(),
        distortion_params=torch.stack(distortion).float(),
        camera_type=stack("camera_type").long(),
    )  # fmt: skip
    position = {p: k for k, p in enumerate(files)}
    splits = {s: [position[Path(name)] for name in out.image_filenames] for s, out in outputs.items()}
    return files, cameras, splits


def _colmap_order(config: ColmapDataParserConfig) -> list[Path]:
    """COLMAP images in the dataparser's order (by image id)."""
    from nerfstudio.data.utils import colmap_parsing_utils as colmap

    recon = Path(config.data) / config.colmap_path
    txt = recon / "images.txt"
    images = colmap.read_images_text(txt) if txt.is_file() else colmap.read_images_binary(recon / "images.bin")
    return [Path(config.data) / config.images_path / images[k].name for k in sorted(images)]


def _downscaled_path(config: DataParserConfig, path: Path, downscale: int) -> Path:
    """nerfstudio's ``images_{d}`` copy of ``path`` when it exists, else ``path`` (resized on load)."""
    if isinstance(config, ColmapDataParserConfig):
        images = Path(config.data) / config.images_path
        smaller = images.parent / f"{images.name}_{downscale}" / path.relative_to(images)
    else:
        root = Path(config.data).parent if Path(config.data).suffix == ".json" else Path(config.data)
        smaller = root / f"images_{downscale}" / path.name
    return smaller if smaller.is_file() else path


def _camera_model_name(camera_type: int) -> str:
    return {CameraType.PERSPECTIVE.value: "OPENCV", CameraType.FISHEYE.value: "OPENCV_FISHEYE"}.get(
        camera_type, str(camera_type)
    )


@dataclass(frozen=True)
class FittedCameras:
    """Intrinsics and sizes of the images a loader makes from nerfstudio cameras (see :func:`fitted_cameras`)."""

    Ks: Float[Tensor, "N 3 3"]
    widths: Int[Tensor, " N"]
    heights: Int[Tensor, " N"]
    notes: list[str]
    """Log lines: which views were undistorted and fitted, from what size to what size (empty when none)."""


def fitted_cameras(
    cameras: Cameras, *, size_multiple: int = 1, fit: FitMode | str = "crop", image_paths: list[Path] | None = None
) -> FittedCameras:
    """The cameras of the images made from nerfstudio ``cameras`` [N] (as a dataparser returns them): undistorted as
    nerfstudio's datamanager does (:func:`~splatent_viewer.data.undistort.undistorted_camera`), then fitted to
    ``size_multiple`` (:func:`~splatent_viewer.data.fit.fit_intrinsics`), without decoding an image. This is what
    :func:`load_scene` reports and what the plugin datamanager's cameras are after caching; ``image_paths`` only
    name the file in the error for an image smaller than ``size_multiple``."""
    fit = check_fit_arguments(size_multiple, fit)
    Ks, sizes, undistorted, fitted = [], [], [], []
    for i in range(len(cameras)):
        camera = cameras[i]
        K, width, height = undistorted_camera(camera)
        if is_distorted(camera):
            undistorted.append(
                ((int(camera.width), int(camera.height)), (width, height), _camera_model_name(int(camera.camera_type)))
            )
        if width < size_multiple or height < size_multiple:
            name = f"Image {image_paths[i]}" if image_paths is not None else f"View {i}"
            raise SplatentError(
                f"{name} is {width}x{height} (after downscale and undistortion), smaller than the "
                f"codec's {size_multiple}x{size_multiple} latent cell. Use larger images or a smaller downscale."
            )
        size = fitted_size(width, height, size_multiple)
        fitted.append(((width, height), size))
        Ks.append(fit_intrinsics(K, size=(width, height), fitted=size, mode=fit))
        sizes.append(size)
    notes = []
    if undistorted:
        kinds = Counter(undistorted)
        text = ", ".join(f"{m} {b[0]}x{b[1]} → {a[0]}x{a[1]} ({n})" for (b, a, m), n in sorted(kinds.items()))
        notes.append(f"{len(undistorted)} of {len(cameras)} views undistorted as nerfstudio does: {text}")
    line = describe_fit([b for b, _ in fitted], [a for _, a in fitted], multiple=size_multiple, mode=fit)
    if line is not None:
        notes.append(line)
    size_tensor = torch.tensor(sizes, dtype=torch.long).reshape(-1, 2)
    return FittedCameras(
        Ks=torch.stack(Ks).float(), widths=size_tensor[:, 0].clone(), heights=size_tensor[:, 1].clone(), notes=notes
    )


def load_scene(
    path: Path | str,
    *,
    split: Split = "all",
    downscale: int = 1,
    alpha_color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    train_split_fraction: float = 0.9,
    cache_images: bool = False,
    size_multiple: int = 1,
    fit: FitMode | str = "crop",
) -> Scene:
    """Load a nerfstudio-data folder (or its ``transforms.json``), a blender-data folder or a COLMAP folder
    through nerfstudio's dataparser, poses as stored (module docstring).

    The folder is validated first (:func:`~splatent_viewer.data.check.check_scene`: every image exists and
    its header matches the cameras); :meth:`Scene.load_image` decodes lazily. Distorted cameras get their
    undistorted intrinsics and size now, from nerfstudio's own undistortion. ``size_multiple > 1`` fits every
    view to sides that are multiples of it (``fit="crop"``: top-left crop, intrinsics unchanged;
    ``fit="resize"``: intrinsics scaled), with one log line saying which views changed size.

    ``split="all"`` keeps every view of the dataparser's splits (each image once) with ``scene.split_indices``
    giving the splits; another ``split`` keeps that split's views only.
    """
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise SplatentError(f"downscale must be a positive integer, not {downscale!r}.")
    if split not in ("all", *SPLITS):
        raise SplatentError(f"split must be one of train, val, test, all; not {split!r}.")
    fit = check_fit_arguments(size_multiple, fit)
    config = scene_dataparser_config(path, train_split_fraction=train_split_fraction)
    checked = check_scene(config)
    assert checked is not None  # scene_dataparser_config makes only configs that check_scene knows
    files, cameras, split_views = _all_views(config, checked)
    root = Path(config.data).parent if Path(config.data).suffix == ".json" else Path(config.data)

    image_paths = files
    if downscale > 1:
        cameras.rescale_output_resolution(1.0 / downscale)
        image_paths = [_downscaled_path(config, p, downscale) for p in files]

    final = fitted_cameras(cameras, size_multiple=size_multiple, fit=fit, image_paths=image_paths)
    for line in final.notes:
        log_line(f"{root}: {line}")

    c2w = torch.cat([cameras.camera_to_worlds, torch.tensor([[[0.0, 0.0, 0.0, 1.0]]]).expand(len(files), 1, 4)], dim=1)
    applied = torch.eye(4)
    if isinstance(config, ColmapDataParserConfig) and config.assume_colmap_world_coordinate_convention:
        applied = torch.tensor(
            [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
        )
    scene = Scene(
        root=root,
        image_paths=image_paths,
        camera_to_worlds=c2w.float().contiguous(),
        Ks=final.Ks,
        widths=final.widths,
        heights=final.heights,
        split_indices={s: torch.tensor(split_views.get(s, []), dtype=torch.long) for s in SPLITS},
        ply_path=checked.ply_path,
        downscale=downscale,
        alpha_color=(float(alpha_color[0]), float(alpha_color[1]), float(alpha_color[2])),
        cache_images=cache_images,
        sources=ImageSources(cameras=cameras, size_multiple=size_multiple, fit=fit),
        dataparser=config,
        points_from_dataparser=checked.has_points,
        applied_transform=applied,
    )
    if split == "all":
        return scene
    if split not in split_views:
        if isinstance(config, NerfstudioDataParserConfig):
            source = f"{Path(config.data).name if Path(config.data).suffix == '.json' else 'transforms.json'} lists no"
        elif isinstance(config, ColmapDataParserConfig):
            source = f"there is no {split}_list.txt for the"
        else:
            source = f"there is no transforms_{split}.json for the"
        raise SplatentError(f"Scene {root}: {source} {split} split. Load split='all' or add it.")
    return scene.subset(scene.split_indices[split])


__all__ = [
    "COLMAP_MODEL_PATHS",
    "FittedCameras",
    "ImageSources",
    "Scene",
    "fitted_cameras",
    "image_size",
    "load_scene",
    "scene_dataparser_config",
]
