"""The fused Adam of CUDA training (:func:`~splatent_viewer.training.step.fused_adam`) updates the Gaussians as the
multi-tensor Adam does, also across gsplat's densification edits of the optimiser state (duplicate, split, remove,
opacity reset); and nerfstudio's optimiser table builds it."""

from __future__ import annotations

import pytest
import torch
from gsplat.strategy import ops

from nerfstudio_plugin.splatent_config import SplatentAdamOptimizerConfig, nerfstudio_optimizers
from splatent_viewer.training.step import LearningRates, create_optimizers, fused_adam


def _params(device: torch.device, n: int = 500) -> torch.nn.ParameterDict:
    g = torch.Generator().manual_seed(0)
    shapes = {"means": (3,), "scales": (3,), "quats": (4,), "opacities": (), "features_dc": (3,),
              "features_rest": (15, 3), "latents": (32,)}  # fmt: skip
    return torch.nn.ParameterDict(
        {k: torch.nn.Parameter(torch.randn(n, *s, generator=g).to(device)) for k, s in shapes.items()}
    )


def _run(params: torch.nn.ParameterDict, fused: bool, device: torch.device) -> dict[str, torch.Tensor]:
    optimizers, decay = create_optimizers(params=params, lr=LearningRates(), scene_scale=1.0, steps=40)
    # the same table, on torch's fused kernel or its multi-tensor path
    optimizers = {
        k: torch.optim.Adam(
            [{"params": o.param_groups[0]["params"], "lr": o.param_groups[0]["lr"], "name": k}],
            eps=1e-15,
            fused=fused,
            foreach=not fused,
        )
        for k, o in optimizers.items()
    }
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=decay.gamma)
    g = torch.Generator().manual_seed(1)
    state: dict = {}
    for step in range(40):
        for p in params.values():
            p.grad = torch.randn(p.shape, generator=g).to(device)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        decay.step()
        n = len(params["means"])
        if step == 10:
            ops.duplicate(params, optimizers, state, torch.arange(n, device=device) % 7 == 0)
        if step == 20:
            torch.manual_seed(2)  # split samples its new positions from the global generator
            ops.split(params, optimizers, state, torch.arange(n, device=device) % 5 == 0)
        if step == 25:
            ops.remove(params, optimizers, state, torch.arange(n, device=device) % 11 == 0)
        if step == 30:
            ops.reset_opa(params, optimizers, state, value=0.01)
    return {k: v.detach().clone() for k, v in params.items()}


def test_cpu_keeps_torch_default_adam() -> None:
    params = _params(torch.device("cpu"))
    assert fused_adam(params["means"]) is None
    optimizers, _ = create_optimizers(params=params, lr=LearningRates(), scene_scale=1.0, steps=10)
    assert all(not opt.defaults["fused"] for opt in optimizers.values())
    table = nerfstudio_optimizers(LearningRates())
    assert all(isinstance(group["optimizer"], SplatentAdamOptimizerConfig) for group in table.values())
    built = table["latents"]["optimizer"].setup(params=[params["latents"]])
    assert built.defaults["lr"] == LearningRates().latents and not built.defaults["fused"]
    forced = SplatentAdamOptimizerConfig(lr=1e-3, eps=1e-15, fused=True).setup(params=[params["means"]])
    assert forced.defaults["fused"]  # torch's fused CPU kernel when asked for explicitly


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_fused_adam_matches_multi_tensor_adam_through_densification(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    dev = torch.device(device)
    if device == "cuda":  # what training builds there
        optimizers, _ = create_optimizers(params=_params(dev), lr=LearningRates(), scene_scale=1.0, steps=40)
        assert all(opt.defaults["fused"] for opt in optimizers.values())
        assert SplatentAdamOptimizerConfig(lr=1e-3).setup(params=[_params(dev)["means"]]).defaults["fused"]
    fused = _run(_params(dev), True, dev)
    reference = _run(_params(dev), False, dev)
    assert len(fused["means"]) != 500  # the edits ran
    for key in reference:
        assert fused[key].shape == reference[key].shape
        torch.testing.assert_close(fused[key], reference[key], rtol=1e-5, atol=1e-6)
