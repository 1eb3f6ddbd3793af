"""README screenshots of `splatent-viewer` in headless Chromium (enhanced and split modes by default).

    python benchmarks/viewer_screenshot.py --load-config outputs/demo --refiner outputs/refiner
    python benchmarks/viewer_screenshot.py --load-config outputs/demo --refiner none --modes decoded rgb depth

Starts the viewer, opens it in Chromium (Debian `chromium`), waits for each mode's full-quality frame and
saves ``<output-dir>/viewer_<mode>.png`` (written atomically).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro
from PIL import Image
from rich.console import Console

from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.scripts.viewer_cli import start
from splatent_viewer.viewer import ViewerConfig
from splatent_viewer.viewer.gui import ViewSettings
from splatent_viewer.viewer.headless import HeadlessChromium
from splatent_viewer.viewer.modes import NEEDS_REFINER, Mode

CONSOLE = Console()


@dataclass
class Args:
    scene: Annotated[TrainedSceneConfig, tyro.conf.arg(name="")]
    """The trained run and how to load it (--load-config, --refiner, --device, ...; enhanced/split need a refiner)."""
    modes: list[Mode] = field(default_factory=lambda: ["enhanced", "split"])
    """Modes to capture, one PNG each."""
    output_dir: Path = Path("docs")
    """Where viewer_<mode>.png go."""
    width: int = 1280
    """Browser window width (>= ~800 keeps viser's side panel)."""
    height: int = 800
    """Browser window height."""
    max_resolution: int = 768
    """Longer side of the rendered frame."""
    split_position: float = 0.5
    """Divider of the split mode."""
    show_cameras: bool = False
    """Show the training-camera frustums too."""
    timeout: float = 120.0
    """Seconds to wait for each frame."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(args: Args) -> list[Path]:
    app = start(
        ViewerConfig(
            scene=args.scene,
            port=_free_port(),
            view=ViewSettings(max_resolution=args.max_resolution, show_cameras=args.show_cameras),
        )
    )
    written = []
    try:
        if app.scene.refiner is None and NEEDS_REFINER & set(args.modes):
            raise SplatentError(
                f"Modes {sorted(NEEDS_REFINER & set(args.modes))} need a trained refiner; pass "
                "--refiner PATH (from `splatent-refiner train`) or other --modes."
            )
        with HeadlessChromium(width=args.width, height=args.height) as browser:
            browser.navigate(app.url)
            deadline = time.monotonic() + args.timeout
            while not app.sessions() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not app.sessions():
                raise SplatentError(f"Chromium did not connect to {app.url} within {args.timeout:.0f} s.")
            session, view = next(iter(app.sessions().values()))
            view.gui.split.value = args.split_position
            for mode in args.modes:
                sent = view.frames_sent
                view.gui.mode.value = mode
                deadline = time.monotonic() + args.timeout
                while not (
                    view.frames_sent > sent and session.stats.last_kind == "full" and session.stats.last_mode == mode
                ):
                    if session.last_error:
                        raise SplatentError(f"the viewer failed to render {mode}: {session.last_error}")
                    if time.monotonic() > deadline:
                        raise SplatentError(f"no full {mode} frame within {args.timeout:.0f} s.")
                    time.sleep(0.1)
                time.sleep(1.0)  # let the browser paint the new background
                path = args.output_dir / f"viewer_{mode}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp.png")
                Image.fromarray(browser.screenshot()).save(tmp)
                os.replace(tmp, path)
                written.append(path)
                CONSOLE.print(f"wrote {path}  ({session.stats.last_size[0]}×{session.stats.last_size[1]} frame)")
    finally:
        app.close()
    return written


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args))
