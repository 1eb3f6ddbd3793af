"""Settings of ``splatent-viewer``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from splatent_viewer.codecs import LiveDecoderConfig
from splatent_viewer.viewer.modes import Mode


@dataclass
class ViewerConfig:
    """Serve a trained latent-splat scene in the browser (viser), decoded and enhanced."""

    load_config: Path
    """A nerfstudio run's config.yml (ns-train splatent) or a splatent-demo output folder."""
    host: str = "127.0.0.1"
    """Interface to serve on (0.0.0.0 for every interface)."""
    port: int = 7007
    """Port of the web viewer (the next free one is used if taken)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Render device; auto = cuda when available."""
    refiner: str = "embedded"
    """Refiner: a folder from `splatent-refiner train`, "embedded" (the shipped one, if it matches the codec) or "none"."""
    codec_path: Optional[Path] = None
    """Local weights of the codec (sd-turbo/taesd); default: the run's codec from its usual place."""
    live_decoder: LiveDecoderConfig = field(default_factory=LiveDecoderConfig)
    """Decode the viewer's frames (and its flythrough exports) with a faster codec of the same latent space, e.g.
    --live-decoder.name taesd --live-decoder.path DIR for an sd-turbo scene: faster, lower-fidelity frames."""
    mode: Optional[Mode] = None
    """Initial display mode (default: enhanced with a refiner, decoded without)."""
    num_references: Optional[int] = None
    """Initial reference count, 0-5 (default: the refiner's k, else 3)."""
    max_resolution: int = 512
    """Longer side (pixels) of a frame rendered at rest."""
    preview_resolution: int = 256
    """Longer side of a frame rendered while the camera moves."""
    jpeg_quality: int = 90
    """JPEG quality of frames at rest."""
    preview_jpeg_quality: int = 60
    """JPEG quality of preview frames."""
    rest_delay: float = 0.2
    """Seconds without a camera update after which the full-quality frame is rendered."""
    show_cameras: bool = False
    """Show the training cameras (references highlighted) from the start."""
    export_dir: Path = Path("renders")
    """Default folder of the "Export flythrough" panel's output."""
    cuda_graphs: bool = True
    """On CUDA: decoder + refiner replayed from CUDA graphs (one per frame size), cuDNN autotuner on."""
