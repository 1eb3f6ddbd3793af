"""gsplat's DefaultStrategy densifies on CPU from the torch backend's ``info``."""

from __future__ import annotations

import re

import torch
from gsplat.strategy import DefaultStrategy

from splatent_viewer.render import rasterize
from splatent_viewer.render.synthetic import orbit_cameras, random_scene


def test_default_strategy_clones_and_splits_with_torch_backend(capsys):
    torch.manual_seed(0)
    n = 60
    scene = random_scene(n, channels=4, seed=11, extent=0.6)
    scales = torch.where(torch.arange(n)[:, None] % 2 == 0, 0.004, 0.06) * torch.ones(n, 3)
    params = torch.nn.ParameterDict(
        {
            "means": scene.means,
            "scales": torch.log(scales),
            "quats": scene.quats,
            "opacities": torch.logit(scene.opacities.clamp(0.1, 0.9)),
            "latents": scene.features,  # an extra per-Gaussian parameter that must follow along
        }
    )
    optimizers = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    strategy = DefaultStrategy(
        refine_start_iter=1, refine_every=2, refine_stop_iter=100, reset_every=10_000, grow_grad2d=1e-9, verbose=True
    )
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)
    viewmats, Ks = orbit_cameras(2, width=32, height=24)
    target = torch.rand(2, 24, 32, 4, generator=torch.Generator().manual_seed(1))

    for step in range(5):
        out = rasterize(
            means=params["means"],
            quats=params["quats"],
            scales=torch.exp(params["scales"]),
            opacities=torch.sigmoid(params["opacities"]),
            features=params["latents"],
            viewmats=viewmats,
            Ks=Ks,
            width=32,
            height=24,
            backend="torch",
        )
        strategy.step_pre_backward(params, optimizers, state, step, out.info)
        loss = (out.features - target).square().mean()
        loss.backward()
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        strategy.step_post_backward(params, optimizers, state, step, out.info, packed=False)
        if step == 2:  # right after the first refinement
            scales_after_first = params["scales"].detach().clone()

    log = capsys.readouterr().out
    grown = [(int(a), int(b)) for a, b in re.findall(r"(\d+) GSs duplicated, (\d+) GSs split", log)]
    assert len(grown) == 2, log  # refinement ran at steps 2 and 4
    n_dupli, n_split = grown[0]
    assert n_dupli > 0 and n_split > 0, log
    assert len(scales_after_first) == n + n_dupli + n_split  # a split replaces 1 by 2
    n_now = len(params["means"])
    assert n_now > n
    assert {k: len(p) for k, p in params.items()} == {k: n_now for k in params}
    for k, opt in optimizers.items():
        assert opt.param_groups[0]["params"][0] is params[k]
        assert opt.state[params[k]]["exp_avg"].shape == params[k].shape
    # split children carry the parent's scale / 1.6
    split_scale = torch.log(torch.tensor(0.06 / 1.6))
    assert torch.isclose(scales_after_first, split_scale, atol=1e-2).all(dim=-1).sum() == 2 * n_split
