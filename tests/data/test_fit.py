"""Images of any size: fit_image (crop or resize to the codec's multiple) and load_scene(size_multiple=, fit=)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from splatent_viewer.data.fit import describe_fit, fit_image, fitted_size
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError

FRAMES = (2, 9, 15, 21, 27)  # the demo frames make_odd_size_scene uses


def _K(fx=300.0, fy=310.0, cx=130.0, cy=241.0) -> torch.Tensor:
    return torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float32)


def test_fit_image_crop_keeps_top_left_and_intrinsics() -> None:
    image = torch.randint(0, 256, (480, 270, 3), dtype=torch.uint8)
    out, K = fit_image(image, _K(), multiple=8, mode="crop")
    assert out.shape == (480, 264, 3) and out.dtype == torch.uint8 and torch.equal(out, image[:, :264])
    assert torch.equal(K, _K())


def test_fit_image_resize_scales_intrinsics_per_axis() -> None:
    image = torch.rand(500, 270, 4)  # RGBA float
    out, K = fit_image(image, _K(), multiple=8, mode="resize")
    assert out.shape == (496, 264, 4) and out.dtype == torch.float32
    sx, sy = 264 / 270, 496 / 500
    assert torch.allclose(K, _K(fx=300 * sx, fy=310 * sy, cx=130 * sx, cy=241 * sy))
    flat = torch.full((500, 270, 3), 0.25)
    assert torch.allclose(
        fit_image(flat, _K(), multiple=8, mode="resize")[0], torch.tensor(0.25)
    )  # no darkening/brightening
    u8, _ = fit_image((flat * 255).to(torch.uint8), _K(), multiple=8, mode="resize")
    assert u8.dtype == torch.uint8 and int(u8.min()) == int(u8.max()) == 63
    mask, _ = fit_image(torch.ones(500, 270, 1, dtype=torch.bool), _K(), multiple=8, mode="resize", nearest=True)
    assert mask.dtype == torch.bool and mask.shape == (496, 264, 1) and bool(mask.all())


def test_fit_image_leaves_multiples_alone_and_refuses_tiny_images() -> None:
    image = torch.rand(64, 48, 3)
    for mode in ("crop", "resize"):
        out, K = fit_image(image, _K(), multiple=8, mode=mode)
        assert out is image and torch.equal(K, _K())
    with pytest.raises(SplatentError, match="smaller than the codec's 8x8"):
        fitted_size(5, 40, 8)
    with pytest.raises(SplatentError, match="fit must be"):
        fit_image(image, _K(), multiple=8, mode="stretch")
    with pytest.raises(SplatentError, match="size_multiple"):
        fit_image(image, _K(), multiple=0)


def test_describe_fit_counts_sizes() -> None:
    line = describe_fit(
        [(500, 500), (270, 480), (64, 64), (270, 480)],
        [(496, 496), (264, 480), (64, 64), (264, 480)],
        multiple=8,
        mode="resize",
    )
    assert (
        line
        == "3 of 4 views fitted to multiples of 8 (resize, intrinsics scaled): 270x480 → 264x480 (2), 500x500 → 496x496 (1)"
    )
    assert describe_fit([(64, 64)], [(64, 64)], multiple=8, mode="crop") is None


def _ray_consistency_error(makers, image: np.ndarray, K: np.ndarray, frame: int) -> float:
    """Mean |image - demo frame| where both are sampled along the same camera rays: small only when ``K`` is the
    image's true intrinsics (a point projected with K lands on the same content)."""
    reference, valid = makers.demo_along_rays(image, K, frame)
    return float(np.abs(image - reference)[valid].mean())


@pytest.mark.parametrize("fit", ["crop", "resize"])
def test_odd_sizes_fit_to_codec_multiple(scene_makers, odd_size_scene, fit: str, capsys) -> None:
    scene = load_scene(odd_size_scene, size_multiple=8, fit=fit)
    out = capsys.readouterr().out
    how = "top-left crop, intrinsics unchanged" if fit == "crop" else "resize, intrinsics scaled"
    assert out.count("fitted to multiples of 8") == 1
    assert f"5 of 5 views fitted to multiples of 8 ({how}): 270x480 → 264x480 (3), 500x500 → 496x496 (2)" in out
    assert scene.widths.tolist() == [496, 264, 496, 264, 264] and scene.heights.tolist() == [496, 480, 496, 480, 480]
    assert scene.split_indices["train"].tolist() == [0, 1, 2, 3] and scene.split_indices["val"].tolist() == [4]
    for i, (frame, size) in enumerate(zip(FRAMES, scene_makers.ODD_SIZES)):
        _, K_file = scene_makers.odd_size_view(frame, size)
        image = scene.load_image(i)
        assert image.shape == (int(scene.heights[i]), int(scene.widths[i]), 3)
        fitted = (int(scene.widths[i]), int(scene.heights[i]))
        if fit == "crop":
            assert torch.allclose(scene.Ks[i], torch.from_numpy(K_file).float())
            file = torch.from_numpy(np.asarray(Image.open(scene.image_paths[i]), dtype=np.float32) / 255.0)
            assert torch.equal(image, file[: fitted[1], : fitted[0]])
            wrong = K_file.copy()  # a centred crop would have shifted the principal point
            wrong[0, 2] -= (size[0] - fitted[0]) / 2
            wrong[1, 2] -= (size[1] - fitted[1]) / 2
        else:
            sx, sy = fitted[0] / size[0], fitted[1] / size[1]
            assert torch.allclose(scene.Ks[i], torch.from_numpy(K_file * np.array([[sx], [sy], [1.0]])).float())
            wrong = K_file  # the file's intrinsics, not scaled
        error = _ray_consistency_error(scene_makers, image.numpy(), scene.Ks[i].double().numpy(), frame)
        assert error < 0.015, (i, error)
        assert _ray_consistency_error(scene_makers, image.numpy(), wrong, frame) > 3 * error, i  # the test can fail


def test_size_multiple_one_keeps_odd_sizes(odd_size_scene, capsys) -> None:
    scene = load_scene(odd_size_scene)
    assert scene.widths.tolist() == [500, 270, 500, 270, 270]
    assert "fitted" not in capsys.readouterr().out
    assert scene.load_image(1).shape == (480, 270, 3)


def test_fit_arguments_are_checked(odd_size_scene) -> None:
    with pytest.raises(SplatentError, match="size_multiple"):
        load_scene(odd_size_scene, size_multiple=-8)
    with pytest.raises(SplatentError, match="fit must be"):
        load_scene(odd_size_scene, size_multiple=8, fit="pad")  # type: ignore[arg-type]
    with pytest.raises(SplatentError, match=r"frame_00002.png is 500x500 .*smaller than the codec.s 512x512"):
        load_scene(odd_size_scene, size_multiple=512)
