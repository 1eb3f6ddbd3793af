"""SyncFreeDefaultStrategy: gsplat's DefaultStrategy with dense per-step statistics (no host sync), same result."""

from __future__ import annotations

import copy

import pytest
import torch
from gsplat.strategy import DefaultStrategy

from splatent_viewer.training.densify import SyncFreeDefaultStrategy


def _params(n: int, seed: int) -> torch.nn.ParameterDict:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.ParameterDict(
        {
            "means": torch.randn(n, 3, generator=g),
            "scales": torch.randn(n, 3, generator=g) - 3.0,
            "quats": torch.randn(n, 4, generator=g),
            "opacities": torch.randn(n, generator=g),
            "latents": torch.randn(n, 8, generator=g),
        }
    )


def _run(strategy: DefaultStrategy, steps: int, seed: int = 0) -> tuple[torch.nn.ParameterDict, dict]:
    params = _params(400, seed)
    torch.manual_seed(seed)  # gsplat's split samples the new means from the global generator
    optimizers: dict[str, torch.optim.Optimizer] = {
        k: torch.optim.Adam([{"params": [v], "lr": 1e-3, "name": k}]) for k, v in params.items()
    }
    state = strategy.initialize_state(scene_scale=1.0)
    g = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        n = params["means"].shape[0]
        radii = (torch.rand(1, n, generator=g) * 40).to(torch.int32)  # ~1/40 culled (radius 0)
        means2d = torch.zeros(1, n, 2, requires_grad=True)
        info = {"width": 64, "height": 48, "n_cameras": 1, "radii": radii, "means2d": means2d, "gaussian_ids": None}
        strategy.step_pre_backward(params, optimizers, state, step, info)
        weights = torch.randn(1, n, 2, generator=g) * 1e-3
        loss = (means2d * weights).sum() + sum((p**2).sum() for p in params.values())
        loss.backward()
        if strategy.absgrad:
            means2d.absgrad = weights.abs()  # type: ignore[attr-defined]  # gsplat's CUDA backward sets it
        strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad()
    return params, state


@pytest.mark.parametrize(
    "fields",
    [
        dict(refine_start_iter=3, refine_stop_iter=30, refine_every=5, grow_grad2d=2e-4),
        dict(refine_start_iter=3, refine_stop_iter=30, refine_every=5, refine_scale2d_stop_iter=20, reset_every=10),
        dict(refine_start_iter=3, refine_stop_iter=30, refine_every=5, absgrad=True, grow_grad2d=8e-4),
    ],
    ids=["core-table", "screen-size-and-reset", "absgrad"],
)
def test_same_gaussians_and_state_as_gsplats_strategy(fields):
    reference, ours = DefaultStrategy(**fields), SyncFreeDefaultStrategy(**fields)
    ref_params, ref_state = _run(copy.deepcopy(reference), 27)
    our_params, our_state = _run(copy.deepcopy(ours), 27)
    assert ref_params["means"].shape[0] != 400  # the run grew or pruned: the comparison covers refinement
    for key in ref_params:
        assert torch.equal(ref_params[key], our_params[key]), key
    for key in ("grad2d", "count", "radii"):
        if ref_state.get(key) is None:
            assert our_state.get(key) is None
        else:
            assert torch.equal(ref_state[key], our_state[key]), key


def test_packed_info_keeps_gsplats_update():
    strategy = SyncFreeDefaultStrategy()
    params = _params(10, 0)
    state = strategy.initialize_state()
    means2d = torch.zeros(3, 2, requires_grad=True)
    (means2d * torch.ones(3, 2)).sum().backward()
    info = {"width": 8, "height": 8, "n_cameras": 1, "radii": torch.tensor([1, 2, 3], dtype=torch.int32),
            "means2d": means2d, "gaussian_ids": torch.tensor([0, 4, 9])}  # fmt: skip
    strategy._update_state(params, state, info, packed=True)
    assert state["count"].nonzero().flatten().tolist() == [0, 4, 9]
