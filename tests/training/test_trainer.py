"""Core latent-splat trainer: it learns, densifies latents with everything else, and respects weights."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from gsplat.strategy import DefaultStrategy

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.splats import SPLAT_KEYS
from splatent_viewer.training.step import LossConfig
from splatent_viewer.training.trainer import LatentSplatTrainerConfig, encode_views, train_latent_splats


def test_training_lowers_loss_and_keeps_parameters_aligned(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    config = LatentSplatTrainerConfig(
        steps=60,
        sh_degree=1,
        sh_degree_interval=30,
        strategy=DefaultStrategy(
            refine_start_iter=20, refine_stop_iter=50, refine_every=10, reset_every=10_000, grow_grad2d=1e-5
        ),
    )
    result = train_latent_splats(scene=scene, codec=codec, config=config, progress=False)
    first, last = sum(result.losses[:8]) / 8, sum(result.losses[-8:]) / 8
    assert last < 0.8 * first, (first, last)
    n = result.params["means"].shape[0]
    assert n != 1500, "densification did not change the Gaussian count"
    assert all(result.params[k].shape[0] == n for k in SPLAT_KEYS)
    assert result.params["latents"].shape[1] == codec.latent_channels
    assert result.sh_degree == 1
    assert all(torch.isfinite(v).all() for v in result.params.values())


def test_latent_only_training_leaves_rgb_untouched(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    config = LatentSplatTrainerConfig(steps=10, loss=LossConfig(rgb_weight=0.0), densify=False)
    result = train_latent_splats(scene=scene, codec=codec, config=config, progress=False)
    # Without the RGB loss the SH colours get no gradient: they stay at their initial values.
    from splatent_viewer.splats.sh import rgb_to_sh

    _, colors = scene.load_points()
    torch.testing.assert_close(result.params["features_dc"], rgb_to_sh(colors))
    assert result.params["latents"].abs().sum() > 0


def test_encode_views_matches_codec(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    lat = torch.stack(encode_views(scene=scene, indices=[0, 3], codec=codec, device="cpu"))
    assert lat.shape == (2, 32, 8, 8)
    with torch.no_grad():
        direct = codec.encode(scene.load_image(3).permute(2, 0, 1)[None])
    torch.testing.assert_close(lat[1:], direct)


def test_decoded_image_loss_backpropagates_through_the_decoder(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    base = dict(steps=3, densify=False)
    plain = train_latent_splats(
        scene=scene,
        codec=codec,
        progress=False,
        config=LatentSplatTrainerConfig(**base, loss=LossConfig(rgb_weight=0.0, decoded_every=1)),
    )
    with_decoded = train_latent_splats(
        scene=scene,
        codec=codec,
        progress=False,
        config=LatentSplatTrainerConfig(**base, loss=LossConfig(rgb_weight=0.0, decoded_every=1, decoded_weight=1.0)),
    )
    # Same seed and views: only the decoded-image term differs, so latents must move differently
    # and the logged loss must include the (positive) extra term.
    assert not torch.allclose(plain.params["latents"], with_decoded.params["latents"])
    assert with_decoded.losses[0] > plain.losses[0]
    assert all(not p.requires_grad for p in codec.parameters())


def test_given_training_latents_are_the_targets_and_come_back(tiny_scene_dir):
    import pytest

    from splatent_viewer.errors import SplatentError

    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    train = scene.split_indices["train"].tolist()
    config = LatentSplatTrainerConfig(steps=4, densify=False)
    encoded = train_latent_splats(scene=scene, codec=codec, config=config, progress=False)
    latents = encode_views(scene=scene, indices=train, codec=codec, device="cpu")
    torch.testing.assert_close(encoded.train_latents, latents)  # returned for the reference bank
    given = train_latent_splats(scene=scene, codec=codec, config=config, progress=False, train_latents=latents)
    torch.testing.assert_close(given.params["latents"], encoded.params["latents"])
    # They really are the loss targets: other targets train other latents.
    other = train_latent_splats(scene=scene, codec=codec, config=config, progress=False, train_latents=latents[::-1])
    assert not torch.allclose(other.params["latents"], encoded.params["latents"])
    with pytest.raises(SplatentError, match="expected"):
        train_latent_splats(scene=scene, codec=codec, config=config, progress=False, train_latents=latents[1:])


def test_settings_record_flattens_nested_configs():
    settings = LatentSplatTrainerConfig(loss=LossConfig(decoded_weight=0.5)).scalar_settings()
    assert settings["loss.decoded_weight"] == 0.5 and settings["lr.latents"] == 0.025 and settings["steps"] == 2000
    assert not any(k.startswith("strategy") for k in settings)


def test_images_not_fitted_to_the_codec_are_refused_with_the_fix(tiny_scene_dir):
    import pytest

    from splatent_viewer.errors import SplatentError

    scene = load_scene(tiny_scene_dir)
    scene.widths = scene.widths - 4  # as a loader without size_multiple would report a 60-pixel-wide capture
    with pytest.raises(SplatentError, match="size_multiple=8"):
        train_latent_splats(
            scene=scene, codec=load_codec("taef2"), config=LatentSplatTrainerConfig(steps=1), progress=False
        )


def test_views_of_different_sizes_train_together(scene_makers, tmp_path):
    """A capture whose views differ in size (as ns-train splatent takes them): each view renders at its own size."""
    folder = scene_makers.make_odd_size_scene(tmp_path / "odd", frames=(2, 9, 15, 21), sizes=((58, 66), (42, 66)))
    scene = load_scene(folder, size_multiple=8)
    train = scene.split_indices["train"].tolist()
    assert {(int(scene.widths[i]), int(scene.heights[i])) for i in train} == {(56, 64), (40, 64)}
    codec = load_codec("taef2")
    result = train_latent_splats(
        scene=scene,
        codec=codec,
        progress=False,
        config=LatentSplatTrainerConfig(steps=6, densify=False, num_random=500),
    )
    assert [tuple(t.shape) for t in result.train_latents] == [(32, 8, 7), (32, 8, 5), (32, 8, 7)]
    assert all(torch.isfinite(torch.tensor(result.losses)))


def test_blender_scenes_train_and_render_on_the_colour_their_images_were_composited_on(scene_makers, tmp_path):
    """RGBA images (blender-data) are composited on ``alpha_color`` by the loader: the trainer composites both passes
    on that colour (and its latent), the run records both, and a reloaded run renders empty space in that colour."""
    from splatent_viewer.frame import render_frame
    from splatent_viewer.trained import load_trained_scene, trained_scene_from_splats
    from splatent_viewer.training.encode import background_latent
    from splatent_viewer.training.trainer import resolve_background

    (tmp_path / "lego").mkdir()
    scene = load_scene(scene_makers.make_blender_scene(tmp_path / "lego", size=(16, 16)), size_multiple=8)
    assert scene.has_alpha()
    codec = load_codec("taef2")
    white = torch.ones(3)
    config = LatentSplatTrainerConfig(steps=3, densify=False, num_random=200)
    result = train_latent_splats(scene=scene, codec=codec, config=config, progress=False)
    assert result.rgb_background is not None and result.latent_background is not None
    torch.testing.assert_close(result.rgb_background, white)
    torch.testing.assert_close(result.latent_background, background_latent(codec=codec, colour=white, device="cpu"))
    assert result.latent_background.abs().max() > 0.1  # white's latent is not the zero latent used for black

    params = dict(result.params)
    params["opacities"] = torch.full_like(params["opacities"], -30.0)  # nothing covers any pixel: background only
    train = scene.split_indices["train"].tolist()
    trained_scene_from_splats(
        scene=scene,
        params=params,
        codec=codec,
        sh_degree=result.sh_degree,
        train_indices=train,
        device="cpu",
        output_dir=tmp_path / "run",
        rgb_background=result.rgb_background,
        latent_background=result.latent_background,
    )
    loaded = load_trained_scene(tmp_path / "run", refiner="none")
    assert loaded.rgb_background is not None and loaded.latent_background is not None
    torch.testing.assert_close(loaded.latent_background, result.latent_background)
    frame = render_frame(
        scene=loaded, c2w=scene.camera_to_worlds[0], K=scene.Ks[0], width=16, height=16, outputs=("rgb", "decoded")
    )
    torch.testing.assert_close(frame.rgb, torch.ones(16, 16, 3))
    assert frame.decoded.mean() > 0.9  # the decoded background latent is (near) white

    # Opaque captures keep black (no background), and the choice can be forced.
    assert resolve_background(scene=scene, mode="black", codec=codec, device="cpu") == (None, None)
    blue = replace(scene, alpha_color=(0.0, 0.0, 1.0))
    rgb, _ = resolve_background(scene=blue, mode="auto", codec=codec, device="cpu")
    torch.testing.assert_close(rgb, torch.tensor([0.0, 0.0, 1.0]))


def test_opaque_captures_train_on_black_as_before(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    assert not scene.has_alpha()
    result = train_latent_splats(
        scene=scene,
        codec=load_codec("taef2"),
        config=LatentSplatTrainerConfig(steps=1, densify=False),
        progress=False,
    )
    assert result.rgb_background is None and result.latent_background is None


def test_latent_every_trains_the_latents_on_every_nth_step_only(tiny_scene_dir):
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    assert [LossConfig(latent_every=3).latent_step(s) for s in range(7)] == [1, 0, 0, 1, 0, 0, 1]
    assert all(LossConfig().latent_step(s) for s in range(5))
    # without an RGB loss there is nothing to train between latent passes: every step has one, at the plain weight
    latents_only = LossConfig(latent_every=3, rgb_weight=0.0, latent_weight=1.5)
    assert all(latents_only.latent_step(s) for s in range(5)) and latents_only.latent_scale == 1.5
    assert LossConfig(latent_every=3, latent_weight=1.5).latent_scale == 4.5
    start = train_latent_splats(
        scene=scene, codec=codec, config=LatentSplatTrainerConfig(steps=0, densify=False), progress=False
    ).params
    moved = {}
    for every in (1, 4):
        config = LatentSplatTrainerConfig(steps=8, loss=LossConfig(latent_every=every), densify=False)
        params = train_latent_splats(scene=scene, codec=codec, config=config, progress=False).params
        assert all(torch.isfinite(v).all() for v in params.values())
        moved[every] = {k: float((params[k] - start[k]).abs().mean()) for k in ("latents", "features_dc")}
    # 8 steps with the latent pass on steps 0 and 4: the latents' Adam took 2 steps instead of 8 ...
    assert 0 < moved[4]["latents"] < 0.5 * moved[1]["latents"], moved
    # ... while the RGB splats trained on all 8 (Adam's steps are ~lr each: about as far)
    assert moved[4]["features_dc"] > 0.5 * moved[1]["features_dc"], moved


@pytest.mark.parametrize("field", ["latent_every", "decoded_every"])
def test_loss_counts_below_one_are_refused_with_the_flag_to_fix(field):
    with pytest.raises(SplatentError, match=f"--trainer.loss.{field.replace('_', '-')}.*--pipeline.model.loss"):
        LossConfig(**{field: 0})
    assert getattr(LossConfig(**{field: 3}), field) == 3
