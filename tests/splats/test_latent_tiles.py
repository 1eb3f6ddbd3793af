"""Latent-grid passes use 8-cell tiles (:data:`~splatent_viewer.splats.render.LATENT_TILE_SIZE`, issue 18): the same
render as gsplat's default 16-cell tiles, gradients included, in both the training step's shared projection and
``render_splats``."""

from __future__ import annotations

import torch

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.render.screen import downscale_screen, project_screen, rasterize_screen
from splatent_viewer.render.synthetic import orbit_cameras, random_scene
from splatent_viewer.splats import init_splats, render_splats
from splatent_viewer.splats.render import LATENT_TILE_SIZE


def test_latent_tiles_render_what_16_cell_tiles_render():
    assert LATENT_TILE_SIZE == 8
    scene = random_scene(20_000, channels=32, seed=5, extent=1.5)
    viewmats, Ks = orbit_cameras(1, width=256, height=192)
    fine = project_screen(
        means=scene.means, quats=scene.quats, scales=scene.scales, opacities=scene.opacities, viewmats=viewmats,
        Ks=Ks, width=256, height=192, backend="torch",
    )  # fmt: skip
    coarse = downscale_screen(fine, downscale=8, width=32, height=24)
    outs, grads = {}, {}
    for tile in (16, LATENT_TILE_SIZE):
        features = scene.features.clone().requires_grad_()
        out = rasterize_screen(screen=coarse, features=features, depth=False, tile_size=tile)
        (out.features * torch.linspace(0, 1, 32)).sum().backward()
        outs[tile], grads[tile] = out.features.detach(), features.grad
    assert outs[16].abs().max() > 0.1  # a real render
    torch.testing.assert_close(outs[LATENT_TILE_SIZE], outs[16], rtol=0, atol=1e-5)
    torch.testing.assert_close(grads[LATENT_TILE_SIZE], grads[16], rtol=1e-4, atol=1e-5)


def test_render_splats_uses_latent_tiles_for_latents_only():
    g = torch.Generator().manual_seed(0)
    params = init_splats(
        points=torch.rand(3000, 3, generator=g) - 0.5, colors=None, latent_channels=32, sh_degree=1, generator=g
    )
    viewmats, Ks = orbit_cameras(1, width=128, height=128)
    lat = render_splats(
        params=params, viewmats=viewmats, Ks=scale_intrinsics(Ks, 1 / 8), width=16, height=16, content="latent",
        depth=False, backend="torch",
    )  # fmt: skip
    rgb = render_splats(
        params=params, viewmats=viewmats, Ks=Ks, width=128, height=128, content="rgb", sh_degree=1, backend="torch"
    )
    assert lat.info["tile_size"] == LATENT_TILE_SIZE and rgb.info["tile_size"] == 16


def test_latent_layout_by_grid_size():
    """The launch layout (channel groups, depth runs) by latent grid: the demo's 32² grid (16 tiles) gets 2 × 16,
    fern's 63x47 (48 tiles) and lego's 100² 4 × 4 (RESULTS.md, issue 18); both divide TAEF2's 32 channels."""
    from splatent_viewer.splats.render import latent_layout

    assert latent_layout(32, 32) == (2, 16)
    assert latent_layout(63, 47) == (4, 4)
    assert latent_layout(100, 100) == (4, 4)
    assert all(32 % latent_layout(w, h)[0] == 0 for w, h in ((8, 8), (32, 32), (40, 30), (256, 256)))
    assert latent_layout(32, 32, channels=33) == (1, 16)  # latents + depth: no groups that divide 33
