"""The pure-torch tiled rasterizer: against a dense per-pixel reference, analytic cases, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.render import RasterOutput, rasterize
from splatent_viewer.render.projection import project_gaussians
from splatent_viewer.render.synthetic import orbit_cameras, random_scene
from splatent_viewer.render.torch_rasterizer import build_tile_lists, composite_tiles, rasterize_torch

F64 = torch.float64


def _single_camera(width: int, height: int, f: float, cx: float, cy: float, dtype=F64):
    viewmats = torch.eye(4, dtype=dtype)[None]
    Ks = torch.tensor([[[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]]], dtype=dtype)
    return viewmats, Ks


def _render(scene_kwargs, viewmats, Ks, width, height, **kw) -> RasterOutput:
    return rasterize(**scene_kwargs, viewmats=viewmats, Ks=Ks, width=width, height=height, backend="torch", **kw)


@pytest.mark.parametrize(
    ("width", "height", "tile_size"),
    [(37, 29, 16), (37, 29, 8), (50, 41, 13), (64, 48, 16), (23, 31, 4)],
)
def test_tiled_compositor_matches_dense_reference(dense_reference, width, height, tile_size):
    scene = random_scene(120, channels=3, seed=width + tile_size, dtype=F64, scale_range=(0.01, 0.3))
    viewmats, Ks = orbit_cameras(2, width=width, height=height, focal_factor=0.9, dtype=F64)
    out = _render(scene.as_kwargs(), viewmats, Ks, width, height, tile_size=tile_size)

    proj = project_gaussians(
        means=scene.means, quats=scene.quats, scales=scene.scales, viewmats=viewmats, Ks=Ks, width=width, height=height
    )
    colors = torch.cat([scene.features.expand(2, -1, -1), proj.depths[..., None]], dim=-1)
    ref, ref_alpha = dense_reference(
        means2d=proj.means2d.detach(),
        conics=proj.conics.detach(),
        opacities=scene.opacities.expand(2, -1),
        colors=colors.detach(),
        radii=proj.radii,
        depths=proj.depths.detach(),
        width=width,
        height=height,
        tile_size=tile_size,
    )
    assert (proj.radii > 0).sum() > 100  # the scene is really in view
    assert ref_alpha.max() > 0.99  # dense enough that early termination matters
    torch.testing.assert_close(out.features, ref[..., :3], atol=1e-9, rtol=0)
    torch.testing.assert_close(out.alpha, ref_alpha, atol=1e-9, rtol=0)
    expected_depth = torch.where(ref_alpha > 0, ref[..., 3:] / ref_alpha.clamp(min=1e-10), 0.0)
    torch.testing.assert_close(out.depth, expected_depth, atol=1e-9, rtol=0)


@pytest.mark.parametrize("block_size", [16, 4])
def test_long_lists_terminate_like_the_dense_reference(dense_reference, block_size):
    # ~1500 overlapping Gaussians: lists far longer than one front-to-back slab (64 entries) and
    # most pixels saturate, so the early-termination bookkeeping across slabs is exercised.
    width, height = 26, 21
    scene = random_scene(1500, channels=2, seed=21, dtype=F64, scale_range=(0.02, 0.3))
    viewmats, Ks = orbit_cameras(1, width=width, height=height, focal_factor=1.6, dtype=F64)
    feats, depth, alpha, _ = rasterize_torch(
        **scene.as_kwargs(), viewmats=viewmats, Ks=Ks, width=width, height=height, block_size=block_size
    )
    proj = project_gaussians(
        means=scene.means, quats=scene.quats, scales=scene.scales, viewmats=viewmats, Ks=Ks, width=width, height=height
    )
    ref, ref_alpha = dense_reference(
        means2d=proj.means2d.detach(),
        conics=proj.conics.detach(),
        opacities=scene.opacities[None],
        colors=scene.features[None],
        radii=proj.radii,
        depths=proj.depths.detach(),
        width=width,
        height=height,
        tile_size=16,
    )
    assert (ref_alpha > 1 - 2e-4).float().mean() > 0.5  # most pixels hit the T <= 1e-4 stop
    torch.testing.assert_close(feats, ref, atol=1e-9, rtol=0)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-9, rtol=0)


def test_single_gaussian_analytic():
    f, z, s, opac = 50.0, 2.0, 0.05, 0.7
    viewmats, Ks = _single_camera(17, 17, f, 8.5, 8.5)  # pixel (8, 8) has its centre on the axis
    kwargs = dict(
        means=torch.tensor([[0.0, 0.0, z]], dtype=F64),
        quats=torch.tensor([[0.3, -0.2, 0.5, 0.9]], dtype=F64),  # isotropic: rotation is irrelevant
        scales=torch.full((1, 3), s, dtype=F64),
        opacities=torch.tensor([opac], dtype=F64),
        features=torch.tensor([[1.0, -2.0, 0.5]], dtype=F64),
    )
    out = _render(kwargs, viewmats, Ks, 17, 17)
    var2d = (f * s / z) ** 2 + 0.3  # EWA variance plus eps2d
    assert out.info["radii"].tolist() == [[math.ceil(3 * math.sqrt(var2d))]]
    centre = out.features[0, 8, 8]
    torch.testing.assert_close(centre, opac * kwargs["features"][0])
    assert out.alpha[0, 8, 8, 0].item() == pytest.approx(opac)
    assert out.depth[0, 8, 8, 0].item() == pytest.approx(z)
    # one pixel to the right: sigma = 0.5 * dx^2 / var
    assert out.alpha[0, 8, 9, 0].item() == pytest.approx(opac * math.exp(-0.5 / var2d))
    assert out.alpha[0, 9, 10, 0].item() == pytest.approx(opac * math.exp(-0.5 * 5 / var2d))
    # far corner is outside the 3-sigma box / under 1/255: exactly zero, depth 0 there
    assert out.alpha[0, 0, 0, 0].item() == 0.0 and out.depth[0, 0, 0, 0].item() == 0.0


def test_tile_box_cuts_the_splat_like_gsplat():
    # sigma_px = 100 * 0.4 / 2 = 20, var = 400.3, radius = ceil(3 * 20.0075) = 61. With the
    # centre at x = 93, the box starts exactly at x = 32 = tile 2, so pixel column 31 is not
    # rendered although the Gaussian's alpha there (~0.008) is above 1/255.
    viewmats, Ks = _single_camera(128, 32, 100.0, 93.0, 16.5)
    kwargs = dict(
        means=torch.tensor([[0.0, 0.0, 2.0]], dtype=F64),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64),
        scales=torch.full((1, 3), 0.4, dtype=F64),
        opacities=torch.tensor([0.9], dtype=F64),
        features=torch.ones(1, 1, dtype=F64),
    )
    out = _render(kwargs, viewmats, Ks, 128, 32, tile_size=16)
    var = 400.3
    assert out.info["radii"].item() == 61
    assert 0.9 * math.exp(-0.5 * 61.5**2 / var) > 1 / 255
    assert out.alpha[0, 16, 31, 0].item() == 0.0
    assert out.alpha[0, 16, 32, 0].item() == pytest.approx(0.9 * math.exp(-0.5 * 60.5**2 / var))


def test_early_termination_excludes_the_gaussian_that_saturates():
    # Four opacity-0.95 Gaussians on the optical axis: T goes 1, .05, .0025, 1.25e-4, then
    # 6.25e-6 <= 1e-4, so the fourth one must not contribute at the centre pixel.
    viewmats, Ks = _single_camera(9, 9, 40.0, 4.5, 4.5)
    zs = torch.tensor([2.0, 3.0, 4.0, 5.0], dtype=F64)
    feats = torch.tensor([[1.0], [10.0], [100.0], [1000.0]], dtype=F64)
    kwargs = dict(
        means=torch.stack([torch.zeros(4, dtype=F64), torch.zeros(4, dtype=F64), zs], -1),
        quats=torch.tensor([[1.0, 0, 0, 0]], dtype=F64).repeat(4, 1),
        scales=(zs / 40.0)[:, None].repeat(1, 3),
        opacities=torch.full((4,), 0.95, dtype=F64),
        features=feats,
    )
    out = _render(kwargs, viewmats, Ks, 9, 9)
    expected = 0.95 * (1 * 1 + 0.05 * 10 + 0.0025 * 100)
    assert out.features[0, 4, 4, 0].item() == pytest.approx(expected)
    assert out.alpha[0, 4, 4, 0].item() == pytest.approx(1 - 0.05**3)
    exp_depth = 0.95 * (2 + 0.05 * 3 + 0.0025 * 4) / (1 - 0.05**3)
    assert out.depth[0, 4, 4, 0].item() == pytest.approx(exp_depth)


def test_camera_batch_equals_separate_renders_and_per_camera_features():
    scene = random_scene(300, channels=5, seed=3)
    viewmats, Ks = orbit_cameras(2, width=40, height=30, focal_factor=0.8)
    per_cam = torch.stack([scene.features, 1.0 - scene.features])
    kwargs = scene.as_kwargs() | {"features": per_cam}
    batch = _render(kwargs, viewmats, Ks, 40, 30)
    for c in range(2):
        single = _render(scene.as_kwargs() | {"features": per_cam[c]}, viewmats[c : c + 1], Ks[c : c + 1], 40, 30)
        torch.testing.assert_close(batch.features[c], single.features[0])
        torch.testing.assert_close(batch.alpha[c], single.alpha[0])
        torch.testing.assert_close(batch.depth[c], single.depth[0])
    assert not torch.allclose(batch.features[0], batch.features[1])
    assert batch.info["n_cameras"] == 2 and batch.info["radii"].shape == (2, 300)


def test_backgrounds_blend_with_remaining_transmittance():
    scene = random_scene(200, channels=3, seed=4)
    viewmats, Ks = orbit_cameras(2, width=32, height=24)
    bg = torch.tensor([[0.2, 0.5, 1.0], [1.0, 0.0, -1.0]])
    plain = _render(scene.as_kwargs(), viewmats, Ks, 32, 24)
    with_bg = _render(scene.as_kwargs(), viewmats, Ks, 32, 24, backgrounds=bg)
    torch.testing.assert_close(with_bg.features, plain.features + (1 - plain.alpha) * bg[:, None, None, :])
    torch.testing.assert_close(with_bg.depth, plain.depth)
    torch.testing.assert_close(with_bg.alpha, plain.alpha)
    assert (plain.alpha < 0.5).any()  # the background is visible somewhere


@pytest.mark.parametrize("n", [0, 50])
def test_fully_culled_scene_renders_zeros_and_backpropagates(n):
    scene = random_scene(n, channels=4, seed=5)
    scene.means[:, 2] -= 10.0  # everything behind the camera (identity pose looks down +z)
    params = {k: v.clone().requires_grad_(True) for k, v in scene.as_kwargs().items()}
    viewmats, Ks = _single_camera(20, 12, 20.0, 10.0, 6.0, dtype=torch.float32)
    out = _render(params, viewmats, Ks, 20, 12)
    assert out.features.shape == (1, 12, 20, 4) and out.depth.shape == (1, 12, 20, 1)
    assert not out.features.any() and not out.alpha.any() and not out.depth.any()
    assert (out.info["radii"] == 0).all()
    out.info["means2d"].retain_grad()
    (out.features.sum() + out.alpha.sum()).backward()
    assert out.info["means2d"].grad is not None and not out.info["means2d"].grad.any()
    assert params["features"].grad is not None and not params["features"].grad.any()

    bg = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    out_bg = _render(scene.as_kwargs(), viewmats, Ks, 20, 12, backgrounds=bg)
    torch.testing.assert_close(out_bg.features, bg[:, None, None, :].expand(1, 12, 20, 4))


def test_expected_depth_of_a_fronto_parallel_layer():
    scene = random_scene(200, channels=1, seed=6)
    scene.means[:, 2] = 2.5  # all centres at camera depth 2.5 (identity pose)
    viewmats, Ks = _single_camera(30, 30, 30.0, 15.0, 15.0, dtype=torch.float32)
    out = _render(scene.as_kwargs(), viewmats, Ks, 30, 30)
    covered = out.alpha[..., 0] > 0
    assert covered.float().mean() > 0.5
    torch.testing.assert_close(out.depth[covered], torch.full_like(out.depth[covered], 2.5))
    assert not out.depth[~covered].any()


@pytest.mark.parametrize("tile_size", [16, 8])
def test_blocks_chunks_and_checkpointing_do_not_change_results_or_gradients(tile_size):
    # Listing per 4x4 block (default) vs per whole tile must be exact, and so must chunking and
    # recomputation in backward.
    scene = random_scene(400, channels=3, seed=7, dtype=F64)  # float64: summation order is not at stake
    viewmats, Ks = orbit_cameras(2, width=48, height=40, dtype=F64)

    def run(**kw):
        params = {k: v.clone().requires_grad_(True) for k, v in scene.as_kwargs().items()}
        feats, depth, alpha, _ = rasterize_torch(
            **params, viewmats=viewmats, Ks=Ks, width=48, height=40, tile_size=tile_size, **kw
        )
        (feats.square().sum() + alpha.sum() + depth.sum()).backward()
        return torch.cat([feats, depth, alpha], -1).detach(), {k: v.grad for k, v in params.items()}

    img_a, grads_a = run()
    assert img_a[..., -1].max() > 0.99
    variants = (
        dict(block_size=tile_size),
        dict(block_size=2, chunk_elems=512),
        dict(chunk_elems=4096, checkpoint_elems=0),
    )
    for kw in variants:
        img_b, grads_b = run(**kw)
        torch.testing.assert_close(img_a, img_b, msg=str(kw))
        for k in grads_a:
            torch.testing.assert_close(grads_a[k], grads_b[k], msg=f"{k} {kw}")


def test_gradcheck_full_pipeline():
    # Big, soft Gaussians covering a tiny image: no threshold (1/255, 0.999, T <= 1e-4, tile box)
    # is near any pixel, so finite differences see a smooth function.
    viewmats, Ks = _single_camera(8, 6, 10.0, 4.1, 2.9)
    viewmats[0, :3, 3] = torch.tensor([0.05, -0.02, 0.1], dtype=F64)
    inputs = (
        torch.tensor([[0.1, 0.05, 2.0], [-0.15, 0.1, 2.4], [0.05, -0.1, 3.0]], dtype=F64),
        torch.tensor([[0.9, 0.1, -0.2, 0.3], [0.5, 0.5, 0.1, -0.4], [0.2, -0.7, 0.3, 0.6]], dtype=F64),
        torch.tensor([[0.6, 0.4, 0.5], [0.5, 0.7, 0.3], [0.8, 0.6, 0.9]], dtype=F64),
        torch.tensor([0.5, 0.4, 0.6], dtype=F64),
        torch.tensor([[0.2, 0.9], [0.7, -0.3], [0.4, 0.5]], dtype=F64),
    )
    inputs = tuple(x.requires_grad_(True) for x in inputs)

    def fn(means, quats, scales, opacities, features):
        out = _render(
            dict(means=means, quats=quats, scales=scales, opacities=opacities, features=features), viewmats, Ks, 8, 6
        )
        return out.features, out.alpha, out.depth

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradcheck_compositor_in_screen_space():
    # The gradient DefaultStrategy reads (d loss / d means2d) comes from this stage.
    g = torch.Generator().manual_seed(0)
    C, N, W, H = 1, 4, 10, 7
    means2d = (torch.rand(C, N, 2, generator=g, dtype=F64) * torch.tensor([W, H], dtype=F64)).requires_grad_(True)
    conics = torch.tensor(
        [[[0.02, 0.005, 0.03], [0.03, -0.01, 0.02], [0.025, 0.0, 0.025], [0.04, 0.01, 0.02]]], dtype=F64
    )
    conics.requires_grad_(True)
    opac = torch.tensor([[0.5, 0.6, 0.4, 0.3]], dtype=F64, requires_grad=True)
    colors = torch.rand(C, N, 3, generator=g, dtype=F64, requires_grad=True)
    radii = torch.full((C, N), 40, dtype=torch.int32)
    depths = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)

    def fn(m2d, con, op, col):
        lists = build_tile_lists(
            means2d=m2d, conics=con, opacities=op, radii=radii, depths=depths, width=W, height=H, tile_size=8
        )
        return composite_tiles(means2d=m2d, conics=con, opacities=op, colors=col, lists=lists, width=W, height=H)

    assert torch.autograd.gradcheck(fn, (means2d, conics, opac, colors), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_info_exposes_screen_space_gradient_for_densification():
    scene = random_scene(100, channels=3, seed=8)
    params = {k: v.clone().requires_grad_(True) for k, v in scene.as_kwargs().items()}
    viewmats, Ks = orbit_cameras(2, width=32, height=32)
    out = _render(params, viewmats, Ks, 32, 32)
    info = out.info
    assert info["means2d"].shape == (2, 100, 2) and not info["means2d"].is_leaf
    assert info["radii"].dtype == torch.int32 and info["radii"].shape == (2, 100)
    assert info["gaussian_ids"] is None and info["width"] == 32 and info["height"] == 32
    info["means2d"].retain_grad()
    out.features.sum().backward()
    grad = info["means2d"].grad
    visible = info["radii"] > 0
    assert grad[visible].abs().sum() > 0 and not grad[~visible].any()
    for name in ("means", "quats", "scales", "opacities", "features"):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name


def test_bad_inputs_raise_splatent_error():
    scene = random_scene(10, channels=3)
    viewmats, Ks = orbit_cameras(1, width=16, height=16)
    with pytest.raises(SplatentError, match="CUDA"):
        rasterize(**scene.as_kwargs(), viewmats=viewmats, Ks=Ks, width=16, height=16, backend="gsplat")
    with pytest.raises(SplatentError, match="quats"):
        rasterize(**(scene.as_kwargs() | {"quats": scene.quats[:5]}), viewmats=viewmats, Ks=Ks, width=16, height=16)
    with pytest.raises(SplatentError, match="backgrounds"):
        rasterize(**scene.as_kwargs(), viewmats=viewmats, Ks=Ks, width=16, height=16, backgrounds=torch.zeros(1, 4))
    out = rasterize(**scene.as_kwargs(), viewmats=viewmats, Ks=Ks, width=16, height=16, backend="auto")
    assert out.info["backend"] == "torch"
