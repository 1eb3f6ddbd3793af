"""The demo job end to end on a tiny generated scene (the shipped scene takes minutes on CPU)."""

from __future__ import annotations

import json

import imageio.v3 as iio
from PIL import Image

from splatent_viewer.scripts.demo import DemoConfig, main
from splatent_viewer.splats.io import load_splats


def test_demo_writes_splats_metrics_image_and_video(tiny_scene_dir, tmp_path):
    out = tmp_path / "demo"
    metrics = main(DemoConfig(scene=tiny_scene_dir, output_dir=out, device="cpu", steps=30, video_frames=6, fps=6,
                              refiner="none"))
    assert sorted(p.name for p in out.iterdir()) == ["compare.png", "metrics.json", "orbit.mp4", "references.safetensors",
                                                     "splats.safetensors"]
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
    # The output folder is a run the viewer and the exporter load.
    from splatent_viewer.trained import load_trained_scene

    run = load_trained_scene(out, refiner="none")
    assert len(run.references) == len(load_scene(tiny_scene_dir).split_indices["train"])


def test_demo_with_a_refiner_adds_the_enhanced_render(tiny_scene_dir, tmp_path):
    import torch

    from splatent_viewer.refine import RefinerConfig, save_refiner

    # An untrained embedded refiner is the identity (zero-initialised output), so enhanced == decoded here.
    refiner_dir = tmp_path / "refiner"
    save_refiner(RefinerConfig(backbone="embedded", codec="taef2", latent_channels=32, num_references=3)
                 .setup(device="cpu", dtype=torch.float32), refiner_dir)
    out = tmp_path / "demo"
    metrics = main(DemoConfig(scene=tiny_scene_dir, output_dir=out, device="cpu", steps=10, video_frames=2, fps=2,
                              refiner=str(refiner_dir)))
    mean = metrics["mean"]
    assert abs(mean["enhanced_psnr"] - mean["decoded_psnr"]) < 0.05
    assert Image.open(out / "compare.png").size == (5 * 64, 64)
    assert iio.imread(out / "orbit.mp4", plugin="pyav").shape == (2, 64, 192, 3)


def test_demo_without_held_out_views_still_trains_and_renders(tmp_path):
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene

    scene = render_demo_scene(DemoSceneConfig(output=tmp_path / "s", num_views=6, resolution=32, seed=2, supersample=1,
                                              num_points=300))
    out = tmp_path / "demo"
    metrics = main(DemoConfig(scene=scene, output_dir=out, device="cpu", steps=5, video_frames=2, refiner="none"))
    assert metrics["views"] == [] and metrics["mean"] == {}
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "orbit.mp4", "references.safetensors",
                                                     "splats.safetensors"]
