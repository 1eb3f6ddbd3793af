"""On a CUDA machine: the shared-projection path on gsplat's lower-level kernels (``render/screen.py``,
``render_rgb_and_latents``, gsplat's fused SH) agrees with the torch path and with ``gsplat.rasterization``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.render import rasterize
from splatent_viewer.render.screen import project_screen
from splatent_viewer.render.synthetic import orbit_cameras, random_scene
from splatent_viewer.splats import init_splats, render_rgb_and_latents, sh_colors, splat_geometry

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda_gsplat():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    try:
        from gsplat.cuda._backend import _C  # type: ignore[attr-defined]  # JIT-compiles gsplat's kernels on first use
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"gsplat CUDA kernels unavailable: {exc}")
    if _C is None:
        pytest.skip("gsplat CUDA kernels unavailable (no compiled extension, no nvcc)")
    return torch.device("cuda")


def _agree(ours: torch.Tensor, ref: torch.Tensor, what: str, tol: float = 1e-3) -> None:
    """As test_render_gsplat_agreement: float32 threshold flips may move isolated pixels by < 1/255."""
    diff = (ours - ref).abs().amax(-1)
    assert int((diff > tol).sum()) <= max(1, diff.numel() // 10_000), f"{what}: max {diff.max().item():.3g}"
    assert diff.max().item() <= 1.0 / 255.0, f"{what}: max abs difference {diff.max().item():.3g}"


def _params(device, n=20_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(n, 3, generator=g) - 0.5) * 2.0
    raw = init_splats(
        points=points,
        colors=torch.rand(n, 3, generator=g),
        latent_channels=32,
        sh_degree=3,
        init_opacity=0.5,
        generator=g,
    )
    raw["features_rest"] = 0.1 * torch.randn(raw["features_rest"].shape, generator=g)
    raw["latents"] = torch.rand(raw["latents"].shape, generator=g)
    return {k: v.to(device).requires_grad_() for k, v in raw.items()}


def test_projection_matches_torch(cuda_gsplat):
    scene = random_scene(10_000, seed=3, device=cuda_gsplat)
    viewmats, Ks = orbit_cameras(2, width=256, height=192, device=cuda_gsplat)
    kw: dict[str, Any] = dict(
        means=scene.means,
        quats=scene.quats,
        scales=scene.scales,
        opacities=scene.opacities,
        viewmats=viewmats,
        Ks=Ks,
        width=256,
        height=192,
    )
    gs, tc = project_screen(**kw, backend="gsplat"), project_screen(**kw, backend="torch")
    assert gs.backend == "gsplat" and tc.backend == "torch"
    both = (gs.radii > 0) & (tc.radii > 0)
    assert (gs.radii == tc.radii).float().mean() > 0.999
    torch.testing.assert_close(gs.means2d[both], tc.means2d[both], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(gs.conics[both], tc.conics[both], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_fused_sh_matches_torch(cuda_gsplat, degree):
    params = _params(cuda_gsplat)
    viewmats, _ = orbit_cameras(2, width=64, height=64, device=cuda_gsplat)
    gs = sh_colors(params=params, viewmats=viewmats, sh_degree=degree, backend="gsplat")
    tc = sh_colors(params=params, viewmats=viewmats, sh_degree=degree, backend="torch")
    torch.testing.assert_close(gs, tc, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("width", "height", "downscale"), [(256, 192, 8), (128, 128, 4)])
def test_rgb_and_latents_match_torch_and_gsplat_rasterization(cuda_gsplat, width, height, downscale):
    params = _params(cuda_gsplat, seed=width)
    viewmats, Ks = orbit_cameras(1, width=width, height=height, device=cuda_gsplat)
    kw: dict[str, Any] = dict(
        params=params,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        latent_width=width // downscale,
        latent_height=height // downscale,
        latent_downscale=downscale,
        sh_degree=3,
        depth=True,
    )
    rgb_gs, lat_gs = render_rgb_and_latents(**kw, backend="gsplat")
    rgb_tc, lat_tc = render_rgb_and_latents(**kw, backend="torch")
    assert rgb_gs.info["backend"] == "gsplat" and rgb_tc.info["backend"] == "torch"
    assert (rgb_tc.alpha > 0.5).float().mean() > 0.3
    _agree(rgb_gs.features, rgb_tc.features, "rgb")
    _agree(lat_gs.features, lat_tc.features, "latents")
    assert rgb_gs.depth is not None and rgb_tc.depth is not None

    # the RGB pass is gsplat.rasterization's render (same kernels, same inputs)
    scales, opac = torch.exp(params["scales"]), torch.sigmoid(params["opacities"]).squeeze(-1)
    colors = sh_colors(params=params, viewmats=viewmats, sh_degree=3, backend="gsplat")
    ref = rasterize(
        means=params["means"],
        quats=params["quats"],
        scales=scales,
        opacities=opac,
        features=colors,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        backend="gsplat",
    )
    torch.testing.assert_close(rgb_gs.features, ref.features, rtol=0, atol=1e-5)
    # the latents are a second gsplat projection's, drawing the Gaussians the RGB pass kept
    drawn = (rgb_gs.info["radii"][0] > 0).float()
    lat_ref = rasterize(
        means=params["means"],
        quats=params["quats"],
        scales=scales,
        opacities=opac * drawn,
        features=params["latents"],
        viewmats=viewmats,
        Ks=scale_intrinsics(Ks, 1.0 / downscale),
        width=width // downscale,
        height=height // downscale,
        backend="gsplat",
        depth=False,
    )
    # up to the latent layout's depth runs (latent_layout): they keep what lies behind gsplat's early stop, weighted
    # by the transmittance left there (measured on an H100: 1.6e-4 at most here)
    _agree(lat_gs.features, lat_ref.features, "latents vs a second gsplat projection", tol=1e-3)

    # densification's tap: the RGB loss's screen gradient only, as gsplat.rasterization's means2d gets it
    rgb_gs.info["means2d"].retain_grad()
    ref.info["means2d"].retain_grad()
    (rgb_gs.features.square().mean() + lat_gs.features.mean()).backward(retain_graph=True)
    ref.features.square().mean().backward()
    torch.testing.assert_close(rgb_gs.info["means2d"].grad, ref.info["means2d"].grad, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(("channel_split", "depth_split"), [(2, 1), (4, 1), (8, 1), (1, 4), (4, 4), (2, 16)])
@pytest.mark.parametrize("depth", [False, True])
def test_latent_layout_renders_and_differentiates_as_one_launch(cuda_gsplat, channel_split, depth_split, depth):
    """The latent pass's launch layout (channel groups × depth runs as virtual cameras of gsplat's packed kernels)
    renders what the plain launch renders, with the same gradients, at the latent grid's tiles, with backgrounds and
    two cameras. Exact for channel groups (float summation order aside); depth runs differ by gsplat's early stop
    only (the runs behind a pixel's stop still count, weighted by the transmittance left there)."""
    from splatent_viewer.render.screen import downscale_screen, rasterize_screen
    from splatent_viewer.splats.render import LATENT_TILE_SIZE

    params = _params(cuda_gsplat, n=30_000, seed=5)
    viewmats, Ks = orbit_cameras(2, width=256, height=192, device=cuda_gsplat)
    D = 32 - 1 if depth else 32  # the depth channel makes 32 composited channels
    latents = params["latents"][:, :D]
    backgrounds = torch.rand(2, D, device=cuda_gsplat)
    outputs = []
    for k, s in ((1, 1), (channel_split, depth_split)):
        screen = project_screen(
            **splat_geometry(params),
            viewmats=viewmats,
            Ks=Ks,
            width=256,
            height=192,
        )
        coarse = downscale_screen(screen, downscale=8.0, width=32, height=24)
        out = rasterize_screen(
            screen=coarse, features=latents, backgrounds=backgrounds, depth=depth, tile_size=LATENT_TILE_SIZE,
            channel_split=k, depth_split=s,
        )  # fmt: skip
        g = torch.Generator(device=cuda_gsplat).manual_seed(1)
        weights = torch.rand(out.features.shape, generator=g, device=cuda_gsplat)
        loss = (out.features * weights).sum() + out.alpha.sum() + (0.0 if out.depth is None else out.depth.sum())
        grads = torch.autograd.grad(loss, [params["means"], params["scales"], params["opacities"], params["latents"]])
        outputs.append((out, grads))
    (ref, ref_grads), (got, got_grads) = outputs
    exact = depth_split == 1
    tol = dict(rtol=0.0, atol=1e-6) if exact else dict(rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(got.features, ref.features, **tol)
    torch.testing.assert_close(got.alpha, ref.alpha, **tol)
    if depth:
        assert got.depth is not None and ref.depth is not None
        torch.testing.assert_close(got.depth, ref.depth, rtol=1e-3, atol=1e-3)
    for name, a, b in zip(("means", "scales", "opacities", "latents"), got_grads, ref_grads):
        scale = float(b.abs().max())
        rtol, atol = (1e-4, 1e-5 * scale) if exact else (1e-2, 1e-3 * scale)
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


def test_render_splats_latents_use_the_layout_and_match_one_launch(cuda_gsplat):
    """The viewer's latent pass (``render_splats(content="latent")``: its own projection at the latent grid, with
    :func:`latent_layout`'s launch layout) against ``rasterize`` without a layout (one gsplat.rasterization launch,
    the same 8-cell tiles): the same render up to the depth runs' early-stop difference, depth included."""
    from splatent_viewer.splats import render_splats
    from splatent_viewer.splats.render import LATENT_TILE_SIZE, latent_layout

    params = {k: v.detach() for k, v in _params(cuda_gsplat, n=40_000, seed=7).items()}
    for width, height in ((256, 256), (512, 384)):  # latent grids of 16 and 48 tiles: both layouts
        viewmats, Ks = orbit_cameras(1, width=width, height=height, device=cuda_gsplat)
        Kl = scale_intrinsics(Ks, 1.0 / 8)
        w, h = width // 8, height // 8
        assert latent_layout(w, h) != (1, 1)
        got = render_splats(params=params, viewmats=viewmats, Ks=Kl, width=w, height=h, content="latent")
        ref = rasterize(
            **splat_geometry(params),
            features=params["latents"],
            viewmats=viewmats,
            Ks=Kl,
            width=w,
            height=h,
            tile_size=LATENT_TILE_SIZE,
        )
        assert got.info["backend"] == "gsplat" and got.depth is not None and ref.depth is not None
        torch.testing.assert_close(got.features, ref.features, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(got.alpha, ref.alpha, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(got.depth, ref.depth, rtol=1e-3, atol=1e-3)


def test_rgb_and_latents_intersect_ahead_as_each_pass_would(cuda_gsplat, monkeypatch):
    """``render_rgb_and_latents`` intersects both grids before compositing either (gsplat's ``isect_tiles`` syncs on
    the host): the same tile lists and renders as each pass intersecting its own grid, the same gradients up to the
    backward's atomic float sums (measured as the difference between two runs of the reference path: the quaternions'
    gradients of random Gaussians are sums of cancelling terms, where atomics' order moves them by ~50%)."""
    import importlib

    splat_render = importlib.import_module("splatent_viewer.splats.render")
    params = _params(cuda_gsplat, n=30_000, seed=11)
    viewmats, Ks = orbit_cameras(1, width=256, height=192, device=cuda_gsplat)
    outputs = []
    for ahead in (True, False, False):
        if not ahead:  # each pass intersects its own grid, right before compositing it
            monkeypatch.setattr(splat_render, "intersect_screen", lambda **kw: None)
        rgb, lat = render_rgb_and_latents(
            params=params, viewmats=viewmats, Ks=Ks, width=256, height=192, latent_width=32, latent_height=24,
            latent_downscale=8, sh_degree=3, backend="gsplat",
        )  # fmt: skip
        assert rgb.info["backend"] == "gsplat" and rgb.depth is not None
        loss = rgb.features.square().mean() + rgb.depth.mean() + lat.features.mean()
        outputs.append((rgb, lat, torch.autograd.grad(loss, list(params.values()))))
    (rgb, lat, grads), (rgb_ref, lat_ref, grads_ref), (_, _, grads_again) = outputs
    assert (rgb.alpha > 0.5).float().mean() > 0.3
    for out, ref in ((rgb, rgb_ref), (lat, lat_ref)):
        for key in ("tiles_per_gauss", "isect_ids", "flatten_ids", "isect_offsets"):
            assert torch.equal(out.info[key], ref.info[key]), key
        assert torch.equal(out.features, ref.features) and torch.equal(out.alpha, ref.alpha)
    assert rgb.depth is not None and rgb_ref.depth is not None and torch.equal(rgb.depth, rgb_ref.depth)
    for name, a, b, b2 in zip(params, grads, grads_ref, grads_again):
        noise = max(float((b - b2).abs().max()), 1e-6 * float(b.abs().max()))  # the backward's own run-to-run spread
        assert float((a - b).abs().max()) <= 4 * noise, f"{name}: {float((a - b).abs().max()):.3g} vs noise {noise:.3g}"
