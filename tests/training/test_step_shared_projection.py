"""One projection for both passes of a training step (issue 18): the latent grid derived from the RGB grid's
projection renders what a second projection renders, and densification still reads the RGB loss's gradient only.

The reference is the step as it was before: two independent ``render_splats`` calls (a projection each). The one
documented difference (``splatent_viewer.render.screen``): Gaussians the RGB projection culls (off its image) are not
drawn on the latent grid, where the larger dilation lets tiny ones just outside reach the border cells; the exact
comparisons use the reference with those Gaussians left out of its latent pass.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from gsplat.strategy import DefaultStrategy

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.render import rasterize
from splatent_viewer.render.screen import downscale_screen, project_screen, rasterize_screen
from splatent_viewer.render.synthetic import orbit_cameras, random_scene
from splatent_viewer.splats import init_splats, render_splats
from splatent_viewer.splats.render import LATENT_TILE_SIZE
from splatent_viewer.training.points import initial_points
from splatent_viewer.training.step import (
    LearningRates,
    LossConfig,
    StepRender,
    create_optimizers,
    render_step,
    step_losses,
)
from splatent_viewer.training.trainer import encode_views, training_cameras


def reference_step(
    *, params, viewmat, K, width, height, latent_downscale, sh_degree, rgb_downscale=1, only_rgb_drawn=True
) -> StepRender:
    """The two-projection step; ``only_rgb_drawn``: its latent pass draws only the Gaussians the RGB pass kept."""
    out = render_splats(
        params=params,
        viewmats=viewmat,
        Ks=scale_intrinsics(K, 1.0 / rgb_downscale),
        width=width // rgb_downscale,
        height=height // rgb_downscale,
        content="rgb",
        sh_degree=sh_degree,
        depth=False,
    )
    opacities = torch.sigmoid(params["opacities"]).squeeze(-1)
    if only_rgb_drawn:
        opacities = opacities * (out.info["radii"][0] > 0).to(opacities.dtype)
    lat = rasterize(
        means=params["means"],
        quats=params["quats"],
        scales=torch.exp(params["scales"]),
        opacities=opacities,
        features=params["latents"],
        viewmats=viewmat,
        Ks=scale_intrinsics(K, 1.0 / latent_downscale),
        width=width // latent_downscale,
        height=height // latent_downscale,
        depth=False,
        backend="torch",
        tile_size=LATENT_TILE_SIZE,  # the latent grid's tiles, as render_step's (tests/splats/test_latent_tiles.py)
    )
    return StepRender(
        rgb=out.features[0].clamp(0.0, 1.0),
        alpha=out.alpha[0],
        depth=None,
        latent=lat.features[0].permute(2, 0, 1),
        info=out.info,
    )


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize(("width", "downscale"), [(256, 8), (192, 4), (128, 2)])
def test_derived_latent_grid_renders_what_a_second_projection_renders(dtype, tol, width, downscale):
    scene = random_scene(8000, channels=32, seed=width + downscale, dtype=dtype, extent=1.5)
    viewmats, Ks = orbit_cameras(1, width=width, height=width, dtype=dtype)
    kw: dict[str, Any] = dict(means=scene.means, quats=scene.quats, scales=scene.scales, viewmats=viewmats)
    fine = project_screen(**kw, opacities=scene.opacities, Ks=Ks, width=width, height=width, backend="torch")
    w = width // downscale
    coarse = downscale_screen(fine, downscale=downscale, width=w, height=w)
    derived = rasterize_screen(screen=coarse, features=scene.features, depth=False)

    Kc = scale_intrinsics(Ks, 1.0 / downscale)
    drawn = (fine.radii[0] > 0).to(dtype)
    direct = rasterize(
        **kw,
        opacities=scene.opacities * drawn,
        features=scene.features,
        Ks=Kc,
        width=w,
        height=w,
        depth=False,
        backend="torch",
    )
    assert (direct.alpha > 0.5).float().mean() > 0.3  # a real scene
    # the same 2D Gaussians: centres exactly (pixel centres at +0.5 on both grids), conics to rounding, same radii
    both = (coarse.radii > 0) & (direct.info["radii"] > 0)
    assert torch.equal(coarse.radii > 0, (direct.info["radii"] > 0) & (fine.radii > 0))
    assert torch.equal(coarse.radii[both], direct.info["radii"][both])
    torch.testing.assert_close(coarse.means2d[both], direct.info["means2d"][both], rtol=tol, atol=tol * width)
    torch.testing.assert_close(coarse.conics[both], direct.info["conics"][both], rtol=100 * tol, atol=tol)
    torch.testing.assert_close(derived.features, direct.features, rtol=0, atol=tol)
    torch.testing.assert_close(derived.alpha, direct.alpha, rtol=0, atol=tol)

    # Without leaving the RGB-culled Gaussians out, only border cells can differ.
    full = rasterize(
        **kw, opacities=scene.opacities, features=scene.features, Ks=Kc, width=w, height=w, depth=False, backend="torch"
    )
    torch.testing.assert_close(derived.features[:, 1:-1, 1:-1], full.features[:, 1:-1, 1:-1], rtol=0, atol=tol)


def _tiny_setup(tiny_scene_dir, dtype):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    train = scene.split_indices["train"].tolist()
    targets = [t.to(dtype) for t in encode_views(scene=scene, indices=train, codec=codec, device="cpu")]
    images = [scene.load_image(i).to(dtype) for i in train]
    generator = torch.Generator().manual_seed(0)
    points, colors = initial_points(
        points=scene.load_points(), cameras=training_cameras(scene, train), num_random=0, generator=generator
    )
    raw = init_splats(
        points=points,
        colors=colors,
        latent_channels=codec.latent_channels,
        sh_degree=1,
        init_opacity=0.1,
        generator=generator,
    )
    cams = (scene.viewmats()[train].to(dtype), scene.Ks[train].to(dtype))
    sizes = [(int(scene.widths[i]), int(scene.heights[i])) for i in train]
    return raw, cams, sizes, images, targets, codec.downscale


def test_densification_reads_the_rgb_gradient_only(tiny_scene_dir):
    raw, (viewmats, Ks), sizes, images, targets, ds = _tiny_setup(tiny_scene_dir, torch.float64)
    (width, height), i = sizes[0], 0
    grads = {}
    for name in ("shared", "reference"):
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.double()) for k, v in raw.items()})
        args: dict[str, Any] = dict(
            params=params,
            viewmat=viewmats[i : i + 1],
            K=Ks[i : i + 1],
            width=width,
            height=height,
            latent_downscale=ds,
            sh_degree=1,
        )
        render = render_step(**args, depth=False) if name == "shared" else reference_step(**args)
        render.info["means2d"].retain_grad()  # what DefaultStrategy.step_pre_backward does
        losses = step_losses(
            render=render, image=images[i], target_latent=targets[i], loss=LossConfig(), ssim_lambda=0.2, step=0
        )
        torch.stack(list(losses.values())).sum().backward()
        grads[name] = (render.info["means2d"].grad, {k: p.grad for k, p in params.items()}, losses)
    (tap, g_shared, l_shared), (rgb_only, g_ref, l_ref) = grads["shared"], grads["reference"]
    for key in l_ref:
        torch.testing.assert_close(l_shared[key], l_ref[key], rtol=1e-12, atol=0)
    assert tap is not None and rgb_only is not None and rgb_only.abs().sum() > 0
    torch.testing.assert_close(tap, rgb_only, rtol=1e-9, atol=1e-15)  # the RGB loss's screen gradient only
    for key in g_ref:  # while the means etc. get both passes' gradients
        torch.testing.assert_close(g_shared[key], g_ref[key], rtol=1e-9, atol=1e-14)
    assert g_shared["latents"].abs().sum() > 0


def _train(raw, cams, sizes, images, targets, ds, step_fn, steps):
    """A short training run (the core trainer's loop) with densification on; returns the losses and the Gaussian
    count after every densification call."""
    torch.manual_seed(0)  # the strategy's split samples positions from the global generator
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.double()) for k, v in raw.items()})
    optimizers, decay = create_optimizers(params=params, lr=LearningRates(), scene_scale=1.0, steps=steps)
    strategy = DefaultStrategy(
        refine_start_iter=5, refine_stop_iter=steps - 1, refine_every=8, reset_every=10_000, grow_grad2d=2e-5
    )
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)
    # float64 throughout, so that rounding cannot tip a densification decision: gsplat's state and split samples
    # follow the default dtype, except its float32 visit count
    state["grad2d"] = torch.zeros(len(params["means"]), dtype=torch.float64)
    state["count"] = torch.zeros(len(params["means"]), dtype=torch.float32)
    losses, counts = [], []
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _loop(
            params, optimizers, decay, strategy, state, cams, sizes, images, targets, ds, step_fn, steps, losses, counts
        )
    finally:
        torch.set_default_dtype(default_dtype)
    return np.array(losses), counts, {k: v.detach() for k, v in params.items()}


def _loop(params, optimizers, decay, strategy, state, cams, sizes, images, targets, ds, step_fn, steps, losses, counts):
    viewmats, Ks = cams
    for step in range(steps):
        i = step % len(sizes)
        width, height = sizes[i]
        render = step_fn(
            params=params,
            viewmat=viewmats[i : i + 1],
            K=Ks[i : i + 1],
            width=width,
            height=height,
            latent_downscale=ds,
            sh_degree=min(step // 10, 1),
        )
        terms = step_losses(
            render=render, image=images[i], target_latent=targets[i], loss=LossConfig(), ssim_lambda=0.2, step=step
        )
        loss = torch.stack(list(terms.values())).sum()
        strategy.step_pre_backward(params, optimizers, state, step, render.info)
        loss.backward()
        strategy.step_post_backward(params, optimizers, state, step, render.info, packed=False)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        decay.step()
        losses.append(float(loss))
        counts.append(len(params["means"]))


def test_short_training_splits_and_prunes_the_same_gaussians(tiny_scene_dir):
    setup = _tiny_setup(tiny_scene_dir, torch.float64)
    steps = 26
    loss_s, counts_s, params_s = _train(*setup, step_fn=lambda **kw: render_step(**kw, depth=False), steps=steps)
    loss_r, counts_r, params_r = _train(*setup, step_fn=reference_step, steps=steps)
    assert len(set(counts_r)) >= 3, f"densification barely ran: {sorted(set(counts_r))}"
    assert counts_s == counts_r, (counts_s, counts_r)
    # float64 rounding only (the conics' 1e-15), through Adam's normalised steps: ~1e-9 at most steps; a pixel whose
    # alpha sits at the compositor's 1/255 cut-off can be drawn by one path and not the other (5e-7 at one step)
    np.testing.assert_allclose(loss_s, loss_r, rtol=2e-6)
    for key in params_r:  # the same Gaussians, in the same order (Adam lifts the rounding of tiny gradients)
        assert params_s[key].shape == params_r[key].shape
        diff = (params_s[key] - params_r[key]).abs()
        off = diff > 1e-6 + 1e-5 * params_r[key].abs()
        # all but the few values near a cut-off flip agree to 1e-5; those stay within 1e-4
        assert float(off.double().mean()) < 1e-3 and float(diff.max()) < 1e-4, (key, float(diff.max()))


def test_a_step_without_the_latent_pass_renders_and_densifies_as_the_rgb_pass_of_a_full_step(tiny_scene_dir):
    # LossConfig.latent_every > 1: the steps between latent passes render the RGB pass alone; its image and the
    # screen gradient densification reads are the full step's (which taps the RGB pass's own copy of the centres)
    raw, (viewmats, Ks), sizes, images, targets, ds = _tiny_setup(tiny_scene_dir, torch.float64)
    (width, height), i = sizes[0], 0
    out = {}
    camera: dict[str, Any] = dict(viewmat=viewmats[:1], K=Ks[:1], width=width, height=height, latent_downscale=ds)
    for latent in (True, False):
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.double()) for k, v in raw.items()})
        render = render_step(params=params, **camera, sh_degree=1, depth=False, latent=latent)
        render.info["means2d"].retain_grad()
        losses = step_losses(
            render=render, image=images[i], target_latent=targets[i], loss=LossConfig(), ssim_lambda=0.2, step=0
        )
        losses["rgb_loss"].backward()  # the RGB loss alone in both: the same gradients wherever it reaches
        out[latent] = (render, losses, {k: p.grad for k, p in params.items()})
    (full, l_full, g_full), (rgb_only, l_rgb, g_rgb) = out[True], out[False]
    assert full.latent is not None and rgb_only.latent is None
    assert set(l_full) == {"latent_loss", "rgb_loss"} and set(l_rgb) == {"rgb_loss"}
    assert full.rgb is not None and rgb_only.rgb is not None
    torch.testing.assert_close(rgb_only.rgb, full.rgb, rtol=0, atol=0)
    torch.testing.assert_close(l_rgb["rgb_loss"], l_full["rgb_loss"], rtol=0, atol=0)
    torch.testing.assert_close(rgb_only.info["means2d"].grad, full.info["means2d"].grad, rtol=1e-12, atol=1e-18)
    for key in ("means", "scales", "quats", "opacities", "features_dc"):
        torch.testing.assert_close(g_rgb[key], g_full[key], rtol=1e-12, atol=1e-18)
    assert g_rgb["latents"] is None
    with pytest.raises(ValueError, match="RGB pass, the latent pass or both"):
        render_step(params=params, **camera, sh_degree=0, rgb=False, latent=False)


def test_the_latent_loss_is_weighted_by_latent_every_on_the_steps_that_have_it(tiny_scene_dir):
    # half the latent passes at twice the weight: the latent loss's average weight per step is unchanged
    raw, (viewmats, Ks), sizes, images, targets, ds = _tiny_setup(tiny_scene_dir, torch.float64)
    (width, height) = sizes[0]
    params = {k: v.double() for k, v in raw.items()}
    camera: dict[str, Any] = dict(viewmat=viewmats[:1], K=Ks[:1], width=width, height=height, latent_downscale=ds)
    render = render_step(params=params, **camera, sh_degree=1, depth=False)
    losses = {
        every: step_losses(
            render=render,
            image=images[0],
            target_latent=targets[0],
            loss=LossConfig(latent_weight=1.5, latent_every=every),
            ssim_lambda=0.2,
            step=0,
        )
        for every in (1, 3)
    }
    assert float(losses[1]["latent_loss"]) > 0
    torch.testing.assert_close(losses[3]["latent_loss"], 3 * losses[1]["latent_loss"], rtol=1e-12, atol=0)
    torch.testing.assert_close(losses[3]["rgb_loss"], losses[1]["rgb_loss"], rtol=0, atol=0)


@pytest.mark.parametrize(("latent_every", "decoded_every"), [(1, 10), (2, 1), (2, 5), (3, 4), (4, 2)])
def test_the_decoded_loss_keeps_its_average_weight_when_latent_steps_thin_it(latent_every, decoded_every):
    loss = LossConfig(decoded_weight=0.5, decoded_every=decoded_every, latent_every=latent_every)
    steps = [s for s in range(120) if loss.decoded_step(s)]
    assert all(loss.latent_step(s) and s % decoded_every == 0 for s in steps)
    assert steps[1] - steps[0] == math.lcm(latent_every, decoded_every)
    # on average over the steps, the weight of decoded_every-th steps at decoded_weight
    assert loss.decoded_scale * len(steps) / 120 == pytest.approx(0.5 / decoded_every)
    assert not LossConfig(decoded_weight=0.0).decoded_step(0)
    # without an RGB loss every step is a latent step: the plain schedule and weight
    plain = LossConfig(decoded_weight=0.5, decoded_every=decoded_every, latent_every=latent_every, rgb_weight=0.0)
    assert [s for s in range(12) if plain.decoded_step(s)] == list(range(0, 12, decoded_every))
    assert plain.decoded_scale == 0.5
