"""splatent-viewer's command line: options parse, bad input is one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tyro

from splatent_viewer.codecs import LiveDecoderConfig
from splatent_viewer.errors import SplatentError
from splatent_viewer.scripts.viewer_cli import resolve_device, start
from splatent_viewer.viewer import ViewerConfig


def test_options_parse() -> None:
    config = tyro.cli(ViewerConfig, args=["--load-config", "outputs/x/config.yml", "--refiner", "none", "--mode", "depth",
                                          "--port", "7100", "--max-resolution", "256", "--num-references", "2"])
    assert config.load_config == Path("outputs/x/config.yml") and config.refiner == "none"
    assert (config.mode, config.port, config.max_resolution, config.num_references) == ("depth", 7100, 256, 2)
    assert config.host == "127.0.0.1" and config.device == "auto"
    with pytest.raises(SystemExit):
        tyro.cli(ViewerConfig, args=["--load-config", "x", "--mode", "sharp"])


def test_live_decoder_option_parses() -> None:
    assert tyro.cli(ViewerConfig, args=["--load-config", "run"]).live_decoder == LiveDecoderConfig()
    config = tyro.cli(ViewerConfig, args=["--load-config", "run", "--live-decoder.name", "taesd",
                                          "--live-decoder.path", "models/taesd"])
    assert config.live_decoder == LiveDecoderConfig(name="taesd", path=Path("models/taesd"))
    with pytest.raises(SystemExit):
        tyro.cli(ViewerConfig, args=["--load-config", "run", "--live-decoder.name", "fast"])


def test_an_incompatible_live_decoder_is_refused_before_serving(tiny_sd_run_dir, tiny_sd_codec_dirs) -> None:
    config = ViewerConfig(load_config=tiny_sd_run_dir, codec_path=tiny_sd_codec_dirs[0], refiner="none", device="cpu",
                          live_decoder=LiveDecoderConfig(name="taef2"))
    with pytest.raises(SplatentError, match=r"live decoder 'taef2' .* scene codec 'sd-turbo'"):
        start(config)


def test_missing_run_is_a_splatent_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_run"
    with pytest.raises(SplatentError, match="no_such_run"):
        start(ViewerConfig(load_config=missing, refiner="none", device="cpu"))


def test_cuda_without_cuda_is_refused() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SplatentError, match="--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_console_script_prints_one_error_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "splatent_viewer.scripts.viewer_cli", "--load-config",
                           str(tmp_path / "absent"), "--refiner", "none"], capture_output=True, text=True, timeout=120,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert proc.returncode == 1
    assert "error:" in proc.stdout and "absent" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
