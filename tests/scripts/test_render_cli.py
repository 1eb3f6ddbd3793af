"""splatent-render: subcommand parsing, the generated paths on a trained scene, and a camera-path round trip."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import tyro

from splatent_viewer.references import select_references
from splatent_viewer.scripts.render_cli import (
    CameraPathCommand,
    Command,
    InterpolateCommand,
    SpiralCommand,
    entrypoint,
    main,
)
from splatent_viewer.trained import load_trained_scene


def _parse(*args: str):
    return tyro.cli(Command, args=list(args))


def _frames(folder) -> np.ndarray:
    return np.stack([iio.imread(p) for p in sorted(folder.glob("frame_*.png"))])


def test_orbit_then_its_saved_camera_path_render_the_same_frames(tiny_trained_scene_dir, tmp_path, capsys):
    run = str(tiny_trained_scene_dir)
    orbit = _parse(
        "orbit",
        "--load-config",
        run,
        "--output",
        str(tmp_path / "orbit"),
        "--num-frames",
        "3",
        "--width",
        "60",
        "--device",
        "cpu",
        "--save-camera-path",
        str(tmp_path / "path.json"),
    )
    result = main(orbit)
    assert "rounded to 64x64" in result.notes[0]  # the structured record; printed too, as one line
    assert "rounded to 64x64" in " ".join(capsys.readouterr().out.split())
    assert result.frames == 3 and (result.width, result.height) == (64, 64)
    saved = json.loads((tmp_path / "path.json").read_text())
    assert (saved["render_width"], saved["render_height"], len(saved["camera_path"])) == (64, 64, 3)
    replay = _parse(
        "camera-path",
        "--load-config",
        run,
        "--camera-path-filename",
        str(tmp_path / "path.json"),
        "--output",
        str(tmp_path / "replay"),
        "--device",
        "cpu",
    )
    assert isinstance(replay, CameraPathCommand)
    main(replay)
    a, b = _frames(tmp_path / "orbit"), _frames(tmp_path / "replay")
    assert a.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    stats = json.loads((tmp_path / "replay.stats.json").read_text())
    assert stats["fps"] == pytest.approx(24.0)  # the saved path's frames / seconds


def test_flags_land_in_the_nested_scene_and_export_configs(tmp_path):
    from splatent_viewer.export.flythrough import ExportConfig
    from splatent_viewer.run_config import TrainedSceneConfig

    cmd = _parse(
        "spiral",
        "--load-config",
        "run",
        "--device",
        "cpu",
        "--refiner",
        "none",
        "--codec-path",
        "sd",
        "--no-cuda-graphs",
        "--output",
        "o.mp4",
        "--mode",
        "side-by-side",
        "--fps",
        "12",
        "--num-references",
        "2",
        "--no-sticky-references",
        "--relative-margin",
        "0.3",
        "--quality",
        "5",
        "--no-measure-flicker",
        "--width",
        "60",
        "--height",
        "40",
        "--save-camera-path",
        "p.json",
        "--num-frames",
        "9",
        "--camera-index",
        "2",
    )
    assert cmd.scene == TrainedSceneConfig(
        load_config=Path("run"), device="cpu", refiner="none", codec_path=Path("sd"), cuda_graphs=False
    )
    assert cmd.export == ExportConfig(
        output=Path("o.mp4"),
        mode="side-by-side",
        fps=12.0,
        num_references=2,
        sticky_references=False,
        relative_margin=0.3,
        quality=5,
        measure_flicker=False,
    )
    assert (cmd.width, cmd.height, cmd.save_camera_path, cmd.num_frames, cmd.camera_index) == (
        60,
        40,
        Path("p.json"),
        9,
        2,
    )
    assert _parse("orbit", "--load-config", "run").export == ExportConfig()  # the exporter's defaults


def test_interpolate_and_spiral_follow_the_training_cameras(tiny_trained_scene_dir):
    scene = load_trained_scene(tiny_trained_scene_dir, device="cpu", refiner="none")
    train = scene.references.c2w.double()
    n = train.shape[0]
    cmd = _parse("interpolate", "--load-config", str(tiny_trained_scene_dir), "--num-frames", str(20 * n))
    assert isinstance(cmd, InterpolateCommand)
    path = cmd.cameras(scene)
    assert len(path) == 20 * n and (path.width, path.height) == tuple(int(v) for v in scene.references.sizes[0].flip(0))
    torch.testing.assert_close(path.c2ws[0].double(), train[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(path.c2ws[-1].double(), train[-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(path.Ks[0], scene.references.Ks[0].float(), atol=1e-3, rtol=1e-5)
    # Every training camera is passed (one of the frames is its nearest pose, within a few frame steps).
    step = (path.c2ws[1:, :3, 3] - path.c2ws[:-1, :3, 3]).norm(dim=1).max()
    for i in range(n):
        assert (path.c2ws[:, :3, 3].double() - train[i, :3, 3]).norm(dim=1).min() <= step
    spiral = _parse(
        "spiral",
        "--load-config",
        str(tiny_trained_scene_dir),
        "--num-frames",
        "30",
        "--camera-index",
        "3",
        "--radius",
        "0.1",
    )
    assert isinstance(spiral, SpiralCommand)
    sp = spiral.cameras(scene).c2ws.double()
    assert (sp[:, :3, 3] - train[3, :3, 3]).norm(dim=1).max() <= 0.1 * 1.5 * scene.references.scene_scale
    # It keeps looking where camera 3 looks: camera 3 stays each frame's nearest training view.
    nearest = select_references(query_c2ws=sp, train_c2ws=train, k=1)[:, 0]
    assert (nearest == 3).float().mean() >= 0.8


def test_errors_print_one_line_and_exit_1(tiny_trained_scene_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "splatent-render",
            "spiral",
            "--load-config",
            str(tiny_trained_scene_dir),
            "--camera-index",
            "99",
            "--num-frames",
            "2",
            "--output",
            str(tmp_path / "x.mp4"),
        ],
    )
    with pytest.raises(SystemExit) as e:
        entrypoint()
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert out.startswith("error:") and out.count("\n") == 1 and "--camera-index 99" in out and "Traceback" not in out
    monkeypatch.setattr(
        sys,
        "argv",
        ["splatent-render", "orbit", "--load-config", str(tmp_path / "nope"), "--output", str(tmp_path / "x.mp4")],
    )
    with pytest.raises(SystemExit):
        entrypoint()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "nope does not exist" in out
    assert list(tmp_path.iterdir()) == []


def test_live_decoder_option_parses_and_its_frames_are_taesd_decodes(
    tiny_sd_run_dir, tiny_sd_codec_dirs, tmp_path, capsys
):
    from splatent_viewer.codecs import LiveDecoderConfig, load_codec
    from splatent_viewer.frame import render_frame

    sd_dir, taesd_dir = tiny_sd_codec_dirs
    common = (
        "--load-config",
        str(tiny_sd_run_dir),
        "--codec-path",
        str(sd_dir),
        "--num-frames",
        "2",
        "--device",
        "cpu",
        "--refiner",
        "none",
    )
    assert _parse("orbit", *common).scene.live_decoder == LiveDecoderConfig()  # default: the scene's codec decodes
    live = _parse(
        "orbit",
        *common,
        "--output",
        str(tmp_path / "live"),
        "--live-decoder.name",
        "taesd",
        "--live-decoder.path",
        str(taesd_dir),
    )
    assert live.scene.live_decoder == LiveDecoderConfig(name="taesd", path=taesd_dir)
    with pytest.raises(SystemExit):
        _parse("orbit", *common, "--live-decoder.name", "tiny-vae")
    result = main(live)
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("scene "))
    assert "decoder sd-turbo latents decoded by taesd (live decoder)" in header  # one line, however long the path
    stats = json.loads((tmp_path / "live.stats.json").read_text())
    assert stats["decoder"] == result.decoder == "sd-turbo latents decoded by taesd (live decoder)"
    # The written frames are TAESD's decode of the rendered latents, not the VAE's.
    scene = load_trained_scene(tiny_sd_run_dir, refiner="none", codec_path=sd_dir)
    cameras = live.cameras(scene)
    taesd, frames = load_codec("taesd", path=taesd_dir), _frames(tmp_path / "live")
    assert frames.shape == (2, 64, 64, 3)
    for i in range(2):
        latent = render_frame(
            scene=scene, c2w=cameras.c2ws[i], K=cameras.Ks[i], width=64, height=64, outputs=("latent",)
        ).latent
        with torch.no_grad():
            for codec, equal in ((taesd, True), (scene.codec, False)):
                image = (codec.decode(latent[None])[0].clamp(0, 1).permute(1, 2, 0) * 255 + 0.5).to(torch.uint8)
                assert np.array_equal(frames[i], image.numpy()) == equal
    plain = main(_parse("orbit", *common, "--output", str(tmp_path / "plain")))
    assert plain.decoder == "sd-turbo"


def test_unwritable_output_is_one_error_line_before_anything_renders(
    tiny_trained_scene_dir, tmp_path, monkeypatch, capsys
):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    outputs = [(blocker / "orbit.mp4", "is a file, not a folder"), (blocker / "sub" / "frames", "is a file")]
    if os.geteuid() != 0:  # root writes through chmod: then sysfs (which takes no new files, even from root)
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        outputs += [(locked / "orbit.mp4", "cannot write in"), (locked / "frames", "cannot write in")]
    elif Path("/sys/kernel").is_dir():
        outputs += [(Path("/sys/kernel/orbit.mp4"), "cannot write in /sys/kernel")]
    for output, reason in outputs:
        monkeypatch.setattr(
            sys,
            "argv",
            [
                "splatent-render",
                "orbit",
                "--load-config",
                str(tiny_trained_scene_dir),
                "--num-frames",
                "2",
                "--device",
                "cpu",
                "--output",
                str(output),
            ],
        )
        with pytest.raises(SystemExit) as e:
            entrypoint()
        assert e.value.code == 1
        out = capsys.readouterr().out
        # one line (no scene header: it failed before loading and rendering), naming the output and the cause
        assert out.startswith("error: --output") and out.count("\n") == 1, out
        assert str(output) in out and reason in out and "Traceback" not in out
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "splatent-render",
            "orbit",
            "--load-config",
            str(tiny_trained_scene_dir),
            "--num-frames",
            "2",
            "--device",
            "cpu",
            "--output",
            str(tmp_path / "ok.mp4"),
            "--save-camera-path",
            str(blocker / "path.json"),
        ],
    )
    with pytest.raises(SystemExit):
        entrypoint()
    assert capsys.readouterr().out.startswith("error: --save-camera-path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] + (["locked"] if os.geteuid() != 0 else [])
