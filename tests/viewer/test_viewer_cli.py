"""splatent-viewer's command line: options parse (scene and view settings nested, flags unprefixed), bad input is
one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tyro

from splatent_viewer.codecs import LiveDecoderConfig
from splatent_viewer.errors import SplatentError
from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.scripts.viewer_cli import start
from splatent_viewer.viewer import ViewerConfig
from splatent_viewer.viewer.gui import ViewSettings


def test_options_parse() -> None:
    config = tyro.cli(
        ViewerConfig,
        args=[
            "--load-config",
            "outputs/x/config.yml",
            "--refiner",
            "none",
            "--mode",
            "depth",
            "--port",
            "7100",
            "--max-resolution",
            "256",
            "--num-references",
            "2",
            "--device",
            "cpu",
            "--no-cuda-graphs",
            "--codec-path",
            "models/sd",
        ],
    )
    assert config.scene == TrainedSceneConfig(
        load_config=Path("outputs/x/config.yml"),
        refiner="none",
        device="cpu",
        cuda_graphs=False,
        codec_path=Path("models/sd"),
    )
    assert config.view == ViewSettings(mode="depth", max_resolution=256, num_references=2)
    assert config.port == 7100 and config.host == "127.0.0.1"
    defaults = tyro.cli(ViewerConfig, args=["--load-config", "run"])
    assert defaults.scene.device == "auto" and defaults.scene.cuda_graphs and defaults.view == ViewSettings()
    with pytest.raises(SystemExit):
        tyro.cli(ViewerConfig, args=["--load-config", "x", "--mode", "sharp"])


def test_initial_view_settings_resolve_per_scene() -> None:
    """The GUI's defaults come from the one ViewSettings: None mode / references follow the refiner."""
    initial = ViewSettings()
    assert initial.resolved(has_refiner=True, refiner_references=5, max_references=5) == ViewSettings(
        mode="enhanced", num_references=5
    )
    assert initial.resolved(has_refiner=False, refiner_references=None, max_references=4) == ViewSettings(
        mode="decoded", num_references=3
    )
    asked = ViewSettings(mode="rgb", num_references=4, max_resolution=128, preview_resolution=256)
    assert asked.resolved(has_refiner=True, refiner_references=3, max_references=2) == ViewSettings(
        mode="rgb", num_references=2, max_resolution=128, preview_resolution=128
    )


def test_live_decoder_option_parses() -> None:
    assert tyro.cli(ViewerConfig, args=["--load-config", "run"]).scene.live_decoder == LiveDecoderConfig()
    config = tyro.cli(
        ViewerConfig,
        args=["--load-config", "run", "--live-decoder.name", "taesd", "--live-decoder.path", "models/taesd"],
    )
    assert config.scene.live_decoder == LiveDecoderConfig(name="taesd", path=Path("models/taesd"))
    with pytest.raises(SystemExit):
        tyro.cli(ViewerConfig, args=["--load-config", "run", "--live-decoder.name", "fast"])


def test_an_incompatible_live_decoder_is_refused_before_serving(tiny_sd_run_dir, tiny_sd_codec_dirs) -> None:
    config = ViewerConfig(
        scene=TrainedSceneConfig(
            load_config=tiny_sd_run_dir,
            codec_path=tiny_sd_codec_dirs[0],
            refiner="none",
            device="cpu",
            live_decoder=LiveDecoderConfig(name="taef2"),
        )
    )
    with pytest.raises(SplatentError, match=r"live decoder 'taef2' .* scene codec 'sd-turbo'"):
        start(config)


def test_missing_run_is_a_splatent_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_run"
    with pytest.raises(SplatentError, match="no_such_run"):
        start(ViewerConfig(scene=TrainedSceneConfig(load_config=missing, refiner="none", device="cpu")))


def test_console_script_prints_one_error_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "splatent_viewer.scripts.viewer_cli",
            "--load-config",
            str(tmp_path / "absent"),
            "--refiner",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "40"},
    )
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("error:") and str(tmp_path / "absent") in lines[-1]  # one line even at 40 columns
    assert "Traceback" not in proc.stdout + proc.stderr
