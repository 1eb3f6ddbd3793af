"""nerfstudio camera-path JSON: same cameras as nerfstudio's own reader, and rendered like the training views."""

from __future__ import annotations

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.export.camera_paths import vertical_fov
from splatent_viewer.export.flythrough import ExportConfig, export_flythrough
from splatent_viewer.export.nerfstudio_camera_path import (
    camera_path_from_dict,
    load_dataparser_transform,
    load_nerfstudio_camera_path,
    to_dataparser_world,
    write_nerfstudio_camera_path,
)
from splatent_viewer.frame import render_frame
from splatent_viewer.trained import load_trained_scene


def _render_panel_json(c2ws: list[list[float]], fovs: list[float], width: int, height: int, seconds: float) -> dict:
    """What the nerfstudio viewer's render panel saves (nerfstudio 1.1.5 render_panel.py), by hand."""
    return {
        "default_fov": fovs[0],
        "default_transition_sec": 2.0,
        "keyframes": [
            {
                "matrix": c2ws[0],
                "fov": fovs[0],
                "aspect": width / height,
                "override_transition_enabled": False,
                "override_transition_sec": None,
            }
        ],
        "camera_type": "perspective",
        "render_height": height,
        "render_width": width,
        "fps": len(c2ws) / seconds,
        "seconds": seconds,
        "is_cycle": False,
        "smoothness_value": 0.5,
        "camera_path": [{"camera_to_world": m, "fov": f, "aspect": width / height} for m, f in zip(c2ws, fovs)],
    }


def test_cameras_match_nerfstudios_get_path_from_json():
    from nerfstudio.cameras.camera_paths import get_path_from_json

    g = torch.Generator().manual_seed(0)
    mats = []
    for _ in range(3):
        R = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0]
        m = torch.eye(4, dtype=torch.float64)
        m[:3, :3], m[:3, 3] = R * torch.det(R).sign(), torch.randn(3, generator=g, dtype=torch.float64)
        mats.append(m.reshape(-1).tolist())
    data = _render_panel_json(mats, [50.0, 61.5, 38.0], width=160, height=96, seconds=1.5)
    ours = camera_path_from_dict(data)
    ns = get_path_from_json(data)
    torch.testing.assert_close(ours.c2ws[:, :3, :4], ns.camera_to_worlds.float())
    torch.testing.assert_close(ours.Ks[:, 0, 0], ns.fx[:, 0].float())
    torch.testing.assert_close(ours.Ks[:, 1, 1], ns.fy[:, 0].float())
    torch.testing.assert_close(ours.Ks[:, 0, 2], ns.cx[:, 0].float())
    torch.testing.assert_close(ours.Ks[:, 1, 2], ns.cy[:, 0].float())
    assert (ours.width, ours.height) == (int(ns.width[0]), int(ns.height[0])) == (160, 96)
    assert ours.fps == pytest.approx(3 / 1.5)  # ns-render: len(cameras) / seconds


def test_write_then_read_round_trips(tmp_path):
    c2ws = torch.eye(4).repeat(2, 1, 1)
    c2ws[1, :3, 3] = torch.tensor([1.0, 2.0, 3.0])
    path = write_nerfstudio_camera_path(
        path=tmp_path / "p.json", c2ws=c2ws, fov_degrees=45.0, width=64, height=48, seconds=0.5
    )
    back = load_nerfstudio_camera_path(path)
    torch.testing.assert_close(back.c2ws, c2ws)
    assert abs(math.degrees(vertical_fov(K=back.Ks[1], height=48)) - 45.0) < 1e-4
    assert back.fps == 4.0 and [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_path_through_training_cameras_renders_those_views(tiny_trained_scene_dir, tmp_path):
    scene = load_trained_scene(tiny_trained_scene_dir, device="cpu", refiner="none")
    bank = scene.references
    idx = [1, 4]
    h, w = (int(v) for v in bank.sizes[idx[0]])
    fovs = [math.degrees(vertical_fov(K=bank.Ks[i], height=h)) for i in idx]
    data = _render_panel_json(
        [bank.c2w[i].double().reshape(-1).tolist() for i in idx], fovs, width=w, height=h, seconds=1.0
    )
    (tmp_path / "path.json").write_text(json.dumps(data))
    cams = load_nerfstudio_camera_path(tmp_path / "path.json")
    torch.testing.assert_close(cams.Ks, bank.Ks[idx].float(), atol=1e-3, rtol=1e-5)  # centred pinhole training cameras
    result = export_flythrough(scene=scene, cameras=cams, config=ExportConfig(output=tmp_path / "frames"))
    assert result.fps == 2.0
    frames = [iio.imread(tmp_path / "frames" / f"frame_{j:05d}.png") for j in range(2)]
    for frame, i in zip(frames, idx):
        direct = render_frame(scene=scene, c2w=bank.c2w[i], K=bank.Ks[i], width=w, height=h).decoded
        direct = (direct * 255 + 0.5).to(torch.uint8).numpy()
        assert np.abs(frame.astype(int) - direct).max() <= 1
    # ... and not just any view: the two frames differ from each other.
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 5


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d.pop("render_width"), "missing key 'render_width'"),
        (lambda d: d.update(camera_type="fisheye"), "only perspective"),
        (lambda d: d["camera_path"][0].update(camera_to_world=[1.0] * 12), "not 16"),
        (lambda d: d["camera_path"][0].pop("fov"), r"camera_path\[0\]"),
        (lambda d: d.update(camera_path=[]), "empty"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, edit, match):
    data = _render_panel_json([torch.eye(4).reshape(-1).tolist()], [50.0], width=64, height=64, seconds=1.0)
    edit(data)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    with pytest.raises(SplatentError, match=match) as e:
        load_nerfstudio_camera_path(f)
    assert str(f) in str(e.value)
    f.write_text("{not json")
    with pytest.raises(SplatentError, match="not valid JSON"):
        load_nerfstudio_camera_path(f)
    with pytest.raises(SplatentError, match="not found"):
        load_nerfstudio_camera_path(tmp_path / "missing.json")


def test_data_world_paths_are_transformed_like_nerfstudio_does(tmp_path):
    from nerfstudio.data.dataparsers.base_dataparser import transform_poses_to_original_space

    g = torch.Generator().manual_seed(1)
    R = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0]
    R = R * torch.det(R).sign()
    transform = torch.cat([R, torch.randn(3, 1, generator=g, dtype=torch.float64)], dim=1)
    (tmp_path / "dataparser_transforms.json").write_text(json.dumps({"transform": transform.tolist(), "scale": 0.37}))
    T, s = load_dataparser_transform(tmp_path / "dataparser_transforms.json")
    poses = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    poses[:, :3, 3] = torch.randn(3, 3, generator=g, dtype=torch.float64)
    moved = to_dataparser_world(poses, transform=T, scale=s)
    back = transform_poses_to_original_space(moved[:, :3, :4], T, s, camera_convention="opengl")
    torch.testing.assert_close(back, poses[:, :3, :4])
    with pytest.raises(SplatentError, match="transform"):
        (tmp_path / "bad.json").write_text("{}")
        load_dataparser_transform(tmp_path / "bad.json")
