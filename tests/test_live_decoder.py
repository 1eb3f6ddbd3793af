"""An sd-turbo scene with a TAESD live decoder: frames are TAESD's decode; references and refiner keep VAE latents."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.codecs import LiveDecoderConfig, PairedCodec, load_codec
from splatent_viewer.cuda_graphs import CudaGraphRunner
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import reference_latents, render_frame
from splatent_viewer.refine import RefinerConfig
from splatent_viewer.trained import load_trained_scene

pytest.importorskip("diffusers")


def _image(latent: torch.Tensor) -> torch.Tensor:
    """What render_frame makes of a decoded [1, 3, H, W] batch."""
    return latent[0].float().clamp(0, 1).permute(1, 2, 0)


@pytest.fixture
def live(tiny_sd_run_dir, tiny_sd_codec_dirs):
    """(scene with the TAESD live decoder, TAESD codec, the VAE codec), all loaded from the tiny folders."""
    sd_dir, taesd_dir = tiny_sd_codec_dirs
    scene = load_trained_scene(
        tiny_sd_run_dir, refiner="none", codec_path=sd_dir, live_decoder=LiveDecoderConfig(name="taesd", path=taesd_dir)
    )
    return scene, load_codec("taesd", path=taesd_dir), load_codec("sd-turbo", path=sd_dir)


def test_frames_are_taesd_decodes_and_the_refiner_sees_vae_latents(live, tiny_scene_dir):
    scene, taesd, vae = live
    assert isinstance(scene.codec, PairedCodec)
    assert (scene.codec.name, scene.codec.decoder_name) == ("sd-turbo", "taesd")
    # The bank holds the VAE's latents of the training views (the live decoder changes no latent).
    views = load_scene(tiny_scene_dir)
    with torch.no_grad():
        first = vae.encode(views.load_image(scene.train_indices[0]).permute(2, 0, 1)[None])[0]
    torch.testing.assert_close(scene.references.latent(0), first)

    torch.manual_seed(0)
    scene.refiner = RefinerConfig(codec="sd-turbo", latent_channels=4, num_references=2).setup(device="cpu")
    torch.nn.init.normal_(scene.refiner.backbone.unet.conv_out.weight, std=0.02)  # not the identity
    c2w, K = scene.references.c2w[1], scene.references.Ks[1]
    frame = render_frame(
        scene=scene, c2w=c2w, K=K, width=64, height=64, outputs=("decoded", "enhanced"), num_references=2
    )
    assert len(frame.references) == 2
    with torch.no_grad():
        torch.testing.assert_close(frame.decoded, _image(taesd.decode(frame.latent[None])))
        assert (frame.decoded - _image(vae.decode(frame.latent[None]))).abs().mean() > 1e-2
        refs = reference_latents(scene=scene, indices=frame.references, height=8, width=8)
        refined = scene.refiner(target=frame.latent[None], references=refs[None])[0]
        torch.testing.assert_close(frame.latent_enhanced, refined)
        torch.testing.assert_close(frame.enhanced, _image(taesd.decode(refined[None])))


def test_a_decode_graph_follows_the_live_decoder(tiny_sd_run_dir, tiny_sd_codec_dirs):
    sd_dir, taesd_dir = tiny_sd_codec_dirs
    scene = load_trained_scene(tiny_sd_run_dir, refiner="none", codec_path=sd_dir)
    vae = scene.codec
    scene._decode_graph = CudaGraphRunner(vae.decode, name="vae decoder")  # as enable_fast_inference on CUDA
    taesd = load_codec("taesd", path=taesd_dir)
    scene.set_live_decoder(decoder=taesd)
    assert scene._decode_graph.fn == scene.codec.decode and scene._decode_graph.name == "taesd decoder"
    latents = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(scene.decode(latents), taesd.decode(latents))
        # A graph of a replaced codec is never replayed: decoding follows scene.codec.
        scene._decode_graph = CudaGraphRunner(vae.decode, name="stale vae decoder")
        torch.testing.assert_close(scene.decode(latents), taesd.decode(latents))
    # Setting another live decoder pairs it with the scene codec, not with the previous pair.
    scene.set_live_decoder(decoder=load_codec("taesd", path=taesd_dir))
    assert scene.codec.codec is vae


def test_an_incompatible_live_decoder_is_refused_at_load(tiny_sd_run_dir, tiny_sd_codec_dirs):
    refused = r"live decoder 'taef2' .* scene codec 'sd-turbo'.*--live-decoder\.name taesd"
    with pytest.raises(SplatentError, match=refused):
        load_trained_scene(
            tiny_sd_run_dir,
            refiner="none",
            codec_path=tiny_sd_codec_dirs[0],
            live_decoder=LiveDecoderConfig(name="taef2"),
        )
