"""Settings of ``splatent-viewer``: the scene to load, the initial view, the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.viewer.gui import ViewSettings

DEFAULT_PORT = 7007


@dataclass
class ViewerConfig:
    """Serve a trained latent-splat scene in the browser (viser), decoded and enhanced."""

    scene: Annotated[TrainedSceneConfig, tyro.conf.arg(name="")]
    """The trained scene and how to load it (--load-config, --device, --refiner, --codec-path, --live-decoder.*,
    --[no-]cuda-graphs)."""
    view: Annotated[ViewSettings, tyro.conf.arg(name="")] = field(default_factory=ViewSettings)
    """Initial display settings of every browser (--mode, --num-references, --max-resolution, ...)."""
    host: str = "127.0.0.1"
    """Interface to serve on (0.0.0.0 for every interface)."""
    port: int = DEFAULT_PORT
    """Port of the web viewer. When it is taken (e.g. by the viewer of a running ns-train, which also starts at
    7007) the next free one is used, and the start-up line says so."""
    rest_delay: float = 0.2
    """Seconds without a camera update after which the full-quality frame is rendered."""
    export_dir: Path = Path("renders")
    """Default folder of the "Export flythrough" panel's output."""
