"""Display modes: outputs per mode, split compositing, depth colours, latent PCA, stats text."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import Frame
from splatent_viewer.pca import LatentPCA
from splatent_viewer.viewer.modes import MODES, available_modes, colorize_depth, compose_split, frame_image, outputs_for
from splatent_viewer.viewer.stats import FrameStats


def test_outputs_per_mode_and_preview() -> None:
    assert outputs_for(mode="split", preview=False) == ("decoded", "enhanced")
    assert outputs_for(mode="enhanced", preview=True) == ("decoded",)  # no refiner while moving
    assert outputs_for(mode="depth", preview=True) == ("depth",)
    assert available_modes(has_refiner=False) == ("decoded", "rgb", "latent", "depth")
    assert available_modes(has_refiner=True) == MODES
    with pytest.raises(SplatentError, match="Unknown viewer mode"):
        outputs_for(mode="bogus", preview=False)  # type: ignore[arg-type]


def test_split_shows_left_then_right_with_a_divider() -> None:
    left, right = torch.zeros(4, 10, 3), torch.full((4, 10, 3), 0.5)
    out = compose_split(left=left, right=right, position=0.3)
    assert torch.all(out[:, :2] == 0) and torch.all(out[:, 4:] == 0.5)
    assert torch.all(out[:, 2:4] == 1.0)  # the 2-px divider at x = 3
    assert torch.all(compose_split(left=left, right=right, position=1.0, line_px=0) == 0)


def test_depth_colours_near_and_far_differ_and_empty_is_black() -> None:
    depth = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    rgb = colorize_depth(depth)
    assert torch.all(rgb[0, 0] == 0)
    near, far = rgb[0, 1], rgb[1, 1]
    assert near[2] > near[0] and far[0] > far[2]  # turbo: blue near, red far


def test_latent_pca_picks_the_dominant_direction() -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(-1, 1, 64)
    direction = torch.tensor([3.0, -1.0, 0.5, 2.0]) / torch.tensor([3.0, -1.0, 0.5, 2.0]).norm()
    lat = (t[:, None] * direction + 0.01 * torch.randn(64, 4, generator=g)).T.reshape(4, 8, 8)
    pca = LatentPCA.fit(latents=[lat])
    assert torch.allclose(pca.components[:, 0].abs(), direction.abs(), atol=0.05)
    rgb = pca.project(lat)
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    first = rgb[..., 0].flatten()
    assert torch.corrcoef(torch.stack([first, t]))[0, 1].abs() > 0.95
    with pytest.raises(SplatentError):
        LatentPCA.fit(latents=[])
    with pytest.raises(SplatentError, match="channels"):
        pca.project(torch.zeros(3, 2, 2))


def test_frame_image_latent_mode_is_upscaled_to_the_render_size() -> None:
    lat = torch.randn(4, 2, 3)
    pca = LatentPCA.fit(latents=[lat])
    img = frame_image(frame=Frame(latent=lat), mode="latent", preview=False, image_size=(16, 24), pca=pca)
    assert img.shape == (16, 24, 3) and img.dtype == torch.uint8
    assert bool((img[:8, :8] == img[0, 0]).all())  # one latent pixel → one 8x8 block
    decoded = torch.rand(16, 24, 3)
    prev = frame_image(frame=Frame(decoded=decoded), mode="enhanced", preview=True, image_size=(16, 24))
    assert torch.equal(prev, (decoded * 255 + 0.5).to(torch.uint8))
    with pytest.raises(SplatentError, match="no image"):
        frame_image(frame=Frame(), mode="rgb", preview=False, image_size=(16, 24))


def test_stats_fps_and_markdown() -> None:
    stats = FrameStats(window_s=1.0)
    assert "Waiting" in stats.markdown()
    for i in range(5):
        stats.record(
            timings_ms={"decode": 2.0, "raster": 1.0},
            size=(64, 48),
            kind="full",
            mode="decoded",
            references=[3, 1],
            now=10.0 + 0.1 * i,
        )
    assert stats.fps(now=10.4) == pytest.approx(10.0)
    assert stats.fps(now=20.0) == 0.0  # stale frames leave the window
    text = stats.markdown()
    assert text.index("| raster") < text.index("| decode") and "3.0" in text and "64×48" in text
    assert "3, 1" not in text  # decoded frames use no references (tests/viewer/test_viewer_stats.py)


def test_split_rgb_puts_the_rgb_splats_left_of_the_enhanced_view() -> None:
    assert outputs_for(mode="split-rgb", preview=False) == ("rgb", "enhanced")
    assert outputs_for(mode="split-rgb", preview=True) == ("decoded",)  # no refiner while moving
    assert "split-rgb" not in available_modes(has_refiner=False)
    frame = Frame(rgb=torch.zeros(4, 10, 3), enhanced=torch.ones(4, 10, 3), decoded=torch.full((4, 10, 3), 0.5))
    img = frame_image(frame=frame, mode="split-rgb", preview=False, image_size=(4, 10), split_position=0.5)
    assert torch.all(img[:, :4] == 0) and torch.all(img[:, 6:] == 255)  # RGB splats | enhanced, not the decoded
