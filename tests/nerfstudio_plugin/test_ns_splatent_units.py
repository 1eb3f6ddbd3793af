"""Unit tests of the splatent nerfstudio model, latent cache and PCA (no nerfstudio trainer)."""

from __future__ import annotations

import pytest
import torch

from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.optimizers import Optimizers

from nerfstudio_plugin.latent_cache import ENV_VAR, LatentCache, crop_to_multiple, default_cache_root, image_key
from nerfstudio_plugin.pca import fit_pca, project_pca
from nerfstudio_plugin.splatent_config import splatent_config
from nerfstudio_plugin.splatent_model import SplatentModel, SplatentModelConfig
from splatent_viewer.errors import SplatentError
from splatent_viewer.references import select_references


def _model(n_points: int = 300, seed: int = 0, **overrides) -> SplatentModel:
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n_points, 3, generator=g) - 0.5
    rgb = (torch.rand(n_points, 3, generator=g) * 255).to(torch.uint8)
    config = SplatentModelConfig(**overrides)
    torch.manual_seed(seed)
    return config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=4, seed_points=(pts, rgb))


def _camera(z: float = 3.0, size: int = 32) -> Cameras:
    c2w = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, z]])[None]
    return Cameras(camera_to_worlds=c2w, fx=40.0, fy=40.0, cx=size / 2, cy=size / 2, width=size, height=size,
                   camera_type=CameraType.PERSPECTIVE)


def test_latent_channels_match_codec() -> None:
    model = _model()
    assert model.latent_channels == 32 and model.downscale == 8  # taef2
    assert model.gauss_params["latents"].shape == (300, 32)
    assert "latents" in model.get_param_groups()
    assert "latents" in splatent_config.optimizers


def test_densification_keeps_latents_aligned() -> None:
    # refine at every step from step 0; every Gaussian with a gradient grows; split half of them
    model = _model(warmup_length=0, refine_every=1, densify_grad_thresh=0.0, cull_alpha_thresh=0.1)
    model.strategy.grow_scale3d = float(torch.exp(model.gauss_params["scales"].detach()).amax(-1).median())
    model.train()
    optimizers = Optimizers(splatent_config.optimizers, model.get_param_groups())

    def train_step(step: int, densify: bool) -> None:
        model.step_cb(optimizers, step)
        outputs = model.get_outputs(_camera())
        loss = outputs["rgb"].mean() + outputs["latent_render"].square().mean()
        loss.backward()
        if densify:
            model.step_post_backward(step)
        else:
            optimizers.optimizer_step_all()
        optimizers.zero_grad_all()

    train_step(0, densify=False)  # creates Adam state
    gp = model.gauss_params
    n0 = gp["means"].shape[0]
    # tag each Gaussian: latents carry copies of parameters that clone/split keep unchanged
    with torch.no_grad():
        gp["latents"][:, 0] = gp["features_dc"][:, 0]
        gp["latents"][:, 1] = gp["quats"][:, 0]
        gp["latents"][:, 2] = gp["opacities"][:, 0]
    opt = optimizers.optimizers["latents"]
    state = opt.state[opt.param_groups[0]["params"][0]]
    state["exp_avg"][:, 0] = gp["features_dc"][:, 0].detach()

    train_step(10, densify=True)  # step 10: past the pause after the (step-0) opacity reset
    n1 = gp["means"].shape[0]
    assert n1 != n0, "densification did not run"
    assert all(p.shape[0] == n1 for p in gp.values())
    torch.testing.assert_close(gp["latents"][:, 0], gp["features_dc"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(gp["latents"][:, 1], gp["quats"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(gp["latents"][:, 2], gp["opacities"][:, 0], rtol=0, atol=0)
    latent_param = opt.param_groups[0]["params"][0]
    assert latent_param is gp["latents"]
    exp_avg = opt.state[latent_param]["exp_avg"]
    assert exp_avg.shape == (n1, 32)
    # surviving originals keep their optimizer state row; new rows start at zero (gsplat's rule)
    keep = exp_avg[:, 0] != 0
    torch.testing.assert_close(exp_avg[keep, 0], gp["features_dc"][keep, 0].detach(), rtol=0, atol=0)


def test_outputs_in_eval_mode() -> None:
    model = _model()
    model.eval()
    with torch.no_grad():
        out = model.get_outputs_for_camera(_camera(size=36))  # not a multiple of 8: decoded covers 32x32
    for key in ["rgb", "rgb_gaussians", "latent", "depth", "accumulation"]:
        assert out[key].shape[:2] == (36, 36), key
    assert out["depth"].shape[-1] == 1 and out["latent"].shape[-1] == 3
    assert float(out["accumulation"].max()) > 0.1
    # the 4-pixel strip past the largest multiple of 8 is background in the decoded image
    torch.testing.assert_close(out["rgb"][33:, :, :], model.background_color.expand(3, 36, 3), rtol=0, atol=0)


def test_state_dict_roundtrip_resizes_buffers_and_gaussians() -> None:
    src = _model(n_points=200, seed=1)
    src.reference_c2w = torch.randn(5, 3, 4)
    src.reference_latents = torch.randn(5, 32, 4, 6)
    src.reference_sizes = torch.tensor([[4, 6]] * 5)
    src.pca_mean = torch.randn(32)
    dst = _model(n_points=50, seed=2)
    dst.load_state_dict(src.state_dict())
    for name, value in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert dst.reference_latent(2).shape == (32, 4, 6)


def test_loading_latents_of_another_codec_is_refused() -> None:
    model = _model()
    state = model.state_dict()
    state["gauss_params.latents"] = torch.zeros(300, 4)
    with pytest.raises(SplatentError, match="4-channel"):
        model.load_state_dict(state)


def test_nearest_references_uses_the_bank() -> None:
    model = _model()
    with pytest.raises(SplatentError, match="no reference bank"):
        model.nearest_references(torch.eye(4)[:3], k=2)
    g = torch.Generator().manual_seed(3)
    c2w = torch.eye(4)[:3].repeat(8, 1, 1)
    c2w[:, :, 3] = torch.randn(8, 3, generator=g)
    model.reference_c2w = c2w
    query = c2w[0].clone()
    query[:, 3] += 0.01
    got = model.nearest_references(query, k=3)
    assert got.tolist() == select_references(query_c2ws=query, train_c2ws=c2w, k=3).tolist()
    assert got[0].item() == 0
    assert model.nearest_references(query).shape == (3,)  # config default k


def test_crop_to_multiple_keeps_top_left() -> None:
    image = torch.arange(20 * 27).reshape(20, 27, 1)
    crop = crop_to_multiple(image, 8)
    assert crop.shape == (16, 24, 1)
    assert torch.equal(crop, image[:16, :24])


def test_latent_cache_roundtrip_and_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert default_cache_root() == tmp_path / "env"
    assert LatentCache(codec_name="taef2").dir == tmp_path / "env" / "taef2"
    image = torch.randint(0, 255, (16, 16, 3), dtype=torch.uint8)
    other = image.clone()
    other[0, 0, 0] ^= 1
    assert image_key(image) != image_key(other)
    assert image_key(image) != image_key(image, extra="bg")
    assert image_key(image) == image_key(image.clone())
    cache = LatentCache(codec_name="taef2", root=tmp_path / "explicit")
    key = image_key(image)
    assert cache.get(key) is None
    latent = torch.randn(32, 2, 2)
    cache.put(key, latent)
    assert torch.equal(cache.get(key), latent)
    assert [p.name for p in cache.dir.iterdir()] == [f"{key}.safetensors"]  # no temp files left
    cache.path(key).write_bytes(b"truncated")
    assert cache.get(key) is None  # a corrupt entry is a miss, not a crash


def test_pca_basis_is_fixed_and_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 8, generator=g)
    samples = torch.randn(2000, 3, generator=g) * torch.tensor([5.0, 2.0, 1.0]) @ basis + 3.0
    mean, comps, lo, hi = fit_pca(samples)
    torch.testing.assert_close(comps.T @ comps, torch.eye(3), atol=1e-4, rtol=0)
    # the data lie in a 3D subspace: the 3 components span it
    recon = (samples - mean) @ comps @ comps.T + mean
    torch.testing.assert_close(recon, samples, atol=1e-3, rtol=0)
    again = fit_pca(samples[torch.randperm(2000, generator=g)])  # same set, shuffled
    torch.testing.assert_close(again[1], comps, atol=1e-4, rtol=0)
    img = project_pca(samples[:64].reshape(8, 8, 8), mean=mean, components=comps, lo=lo, hi=hi)
    assert img.shape == (8, 8, 3) and float(img.min()) >= 0 and float(img.max()) <= 1


def test_training_losses_latent_and_decoded() -> None:
    model = _model(decoded_loss_weight=0.5, decoded_loss_every=1, latent_loss_weight=2.0)
    model.train()
    optimizers = Optimizers(splatent_config.optimizers, model.get_param_groups())
    model.step_cb(optimizers, 0)
    g = torch.Generator().manual_seed(5)
    model.reference_latents = torch.randn(4, 32, 4, 4, generator=g)
    model.reference_sizes = torch.tensor([[4, 4]] * 4)
    outputs = model.get_outputs(_camera())
    assert outputs["latent_render"].shape == (4, 4, 32)  # 32x32 image / 8
    batch = {"image": torch.randint(0, 255, (32, 32, 3), dtype=torch.uint8, generator=g), "image_idx": 2}
    losses = model.get_loss_dict(outputs, batch)
    expected = 2.0 * (outputs["latent_render"] - model.reference_latents[2].permute(1, 2, 0)).abs().mean()
    torch.testing.assert_close(losses["latent_loss"], expected)
    assert {"main_loss", "latent_loss", "decoded_loss"} <= set(losses)
    losses["decoded_loss"].backward()
    assert model.gauss_params["latents"].grad is not None and model.gauss_params["latents"].grad.abs().sum() > 0
