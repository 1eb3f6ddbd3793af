"""splatent-viewer next to a running ns-train: ns-train's viewer binds loopback by default, and a taken port makes
splatent-viewer serve on the next free one with a line saying so (nerfstudio's viewer also starts at 7007)."""

from __future__ import annotations

import io
import socket
import urllib.request
from pathlib import Path

from rich.console import Console

from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.scripts.viewer_cli import start
from splatent_viewer.viewer import ViewerConfig


def test_ns_train_splatent_serves_its_viewer_on_loopback_by_default() -> None:
    from nerfstudio_plugin.splatent_config import splatent_config

    assert splatent_config.viewer.websocket_host == "127.0.0.1"


def test_a_taken_port_moves_the_viewer_to_a_free_one_and_says_so(tiny_trained_scene_dir: Path) -> None:
    # What a running ns-train holds: a listening socket on every interface (nerfstudio's old default) at the port.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = io.StringIO()
        app = start(
            ViewerConfig(
                scene=TrainedSceneConfig(load_config=tiny_trained_scene_dir, refiner="none", device="cpu"), port=port
            ),
            console=Console(file=out, width=40),
        )
        try:
            assert app.port_moved and app.port != port
            assert app.url == f"http://127.0.0.1:{app.port}"
            with urllib.request.urlopen(app.url, timeout=30) as page:  # the viewer answers at the printed URL
                assert page.status == 200 and b"<html" in page.read().lower()
        finally:
            app.close()
    lines = out.getvalue().splitlines()
    assert (
        f"port {port} is taken (another viewer: a running ns-train's starts at 7007 too); serving on port "
        f"{app.port} instead" in lines
    )
    assert lines[-1].startswith(f"open {app.url}")
