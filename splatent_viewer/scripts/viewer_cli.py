"""``splatent-viewer``: browse a trained latent-splat scene (decoded, enhanced, split, RGB, latent, depth).

splatent-viewer --load-config outputs/<name>/splatent/<timestamp>/config.yml
splatent-viewer --load-config outputs/demo --refiner outputs/refiner
"""

from __future__ import annotations

import logging
import threading

import tyro
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from splatent_viewer.codecs import describe_codec
from splatent_viewer.errors import exit_on_error
from splatent_viewer.viewer import ViewerApp, ViewerConfig

CONSOLE = Console()


def start(config: ViewerConfig, *, console: Console = CONSOLE) -> ViewerApp:
    """Loads the scene and starts serving it (returns at once; :meth:`ViewerApp.close` stops it)."""
    device = config.scene.resolved_device()
    loading = f"loading {config.scene.load_config} on {device}…"
    if not console.is_interactive:
        console.print(escape(loading), soft_wrap=True)  # the spinner below shows nothing in a log
    with console.status(escape(loading)):
        scene = config.scene.setup(device=device)
    app = ViewerApp(scene=scene, config=config)
    refiner_text = (
        "no refiner (decoded only)" if scene.refiner is None else f"refiner k={scene.refiner.config.num_references}"
    )
    console.print(
        f"[bold]splatent-viewer[/] {escape(scene.name)}: {scene.params['means'].shape[0]:,} Gaussians, "
        f"{escape(describe_codec(scene.codec))}, {refiner_text}, {device}",
        soft_wrap=True,
    )
    if app.port_moved:
        console.print(
            f"[yellow]port {config.port} is taken[/] (another viewer: a running ns-train's starts at 7007 "
            f"too); serving on port {app.port} instead",
            soft_wrap=True,
        )
    console.print(f"open [link={app.url}]{app.url}[/link]  (Ctrl+C to stop)", soft_wrap=True)
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
    exit_on_error(main, config, interrupted="viewer stopped")


if __name__ == "__main__":
    entrypoint()
