"""The splatent nerfstudio model's ``rgb_enhanced`` output: refiner + reference bank, eval renders only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.optimizers import Optimizers

from nerfstudio_plugin.splatent_config import splatent_config
from nerfstudio_plugin.splatent_model import SplatentModel, SplatentModelConfig
from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, RefinerConfig, save_refiner

TINY_UNET = EmbeddedUNetConfig(
    block_out_channels=(16, 16), attention_from_level=1, attention_head_dim=8, norm_num_groups=8
)


def _refiner_dir(tmp_path: Path, *, trained: bool, channels: int = 32, name: str = "refiner") -> Path:
    torch.manual_seed(0)
    refiner = RefinerConfig(latent_channels=channels, num_references=2, embedded=TINY_UNET).setup()
    if trained:  # random output conv: no longer the identity
        with torch.no_grad():
            for p in refiner.backbone.unet.conv_out.parameters():
                p.copy_(torch.randn_like(p) * 0.2)
    return save_refiner(refiner, tmp_path / name)


def _model(**overrides) -> SplatentModel:
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(300, 3, generator=g) - 0.5
    rgb = (torch.rand(300, 3, generator=g) * 255).to(torch.uint8)
    torch.manual_seed(0)
    model = SplatentModelConfig(**overrides).setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=4, seed_points=(pts, rgb)
    )
    # reference bank: 4 cameras at x = 0, 1, 2, 3 (z = 3), latents 5x6 (the 32² render's latent is 4x4: resized)
    c2w = torch.eye(4).repeat(4, 1, 1)
    c2w[:, 0, 3] = torch.arange(4.0)
    c2w[:, 2, 3] = 3.0
    model.reference_c2w = c2w
    model.reference_Ks = torch.tensor([[40.0, 0, 24], [0, 40.0, 20], [0, 0, 1]]).repeat(4, 1, 1)
    model.reference_latents = torch.randn(4, 32, 5, 6, generator=g)
    model.reference_sizes = torch.tensor([[40, 48]] * 4)  # image sizes: 5x6 latents
    return model


def _camera(x: float = 0.2, size: int = 32) -> Cameras:
    c2w = torch.tensor([[1.0, 0, 0, x], [0, 1, 0, 0], [0, 0, 1, 3.0]])[None]
    return Cameras(
        camera_to_worlds=c2w,
        fx=40.0,
        fy=40.0,
        cx=size / 2,
        cy=size / 2,
        width=size,
        height=size,
        camera_type=CameraType.PERSPECTIVE,
    )


def test_identity_refiner_reproduces_the_decoded_render_and_skips_training(tmp_path: Path) -> None:
    model = _model(refiner=_refiner_dir(tmp_path, trained=False))
    model.train()
    model.step_cb(Optimizers(splatent_config.optimizers, model.get_param_groups()), 0)
    assert "rgb_enhanced" not in model.get_outputs(_camera())
    assert model._refiner is None, "the refiner must not be loaded for training steps"
    model.eval()
    with torch.no_grad():
        out = model.get_outputs_for_camera(_camera(size=36))  # 36: decoded/enhanced cover the top-left 32x32
    assert out["rgb_enhanced"].shape == (36, 36, 3)
    # equal up to the decoder's float rounding (the refined latent is contiguous, the render's is not)
    torch.testing.assert_close(out["rgb_enhanced"], out["rgb"], rtol=0, atol=1e-5)

    metrics, images = model.get_image_metrics_and_images(out, {"image": torch.rand(36, 36, 3)})
    assert metrics["psnr_enhanced"] == pytest.approx(metrics["psnr"]) and "ssim_enhanced" in metrics
    assert images["img_enhanced"].shape == (36, 72, 3)


def test_enhanced_render_uses_the_nearest_references(tmp_path: Path) -> None:
    model = _model(refiner=_refiner_dir(tmp_path, trained=True))
    model.eval()
    camera = _camera(x=0.2)  # nearest training cameras: 0 and 1 (k = the refiner's 2)
    assert model.nearest_references(camera.camera_to_worlds[0], k=2) == [0, 1]
    with torch.no_grad():
        base = model.get_outputs_for_camera(camera)
        assert not torch.allclose(base["rgb_enhanced"], base["rgb"])
        model.reference_latents[3] += 2.0  # not among the nearest: no effect
        torch.testing.assert_close(
            model.get_outputs_for_camera(camera)["rgb_enhanced"], base["rgb_enhanced"], rtol=0, atol=0
        )
        model.reference_latents[1] += 2.0  # the second nearest: changes the refined image
        assert not torch.allclose(model.get_outputs_for_camera(camera)["rgb_enhanced"], base["rgb_enhanced"])
    with torch.no_grad():  # k = 0 still works (target-only grid)
        model.config.num_references = 0
        assert model.get_outputs_for_camera(camera)["rgb_enhanced"].shape == (32, 32, 3)


def test_missing_embedded_refiner_is_logged_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    model = _model()  # refiner="embedded" by default; loaded at the first eval render
    monkeypatch.setenv("SPLATENT_ASSETS", str(tmp_path / "no_assets"))
    model.eval()
    with torch.no_grad():
        outs = [model.get_outputs_for_camera(_camera()) for _ in range(2)]
    assert all("rgb_enhanced" not in o and "rgb" in o for o in outs)
    assert " ".join(capsys.readouterr().out.split()).count("no rgb_enhanced output") == 1
    assert model.refiner is None


def test_refiner_for_another_latent_space_fails_at_setup(tmp_path: Path) -> None:
    with pytest.raises(SplatentError, match="4-channel latents"):
        _model(refiner=_refiner_dir(tmp_path, trained=False, channels=4))
    with pytest.raises(SplatentError, match="does not exist"):
        _model(refiner=tmp_path / "absent")
    model = _model(refiner="none")
    model.eval()
    with torch.no_grad():
        assert "rgb_enhanced" not in model.get_outputs_for_camera(_camera())


def test_ns_train_splatent_enhances_with_the_shipped_refiner_by_default() -> None:
    """Default: the shipped refiner made RGB-guided and residual, so before any adaptation rgb_enhanced is the RGB
    splats exactly; --pipeline.model.refiner embedded: the shipped pure-latent refiner, which changes the decoded
    render."""
    from splatent_viewer.paths import assets_dir

    assert SplatentModelConfig().refiner == "guided"
    model = _model()  # no refiner option: the shipped assets/refiner, made guided
    model.eval()
    with torch.no_grad():
        out = model.get_outputs_for_camera(_camera())
    assert model.refiner is not None and model.refiner.config.codec == "taef2"
    assert model.refiner.config.guided and model.refiner.config.residual
    assert model.refiner.source == assets_dir() / "refiner"
    assert model.refiner.config.num_references == 3 and (assets_dir() / "refiner" / "refiner.json").is_file()
    assert out["rgb_enhanced"].shape == out["rgb"].shape == (32, 32, 3)
    torch.testing.assert_close(out["rgb_enhanced"], out["rgb_gaussians"], atol=1e-5, rtol=0)

    model = _model(refiner="embedded")
    model.eval()
    with torch.no_grad():
        out = model.get_outputs_for_camera(_camera())
    assert model.refiner is not None and not model.refiner.config.guided
    assert not torch.allclose(out["rgb_enhanced"], out["rgb"])  # trained: not the identity
