"""splatfacto's full-image datamanager with the core's scene checks and image fitting.

- Before loading, :func:`splatent_viewer.data.check.check_scene` validates nerfstudio-data, blender-data and
  COLMAP folders, the same checks the core scene loader runs (nerfstudio 1.1.5 reports many broken folders
  cryptically): one :class:`~splatent_viewer.errors.SplatentError` naming the file and the fix. Other
  dataparsers are passed through unchecked.
- nerfstudio caches and undistorts the images (``FullImageDatamanager._load_images``); then every cached
  train and eval image is fitted to sides that are multiples of ``size_multiple`` (the codec's downscale) by
  :func:`splatent_viewer.data.fit.fit_image`, the function :func:`splatent_viewer.data.scene.load_scene`
  uses, and the dataset's cameras get the fitted size and intrinsics. ``next_train`` reads
  ``self.train_cameras``, ``next_eval_image`` and ``fixed_indices_eval_dataloader`` the eval dataset's
  cameras: all of them see the fitted cameras, so the model renders exactly the images it is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Type

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager, FullImageDatamanagerConfig
from nerfstudio.data.datasets.base_dataset import InputDataset

from nerfstudio_plugin.splatent_model import TRAIN_CAMERAS_KEY
from splatent_viewer.data.check import check_scene
from splatent_viewer.data.fit import FitMode, check_fit_arguments, describe_fit, fit_image, log_line
from splatent_viewer.data.scene import fitted_cameras
from splatent_viewer.training.points import TrainingCameras


def fit_cached_images(images: List[Dict[str, Any]], cameras: Cameras, *, multiple: int, mode: FitMode) -> str | None:
    """Fits nerfstudio's cached (undistorted) images in place to multiples of ``multiple`` with
    :func:`~splatent_viewer.data.fit.fit_image` (masks and depth images alike, nearest), and writes each
    view's new width, height and intrinsics into ``cameras`` (the dataset's). Returns the log line, or None
    when no image changed size. ``images``: nerfstudio's cache entries ("image", "mask", "depth_image" tensors and
    the "image_idx" int)."""
    Ks = cameras.get_intrinsics_matrices()
    before, after = [], []
    for idx, data in enumerate(images):
        image = data["image"]
        fitted, K = fit_image(image, Ks[idx], multiple=multiple, mode=mode)
        before.append((int(image.shape[1]), int(image.shape[0])))
        after.append((int(fitted.shape[1]), int(fitted.shape[0])))
        if fitted is image:
            continue
        data["image"] = fitted.pin_memory() if image.device.type == "cpu" and image.is_pinned() else fitted
        for key in ("mask", "depth_image"):
            if key in data:
                data[key], _ = fit_image(data[key], Ks[idx], multiple=multiple, mode=mode, nearest=True)
        cameras.fx[idx] = float(K[0, 0])
        cameras.fy[idx] = float(K[1, 1])
        cameras.cx[idx] = float(K[0, 2])
        cameras.cy[idx] = float(K[1, 2])
        cameras.width[idx] = after[-1][0]
        cameras.height[idx] = after[-1][1]
    return describe_fit(before, after, multiple=multiple, mode=mode, what="images")


class SplatentDatamanager(FullImageDatamanager[InputDataset]):
    """:class:`FullImageDatamanager` that checks the scene folder before loading it and fits its cached images
    (after nerfstudio's undistortion) and cameras to the codec's size multiple."""

    config: "SplatentDatamanagerConfig"
    fit_mode: FitMode
    """``config.fit``, checked."""

    def __init__(self, config: "SplatentDatamanagerConfig", *args, **kwargs) -> None:
        self.fit_mode = check_fit_arguments(config.size_multiple, config.fit)
        if config.data is not None:  # what FullImageDatamanager does first, too
            config.dataparser.data = Path(config.data)
        if kwargs.get("test_mode", "val") != "inference":
            check_scene(config.dataparser)
        super().__init__(config, *args, **kwargs)
        # The model's frustum initialisation (scenes without a point cloud) needs the training cameras as the images
        # will be (undistorted, fitted; no image is decoded for it); nerfstudio's pipeline hands the training dataset's
        # metadata to the model.
        cams = self.train_dataset.cameras
        fitted = fitted_cameras(
            cams, size_multiple=config.size_multiple, fit=self.fit_mode, image_paths=self.train_dataset.image_filenames
        )
        self.train_dataset.metadata[TRAIN_CAMERAS_KEY] = TrainingCameras(
            c2w=cams.camera_to_worlds.float().cpu(), Ks=fitted.Ks, widths=fitted.widths, heights=fitted.heights
        )

    def _load_images(
        self, split: Literal["train", "eval"], cache_images_device: Literal["cpu", "gpu"]
    ) -> List[Dict[str, Any]]:  # nerfstudio says Dict[str, Tensor]; "image_idx" is an int
        """nerfstudio's cached, undistorted images of ``split``, fitted to ``config.size_multiple`` (cameras too)."""
        images = super()._load_images(split, cache_images_device)
        dataset = self.train_dataset if split == "train" else self.eval_dataset
        line = fit_cached_images(images, dataset.cameras, multiple=self.config.size_multiple, mode=self.fit_mode)
        if line is not None:
            log_line(f"splatent: {split} {line}")
        # nerfstudio points train_cameras at (a device copy of) the training cameras while caching: refresh it
        self.train_cameras = (
            self.train_dataset.cameras.to(self.device) if cache_images_device == "gpu" else self.train_dataset.cameras
        )
        return images


@dataclass
class SplatentDatamanagerConfig(FullImageDatamanagerConfig):
    """Full-image datamanager (as splatfacto's) with a clear error for broken scene folders, whose cached images
    are fitted to the codec's size multiple."""

    _target: Type = field(default_factory=lambda: SplatentDatamanager)
    size_multiple: int = 8
    """Cached images (after nerfstudio's undistortion) are fitted to sides that are multiples of this: the codec's
    downscale (8 for taef2, sd-turbo and taesd)."""
    fit: FitMode | str = "crop"
    """How images are fitted: "crop" keeps the top-left part (intrinsics unchanged), "resize" the whole image
    (intrinsics scaled). Checked when the datamanager is set up."""


__all__ = ["SplatentDatamanager", "SplatentDatamanagerConfig", "check_scene", "fit_cached_images"]
