"""CudaGraphRunner: eager on the CPU; on CUDA a replay equals the eager call, per input shape, outputs not aliased."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.cuda_graphs import CudaGraphRunner


def test_cpu_inputs_run_eagerly() -> None:
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape)
        return x * 2 + 1

    runner = CudaGraphRunner(fn, name="affine")
    x = torch.randn(2, 3)
    assert torch.equal(runner(x), x * 2 + 1)
    assert calls == [(2, 3)] and runner.num_graphs == 0


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@cuda
def test_replays_match_eager_per_shape_and_do_not_alias() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.GELU(), torch.nn.Conv2d(8, 4, 1)).cuda()
    runner = CudaGraphRunner(lambda x: conv(x), name="conv")
    with torch.no_grad():
        a, b = torch.randn(1, 4, 16, 16, device="cuda"), torch.randn(1, 4, 16, 16, device="cuda")
        out_a = runner(a)
        out_b = runner(b)  # same shape: a replay, which must not overwrite out_a
        torch.testing.assert_close(out_a, conv(a))
        torch.testing.assert_close(out_b, conv(b))
        c = torch.randn(2, 4, 8, 24, device="cuda")
        torch.testing.assert_close(runner(c), conv(c))
    assert runner.enabled and runner.num_graphs == 2


@pytest.mark.gpu
@cuda
def test_fast_inference_frames_equal_eager_frames(tiny_trained_scene_dir) -> None:
    from splatent_viewer.frame import render_frame
    from splatent_viewer.refine import RefinerConfig
    from splatent_viewer.trained import load_trained_scene

    scene = load_trained_scene(tiny_trained_scene_dir, device="cuda", refiner="none")
    torch.manual_seed(0)
    scene.refiner = RefinerConfig(codec="taef2", latent_channels=32, num_references=2).setup(
        device="cuda", dtype=torch.float16
    )
    torch.nn.init.normal_(scene.refiner.backbone.unet.conv_out.weight, std=0.02)  # not the identity
    c2w, K = scene.references.c2w[1].cpu(), scene.references.Ks[1].cpu()
    h, w = (int(v) for v in scene.references.sizes[1])
    eager = render_frame(scene=scene, c2w=c2w, K=K, width=w, height=h, outputs=("decoded", "enhanced"))
    scene.enable_fast_inference()
    for _ in range(2):  # capture, then replay
        fast = render_frame(scene=scene, c2w=c2w, K=K, width=w, height=h, outputs=("decoded", "enhanced"))
    assert scene._decode_graph is not None and scene._decode_graph.num_graphs == 1
    torch.testing.assert_close(fast.decoded, eager.decoded, atol=2e-3, rtol=0)
    torch.testing.assert_close(fast.enhanced, eager.enhanced, atol=2e-3, rtol=0)
    assert (eager.enhanced - eager.decoded).abs().mean() > 1e-3  # the refiner did something


@pytest.mark.gpu
@cuda
def test_fast_inference_replays_the_guided_residual_frame(tiny_trained_scene_dir) -> None:
    """An RGB-guided residual refiner's frame (RGB pass, encoded guide, refine, one batched decode of the refined
    latent and the guide) replayed from CUDA graphs equals the eager frame."""
    from splatent_viewer.frame import render_frame
    from splatent_viewer.refine import RefinerConfig, guided_from
    from splatent_viewer.trained import load_trained_scene

    scene = load_trained_scene(tiny_trained_scene_dir, device="cuda", refiner="none")
    torch.manual_seed(0)
    plain = RefinerConfig(codec="taef2", latent_channels=32, num_references=2).setup(device="cuda", dtype=torch.float16)
    scene.refiner = guided_from(plain, residual=True)
    torch.nn.init.normal_(scene.refiner.backbone.unet.conv_out.weight, std=0.02)  # not the identity
    c2w, K = scene.references.c2w[1].cpu(), scene.references.Ks[1].cpu()
    h, w = (int(v) for v in scene.references.sizes[1])
    outputs = ("rgb", "enhanced")
    eager = render_frame(scene=scene, c2w=c2w, K=K, width=w, height=h, outputs=outputs)
    scene.enable_fast_inference()
    for _ in range(2):  # capture, then replay
        fast = render_frame(scene=scene, c2w=c2w, K=K, width=w, height=h, outputs=outputs)
    assert scene._encode_graph is not None and scene._encode_graph.num_graphs == 1
    assert scene._decode_graph is not None and scene._decode_graph.num_graphs == 1  # batch of 2: refined + guide
    torch.testing.assert_close(fast.enhanced, eager.enhanced, atol=3e-3, rtol=0)
    assert (eager.enhanced - eager.rgb).abs().mean() > 1e-3  # the refiner changed the RGB splats


@pytest.mark.gpu
@cuda
def test_fast_inference_replays_the_live_decoder(tiny_sd_run_dir, tiny_sd_codec_dirs) -> None:
    from splatent_viewer.codecs import LiveDecoderConfig, load_codec
    from splatent_viewer.frame import render_frame
    from splatent_viewer.trained import load_trained_scene

    sd_dir, taesd_dir = tiny_sd_codec_dirs
    scene = load_trained_scene(
        tiny_sd_run_dir,
        device="cuda",
        refiner="none",
        codec_path=sd_dir,
        live_decoder=LiveDecoderConfig(name="taesd", path=taesd_dir),
    )
    c2w, K = scene.references.c2w[1].cpu(), scene.references.Ks[1].cpu()
    eager = render_frame(scene=scene, c2w=c2w, K=K, width=64, height=64, outputs=("decoded",))
    scene.enable_fast_inference()
    for _ in range(2):  # capture, then replay
        fast = render_frame(scene=scene, c2w=c2w, K=K, width=64, height=64, outputs=("decoded",))
    assert scene._decode_graph is not None and scene._decode_graph.num_graphs == 1
    assert scene._decode_graph.name == "taesd decoder"
    torch.testing.assert_close(fast.decoded, eager.decoded, atol=2e-3, rtol=0)
    taesd = load_codec("taesd", path=taesd_dir, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        expected = taesd.decode(fast.latent[None])[0].float().clamp(0, 1).permute(1, 2, 0)
    torch.testing.assert_close(fast.decoded, expected, atol=2e-3, rtol=0)
