"""COLMAP folders (sparse/0 or colmap/sparse/0 + images/) load through nerfstudio's COLMAP dataparser, with its world
convention: COLMAP's (x, y, z) becomes (x, z, -y), for the cameras and the points alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParserConfig

from splatent_viewer.data.ply import read_ply_points
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError

FRAMES = tuple(range(0, 36, 4))  # the demo frames make_colmap_scene uses (image ids in reverse order)


@pytest.mark.parametrize("model_dir", ["sparse/0", "colmap/sparse/0"])
def test_colmap_scene_loads_in_nerfstudio_world(scene_makers, tmp_path: Path, model_dir: str) -> None:
    root = scene_makers.make_colmap_scene(tmp_path / "colmap", model_dir=model_dir)
    scene = load_scene(root)
    demo = load_scene(scene_makers.DEMO)
    by_id = FRAMES[::-1]  # nerfstudio orders COLMAP images by id
    assert [p.name for p in scene.image_paths] == [f"frame_{k:05d}.png" for k in by_id]
    world = torch.tensor(scene_makers.COLMAP_WORLD, dtype=torch.float32)
    assert torch.equal(scene.applied_transform, world)
    assert torch.allclose(scene.camera_to_worlds, world @ demo.camera_to_worlds[list(by_id)], atol=1e-5)
    assert torch.equal(scene.Ks, demo.Ks[: len(by_id)]) and (scene.widths == 256).all()
    assert torch.equal(scene.load_image(3), demo.load_image(by_id[3]))
    # nerfstudio's COLMAP default split: every 8th image held out
    parser = ColmapDataParserConfig(
        data=root,
        colmap_path=Path(model_dir),
        downscale_factor=1,
        orientation_method="none",
        center_method="none",
        auto_scale_poses=False,
        load_3D_points=False,
    ).setup()
    for split in ("train", "val", "test"):
        names = [Path(p) for p in parser.get_dataparser_outputs(split).image_filenames]
        assert [scene.image_paths[i] for i in scene.split_indices[split]] == names
    assert scene.split_indices["val"].tolist() == [0, 8]
    # points in the same world as the cameras
    xyz, rgb = scene.load_points()
    ply_xyz, ply_rgb = read_ply_points(scene_makers.DEMO / "sparse_pc.ply")
    assert torch.allclose(xyz, ply_xyz[:200] @ world[:3, :3].T, atol=1e-5)
    assert rgb is not None and torch.allclose(rgb, ply_rgb[:200], atol=0.5 / 255)
    # a point in front of a camera projects into its image the same way in both worlds
    c2w_demo = demo.camera_to_worlds[by_id[0]]
    p_demo = c2w_demo[:3, 3] - 2.0 * c2w_demo[:3, 2] + 0.3 * c2w_demo[:3, 0]
    cam_demo = demo.viewmats()[by_id[0]] @ torch.cat([p_demo, torch.ones(1)])
    cam = scene.viewmats()[0] @ (world @ torch.cat([p_demo, torch.ones(1)]))
    assert torch.allclose(cam, cam_demo, atol=1e-5)


def test_colmap_downscale_uses_images_n(scene_makers, tmp_path: Path) -> None:
    root = scene_makers.make_colmap_scene(tmp_path / "colmap", frames=(0, 4, 8), num_points=10)
    (root / "images_2").mkdir()
    for p in sorted((root / "images").iterdir())[:2]:
        image = scene_makers.demo_image(int(p.stem[-5:]))
        scene_makers.write_image(root / "images_2" / p.name, image[::2, ::2])
    scene = load_scene(root, downscale=2)
    assert [p.parent.name for p in scene.image_paths] == [
        "images",
        "images_2",
        "images_2",
    ]  # ids 3, 2, 1 → frames 8, 4, 0
    assert (scene.widths == 128).all() and torch.allclose(scene.Ks[:, 0, 0], load_scene(root).Ks[:, 0, 0] / 2)
    assert scene.load_image(0).shape == scene.load_image(1).shape == (128, 128, 3)


def _expect(root: Path, *needles: str) -> None:
    with pytest.raises(SplatentError) as info:
        load_scene(root)
    for needle in needles:
        assert needle in str(info.value), str(info.value)


def test_colmap_errors_name_the_file(scene_makers, tmp_path: Path) -> None:
    root = scene_makers.make_colmap_scene(tmp_path / "c", frames=(0, 4, 8), num_points=10)
    (root / "images" / "frame_00004.png").unlink()
    _expect(root, "frame_00004.png", "does not exist", "images.txt")
    shutil.copy(scene_makers.DEMO / "images" / "frame_00004.png", root / "images" / "frame_00004.png")
    cams = root / "sparse/0/cameras.txt"
    cams.write_text(cams.read_text().replace("PINHOLE", "FULL_OPENCV").rstrip() + " 0 0 0 0 0 0 0 0\n")
    _expect(root, "FULL_OPENCV", "image_undistorter")
    cams.write_text("1 PINHOLE 256 not-a-number\n")
    _expect(root, "cameras.txt", "not a readable COLMAP cameras file")
    cams.write_text(f"1 PINHOLE 320 256 {float(np.pi)} 300 160 128\n")
    _expect(root, "frame_00000.png is 256x256", "320x256")
    cams.unlink()
    _expect(root, "No cameras.txt or cameras.bin")


def test_colmap_folder_given_to_nerfstudio_data_says_which_dataparser(scene_makers, tmp_path: Path) -> None:
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from splatent_viewer.data.check import check_scene

    root = scene_makers.make_colmap_scene(tmp_path / "c", frames=(0, 4), num_points=10)
    with pytest.raises(
        SplatentError, match=r"no transforms.json but a COLMAP model in sparse/0: .*ns-train splatent colmap"
    ):
        check_scene(NerfstudioDataParserConfig(data=root))
