"""Scene loader: the shipped demo scene, nerfstudio's splits, blender folders, errors."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from splatent_viewer.cameras import opengl_c2w_to_viewmat
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError

# ----------------------------------------------------------------------------- demo scene


def test_demo_scene_loads(demo_dir: Path) -> None:
    scene = load_scene(demo_dir)
    meta = json.loads((demo_dir / "transforms.json").read_text())
    n = len(meta["frames"])
    assert len(scene) == n == 36
    assert scene.camera_to_worlds.shape == (n, 4, 4) and scene.Ks.shape == (n, 3, 3)
    assert scene.widths.dtype == torch.long and (scene.widths == 256).all() and (scene.heights == 256).all()
    # K agrees with the JSON and puts the principal point at the image centre
    assert torch.allclose(scene.Ks[:, 0, 0], torch.tensor(meta["fl_x"], dtype=torch.float32))
    assert torch.allclose(scene.Ks[:, 0, 2], scene.widths.float() / 2) and torch.allclose(
        scene.Ks[:, 1, 2], scene.heights.float() / 2
    )
    fov = 2 * math.degrees(math.atan(128 / float(scene.Ks[0, 0, 0])))
    assert fov == pytest.approx(50.0, abs=0.01)
    # rotations orthonormal and right-handed, last row (0 0 0 1)
    R = scene.camera_to_worlds[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(n, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(n), atol=1e-5)
    assert torch.equal(scene.camera_to_worlds[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 4))
    # nerfstudio fraction split: ceil(0.9 * 36) = 33 train, 3 eval, disjoint, covering all
    train, val, test = (scene.split_indices[k] for k in ("train", "val", "test"))
    assert len(train) == 33 and torch.equal(val, test) and len(val) == 3
    assert sorted(train.tolist() + val.tolist()) == list(range(36))
    assert scene.ply_path == demo_dir / "sparse_pc.ply"
    img = scene.load_image(5)
    assert img.shape == (256, 256, 3) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0 and float(img.std()) > 0.05
    # camera centres on rings of radius 3.5 around the look-at point: scale = that distance
    assert scene.scene_scale() == pytest.approx(
        float((scene.camera_centres() - scene.camera_centres().mean(0)).norm(dim=1).max())
    )
    assert 3.0 < scene.scene_scale() < 3.6


def test_demo_scene_split_argument_and_subset(demo_dir: Path) -> None:
    full = load_scene(demo_dir)
    val = load_scene(demo_dir, split="val")
    assert len(val) == 3
    assert val.image_paths == [full.image_paths[i] for i in full.split_indices["val"]]
    assert torch.equal(val.camera_to_worlds, full.camera_to_worlds[full.split_indices["val"]])
    assert val.split_indices["val"].tolist() == [0, 1, 2] and len(val.split_indices["train"]) == 0
    sub = full.subset([7, 2])
    assert sub.image_paths == [full.image_paths[7], full.image_paths[2]]
    assert torch.equal(sub.load_image(0), full.load_image(7))


def test_viewmats_are_opencv_world_to_camera(demo_dir: Path) -> None:
    scene = load_scene(demo_dir)
    vm = scene.viewmats()
    assert torch.allclose(vm, opengl_c2w_to_viewmat(scene.camera_to_worlds))
    # camera centre maps to the origin; a point in front of an OpenGL camera (-z) has +z in OpenCV
    c2w = scene.camera_to_worlds[0]
    ahead = c2w[:3, 3] - 2.0 * c2w[:3, 2]
    cam = vm[0] @ torch.cat([ahead, torch.ones(1)])
    assert cam[2] == pytest.approx(2.0, abs=1e-4) and cam[:2].abs().max() < 1e-4


def test_downscale_scales_images_and_intrinsics(demo_dir: Path) -> None:
    full = load_scene(demo_dir)
    half = load_scene(demo_dir, downscale=2, cache_images=True)
    assert (half.widths == 128).all() and torch.allclose(half.Ks[:, :2], full.Ks[:, :2] / 2)
    img = half.load_image(0)
    assert img.shape == (128, 128, 3)
    ref = torch.nn.functional.avg_pool2d(full.load_image(0).permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0)
    assert (img - ref).abs().mean() < 2 / 255
    assert half.load_image(0) is img  # cached


def test_fraction_split_matches_nerfstudio(small_scene) -> None:
    """Splits are nerfstudio-data's eval_mode="fraction" for any train_split_fraction."""
    ns = pytest.importorskip("nerfstudio.data.utils.dataparsers_utils")
    root, _, _ = small_scene
    for frac in (0.9, 0.5, 0.75, 0.3):
        scene = load_scene(root, train_split_fraction=frac)
        b_train, b_eval = ns.get_train_eval_split_fraction(list(range(4)), frac)
        assert scene.split_indices["train"].tolist() == b_train.tolist(), frac
        assert scene.split_indices["val"].tolist() == scene.split_indices["test"].tolist() == b_eval.tolist(), frac


def test_frames_sorted_by_path_and_split_filenames_honoured(small_scene) -> None:
    root, meta, write = small_scene
    m = copy.deepcopy(meta)
    m["frames"] = m["frames"][::-1]  # nerfstudio sorts by file path
    m["train_filenames"] = [m["frames"][0]["file_path"], m["frames"][1]["file_path"]]
    m["val_filenames"] = [m["frames"][3]["file_path"]]
    write(m)
    scene = load_scene(root)
    # frame 1 is in no list: ns-train never sees it, nor do we
    assert [p.name for p in scene.image_paths] == ["frame_00000.png", "frame_00002.png", "frame_00003.png"]
    assert scene.split_indices["train"].tolist() == [1, 2] and scene.split_indices["val"].tolist() == [0]
    assert scene.split_indices["test"].tolist() == []
    with pytest.raises(SplatentError, match="test split"):
        load_scene(root, split="test")


# ----------------------------------------------------------------------------- errors


def _expect(path: Path, needle: str, **kwargs) -> str:
    with pytest.raises(SplatentError) as info:
        load_scene(path, **kwargs)
    msg = str(info.value)
    assert needle in msg, msg
    return msg


def test_error_missing_folder(tmp_path: Path) -> None:
    _expect(tmp_path / "nope", "nope")


def test_error_no_transforms(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    msg = _expect(tmp_path, "transforms.json")
    assert str(tmp_path) in msg


def test_error_invalid_json_names_line(small_scene) -> None:
    root, _, _ = small_scene
    (root / "transforms.json").write_text('{\n "frames": [\n  {"file_path": "a.png",}\n ]\n}\n')
    msg = _expect(root, "transforms.json")
    assert "line 3" in msg


def test_error_empty_frames(small_scene) -> None:
    root, meta, write = small_scene
    write({**meta, "frames": []})
    assert "no frames" in _expect(root, "transforms.json")


@pytest.mark.parametrize("key", ["file_path", "transform_matrix"])
def test_error_frame_missing_key(small_scene, key: str) -> None:
    root, meta, write = small_scene
    m = copy.deepcopy(meta)
    del m["frames"][2][key]
    write(m)
    msg = _expect(root, "transforms.json")
    assert key in msg and "frame 2" in msg


def test_error_missing_image(small_scene) -> None:
    root, meta, _ = small_scene
    (root / meta["frames"][1]["file_path"]).unlink()
    _expect(root, "frame_00001.png")


def test_error_corrupt_image(small_scene) -> None:
    root, meta, _ = small_scene
    (root / meta["frames"][3]["file_path"]).write_bytes(b"this is not a png")
    _expect(root, "frame_00003.png")


def test_error_truncated_image_on_decode(small_scene) -> None:
    root, meta, _ = small_scene
    path = root / meta["frames"][0]["file_path"]
    path.write_bytes(path.read_bytes()[:2000])  # header intact, pixel data cut
    scene = load_scene(root)  # sizes come from headers only
    with pytest.raises(SplatentError, match="frame_00000.png"):
        scene.load_image(0)


def test_error_image_size_mismatch(small_scene) -> None:
    root, meta, write = small_scene
    write({**meta, "w": 320})
    msg = _expect(root, "frame_00000.png")
    assert "256x256" in msg and "320" in msg


def test_error_missing_intrinsics(small_scene) -> None:
    root, meta, write = small_scene
    m = dict(meta)
    del m["fl_x"]
    write(m)
    assert "fl_x" in _expect(root, "transforms.json")


def test_per_frame_intrinsics(small_scene) -> None:
    root, meta, write = small_scene
    m = copy.deepcopy(meta)
    for k in ("fl_x", "fl_y", "cx", "cy"):
        del m[k]
    for i, f in enumerate(m["frames"]):
        f.update(fl_x=200.0 + i, fl_y=210.0 + i, cx=120.0, cy=130.0)
    write(m)
    scene = load_scene(root)
    assert scene.Ks[:, 0, 0].tolist() == [200.0, 201.0, 202.0, 203.0] and scene.Ks[2, 1, 1] == 212.0
    assert scene.Ks[0, 0, 2] == 120.0 and scene.Ks[0, 1, 2] == 130.0


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"camera_model": "EQUIRECTANGULAR"}, "EQUIRECTANGULAR"),
        ({"camera_model": "KANNALA"}, "KANNALA"),
        ({"k4": 0.05, "k1": 0.0}, "k4"),
        ({"distortion_params": [0.1, 0.0]}, "distortion_params"),
        ({"k1": "strong"}, "k1"),
    ],
)
def test_error_unsupported_cameras(small_scene, patch: dict, needle: str) -> None:
    """Distortion nerfstudio undistorts is loaded (tests/data/test_distortion.py); other camera models are refused."""
    root, meta, write = small_scene
    write({**meta, **patch})
    assert needle in _expect(root, "transforms.json")


def test_error_three_row_transform(small_scene) -> None:
    root, meta, write = small_scene
    m = copy.deepcopy(meta)
    m["frames"][1]["transform_matrix"] = m["frames"][1]["transform_matrix"][:3]
    write(m)
    msg = _expect(root, "transforms.json")
    assert "frame 1" in msg and "4x4" in msg


def test_error_missing_image_size(small_scene) -> None:
    root, meta, write = small_scene
    m = dict(meta)
    del m["h"]
    write(m)
    assert "'h'" in _expect(root, "transforms.json")


def test_error_missing_point_cloud(small_scene) -> None:
    root, meta, write = small_scene
    write({**meta, "ply_file_path": "points.ply"})
    _expect(root, "points.ply")


# ----------------------------------------------------------------------------- blender format


def test_blender_format(tmp_path: Path, scene_makers) -> None:
    scene_makers.make_blender_scene(tmp_path)
    scene = load_scene(tmp_path)
    assert len(scene) == 5  # 3 train + 2 val, test listed once
    assert scene.split_indices["train"].tolist() == [0, 1, 2]
    assert scene.split_indices["val"].tolist() == scene.split_indices["test"].tolist() == [3, 4]
    assert scene.image_paths[0] == tmp_path / "train" / "r_0.png"
    assert (scene.widths == 12).all() and (scene.heights == 8).all()
    fl = 0.5 * 12 / math.tan(0.4)
    assert torch.allclose(scene.Ks[0], torch.tensor([[fl, 0, 6.0], [0, fl, 4.0], [0, 0, 1]]), rtol=1e-6)
    img = scene.load_image(1)
    # composited on white: red at alpha 128/255 → (1, 1 - a, 1 - a)
    a = 128 / 255
    assert img[4, 4].tolist() == pytest.approx([1.0, 1 - a, 1 - a], abs=1e-6)
    assert img[0, 0].tolist() == pytest.approx([0.0, 0.0, 1.0])
    black = load_scene(tmp_path, alpha_color=(0.0, 0.0, 0.0)).load_image(1)
    assert black[4, 4].tolist() == pytest.approx([a, 0.0, 0.0], abs=1e-6)
    test = load_scene(tmp_path, split="test")
    assert len(test) == 2 and test.camera_to_worlds[1, 0, 3] == 1.0


def test_blender_missing_camera_angle(tmp_path: Path, scene_makers) -> None:
    scene_makers.make_blender_scene(tmp_path)
    meta = json.loads((tmp_path / "transforms_train.json").read_text())
    del meta["camera_angle_x"]
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    assert "camera_angle_x" in _expect(tmp_path, "transforms_train.json")


# ----------------------------------------------------------------------------- shared scenes


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "count", "size", "train"),
    [("temple", 16, (640, 480), 15), ("fern", 20, (504, 378), 18), ("lego", 200, (400, 400), 100)],
)
def test_shared_scenes_load(shared_scene, name: str, count: int, size: tuple[int, int], train: int) -> None:
    scene = load_scene(shared_scene(name))
    assert len(scene) == count and len(scene.split_indices["train"]) == train
    assert (scene.widths == size[0]).all() and (scene.heights == size[1]).all()
    img = scene.load_image(int(scene.split_indices["val"][0]))
    assert img.shape == (size[1], size[0], 3) and 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    R = scene.camera_to_worlds[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(len(scene), 3, 3), atol=1e-4)


def test_demo_scene_matches_nerfstudio_dataparser(demo_dir: Path) -> None:
    """nerfstudio-data (without its re-orientation) reads the demo scene exactly as we do."""
    ns = pytest.importorskip("nerfstudio.data.dataparsers.nerfstudio_dataparser")
    parser = ns.NerfstudioDataParserConfig(
        data=demo_dir, orientation_method="none", center_method="none", auto_scale_poses=False, downscale_factor=1
    ).setup()
    for split in ("train", "val"):
        out = parser.get_dataparser_outputs(split)
        ours = load_scene(demo_dir, split=split)
        assert [Path(p) for p in out.image_filenames] == ours.image_paths
        assert torch.allclose(out.cameras.camera_to_worlds, ours.camera_to_worlds[:, :3], atol=1e-6)
        assert torch.allclose(out.cameras.get_intrinsics_matrices(), ours.Ks)
        assert torch.equal(out.cameras.width[:, 0], ours.widths) and torch.equal(out.cameras.height[:, 0], ours.heights)
