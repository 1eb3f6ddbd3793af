"""The demo job end to end on a tiny generated scene (the shipped scene takes minutes on CPU)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import torch
from PIL import Image

from splatent_viewer.scripts.demo import DemoConfig, main
from splatent_viewer.splats.io import load_splats


def test_demo_writes_splats_metrics_image_and_video(tiny_scene_dir, tmp_path):
    out = tmp_path / "demo"
    metrics = main(
        DemoConfig(scene=tiny_scene_dir, output_dir=out, device="cpu", steps=30, video_frames=6, fps=6, refiner="none")
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "compare.png",
        "metrics.json",
        "orbit.mp4",
        "references.safetensors",
        "splats.safetensors",
    ]
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
    scene = load_scene(tiny_scene_dir)
    assert len(run.references) == len(scene.split_indices["train"])
    # The bank reuses the trainer's latents of the training views: they are those views' own latents, in order.
    from splatent_viewer.trained import ReferenceBank

    fresh = ReferenceBank.from_scene(
        scene=scene, indices=scene.split_indices["train"].tolist(), codec=run.codec, device="cpu"
    )
    torch.testing.assert_close(run.references.latents, fresh.latents, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(run.references.c2w, fresh.c2w)
    torch.testing.assert_close(run.references.Ks, fresh.Ks)
    assert "enhanced_psnr" not in metrics["mean"] and video.shape[2] == 2 * 64


def test_demo_with_a_refiner_adds_the_enhanced_render(tiny_scene_dir, tmp_path):
    import numpy as np

    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.export.camera_paths import orbit_path
    from splatent_viewer.frame import render_frame
    from splatent_viewer.refine import RefinerConfig, save_refiner
    from splatent_viewer.trained import load_trained_scene

    # An untrained embedded refiner is the identity (zero-initialised output conv); random output weights
    # (as training would give) make the enhanced render differ from the decoded one, so each panel is checkable.
    torch.manual_seed(0)
    refiner = RefinerConfig(backbone="embedded", codec="taef2", latent_channels=32, num_references=3).setup(
        device="cpu", dtype=torch.float32
    )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in refiner.backbone.unet.conv_out.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    refiner_dir = tmp_path / "refiner"
    save_refiner(refiner, refiner_dir)
    out = tmp_path / "demo"
    metrics = main(
        DemoConfig(
            scene=tiny_scene_dir,
            output_dir=out,
            device="cpu",
            steps=10,
            video_frames=2,
            fps=2,
            refiner=str(refiner_dir),
        )
    )
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    mean = metrics["mean"]
    assert {"enhanced_psnr", "enhanced_ssim"} <= mean.keys()
    assert all({"enhanced_psnr", "enhanced_ssim"} <= row.keys() for row in metrics["views"]) and metrics["views"]
    assert abs(mean["enhanced_psnr"] - mean["decoded_psnr"]) > 0.01  # the refiner ran on the decoded render
    assert set(metrics["phase_seconds"]) == {"load_and_encode", "train", "evaluate", "video"}

    # Re-render with the saved run + refiner: compare.png's 4th panel and the video's middle panel are the
    # enhanced render (not the decoded one, not missing).
    scene = load_scene(tiny_scene_dir)
    run = load_trained_scene(out, refiner=refiner_dir)
    view = scene.split_indices["val"].tolist()[0]
    f = render_frame(
        scene=run,
        c2w=scene.camera_to_worlds[view],
        K=scene.Ks[view],
        width=64,
        height=64,
        outputs=("decoded", "enhanced", "rgb"),
    )
    to8 = lambda x: (x.clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.int16)  # noqa: E731
    compare = np.asarray(Image.open(out / "compare.png")).astype(np.int16)
    assert compare.shape == (64, 5 * 64, 3)
    assert np.abs(compare[:, 3 * 64 : 4 * 64] - to8(f.enhanced)).max() <= 1
    assert np.abs(to8(f.enhanced) - to8(f.decoded)).mean() > 1.0

    video = iio.imread(out / "orbit.mp4", plugin="pyav").astype(np.int16)
    assert video.shape == (2, 64, 192, 3)
    path = orbit_path(train_c2ws=scene.camera_to_worlds[scene.split_indices["train"]], num_frames=2)
    for t, c2w in enumerate(path):
        f = render_frame(scene=run, c2w=c2w, K=scene.Ks[0], width=64, height=64, outputs=("decoded", "enhanced", "rgb"))
        for panel, want, other in ((0, f.decoded, f.enhanced), (1, f.enhanced, f.decoded), (2, f.rgb, f.decoded)):
            got = video[t, :, panel * 64 : (panel + 1) * 64]
            # H.264 is lossy: the panel is near its render and clearly nearer to it than to the other one.
            err, err_other = np.abs(got - to8(want)).mean(), np.abs(got - to8(other)).mean()
            assert err < 6 and err < 0.7 * err_other, (t, panel, err, err_other)


def test_demo_without_held_out_views_still_trains_and_renders(tmp_path):
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene

    scene = render_demo_scene(
        DemoSceneConfig(output=tmp_path / "s", num_views=6, resolution=32, seed=2, supersample=1, num_points=300)
    )
    out = tmp_path / "demo"
    metrics = main(DemoConfig(scene=scene, output_dir=out, device="cpu", steps=5, video_frames=2, refiner="none"))
    assert metrics["views"] == [] and metrics["mean"] == {}
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json",
        "orbit.mp4",
        "references.safetensors",
        "splats.safetensors",
    ]


def test_demo_adapts_the_refiner_to_its_training_views(tiny_scene_dir, tmp_path):
    """--adapt: after training, the shipped refiner is adapted to the scene's training views (guided), written into the
    run folder, and the held-out numbers are taken with it; metrics.json keeps the generic refiner's too."""
    from splatent_viewer.refiner_training.adapt import AdaptationConfig
    from splatent_viewer.refiner_training.dataset import read_index
    from splatent_viewer.trained import ADAPTED_REFINER_DIR, load_trained_scene

    out = tmp_path / "demo"
    metrics = main(
        DemoConfig(
            scene=tiny_scene_dir,
            output_dir=out,
            device="cpu",
            steps=20,
            video_frames=2,
            fps=2,
            adapt=True,
            adaptation=AdaptationConfig(folds=2, unit_steps=10, steps=2, batch_size=2),
        )
    )
    assert (out / ADAPTED_REFINER_DIR / "refiner.json").is_file()
    assert "enhanced_psnr" in metrics["mean"] and "enhanced_psnr" in metrics["generic_refiner_mean"]
    assert "adapt" in metrics["phase_seconds"]
    held_out = {r["view"] for r in metrics["views"]}
    assert not {s["view"] for s in read_index(out / "adaptation" / "dataset")["samples"]} & held_out
    assert load_trained_scene(out).refiner.config.guided  # the viewer's default (--refiner auto) picks it up
