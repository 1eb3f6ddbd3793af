"""RGB-guided refiner: the codec-encoded RGB-splat render of the target view (the guide) is the base the UNet refines,
the latent render rides along as extra input channels; an untrained guided refiner returns the guide."""

from __future__ import annotations

import math

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, Refiner, RefinerConfig, guided_from
from splatent_viewer.refine.checkpoint import load_refiner, save_refiner
from splatent_viewer.refine.refiner import blur_image, with_correction_blur

TINY_UNET = EmbeddedUNetConfig(
    block_out_channels=(16, 16), attention_from_level=1, attention_head_dim=8, norm_num_groups=8
)


def _refiner(*, guided: bool, channels: int = 6, k: int = 3) -> Refiner:
    torch.manual_seed(0)
    return RefinerConfig(latent_channels=channels, num_references=k, embedded=TINY_UNET, guided=guided).setup()


def _perturb_out(refiner: Refiner, scale: float = 0.1) -> Refiner:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in refiner.backbone.unet.conv_out.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return refiner


@pytest.mark.parametrize("k", [0, 2, 3])
def test_untrained_guided_refiner_returns_the_guide(k: int) -> None:
    refiner = _refiner(guided=True)
    target, guide = torch.randn(2, 6, 5, 7), torch.randn(2, 6, 5, 7)
    out = refiner(target=target, references=torch.randn(2, k, 6, 5, 7), guide=guide)
    assert out.shape == target.shape
    torch.testing.assert_close(out, guide, rtol=0, atol=1e-6)


def test_the_latent_render_reaches_a_trained_guided_refiner() -> None:
    refiner = _perturb_out(_refiner(guided=True))
    target, refs, guide = torch.randn(1, 6, 4, 4), torch.randn(1, 3, 6, 4, 4), torch.randn(1, 6, 4, 4)
    base = refiner(target=target, references=refs, guide=guide)
    assert not torch.allclose(base, guide)
    assert not torch.allclose(refiner(target=target + 1.0, references=refs, guide=guide), base)
    assert not torch.allclose(refiner(target=target, references=refs, guide=guide + 1.0), base)


def test_guide_is_required_by_a_guided_refiner_and_refused_by_a_pure_latent_one() -> None:
    target, refs = torch.randn(1, 6, 4, 4), torch.randn(1, 1, 6, 4, 4)
    with pytest.raises(SplatentError, match="guide"):
        _refiner(guided=True)(target=target, references=refs)
    with pytest.raises(SplatentError, match="guide"):
        _refiner(guided=False)(target=target, references=refs, guide=target)
    with pytest.raises(SplatentError, match="guide"):
        _refiner(guided=True)(target=target, references=refs, guide=target[:, :, :2])


def test_gradients_reach_the_latent_render_channels() -> None:
    refiner = _refiner(guided=True)
    target, refs, guide = torch.randn(1, 6, 4, 4), torch.randn(1, 3, 6, 4, 4), torch.randn(1, 6, 4, 4)
    (refiner(target=target, references=refs, guide=guide) - torch.randn(1, 6, 4, 4)).square().mean().backward()
    grad = refiner.backbone.unet.conv_in.weight.grad
    assert grad is not None and grad.shape[1] == 12  # guide-based grid + latent-render grid
    assert refiner.backbone.unet.conv_out.weight.grad.abs().sum() > 0


def test_guided_from_a_pure_latent_refiner_keeps_its_body_and_starts_on_the_guide() -> None:
    plain = _perturb_out(_refiner(guided=False))
    with torch.no_grad():
        for p in plain.backbone.unet.conv_in.parameters():
            p.add_(0.05)
    guided = guided_from(plain)
    assert guided.config.guided and not plain.config.guided
    target, refs, guide = torch.randn(1, 6, 4, 4), torch.randn(1, 3, 6, 4, 4), torch.randn(1, 6, 4, 4)
    torch.testing.assert_close(guided(target=target, references=refs, guide=guide), guide, rtol=0, atol=1e-6)
    w_plain, w_guided = plain.backbone.unet.conv_in.weight, guided.backbone.unet.conv_in.weight
    torch.testing.assert_close(w_guided[:, :6], w_plain)  # the body sees the guide grid as it saw the render grid
    assert torch.equal(w_guided[:, 6:], torch.zeros_like(w_guided[:, 6:]))  # the render channels start at zero
    body = [n for n, _ in plain.named_parameters() if "conv_in" not in n and "conv_out" not in n]
    state_plain, state_guided = plain.state_dict(), guided.state_dict()
    assert body and all(torch.equal(state_plain[n], state_guided[n]) for n in body)


def test_a_guided_refiner_saves_and_loads(tmp_path) -> None:
    refiner = _perturb_out(_refiner(guided=True))
    folder = save_refiner(refiner, tmp_path / "guided")
    loaded = load_refiner(folder)
    assert loaded.config.guided
    target, refs, guide = torch.randn(1, 6, 4, 4), torch.randn(1, 2, 6, 4, 4), torch.randn(1, 6, 4, 4)
    torch.testing.assert_close(
        loaded(target=target, references=refs, guide=guide), refiner(target=target, references=refs, guide=guide)
    )
    assert not load_refiner(save_refiner(_refiner(guided=False), tmp_path / "plain")).config.guided


def test_residual_needs_guidance() -> None:
    with pytest.raises(SplatentError, match="residual=True needs guided=True"):
        RefinerConfig(latent_channels=6, embedded=TINY_UNET, residual=True).setup()


def _decode(z: torch.Tensor) -> torch.Tensor:
    """A fixed non-linear stand-in 'decoder' (latents [B 6 h w] → images [B 3 2h 2w]), enough to tell the
    compositions apart."""
    return torch.nn.functional.interpolate(torch.tanh(z[:, :3]) * 0.5 + 0.5, scale_factor=2.0)


def test_the_enhanced_image_of_a_residual_refiner_is_the_rgb_splats_plus_its_decoded_change() -> None:
    """``Refiner.image``: decode(refined) for plain guided refiners; rgb + decode(refined) − decode(guide) for
    residual ones, so a residual refiner at its identity start shows the RGB splats exactly (no codec round trip)."""
    plain = guided_from(_perturb_out(_refiner(guided=False)))
    residual = guided_from(_perturb_out(_refiner(guided=False)), residual=True)
    assert residual.config.residual and not plain.config.residual
    target, refs, guide = torch.randn(1, 6, 4, 4), torch.randn(1, 3, 6, 4, 4), torch.randn(1, 6, 4, 4)
    rgb = torch.rand(1, 3, 8, 8)
    start = residual(target=target, references=refs, guide=guide)  # the identity on the guide
    torch.testing.assert_close(residual.image(refined=start, decode=_decode, guide=guide, rgb=rgb), rgb)
    torch.testing.assert_close(plain.image(refined=start, decode=_decode, guide=guide, rgb=rgb), _decode(start))
    start, changed = start.detach(), start.detach() + 0.3
    expected = rgb + _decode(changed) - _decode(guide)
    torch.testing.assert_close(residual.image(refined=changed, decode=_decode, guide=guide, rgb=rgb), expected)
    # gradients reach the refined latent, never the guide's term
    changed.requires_grad_(True)
    residual.image(refined=changed, decode=_decode, guide=guide.requires_grad_(True), rgb=rgb).sum().backward()
    assert changed.grad is not None and guide.grad is None
    with pytest.raises(SplatentError, match="rgb="):
        residual.image(refined=start, decode=_decode, guide=guide)
    # inference decodes the refined latent and the guide in one batched call, with the same image
    calls: list[int] = []

    def counting_decode(z: torch.Tensor) -> torch.Tensor:
        calls.append(len(z))
        return _decode(z)

    with torch.no_grad():
        image = residual.image(refined=changed, decode=counting_decode, guide=guide, rgb=rgb)
    assert calls == [2]
    torch.testing.assert_close(image, expected)


def test_blur_image_is_a_normalised_gaussian_that_keeps_flat_images() -> None:
    impulse = torch.zeros(1, 3, 15, 15)
    impulse[..., 7, 7] = 1.0
    blurred = blur_image(impulse, 1.0)
    assert blurred.sum().item() == pytest.approx(3.0, abs=1e-5)  # mass kept away from the edges
    assert blurred[0, 0, 7, 7] > blurred[0, 0, 7, 8] > blurred[0, 0, 7, 9] > 0  # a bell, symmetric
    assert blurred[0, 0, 7, 8] == pytest.approx(blurred[0, 0, 8, 7].item()) == pytest.approx(blurred[0, 0, 6, 7].item())
    # σ = 1: the 1D kernel's centre weight is 1 / Σ_{|x|≤3} exp(−x²/2), squared in 2D
    centre = 1.0 / sum(math.exp(-(x * x) / 2) for x in range(-3, 4))
    assert blurred[0, 0, 7, 7].item() == pytest.approx(centre**2, rel=1e-5)
    flat = torch.full((1, 3, 6, 9), 0.4)
    torch.testing.assert_close(blur_image(flat, 2.0), flat)  # replicated edges: no dark border
    assert blur_image(impulse, 0.0) is impulse


def test_a_residual_refiners_correction_blur_blurs_its_change_not_the_rgb_splats(tmp_path) -> None:
    residual = guided_from(_perturb_out(_refiner(guided=False)), residual=True)
    target, refs, guide = torch.randn(1, 6, 4, 4), torch.randn(1, 3, 6, 4, 4), torch.randn(1, 6, 4, 4)
    rgb = torch.rand(1, 3, 8, 8)
    changed = residual(target=target, references=refs, guide=guide).detach() + torch.randn(1, 6, 4, 4)
    sharp = residual.image(refined=changed, decode=_decode, guide=guide, rgb=rgb)
    blurred = with_correction_blur(residual, 1.5).image(refined=changed, decode=_decode, guide=guide, rgb=rgb)
    torch.testing.assert_close(blurred, rgb + blur_image(sharp - rgb, 1.5))
    assert (blurred - sharp).abs().max() > 1e-3
    # the setting travels with the refiner; a pure-latent or plain guided refiner has no correction to blur
    assert load_refiner(save_refiner(residual, tmp_path / "r")).config.correction_blur == 1.5
    assert with_correction_blur(guided_from(_refiner(guided=False)), 1.0).config.correction_blur == 0.0


def test_a_residual_refiner_saves_and_loads(tmp_path) -> None:
    loaded = load_refiner(save_refiner(guided_from(_refiner(guided=False), residual=True), tmp_path / "residual"))
    assert loaded.config.guided and loaded.config.residual
