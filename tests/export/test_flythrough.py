"""export_flythrough on the tiny trained scene: every mode, frame content, stats, atomicity."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.export.camera_paths import CameraPath, intrinsics_for_fov, orbit_path, vertical_fov
from splatent_viewer.export.consistency import reprojection, warped_difference
from splatent_viewer.export.flythrough import ExportConfig, export_flythrough, stats_path_for
from splatent_viewer.frame import render_frame
from splatent_viewer.trained import load_trained_scene


@pytest.fixture(scope="module")
def scene(tiny_trained_scene_dir, tiny_refiner_dir):
    return load_trained_scene(tiny_trained_scene_dir, device="cpu", refiner=tiny_refiner_dir)


def _orbit(scene, frames: int = 6, size: int = 64) -> CameraPath:
    bank = scene.references
    c2ws = orbit_path(train_c2ws=bank.c2w.double(), num_frames=frames).float()
    fov = vertical_fov(K=bank.Ks[0], height=int(bank.sizes[0][0]))
    return CameraPath(
        c2ws=c2ws, Ks=intrinsics_for_fov(fov=[fov] * frames, width=size, height=size).float(), width=size, height=size
    )


def _png_frames(folder) -> np.ndarray:
    return np.stack([iio.imread(p) for p in sorted(folder.glob("frame_*.png"))])


def _u8(img: torch.Tensor) -> np.ndarray:
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


@pytest.mark.parametrize("mode,width", [("decoded", 64), ("enhanced", 64), ("side-by-side", 128), ("rgb", 64)])
def test_every_mode_writes_a_video_that_reads_back(scene, tmp_path, mode, width):
    out = tmp_path / f"{mode}.mp4"
    result = export_flythrough(scene=scene, cameras=_orbit(scene), config=ExportConfig(output=out, mode=mode, fps=12))
    video = iio.imread(out, plugin="pyav")
    assert video.shape == (6, 64, width, 3)
    assert iio.immeta(out, plugin="pyav")["codec"] == "h264"
    assert (result.frames, result.width, result.height, result.fps, result.seconds) == (6, width, 64, 12.0, 0.5)
    stats = json.loads(stats_path_for(out).read_text())
    assert stats["frames"] == 6 and stats["mode"] == mode and stats["fps"] == 12.0
    expected_streams = {"decoded": {"decoded"}, "rgb": {"rgb"}}.get(mode, {"decoded", "enhanced"})
    assert set(stats["flicker"]) == expected_streams
    assert all(v > 0 for v in stats["flicker"].values())  # the camera moves, so frames differ
    if mode in ("enhanced", "side-by-side"):
        assert stats["num_references"] == 2 and stats["reference_switches"] <= stats["nearest_reference_switches"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, stats_path_for(out).name])


def test_png_frames_match_direct_renders_and_flicker_is_measured_on_them(scene, tmp_path):
    cams = _orbit(scene, frames=4)
    out = tmp_path / "frames"
    result = export_flythrough(
        scene=scene, cameras=cams, config=ExportConfig(output=out, mode="side-by-side", sticky_references=False)
    )
    frames = _png_frames(out)
    assert frames.shape == (4, 64, 128, 3)
    for i in (0, 3):
        f = render_frame(
            scene=scene, c2w=cams.c2ws[i], K=cams.Ks[i], width=64, height=64, outputs=("decoded", "enhanced")
        )
        np.testing.assert_array_equal(frames[i, :, :64], _u8(f.decoded))
        np.testing.assert_array_equal(frames[i, :, 64:], _u8(f.enhanced))
    assert np.abs(frames[:, :, 64:].astype(int) - frames[:, :, :64]).mean() > 1.0  # the refiner changes the image
    for stream, half in (("decoded", slice(0, 64)), ("enhanced", slice(64, 128))):
        x = frames[:, :, half].astype(np.float64) / 255
        assert result.flicker[stream] == pytest.approx(np.abs(np.diff(x, axis=0)).mean(), abs=2e-3)
    assert stats_path_for(out) == tmp_path / "frames.stats.json" and stats_path_for(out).is_file()


def test_warped_flicker_is_the_frames_change_along_the_gaussians_depth(scene, tmp_path):
    """Recomputed here from the written frames and the renderer's own depth, on the same pixels for every stream.
    The RGB splats stick to the Gaussians, so the warp takes the camera's motion out of their flicker; the tiny
    scene's decoded view (8x8 latents) does not follow its surfaces, which is what the warped flicker exposes."""
    orbit = _orbit(scene, frames=36)  # 10 degrees a frame: neighbours see mostly the same surface
    cams = CameraPath(c2ws=orbit.c2ws[:4], Ks=orbit.Ks[:4], width=64, height=64)
    result = export_flythrough(
        scene=scene, cameras=cams, config=ExportConfig(output=tmp_path / "f", mode="side-by-side", write_stats=False)
    )
    frames = torch.from_numpy(_png_frames(tmp_path / "f")).double() / 255
    geo = [
        render_frame(scene=scene, c2w=cams.c2ws[i], K=cams.Ks[i], width=64, height=64, outputs=("depth", "alpha"))
        for i in range(4)
    ]
    reprojs = [
        reprojection(
            depth=geo[i].depth,
            alpha=geo[i].alpha,
            c2w=cams.c2ws[i],
            K=cams.Ks[i],
            prev_depth=geo[i - 1].depth,
            prev_alpha=geo[i - 1].alpha,
            prev_c2w=cams.c2ws[i - 1],
            prev_K=cams.Ks[i - 1],
        )  # fmt: skip
        for i in (1, 2, 3)
    ]
    assert result.warped_coverage == pytest.approx(sum(r.coverage for r in reprojs) / 3)
    assert 0.5 < result.warped_coverage <= 1.0
    assert set(result.warped_flicker) == {"decoded", "enhanced"}
    for stream, half in (("decoded", slice(0, 64)), ("enhanced", slice(64, 128))):
        x = frames[:, :, half]
        values = [warped_difference(x[i], x[i - 1], reprojs[i - 1]) for i in (1, 2, 3)]
        assert result.warped_flicker[stream] == pytest.approx(sum(values) / 3, abs=2e-3)
    rgb = export_flythrough(
        scene=scene, cameras=cams, config=ExportConfig(output=tmp_path / "r", mode="rgb", write_stats=False)
    )
    assert 0 < rgb.warped_flicker["rgb"] < rgb.flicker["rgb"] / 2
    off = export_flythrough(
        scene=scene,
        cameras=cams,
        config=ExportConfig(output=tmp_path / "g", mode="rgb", measure_flicker=False, write_stats=False),
    )
    assert off.warped_flicker == {} and off.warped_coverage is None


def test_sticky_references_are_passed_to_the_renderer(scene, tmp_path):
    """With a huge margin the first frame's references are kept all along: the enhanced frames then differ
    from plain-nearest ones wherever the nearest set moved on."""
    cams = _orbit(scene, frames=8)
    kw = dict(mode="enhanced", measure_flicker=False, write_stats=False)
    sticky = export_flythrough(
        scene=scene, cameras=cams, config=ExportConfig(output=tmp_path / "s", relative_margin=0.99, **kw)
    )
    plain = export_flythrough(
        scene=scene, cameras=cams, config=ExportConfig(output=tmp_path / "p", sticky_references=False, **kw)
    )
    assert sticky.reference_switches == 0 and plain.reference_switches > 0
    assert plain.nearest_reference_switches == sticky.nearest_reference_switches == plain.reference_switches
    a, b = _png_frames(tmp_path / "s"), _png_frames(tmp_path / "p")
    np.testing.assert_array_equal(a[0], b[0])  # same first set
    assert np.abs(a[-1].astype(int) - b[-1]).max() > 0


@pytest.mark.parametrize("output", ["cut.mp4", "cut_frames"])
def test_interrupted_export_leaves_no_output_and_no_litter(scene, tmp_path, output):
    def stop_at_third(done: int, total: int) -> None:
        assert total == 6
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_flythrough(
            scene=scene,
            cameras=_orbit(scene),
            config=ExportConfig(output=tmp_path / output),
            progress_callback=stop_at_third,
        )
    assert list(tmp_path.iterdir()) == []


def test_size_is_rounded_to_the_codec_downscale_with_a_note(scene, tmp_path):
    cams = _orbit(scene, frames=2, size=60)
    result = export_flythrough(scene=scene, cameras=cams, config=ExportConfig(output=tmp_path / "r"))
    assert (result.width, result.height) == (64, 64) and "60x60" in result.notes[0]
    assert _png_frames(tmp_path / "r").shape == (2, 64, 64, 3)


def test_bad_requests_fail_before_rendering(tiny_trained_scene_dir, scene, tmp_path):
    no_refiner = load_trained_scene(tiny_trained_scene_dir, device="cpu", refiner="none")
    with pytest.raises(SplatentError, match="needs a refiner"):
        export_flythrough(
            scene=no_refiner, cameras=_orbit(scene), config=ExportConfig(output=tmp_path / "x.mp4", mode="enhanced")
        )
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(SplatentError, match="holds other files"):
        export_flythrough(scene=scene, cameras=_orbit(scene), config=ExportConfig(output=busy))
    with pytest.raises(SplatentError, match=r"\.mp4"):
        export_flythrough(scene=scene, cameras=_orbit(scene), config=ExportConfig(output=tmp_path / "x.avi"))
    for output in (busy / "notes.txt" / "x.mp4", busy / "notes.txt" / "frames"):  # a path under a file: unwritable
        with pytest.raises(SplatentError, match=r"notes\.txt is a file, not a folder"):  # (the viewer's export panel)
            export_flythrough(
                scene=scene,
                cameras=_orbit(scene),
                config=ExportConfig(output=output),
                progress_callback=lambda done, total: pytest.fail("rendered a frame"),
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"] and (busy / "notes.txt").read_text() == "keep me"
