"""The latent pass's launch layout (``channel_split`` groups × ``depth_split`` runs as virtual cameras of gsplat's
packed kernels) on the CPU: its tile lists against gsplat's own (torch) intersection code and against the runs'
definition, and the whole render + gradients with gsplat's kernels swapped for torch code of their contract. With the
same swap, ``render_rgb_and_latents``'s gsplat path: both grids' tile intersections before either compositing, the
same renders as intersecting in each pass. On gsplat itself: test_render_shared_projection_gpu.py."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.render.gsplat_backend import layered_intersections

torch_impl = pytest.importorskip("gsplat.cuda._torch_impl", reason="gsplat's torch reference code")


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_channel_groups_tile_lists_equal_gsplats_for_repeated_cameras(groups):
    g = torch.Generator().manual_seed(0)
    C, N, tile, tw, th = 2, 40, 8, 5, 4
    means2d = torch.rand(C, N, 2, generator=g) * torch.tensor([tw * tile, th * tile])
    radii = (torch.rand(C, N, generator=g) * 12).int()
    radii[0, :5] = 0  # culled
    depths = torch.rand(C, N, generator=g) + 0.5  # distinct: the sort has no ties to break differently
    _, isect_ids, flatten_ids = torch_impl._isect_tiles(means2d, radii, depths, tile, tw, th)
    offsets = torch_impl._isect_offset_encode(isect_ids, C, tw, th)
    got_offsets, got_flatten = layered_intersections(offsets, flatten_ids, n_gaussians=N, groups=groups)

    rep = (groups, 1, 1)
    _, rep_ids, rep_flatten = torch_impl._isect_tiles(
        means2d.repeat(rep), radii.repeat(groups, 1), depths.repeat(groups, 1), tile, tw, th
    )
    rep_offsets = torch_impl._isect_offset_encode(rep_ids, groups * C, tw, th)
    assert torch.equal(got_flatten, rep_flatten.to(got_flatten.dtype))
    assert torch.equal(got_offsets, rep_offsets.to(got_offsets.dtype))


@pytest.mark.parametrize(("groups", "runs"), [(1, 3), (2, 4)])
def test_depth_runs_split_every_tile_list_in_order(groups, runs):
    """Virtual camera (j·runs + s)·C + c holds entries ⌈s·n/runs⌉..⌈(s+1)·n/runs⌉ of each of camera c's tile lists,
    shifted into group j's Gaussians; together the runs are the whole list, in depth order."""
    g = torch.Generator().manual_seed(2)
    C, N, tw, th = 2, 50, 3, 2
    counts = torch.randint(0, 9, (C * th * tw,), generator=g)
    counts[3] = 0  # an empty tile
    M = int(counts.sum())
    starts = torch.cumsum(counts, 0) - counts
    flatten = torch.randint(0, C * N, (M,), generator=g, dtype=torch.int32)
    offsets, ids = layered_intersections(
        starts.int().reshape(C, th, tw), flatten, n_gaussians=N, groups=groups, runs=runs
    )
    V = groups * runs * C
    assert offsets.shape == (V, th, tw) and ids.shape == (groups * M,)
    flat_offsets = torch.cat([offsets.reshape(-1).long(), torch.tensor([groups * M])])
    for j in range(groups):
        for c in range(C):
            for t in range(th * tw):
                b = c * th * tw + t
                n = int(counts[b])
                whole = flatten[int(starts[b]) : int(starts[b]) + n]
                pieces = []
                for s in range(runs):
                    v = (j * runs + s) * C + c
                    lo, hi = int(flat_offsets[v * th * tw + t]), int(flat_offsets[v * th * tw + t + 1])
                    piece = ids[lo:hi] - j * C * N
                    assert len(piece) == -(-(s + 1) * n // runs) - (-(-s * n // runs))
                    pieces.append(piece)
                assert torch.equal(torch.cat(pieces), whole)


def _rasterize_to_pixels_reference(
    means2d, conics, colors, opacities, width, height, tile_size, isect_offsets, flatten_ids, backgrounds=None,
    packed=False, absgrad=False,
):  # fmt: skip
    """gsplat's ``rasterize_to_pixels`` contract in plain torch (each tile composites its list, front to back; no
    early stop), enough to check how the channel groups are laid out and put back."""
    C, th, tw = isect_offsets.shape
    D = colors.shape[-1]
    flat_means, flat_conics = means2d.reshape(-1, 2), conics.reshape(-1, 3)
    flat_colors, flat_opac = colors.reshape(-1, D), opacities.reshape(-1)
    ends = torch.cat([isect_offsets.reshape(-1)[1:], torch.tensor([len(flatten_ids)])])
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    out = torch.zeros(C, height, width, D)
    alpha_out = torch.zeros(C, height, width, 1)
    for c in range(C):
        for t in range(th * tw):
            i = c * th * tw + t
            ids = flatten_ids[int(isect_offsets.reshape(-1)[i]) : int(ends[i])].long()
            ty, tx = divmod(t, tw)
            rows = slice(ty * tile_size, min((ty + 1) * tile_size, height))
            cols = slice(tx * tile_size, min((tx + 1) * tile_size, width))
            px = torch.stack([xs[rows, cols], ys[rows, cols]], -1).reshape(-1, 2)  # [P, 2]
            d = px[:, None] - flat_means[ids][None]  # [P, M, 2]
            a, b, cc = flat_conics[ids].unbind(-1)
            sigma = 0.5 * (a * d[..., 0] ** 2 + cc * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
            alpha = (flat_opac[ids] * torch.exp(-sigma)).clamp(max=0.999)
            alpha = alpha * (alpha >= 1.0 / 255.0)
            trans = torch.cumprod(torch.cat([torch.ones(len(px), 1), 1 - alpha[:, :-1]], 1), 1)
            w = trans * alpha
            feat = w @ flat_colors[ids]
            acc = w.sum(1, keepdim=True)
            if backgrounds is not None:
                feat = feat + (1 - acc) * backgrounds[c]
            h_, w_ = rows.stop - rows.start, cols.stop - cols.start
            out[c, rows, cols] = feat.reshape(h_, w_, D)
            alpha_out[c, rows, cols] = acc.reshape(h_, w_, 1)
    return out, alpha_out


@pytest.mark.parametrize(("groups", "runs"), [(2, 1), (4, 1), (1, 3), (2, 4)])
@pytest.mark.parametrize("depth", [False, True])
def test_layout_renders_and_differentiates_as_one_launch(monkeypatch, groups, runs, depth):
    """``rasterize_projected_gsplat``'s layout and reassembly, with gsplat's kernels swapped for torch code of the same
    contract (no early stop): the same features, depth, alpha and gradients as the plain launch."""
    from types import SimpleNamespace

    from splatent_viewer.render import gsplat_backend

    fake = SimpleNamespace(
        isect_tiles=lambda m, r, d, ts, tw, th, packed=False: torch_impl._isect_tiles(m, r, d, ts, tw, th),
        isect_offset_encode=torch_impl._isect_offset_encode,
        rasterize_to_pixels=_rasterize_to_pixels_reference,
    )
    monkeypatch.setattr(gsplat_backend, "_gsplat_module", lambda name="": fake)
    monkeypatch.setattr(gsplat_backend, "_check_cuda_float32", lambda x: None)
    g = torch.Generator().manual_seed(1)
    C, N, W, H = 2, 30, 20, 12
    D = 7 if depth else 8  # + depth: 8 composited channels
    means2d = (torch.rand(C, N, 2, generator=g) * torch.tensor([W, H])).requires_grad_()
    conics = torch.tensor([0.3, 0.05, 0.4]).expand(C, N, 3).clone().requires_grad_()
    depths = torch.rand(C, N, generator=g) + 0.5
    radii = torch.full((C, N), 6, dtype=torch.int32)
    opacities = (torch.rand(C, N, generator=g) * 0.9).requires_grad_()
    features = torch.rand(N, D, generator=g).requires_grad_()
    backgrounds = torch.rand(C, D, generator=g)
    weights = torch.rand(C, H, W, D, generator=g)
    results = []
    for k, s in ((1, 1), (groups, runs)):
        feats, ed, alpha, _ = gsplat_backend.rasterize_projected_gsplat(
            means2d=means2d, conics=conics, depths=depths, radii=radii, opacities=opacities, features=features,
            width=W, height=H, tile_size=8, backgrounds=backgrounds, depth=depth, channel_split=k, depth_split=s,
        )  # fmt: skip
        loss = (feats * weights).sum() + alpha.sum() + (0.0 if ed is None else ed.sum())
        results.append(((feats, ed, alpha), torch.autograd.grad(loss, [means2d, conics, opacities, features])))
    (ref, ref_grads), (got, got_grads) = results
    for a, b in zip(got, ref):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b)
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_channel_split_must_divide_the_channels(monkeypatch):
    from splatent_viewer.render import gsplat_backend

    monkeypatch.setattr(gsplat_backend, "_check_cuda_float32", lambda x: None)
    monkeypatch.setattr(
        gsplat_backend,
        "_gsplat_module",
        lambda name="": type(
            "W", (), {"isect_tiles": staticmethod(lambda m, r, d, ts, tw, th, packed=False: torch_impl._isect_tiles(m, r, d, ts, tw, th)),
                      "isect_offset_encode": staticmethod(torch_impl._isect_offset_encode)},
        ),
    )  # fmt: skip
    C, N = 1, 4
    with pytest.raises(ValueError, match="channel_split=3 must divide the 32 channels"):
        gsplat_backend.rasterize_projected_gsplat(
            means2d=torch.rand(C, N, 2), conics=torch.rand(C, N, 3), depths=torch.rand(C, N) + 1,
            radii=torch.ones(C, N, dtype=torch.int32), opacities=torch.rand(C, N), features=torch.rand(N, 32),
            width=8, height=8, tile_size=8, depth=False, channel_split=3,
        )  # fmt: skip


def _fake_gsplat(calls: list[str] | None = None):
    """gsplat's wrapper functions as torch code of their contract (``calls``: their names, in call order)."""
    from types import SimpleNamespace

    from splatent_viewer.render.projection import project_gaussians

    def fully_fused_projection(means, covars, quats, scales, viewmats, Ks, width, height, **kw):
        keep = ("eps2d", "near_plane", "far_plane", "radius_clip")
        p = project_gaussians(
            means=means, quats=quats, scales=scales, viewmats=viewmats, Ks=Ks, width=width, height=height,
            **{k: kw[k] for k in keep},
        )  # fmt: skip
        return p.radii, p.means2d, p.depths, p.conics, None

    functions = {
        "fully_fused_projection": fully_fused_projection,
        "spherical_harmonics": lambda degree, dirs, coeffs, masks=None: torch_impl._spherical_harmonics(
            degree, dirs, coeffs
        ),
        "isect_tiles": lambda m, r, d, ts, tw, th, packed=False: torch_impl._isect_tiles(m, r, d, ts, tw, th),
        "isect_offset_encode": torch_impl._isect_offset_encode,
        "rasterize_to_pixels": _rasterize_to_pixels_reference,
    }

    def recorded(name, fn):
        def call(*args, **kwargs):
            if calls is not None:
                calls.append(name)
            return fn(*args, **kwargs)

        return call

    return SimpleNamespace(**{name: recorded(name, fn) for name, fn in functions.items()})


def _on_fake_gsplat(monkeypatch, calls: list[str] | None = None) -> None:
    """gsplat's kernels swapped for :func:`_fake_gsplat`, and the gsplat backend allowed on the CPU."""
    import importlib

    from splatent_viewer.render import gsplat_backend, screen

    monkeypatch.setattr(gsplat_backend, "_gsplat_module", lambda name="": _fake_gsplat(calls))
    monkeypatch.setattr(gsplat_backend, "_check_cuda_float32", lambda x: None)
    monkeypatch.setattr(screen, "resolve_backend", lambda backend, device: "gsplat")
    monkeypatch.setattr(
        importlib.import_module("splatent_viewer.splats.render"), "resolve_backend", screen.resolve_backend
    )


def test_rgb_and_latents_intersect_both_grids_before_compositing(monkeypatch):
    """``render_rgb_and_latents`` on gsplat (kernels faked): both ``isect_tiles`` (each a host sync) before any
    ``rasterize_to_pixels``, and exactly the renders, meta and gradients of intersecting inside each pass (the
    order before: RGB intersect, RGB composite, latent intersect, latent composite)."""
    import importlib

    from splatent_viewer.render.synthetic import orbit_cameras
    from splatent_viewer.splats import init_splats

    splat_render = importlib.import_module("splatent_viewer.splats.render")
    g = torch.Generator().manual_seed(3)
    raw = init_splats(
        points=torch.rand(150, 3, generator=g) - 0.5, colors=None, latent_channels=8, sh_degree=1,
        init_opacity=0.5, generator=g,
    )  # fmt: skip
    raw["features_rest"] = 0.1 * torch.randn(raw["features_rest"].shape, generator=g)
    raw["latents"] = torch.rand(raw["latents"].shape, generator=g)
    viewmats, Ks = orbit_cameras(1, width=40, height=24)
    runs = []
    for ahead in (True, False):
        calls: list[str] = []
        _on_fake_gsplat(monkeypatch, calls)
        if not ahead:  # each pass intersects its own grid, right before compositing it
            monkeypatch.setattr(splat_render, "intersect_screen", lambda **kw: None)
        params = {k: v.clone().requires_grad_() for k, v in raw.items()}
        rgb, lat = splat_render.render_rgb_and_latents(
            params=params, viewmats=viewmats, Ks=Ks, width=40, height=24, latent_width=10, latent_height=6,
            latent_downscale=4, sh_degree=1, rgb_backgrounds=torch.full((1, 3), 0.2), backend="gsplat",
        )  # fmt: skip
        assert rgb.info["backend"] == lat.info["backend"] == "gsplat" and rgb.depth is not None
        means2d = rgb.info["means2d"]
        means2d.retain_grad()
        w = torch.rand(lat.features.shape, generator=torch.Generator().manual_seed(0))
        loss = rgb.features.square().sum() + rgb.depth.sum() + rgb.alpha.sum() + (lat.features * w).sum()
        loss.backward()
        grads = {k: v.grad for k, v in params.items()}
        runs.append((calls, rgb, lat, grads, means2d.grad))
    (calls, rgb, lat, grads, tap), (calls_ref, rgb_ref, lat_ref, grads_ref, tap_ref) = runs

    def order(c):
        isect = [i for i, name in enumerate(c) if name == "isect_tiles"]
        composite = [i for i, name in enumerate(c) if name == "rasterize_to_pixels"]
        assert len(isect) == 2 and composite
        return max(isect) < min(composite)

    assert order(calls) and not order(calls_ref)
    assert sorted(calls) == sorted(calls_ref)  # the same kernels, only reordered
    assert rgb.alpha.amax() > 0.5 and lat.features.abs().amax() > 0.1  # real renders
    for out, ref in ((rgb, rgb_ref), (lat, lat_ref)):
        for a, b in ((out.features, ref.features), (out.depth, ref.depth), (out.alpha, ref.alpha)):
            assert a is b is None or (a is not None and b is not None and torch.equal(a, b))
        assert out.info.keys() == ref.info.keys()
        for key, value in out.info.items():
            same = torch.equal(value, ref.info[key]) if isinstance(value, torch.Tensor) else value == ref.info[key]
            assert same, key
    for key in grads:
        assert torch.equal(grads[key], grads_ref[key]), key
    assert torch.equal(tap, tap_ref)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"tile_size": 16}, "tile_size=8, 5x3 tiles, 2 cameras; this grid has tile_size=16"),
     ({"width": 48}, "5x3 tiles, 2 cameras; this grid has tile_size=8, 6x3 tiles"),
     ({"cameras": 1}, "2 cameras; this grid has tile_size=8, 5x3 tiles, 1 cameras")],
)  # fmt: skip
def test_intersections_for_another_grid_are_refused(monkeypatch, change, message):
    from splatent_viewer.render import gsplat_backend

    _on_fake_gsplat(monkeypatch)
    g = torch.Generator().manual_seed(4)
    N = 20
    means2d, radii = torch.rand(2, N, 2, generator=g) * 20, torch.full((2, N), 3, dtype=torch.int32)
    depths = torch.rand(2, N, generator=g) + 1
    isect = gsplat_backend.intersect_gsplat(
        means2d=means2d, radii=radii, depths=depths, width=40, height=20, tile_size=8
    )
    assert (isect.tile_size, isect.tile_width, isect.tile_height) == (8, 5, 3)
    C = change.get("cameras", 2)
    with pytest.raises(ValueError, match=message):
        gsplat_backend.rasterize_projected_gsplat(
            means2d=means2d[:C], conics=torch.tensor([0.3, 0.0, 0.3]).expand(C, N, 3), depths=depths[:C],
            radii=radii[:C], opacities=torch.full((C, N), 0.5), features=torch.rand(N, 3, generator=g),
            width=change.get("width", 40), height=20, tile_size=change.get("tile_size", 8), intersections=isect,
        )  # fmt: skip


def test_torch_screens_have_no_intersections_to_precompute():
    from splatent_viewer.render.screen import intersect_screen, project_screen
    from splatent_viewer.render.synthetic import orbit_cameras, random_scene

    scene = random_scene(50, seed=0)
    viewmats, Ks = orbit_cameras(1, width=16, height=16)
    screen = project_screen(
        means=scene.means, quats=scene.quats, scales=scene.scales, opacities=scene.opacities, viewmats=viewmats,
        Ks=Ks, width=16, height=16, backend="torch",
    )  # fmt: skip
    assert intersect_screen(screen=screen) is None
