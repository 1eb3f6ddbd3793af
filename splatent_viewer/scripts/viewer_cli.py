"""``splatent-viewer``: browse a trained latent-splat scene (decoded, enhanced, split, RGB, latent, depth).

    splatent-viewer --load-config outputs/<name>/splatent/<timestamp>/config.yml
    splatent-viewer --load-config outputs/demo --refiner outputs/refiner
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
import tyro
from rich.console import Console
from rich.logging import RichHandler

from splatent_viewer.codecs import describe_codec
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.trained import load_trained_scene
from splatent_viewer.viewer import ViewerApp, ViewerConfig

CONSOLE = Console()


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SplatentError("--device cuda was asked but this torch has no CUDA device; use --device cpu or auto.")
    return torch.device(name)


def start(config: ViewerConfig) -> ViewerApp:
    """Loads the scene and starts serving it (returns at once; :meth:`ViewerApp.close` stops it)."""
    device = resolve_device(config.device)
    refiner = config.refiner if config.refiner in ("embedded", "none") else Path(config.refiner)
    with CONSOLE.status(f"loading {config.load_config} on {device}…"):
        scene = load_trained_scene(config.load_config, device=device, refiner=refiner, codec_path=config.codec_path,
                                   live_decoder=config.live_decoder)
    if config.cuda_graphs:
        scene.enable_fast_inference()
    app = ViewerApp(scene=scene, config=config)
    refiner_text = "no refiner (decoded only)" if scene.refiner is None else f"refiner k={scene.refiner.config.num_references}"
    CONSOLE.print(f"[bold]splatent-viewer[/] {scene.name}: {scene.params['means'].shape[0]:,} Gaussians, "
                  f"{describe_codec(scene.codec)}, {refiner_text}, {device}")
    CONSOLE.print(f"open [link={app.url}]{app.url}[/link]  (Ctrl+C to stop)")
    return app


def main(config: ViewerConfig, *, stop: threading.Event | None = None) -> None:
    """Serves until Ctrl+C (or until ``stop`` is set)."""
    app = start(config)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        app.close()


def entrypoint() -> None:
    """CLI entry point."""
    config = tyro.cli(ViewerConfig)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=CONSOLE)])
    logging.getLogger("websockets").setLevel(logging.WARNING)  # one INFO line per HTTP request otherwise
    exit_on_error(main, config)


if __name__ == "__main__":
    entrypoint()
