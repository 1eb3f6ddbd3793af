"""The latent pass's launch layout (``channel_split`` groups × ``depth_split`` runs as virtual cameras of gsplat's
packed kernels) on the CPU: its tile lists against gsplat's own (torch) intersection code and against the runs'
definition, and the whole render + gradients with gsplat's kernels swapped for torch code of their contract. On gsplat
itself: test_render_shared_projection_gpu.py."""

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
