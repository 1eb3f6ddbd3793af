"""The ``splatent-viewer`` browser viewer (viser 0.2.7): one render thread per client, every frame through
:func:`splatent_viewer.frame.render_frame`."""

from splatent_viewer.viewer.app import ViewerApp
from splatent_viewer.viewer.config import ViewerConfig

__all__ = ["ViewerApp", "ViewerConfig"]
