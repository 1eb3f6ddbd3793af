"""The :class:`~splatent_viewer.viewer.client_session.ClientView` of a real viser client."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import viser
import viser._messages as viser_messages
from jaxtyping import UInt8
from torch import Tensor

from splatent_viewer.viewer.frustums import CameraFrustums
from splatent_viewer.viewer.gui import ViewerGui, ViewSettings
from splatent_viewer.viewer.jpeg import encode_jpeg

if TYPE_CHECKING:
    from splatent_viewer.viewer.export_panel import ExportPanel


class ViserClientView:
    """Sends frames as the client's background image and drives its GUI and frustums."""

    def __init__(self, *, client: viser.ClientHandle, gui: ViewerGui, frustums: CameraFrustums) -> None:
        self.client, self.gui, self.frustums = client, gui, frustums
        self.export_panel: ExportPanel | None = None
        """The tab's "Export flythrough" panel (set by the app)."""
        self._sent = 0
        self._cond = threading.Condition()

    def settings(self) -> ViewSettings:
        return self.gui.settings()

    def show_frame(self, *, image: UInt8[Tensor, "H W 3"], jpeg_quality: int) -> None:
        # What viser 0.2.7's set_background_image sends, with the JPEG encoded where the frame is (nvJPEG on
        # CUDA) instead of by imageio on the host: the same message through the same per-client queue.
        data = encode_jpeg(image, quality=jpeg_quality)
        self.client.scene._websock_interface.queue_message(  # noqa: SLF001 - viser is pinned to 0.2.7
            viser_messages.BackgroundImageMessage(media_type="image/jpeg", rgb_bytes=data, depth_bytes=None)
        )
        try:
            self.client.flush()
        except KeyError:  # the client disconnected meanwhile (viser already dropped its buffer)
            return
        with self._cond:
            self._sent += 1
            self._cond.notify_all()

    def show_stats(self, text: str) -> None:
        self.gui.set_stats(text)

    def show_error(self, text: str | None) -> None:
        self.gui.set_error(text)

    def show_references(self, *, references: list[int], settings: ViewSettings) -> None:
        self.frustums.update(
            visible=settings.show_cameras, highlighted=references, images=settings.show_reference_images
        )

    @property
    def frames_sent(self) -> int:
        """Background images sent to this client."""
        return self._sent

    def wait_for_frames(self, count: int, *, timeout: float) -> bool:
        """Blocks until at least ``count`` frames were sent (False on timeout)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._sent >= count, timeout=timeout)
