"""The shared render function: latent render → decode → refine, and RGB/depth."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import reference_latents, render_frame
from splatent_viewer.splats import init_splats
from splatent_viewer.trained import trained_scene_from_splats
from splatent_viewer.training.losses import psnr


@pytest.fixture(scope="module")
def trained(tiny_scene_dir):
    """Gaussians at the tiny scene's points with their colours and random latents (no training needed here)."""
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    points, colors = scene.load_points()
    params = init_splats(points=points, colors=colors, latent_channels=codec.latent_channels, init_opacity=0.5)
    params["latents"] = torch.randn_like(params["latents"])
    train = scene.split_indices["train"].tolist()
    return scene, trained_scene_from_splats(
        scene=scene, params=params, codec=codec, sh_degree=0, train_indices=train, device="cpu"
    )


def test_decoded_frame_is_the_codec_decode_of_the_rendered_latent(trained):
    scene, ts = trained
    frame = render_frame(
        scene=ts, c2w=scene.camera_to_worlds[0], K=scene.Ks[0], width=64, height=64, outputs=("decoded", "rgb", "depth")
    )
    assert frame.decoded.shape == (64, 64, 3) and frame.rgb.shape == (64, 64, 3) and frame.depth.shape == (64, 64)
    assert frame.latent.shape == (32, 8, 8)
    with torch.no_grad():
        expected = ts.codec.decode(frame.latent[None])[0].clamp(0, 1).permute(1, 2, 0)
    torch.testing.assert_close(frame.decoded, expected)
    # RGB splats initialised from the point colours resemble the view (far from a blank image).
    assert psnr(frame.rgb, scene.load_image(0)) > 10.0
    # Depth is positive where something was drawn, and the camera sits outside the scene.
    assert frame.depth.max() > 0
    assert frame.enhanced is None and frame.timings_ms == {}


def test_only_requested_outputs_and_stage_timings(trained):
    scene, ts = trained
    frame = render_frame(
        scene=ts, c2w=scene.camera_to_worlds[1], K=scene.Ks[1], width=64, height=64, outputs=("rgb",), time_stages=True
    )
    assert frame.decoded is None and frame.latent is None and frame.rgb is not None
    assert set(frame.timings_ms) == {"rgb"} and frame.timings_ms["rgb"] > 0


def test_frame_errors(trained):
    scene, ts = trained
    with pytest.raises(SplatentError, match="multiple of the codec's downscale 8"):
        render_frame(scene=ts, c2w=scene.camera_to_worlds[0], K=scene.Ks[0], width=60, height=64)
    with pytest.raises(SplatentError, match="No refiner is loaded"):
        render_frame(scene=ts, c2w=scene.camera_to_worlds[0], K=scene.Ks[0], width=64, height=64, outputs=("enhanced",))
    with pytest.raises(SplatentError, match="Unknown frame outputs"):
        render_frame(scene=ts, c2w=scene.camera_to_worlds[0], K=scene.Ks[0], width=64, height=64, outputs=("normals",))


def test_reference_latents_are_bank_latents_resized(trained):
    _, ts = trained
    same = reference_latents(scene=ts, indices=[2, 0], height=8, width=8)
    torch.testing.assert_close(same, torch.stack([ts.references.latent(2), ts.references.latent(0)]))
    small = reference_latents(scene=ts, indices=[1, 2], height=4, width=6)
    assert small.shape == (2, 32, 4, 6)
    big = ts.references.latent(1)
    torch.testing.assert_close(
        small[0].mean(dim=(-1, -2)), big.mean(dim=(-1, -2)), atol=0.15 * big.abs().mean().item(), rtol=0
    )
    assert reference_latents(scene=ts, indices=[], height=8, width=8).shape == (0, 32, 8, 8)


def _tiny_unet():
    """A small embedded-UNet body for refiners built in these tests (imported late: the refiner pulls in diffusers)."""
    from splatent_viewer.refine import EmbeddedUNetConfig

    return EmbeddedUNetConfig(
        block_out_channels=(16, 16), attention_from_level=1, attention_head_dim=8, norm_num_groups=8
    )


def test_a_guided_refiner_refines_the_encoded_rgb_render(trained):
    """With an RGB-guided refiner the frame renders the RGB splats first, encodes them (the guide) and refines that:
    an untrained guided refiner's enhanced frame is the decoded guide, not the decoded latent render."""
    from splatent_viewer.refine import RefinerConfig

    scene, ts = trained
    tiny = _tiny_unet()
    ts.refiner = RefinerConfig(latent_channels=32, num_references=2, embedded=tiny, guided=True).setup()
    try:
        c2w, K = scene.camera_to_worlds[0], scene.Ks[0]
        f = render_frame(scene=ts, c2w=c2w, K=K, width=64, height=64, outputs=("enhanced", "decoded"), time_stages=True)
        assert f.rgb is None and f.guide is not None  # rendered for the guide only
        with torch.no_grad():
            rgb = render_frame(scene=ts, c2w=c2w, K=K, width=64, height=64, outputs=("rgb",)).rgb
            guide = ts.codec.encode(rgb.permute(2, 0, 1)[None])[0]
        torch.testing.assert_close(f.guide, guide, rtol=0, atol=1e-5)
        torch.testing.assert_close(f.latent_enhanced, guide, rtol=0, atol=1e-4)
        assert not torch.allclose(f.enhanced, f.decoded, atol=1e-2)
        assert {"rgb", "guide", "raster", "refine"} <= set(f.timings_ms)
    finally:
        ts.refiner = None


def test_a_residual_guided_refiner_starts_as_the_rgb_splats(trained):
    """A residual refiner's enhanced frame is the RGB splats plus the decoded change it makes to the guide: at its
    identity start, the RGB splats themselves (not their codec round trip, which the plain guided start shows)."""
    from splatent_viewer.refine import RefinerConfig

    scene, ts = trained
    tiny = _tiny_unet()
    c2w, K = scene.camera_to_worlds[0], scene.Ks[0]
    enhanced = {}
    try:
        for residual in (False, True):
            config = RefinerConfig(latent_channels=32, num_references=2, embedded=tiny, guided=True, residual=residual)
            ts.refiner = config.setup()
            f = render_frame(scene=ts, c2w=c2w, K=K, width=64, height=64, outputs=("enhanced", "rgb"))
            assert f.rgb is not None and f.enhanced is not None
            enhanced[residual] = f.enhanced
        torch.testing.assert_close(enhanced[True], f.rgb, rtol=0, atol=1e-5)
        assert (enhanced[False] - f.rgb).abs().mean() > 1e-3  # the round trip
        assert "on the RGB splats" in ts.refiner_label
    finally:
        ts.refiner = None


def test_a_residual_refiner_at_its_identity_start_skips_the_codec_work(trained, monkeypatch):
    """While a residual guided refiner returns its guide (the generic start), the frame shows the RGB splats without
    encoding, refining or decoding anything, and the full path gives the same image; once its weights change (as
    adaptation or training changes them in place), frames refine again."""
    from splatent_viewer.refine import RefinerConfig

    scene, ts = trained
    tiny = _tiny_unet()
    c2w, K = scene.camera_to_worlds[0], scene.Ks[0]
    config = RefinerConfig(latent_channels=32, num_references=2, embedded=tiny, guided=True, residual=True)
    refiner = ts.refiner = config.setup()
    try:
        assert refiner.returns_guide()
        outputs = ("enhanced", "rgb")
        fast = render_frame(scene=ts, c2w=c2w, K=K, width=64, height=64, outputs=outputs, time_stages=True)
        assert fast.enhanced is not None and fast.rgb is not None and fast.references
        assert not {"raster", "guide", "refine", "decode_enhanced"} & set(fast.timings_ms)  # no latent pass either
        torch.testing.assert_close(fast.enhanced, fast.rgb, rtol=0, atol=0)

        with monkeypatch.context() as m:  # the full path, for comparison
            m.setattr(type(refiner), "returns_guide", lambda self: False)
            full = render_frame(scene=ts, c2w=c2w, K=K, width=64, height=64, outputs=outputs, time_stages=True)
        assert {"raster", "guide", "refine", "decode_enhanced"} <= set(full.timings_ms)
        torch.testing.assert_close(full.enhanced, fast.enhanced, rtol=0, atol=1e-4)

        with torch.no_grad():  # an optimizer step changes the weights in place
            next(p for n, p in refiner.named_parameters() if n.endswith("conv_out.weight")).add_(0.05)
        assert not refiner.returns_guide()
        changed = render_frame(scene=ts, c2w=c2w, K=K, width=64, height=64, outputs=outputs, time_stages=True)
        assert "refine" in changed.timings_ms and (changed.enhanced - changed.rgb).abs().mean() > 1e-4
        assert not RefinerConfig(latent_channels=32, num_references=2, embedded=tiny).setup().returns_guide()
    finally:
        ts.refiner = None
