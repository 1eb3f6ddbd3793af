"""The warped flicker's reprojection: exact on known geometry, occlusions and the frame's edges left out."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.export.consistency import reprojection, warp, warped_difference

H, W, FX, DEPTH = 24, 32, 40.0, 2.0


def _K() -> torch.Tensor:
    return torch.tensor([[FX, 0.0, W / 2], [0.0, FX, H / 2], [0.0, 0.0, 1.0]])


def _c2w(x: float = 0.0) -> torch.Tensor:
    """OpenGL camera at (x, 0, 0) looking down -z."""
    c2w = torch.eye(4)
    c2w[0, 3] = x
    return c2w


def _plane(depth: float = DEPTH) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((H, W), depth), torch.ones(H, W)


def _reproj(prev_depth=None, prev_alpha=None, shift_px: int = 0, depth=None, alpha=None):
    d, a = _plane()
    return reprojection(
        depth=d if depth is None else depth,
        alpha=a if alpha is None else alpha,
        c2w=_c2w(shift_px * DEPTH / FX),
        K=_K(),
        prev_depth=d if prev_depth is None else prev_depth,
        prev_alpha=a if prev_alpha is None else prev_alpha,
        prev_c2w=_c2w(),
        prev_K=_K(),
    )


def test_the_same_camera_twice_reads_every_pixel_back_exactly():
    image = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(0))
    r = _reproj()
    assert r.coverage == 1.0
    torch.testing.assert_close(warp(image, r), image, atol=1e-5, rtol=0)
    assert warped_difference(image, image, r) == pytest.approx(0.0, abs=1e-6)


def test_a_sideways_move_over_a_plane_is_taken_out_and_the_uncovered_edge_left_out():
    """The camera moves right by 3 pixels' worth at the plane's depth: the current frame is the previous one shifted
    3 columns; the warp undoes it exactly, and the 3 columns the previous frame never saw are not scored."""
    prev = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(1))
    current = torch.roll(prev, shifts=-3, dims=1)  # current[:, j] = prev[:, j + 3]
    r = _reproj(shift_px=3)
    assert r.mask[:, : W - 3].all() and not r.mask[:, W - 3 :].any()
    assert r.coverage == pytest.approx((W - 3) / W)
    assert warped_difference(current, prev, r) == pytest.approx(0.0, abs=1e-5)
    assert float((current - prev).abs().mean()) > 0.2  # the plain flicker counts the motion


def test_noise_that_changes_from_frame_to_frame_is_what_the_warped_flicker_measures():
    g = torch.Generator().manual_seed(2)
    prev = torch.rand(H, W, 3, generator=g)
    current = torch.roll(prev, shifts=-3, dims=1) + 0.1 * torch.randn(H, W, 3, generator=g)
    value = warped_difference(current, prev, _reproj(shift_px=3))
    assert value == pytest.approx(0.1 * (2 / torch.pi) ** 0.5, rel=0.1)  # E|N(0, 0.1)|


def test_occluded_and_transparent_pixels_are_not_scored():
    prev_depth, prev_alpha = _plane()
    prev_depth[:8, :8] = 1.0  # something nearer hid these points from the previous camera
    prev_alpha[20:, 20:] = 0.1  # empty there in the previous frame
    alpha = torch.ones(H, W)
    alpha[:, :4] = 0.0  # and empty here in the current one
    r = _reproj(prev_depth=prev_depth, prev_alpha=prev_alpha, alpha=alpha)
    expected = torch.ones(H, W, dtype=torch.bool)
    expected[:8, :8] = False
    expected[20:, 20:] = False
    expected[:, :4] = False
    # bilinear footprints touching the changed blocks disagree too: compare away from their one-pixel rims
    core = torch.ones(H, W, dtype=torch.bool)
    core[7:9, :9] = core[:9, 7:9] = False
    core[19:21, 19:] = core[19:, 19:21] = False
    assert torch.equal(r.mask[core], expected[core])
    image = torch.rand(H, W, 3)
    assert warped_difference(image, image, _reproj(alpha=torch.zeros(H, W))) is None  # nothing to score
