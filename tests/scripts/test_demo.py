"""The demo job end to end on a tiny generated scene (the shipped scene takes minutes on CPU)."""

from __future__ import annotations

import json

import imageio.v3 as iio
from PIL import Image

from splatent_viewer.scripts.demo import DemoConfig, main
from splatent_viewer.splats.io import load_splats


def test_demo_writes_splats_metrics_image_and_video(tiny_scene_dir, tmp_path):
    out = tmp_path / "demo"
    metrics = main(DemoConfig(scene=tiny_scene_dir, output_dir=out, device="cpu", steps=30, video_frames=6, fps=6))
    assert sorted(p.name for p in out.iterdir()) == ["compare.png", "metrics.json", "orbit.mp4", "splats.safetensors"]
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    from splatent_viewer.data.scene import load_scene

    assert [r["view"] for r in metrics["views"]] == load_scene(tiny_scene_dir).split_indices["val"].tolist()
    # Even 30 steps give images related to the ground truth, below the codec's own round trip.
    assert 8.0 < metrics["mean"]["decoded_psnr"] < metrics["mean"]["codec_psnr"]
    assert 8.0 < metrics["mean"]["rgb_psnr"]
    assert Image.open(out / "compare.png").size == (4 * 64, 64)
    video = iio.imread(out / "orbit.mp4", plugin="pyav")
    assert video.shape == (6, 64, 128, 3)
    assert video.std() > 5  # an actual render, not a blank frame
    splats = load_splats(out / "splats.safetensors")
    assert splats.codec == "taef2" and splats.params["latents"].shape[1] == 32


def test_demo_without_held_out_views_still_trains_and_renders(tmp_path):
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene

    scene = render_demo_scene(DemoSceneConfig(output=tmp_path / "s", num_views=6, resolution=32, seed=2, supersample=1,
                                              num_points=300))
    out = tmp_path / "demo"
    metrics = main(DemoConfig(scene=scene, output_dir=out, device="cpu", steps=5, video_frames=2))
    assert metrics["views"] == [] and metrics["mean"] == {}
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "orbit.mp4", "splats.safetensors"]
