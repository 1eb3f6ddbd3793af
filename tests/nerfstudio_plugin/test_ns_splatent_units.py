"""Unit tests of the splatent nerfstudio model (no nerfstudio trainer): the adapter over the core step."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.optimizers import Optimizers

from nerfstudio_plugin.splatent_config import splatent_config
from nerfstudio_plugin.splatent_model import TRAIN_CAMERAS_KEY, SplatentModel, SplatentModelConfig
from splatent_viewer.cameras import opengl_c2w_to_viewmat
from splatent_viewer.errors import SplatentError
from splatent_viewer.references import select_references
from splatent_viewer.training.losses import l1_ssim_loss
from splatent_viewer.training.points import TrainingCameras
from splatent_viewer.training.step import LearningRates, LossConfig, render_step, step_losses


def _model(
    n_points: int = 300, seed: int = 0, seed_points: bool = True, metadata: dict | None = None, **overrides
) -> SplatentModel:
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n_points, 3, generator=g) - 0.5
    rgb = (torch.rand(n_points, 3, generator=g) * 255).to(torch.uint8)
    config = SplatentModelConfig(**overrides)
    torch.manual_seed(seed)
    return config.setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])),
        num_train_data=4,
        seed_points=(pts, rgb) if seed_points else None,
        metadata=metadata or {},
    )


def _fill_bank(model: SplatentModel, n: int = 4, size: int = 32, seed: int = 5) -> None:
    """A reference bank of ``n`` cameras around the origin with random latents (as build_reference_bank leaves it)."""
    g = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4).repeat(n, 1, 1)
    c2w[:, :3, 3] = torch.randn(n, 3, generator=g) * 0.1 + torch.tensor([0.0, 0.0, 3.0])
    model.reference_c2w = c2w
    model.reference_Ks = torch.tensor([[40.0, 0, size / 2], [0, 40.0, size / 2], [0, 0, 1]]).repeat(n, 1, 1)
    model.reference_sizes = torch.tensor([[size, size]] * n)
    model.reference_latents = torch.randn(n, 32, size // 8, size // 8, generator=g)


def _training_model(**overrides) -> SplatentModel:
    """A model in training mode at step 0 (optimisers wired as nerfstudio's trainer does) with a filled bank."""
    model = _model(**overrides)
    model.train()
    optimizers = Optimizers(splatent_config.optimizers, model.get_param_groups())
    model.step_cb(optimizers, 0)
    _fill_bank(model)
    return model


def _camera(z: float = 3.0, size: int = 32) -> Cameras:
    c2w = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, z]])[None]
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


def test_latent_channels_match_codec() -> None:
    model = _model()
    assert model.latent_channels == 32 and model.downscale == 8  # taef2
    assert model.gauss_params["latents"].shape == (300, 32)
    assert "latents" in model.get_param_groups()
    # nerfstudio's optimiser table is the core's learning-rate table
    rates = LearningRates().table()
    assert {k: v["optimizer"].lr for k, v in splatent_config.optimizers.items() if k != "camera_opt"} == rates
    assert splatent_config.optimizers["means"]["scheduler"].lr_final == LearningRates().means_final


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
    _fill_bank(src, n=5)
    src.reference_latents = torch.randn(5, 32, 4, 6)
    src.reference_sizes = torch.tensor([[32, 48]] * 5)
    src.pca_mean = torch.randn(32)
    dst = _model(n_points=50, seed=2)
    dst.load_state_dict(src.state_dict())
    for name, value in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert dst.reference_bank.latent(2).shape == (32, 4, 6)


def test_checkpoints_without_bank_intrinsics_are_refused_with_the_fix() -> None:
    model = _model()
    state = {k: v for k, v in model.state_dict().items() if k != "reference_Ks"}
    with pytest.raises(SplatentError, match="re-train the run"):
        model.load_state_dict(state)


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
    _fill_bank(model, n=8)
    c2w = model.reference_c2w
    query = c2w[0, :3].clone()
    query[:, 3] += 0.01
    got = model.nearest_references(query, k=3)
    assert got == select_references(query_c2ws=query, train_c2ws=c2w, k=3).tolist()
    assert got[0] == 0
    assert model.nearest_references(c2w[1], k=3)[0] != 1  # a training camera's own pose is skipped


def test_training_losses_latent_and_decoded() -> None:
    model = _training_model(loss=LossConfig(decoded_weight=0.5, decoded_every=1, latent_weight=2.0))
    outputs = model.get_outputs(_camera())
    assert outputs["latent_render"].shape == (32, 4, 4)  # 32x32 image / 8
    g = torch.Generator().manual_seed(5)
    batch = {"image": torch.randint(0, 255, (32, 32, 3), dtype=torch.uint8, generator=g), "image_idx": 2}
    losses = model.get_loss_dict(outputs, batch)
    expected = 2.0 * (outputs["latent_render"] - model.reference_latents[2]).abs().mean()
    torch.testing.assert_close(losses["latent_loss"], expected)
    assert {"rgb_loss", "latent_loss", "decoded_loss"} <= set(losses)
    losses["decoded_loss"].backward()
    assert model.gauss_params["latents"].grad is not None and model.gauss_params["latents"].grad.abs().sum() > 0


def test_latent_every_skips_the_latent_pass_between_latent_steps() -> None:
    # --pipeline.model.loss.latent-every 2: odd steps render and train the RGB splats alone
    model = _training_model(loss=LossConfig(latent_every=2, decoded_weight=0.5, decoded_every=1))
    g = torch.Generator().manual_seed(5)
    batch = {"image": torch.randint(0, 255, (32, 32, 3), dtype=torch.uint8, generator=g), "image_idx": 2}
    optimizers = Optimizers(splatent_config.optimizers, model.get_param_groups())
    for step, latent in ((0, True), (1, False), (2, True)):
        model.step_cb(optimizers, step)
        outputs = model.get_outputs(_camera())
        losses = model.get_loss_dict(outputs, batch)
        assert ("latent_render" in outputs) is latent
        assert set(losses) == ({"rgb_loss", "latent_loss", "decoded_loss"} if latent else {"rgb_loss"})
        torch.stack(list(losses.values())).sum().backward()
        grad = model.gauss_params["latents"].grad
        assert (grad is not None and bool(grad.abs().sum() > 0)) is latent
        assert model.info["means2d"].grad is not None  # densification's gradient on every step
        optimizers.zero_grad_all()


def test_a_training_step_is_the_core_step() -> None:
    """The same Gaussians, camera and image give the same outputs and losses through ns-train's model as through
    the core trainer's step functions (camera conventions, intrinsics, backgrounds, resolution schedule)."""
    model = _model(
        loss=LossConfig(latent_weight=1.5, rgb_weight=0.7),
        num_downscales=1,
        resolution_schedule=1000,
        background_color="black",
    )
    model.train()
    optimizers = Optimizers(splatent_config.optimizers, model.get_param_groups())
    model.step_cb(optimizers, 600)  # SH degree 0 (interval 1000), RGB at 1/2 (one downscale before step 1000)
    _fill_bank(model, size=48)
    camera = _camera(z=2.5, size=48)
    outputs = model.get_outputs(camera)
    image = torch.rand(48, 48, 3, generator=torch.Generator().manual_seed(1))
    losses = model.get_loss_dict(outputs, {"image": image, "image_idx": 1})

    params = {k: v.detach() for k, v in model.gauss_params.items()}
    c2w = torch.cat([camera.camera_to_worlds[0], torch.tensor([[0.0, 0, 0, 1]])])
    core = render_step(
        params=params,
        viewmat=opengl_c2w_to_viewmat(c2w)[None],
        K=camera.get_intrinsics_matrices(),
        width=48,
        height=48,
        latent_downscale=8,
        sh_degree=0,
        rgb_downscale=2,
        rgb_background=torch.zeros(3),
        latent_background=model.background_latent,
    )
    torch.testing.assert_close(outputs["rgb"].detach(), core.rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(outputs["latent_render"].detach(), core.latent, rtol=0, atol=1e-6)
    assert "depth" not in outputs  # splatfacto's output_depth_during_training=False: no depth channel composited
    small = model.get_gt_img(image)
    expected = step_losses(
        render=core,
        image=small,
        target_latent=model.reference_latents[1],
        loss=model.config.loss,
        ssim_lambda=model.config.ssim_lambda,
        step=600,
    )
    assert small.shape == (24, 24, 3)
    for name in ("latent_loss", "rgb_loss"):
        torch.testing.assert_close(losses[name].detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(
        expected["rgb_loss"],
        0.7 * l1_ssim_loss(core.rgb.permute(2, 0, 1)[None], small.permute(2, 0, 1)[None], ssim_lambda=0.2),
    )


def test_scenes_without_points_start_in_the_training_frustums() -> None:
    """No seed points (e.g. the Middlebury dino): the model starts from random points the training cameras see,
    as the core trainer does, not splatfacto's cube."""
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, :3, 3] = torch.tensor([[0.0, 0.0, 3.0], [0.3, 0.0, 3.0]])
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]).repeat(2, 1, 1)
    cams = TrainingCameras(c2w=c2w, Ks=K, widths=torch.tensor([32, 32]), heights=torch.tensor([32, 32]))
    model = _model(seed_points=False, metadata={TRAIN_CAMERAS_KEY: cams}, num_random=2000)
    means = model.gauss_params["means"].detach()
    assert means.shape == (2000, 3)
    seen = torch.zeros(2000, dtype=torch.bool)
    for i in range(2):
        cam = (opengl_c2w_to_viewmat(c2w[i]) @ torch.cat([means, torch.ones(2000, 1)], 1).T).T[:, :3]
        uv = (K[i] @ cam.T).T
        u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
        seen |= (cam[:, 2] > 0) & (u >= 0) & (u <= 32) & (v >= 0) & (v <= 32)  # in front (OpenCV +z), in the image
    assert bool(seen.all())


def test_training_metrics_are_splatfactos_computed_on_the_device() -> None:
    """get_metrics_dict's PSNR (computed without torchmetrics' host copy) is torchmetrics' value; the colour-corrected
    PSNR comes with splatfacto's switch; the Gaussian count as splatfacto reports it."""
    model = _training_model(color_corrected_metrics=True)
    outputs = model.get_outputs(_camera())
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(3))
    metrics = model.get_metrics_dict(outputs, {"image": image, "image_idx": 0})
    gt = model.composite_with_background(model.get_gt_img(image), outputs["background"])
    torch.testing.assert_close(metrics["psnr"], model.psnr(outputs["rgb"].detach(), gt), rtol=1e-5, atol=1e-5)
    assert "cc_psnr" in metrics and torch.isfinite(metrics["cc_psnr"])
    assert metrics["gaussian_count"] == model.num_points


def test_depth_during_training_follows_splatfactos_switch() -> None:
    model = _training_model(output_depth_during_training=True)
    outputs = model.get_outputs(_camera())
    depth, alpha = outputs["depth"], outputs["accumulation"]
    assert depth.shape == alpha.shape == (32, 32, 1) and bool((depth[alpha > 0] > 0).all())


@pytest.mark.parametrize(
    ("kind", "expected"), [("blender", "white"), ("blender-alpha", "random"), ("nerfstudio", "black")]
)
def test_auto_background_follows_the_training_images(tmp_path, scene_makers, kind, expected) -> None:
    """background_color=auto resolves from the training images as ns-train loads them: blender-data composites RGBA
    views on white (so white: empty space needs no Gaussians), RGBA views kept with their alpha train on splatfacto's
    random background (eval on viser's), opaque captures on black."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from nerfstudio_plugin.datamanager import SplatentDatamanagerConfig

    if kind.startswith("blender"):
        data = scene_makers.make_blender_scene(tmp_path, size=(16, 16))
        parser = BlenderDataParserConfig(alpha_color="white" if kind == "blender" else None)
    else:
        data, parser = scene_makers.make_odd_size_scene(tmp_path), NerfstudioDataParserConfig()
    dm = SplatentDatamanagerConfig(dataparser=parser, cache_images_type="uint8", data=data).setup(device="cpu")
    assert dm.cached_train[0]["image"].shape[-1] == (4 if kind == "blender-alpha" else 3)
    model = _model()
    assert model.config.background_color == "auto"
    assert model.resolve_background(datamanager=dm) == expected == model.config.background_color
    model.train()
    backgrounds = torch.stack([model._get_background_color() for _ in range(2)])
    if expected == "random":
        assert not torch.equal(backgrounds[0], backgrounds[1])  # a new one every step
        model.eval()
        torch.testing.assert_close(model._get_background_color(), torch.tensor([0.1490, 0.1647, 0.2157]))
    else:
        assert torch.equal(backgrounds, torch.full((2, 3), 1.0 if expected == "white" else 0.0))
        torch.testing.assert_close(model.background_color.float(), backgrounds[0])
