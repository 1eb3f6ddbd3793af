"""A CUDA training step of the core (render_step → step_losses → backward → densification statistics → fused Adam)
makes no host sync but gsplat's ``isect_tiles`` (which reads its intersection count on the host, once per grid): torch's
sync debug mode turns any other synchronising call into an error (benchmarks/RESULTS.md, issue 18)."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.cameras import opengl_c2w_to_viewmat, viewmat_to_opengl_c2w
from splatent_viewer.render.synthetic import orbit_cameras
from splatent_viewer.splats import init_splats
from splatent_viewer.training.densify import SyncFreeDefaultStrategy
from splatent_viewer.training.step import LearningRates, LossConfig, create_optimizers, render_step, step_losses

pytestmark = pytest.mark.gpu


def test_core_training_step_has_no_host_sync(monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    import gsplat.cuda._wrapper as wrapper

    isect_tiles, isect_calls = wrapper.isect_tiles, []

    def isect_tiles_allowed(*args, **kwargs):  # gsplat reads its intersection count on the host: the syncs that stay
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode(0)
        try:
            isect_calls.append(1)
            return isect_tiles(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(mode)

    monkeypatch.setattr(wrapper, "isect_tiles", isect_tiles_allowed)
    device = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    n = 20_000
    raw = init_splats(points=(torch.rand(n, 3, generator=g) - 0.5) * 2.0, colors=torch.rand(n, 3, generator=g),
                      latent_channels=32, sh_degree=3, init_opacity=0.5, generator=g)  # fmt: skip
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in raw.items()})
    optimizers, decay = create_optimizers(params=params, lr=LearningRates(), scene_scale=1.0, steps=10)
    strategy = SyncFreeDefaultStrategy(refine_start_iter=1000)  # statistics every step, no refinement here
    state = strategy.initialize_state(scene_scale=1.0)
    viewmats, Ks = orbit_cameras(1, width=256, height=192, device=device)
    image = torch.rand(192, 256, 3, device=device)
    target = torch.rand(32, 24, 32, device=device)
    c2w = viewmat_to_opengl_c2w(viewmats)
    for step in range(3):  # the first step warms up (allocations, the SSIM window) outside the check
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error" if step > 0 else 0)
        try:
            render = render_step(params=params, viewmat=opengl_c2w_to_viewmat(c2w), K=Ks, width=256, height=192,
                                 latent_downscale=8, sh_degree=3, depth=True)  # fmt: skip
            strategy.step_pre_backward(params, optimizers, state, step, render.info)
            losses = step_losses(render=render, image=image, target_latent=target, loss=LossConfig(),
                                 ssim_lambda=0.2, step=step)  # fmt: skip
            sum(losses.values()).backward()  # type: ignore[union-attr]
            strategy.step_post_backward(params, optimizers, state, step, render.info, packed=False)
            for opt in optimizers.values():
                opt.step()
                opt.zero_grad(set_to_none=True)
            decay.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert float(state["count"].sum()) > 0
    assert len(isect_calls) == 3 * 2  # the RGB grid and the latent grid, each step
