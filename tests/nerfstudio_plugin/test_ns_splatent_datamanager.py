"""``ns-train splatent``'s datamanager and the core scene loader give the same views: distorted scenes undistorted by
nerfstudio, odd sizes fitted to the codec's multiple by the same function, the same splits, intrinsics and sizes,
and cameras that match the cached images in every way the model reads them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from nerfstudio_plugin.datamanager import SplatentDatamanager, SplatentDatamanagerConfig
from splatent_viewer.data.scene import fitted_cameras, load_scene
from splatent_viewer.errors import SplatentError


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, scene_makers) -> dict[str, Path]:
    makers = scene_makers
    return {
        "opencv": makers.make_distorted_scene(tmp_path_factory.mktemp("opencv"), model="OPENCV"),
        "fisheye": makers.make_distorted_scene(tmp_path_factory.mktemp("fisheye"), model="OPENCV_FISHEYE"),
        "odd": makers.make_odd_size_scene(tmp_path_factory.mktemp("odd")),
    }


def _datamanager(data: Path, **kwargs) -> SplatentDatamanager:
    """The datamanager as ``ns-train splatent`` configures it (nerfstudio-data with its own defaults, uint8 cache)."""
    config = SplatentDatamanagerConfig(
        dataparser=NerfstudioDataParserConfig(), cache_images_type="uint8", data=data, **kwargs
    )
    return config.setup(device="cpu", test_mode="val")


@pytest.mark.parametrize(
    ("name", "fit"), [("opencv", "crop"), ("fisheye", "resize"), ("odd", "crop"), ("odd", "resize")]
)
def test_datamanager_matches_core_loader(scenes, name: str, fit: str, capsys) -> None:
    dm = _datamanager(scenes[name], fit=fit)
    before = copy.deepcopy(dm.train_dataset.cameras)  # the dataparser's, before caching
    cached = {"train": dm.cached_train, "val": dm.cached_eval}
    # the core predicts the cached cameras without decoding an image
    predicted = fitted_cameras(before, size_multiple=8, fit=fit)
    assert torch.allclose(predicted.Ks, dm.train_dataset.cameras.get_intrinsics_matrices(), atol=1e-4)
    assert torch.equal(predicted.widths, dm.train_dataset.cameras.width[:, 0])
    out = capsys.readouterr().out
    scene = load_scene(scenes[name], size_multiple=8, fit=fit)
    assert scene.sources is not None and scene.sources.size_multiple == 8
    for split, dataset in (("train", dm.train_dataset), ("val", dm.eval_dataset)):
        ours = scene.split(split)
        assert [Path(p) for p in dataset.image_filenames] == ours.image_paths
        cameras = dataset.cameras
        assert torch.equal(cameras.width[:, 0], ours.widths) and torch.equal(cameras.height[:, 0], ours.heights)
        assert torch.allclose(cameras.get_intrinsics_matrices(), ours.Ks, atol=1e-4)
        for j in range(len(ours)):
            theirs = cached[split][j]["image"]
            assert theirs.dtype == torch.uint8 and theirs.shape == (int(ours.heights[j]), int(ours.widths[j]), 3)
            diff = (theirs.float() - ours.load_image(j) * 255).abs()
            assert float(diff.max()) <= 1.0 and float(diff.mean()) < 0.3, (split, j)  # uint8 rounding (and cv2's)
    if name == "odd":
        assert (
            f"splatent: train 4 of 4 images fitted to multiples of 8 ({'top-left crop' if fit == 'crop' else 'resize'}"
            in out
        )
    # the cameras the model gets match the images it is compared with
    for step in range(len(dm.train_dataset)):
        camera, data = dm.next_train(step)
        assert (int(camera.width), int(camera.height)) == (data["image"].shape[1], data["image"].shape[0])
        i = camera.metadata["cam_idx"]
        assert torch.allclose(camera.get_intrinsics_matrices()[0], scene.split("train").Ks[i], atol=1e-4)
    camera, data = dm.next_eval_image(0)
    assert (int(camera.width), int(camera.height)) == (data["image"].shape[1], data["image"].shape[0])
    for camera, data in dm.fixed_indices_eval_dataloader:
        assert (int(camera.width), int(camera.height)) == (data["image"].shape[1], data["image"].shape[0])


def test_datamanager_checks_scene_and_fit_settings(scenes, tmp_path: Path) -> None:
    with pytest.raises(SplatentError, match="fit must be"):
        _datamanager(scenes["odd"], fit="pad")
    with pytest.raises(SplatentError, match="size_multiple"):
        _datamanager(scenes["odd"], size_multiple=0)
    with pytest.raises(SplatentError, match=r"Scene folder .*nope does not exist"):
        _datamanager(tmp_path / "nope")
