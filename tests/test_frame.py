"""The shared render function: latent render → decode, and RGB."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import render_frame
from splatent_viewer.splats import init_splats
from splatent_viewer.training.losses import psnr


def _splats_from_target_latent(scene, codec):
    """Gaussians on a dense grid of the first view's pixels, carrying that view's encoded latent."""
    points, colors = scene.load_points()
    return init_splats(points=points, colors=colors, latent_channels=codec.latent_channels, init_opacity=0.5)


def test_decoded_frame_is_the_codec_decode_of_the_rendered_latent(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    params = _splats_from_target_latent(scene, codec)
    params["latents"] = torch.randn_like(params["latents"])
    vm, K = scene.viewmats()[0], scene.Ks[0]
    frame = render_frame(params=params, codec=codec, viewmat=vm, K=K, width=64, height=64, rgb=True)
    assert frame.decoded.shape == (64, 64, 3) and frame.rgb.shape == (64, 64, 3)
    assert frame.latent.shape == (32, 8, 8)
    with torch.no_grad():
        expected = codec.decode(frame.latent[None])[0].clamp(0, 1).permute(1, 2, 0)
    torch.testing.assert_close(frame.decoded, expected)
    # RGB splats initialised from the point colours resemble the view (far from a blank image).
    assert psnr(frame.rgb, scene.load_image(0)) > 10.0


def test_frame_size_must_align_with_codec(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    params = _splats_from_target_latent(scene, codec)
    with pytest.raises(SplatentError, match="multiple of the codec's downscale 8"):
        render_frame(params=params, codec=codec, viewmat=scene.viewmats()[0], K=scene.Ks[0], width=60, height=64)
