"""The viser server: one :class:`ClientSession` (render thread) per connected browser tab."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import viser

from splatent_viewer.trained import TrainedScene
from splatent_viewer.viewer.camera import fov_y_of, viser_to_opengl_c2w
from splatent_viewer.viewer.client_session import ClientSession
from splatent_viewer.viewer.config import ViewerConfig
from splatent_viewer.viewer.export_panel import ExportPanel
from splatent_viewer.viewer.frustums import CameraFrustums
from splatent_viewer.viewer.gui import ViewerGui
from splatent_viewer.viewer.renderer import CameraState, SceneRenderer, max_references
from splatent_viewer.viewer.viser_view import ViserClientView

LOG = logging.getLogger(__name__)


def camera_state(camera: viser.CameraHandle) -> CameraState:
    """A viser client's camera in our convention (a new pose: preview first)."""
    return CameraState(
        c2w=viser_to_opengl_c2w(wxyz=camera.wxyz, position=camera.position),
        fov_y=float(camera.fov),
        aspect=float(camera.aspect),
        moving=True,
    )


class ViewerApp:
    """Serves ``scene`` on ``config.host``/``config.port`` until :meth:`close`."""

    def __init__(self, *, scene: TrainedScene, config: ViewerConfig) -> None:
        self.scene, self.config = scene, config
        self.renderer = SceneRenderer(scene=scene)
        self.defaults = config.view.resolved(
            has_refiner=scene.refiner is not None,
            refiner_references=scene.refiner.config.num_references if scene.refiner is not None else None,
            max_references=max_references(scene),
        )
        """Every browser's initial settings."""
        self._sessions: dict[int, tuple[ClientSession, ViserClientView]] = {}
        self._retired: list[tuple[ClientSession, ViserClientView]] = []
        """Disconnected clients whose render thread or export may still run."""
        self._lock = threading.Lock()
        self.server = viser.ViserServer(
            host=config.host, port=config.port, label=f"Splatent · {scene.name}", verbose=False
        )
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    @property
    def port(self) -> int:
        """The port actually bound (viser moves on when the asked one is taken)."""
        return self.server.get_port()

    @property
    def port_moved(self) -> bool:
        """True when the asked port was taken and the server bound the next free one."""
        return self.port != self.config.port

    @property
    def url(self) -> str:
        """Where to open the viewer (on this machine when serving on every interface)."""
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "", "::") else self.config.host
        return f"http://{host}:{self.port}"

    def session(self, client_id: int) -> tuple[ClientSession, ViserClientView] | None:
        """The session and view of a connected client."""
        with self._lock:
            return self._sessions.get(client_id)

    def sessions(self) -> dict[int, tuple[ClientSession, ViserClientView]]:
        with self._lock:
            return dict(self._sessions)

    def _connect(self, client: viser.ClientHandle) -> None:
        holder: list[ClientSession] = []

        def on_change() -> None:  # a control changed: re-render at full quality (once the session exists)
            if holder:
                holder[0].refresh()

        gui = ViewerGui(
            gui=client.gui,
            defaults=self.defaults,
            has_refiner=self.scene.refiner is not None,
            max_references=max_references(self.scene),
            on_change=on_change,
        )
        frustums = CameraFrustums(scene=client.scene, bank=self.scene.references, thumbnail=self.renderer.thumbnail)
        view = ViserClientView(client=client, gui=gui, frustums=frustums)
        # One exporter per browser tab, in its own thread like the tab's render thread.
        view.export_panel = ExportPanel(gui=client.gui, scene=self.scene, output_dir=self.config.export_dir)
        session = ClientSession(
            name=f"client-{client.client_id}",
            render=self.renderer.render,
            view=view,
            rest_delay=self.config.rest_delay,
            refiner_label=self.scene.refiner_label,
        )
        holder.append(session)
        with self._lock:
            self._sessions[client.client_id] = (session, view)
        client.camera.on_update(lambda camera: session.update_camera(camera_state(camera)))
        self._place_camera(client)
        session.update_camera(camera_state(client.camera))
        LOG.info("viewer client %d connected", client.client_id)

    def _place_camera(self, client: viser.ClientHandle) -> None:
        """Starts the browser at the first training view, with the training cameras' mean up direction."""
        bank = self.scene.references
        if len(bank) == 0:
            return
        c2w = bank.c2w.detach().double().cpu().numpy()
        up = c2w[:, :3, 1].mean(axis=0)
        up = up / max(np.linalg.norm(up), 1e-9)
        position = c2w[0, :3, 3]
        centre = c2w[:, :3, 3].mean(axis=0)
        distance = max(float(np.linalg.norm(centre - position)), 1e-3)
        look_at = position - c2w[0, :3, 2] * distance  # OpenGL cameras look down -z
        height = int(bank.sizes[0, 0])
        with client.atomic():
            client.camera.up_direction = up
            client.camera.position = position
            client.camera.look_at = look_at
            client.camera.fov = fov_y_of(K=bank.Ks[0].cpu(), height=height)

    def _disconnect(self, client: viser.ClientHandle) -> None:
        with self._lock:
            entry = self._sessions.pop(client.client_id, None)
            if entry is not None:  # kept until its threads end, so close() can wait for a frame still in flight
                self._retired = [e for e in self._retired if _busy(e)] + [entry]
        if entry is not None:
            session, view = entry
            if view.export_panel is not None:
                view.export_panel.cancel()
            # viser runs this on its event loop: join the render thread elsewhere so the server never stalls.
            threading.Thread(target=session.stop, name=f"splatent-stop-{client.client_id}", daemon=True).start()
            LOG.info("viewer client %d disconnected", client.client_id)

    def close(self, *, timeout: float = 120.0) -> None:
        """Stops every client's render thread (connected or not: a disconnected client's frame may still be
        rendering) and export, waits up to ``timeout`` seconds for them, then stops the server. Torch work still
        running in a thread when the interpreter exits aborts the process, so this waits rather than leaves."""
        with self._lock:
            entries = list(self._sessions.values()) + self._retired
            self._sessions, self._retired = {}, []
        for session, view in entries:
            session.stop(timeout=0)  # closes its slot: the thread ends after the frame in flight
            if view.export_panel is not None:
                view.export_panel.cancel()
        deadline = time.monotonic() + timeout
        if any(_busy(e) for e in entries):
            LOG.info("waiting for the frames in flight to finish")
        for session, view in entries:
            session.stop(timeout=max(0.0, deadline - time.monotonic()))
            if view.export_panel is not None:
                view.export_panel.join(max(0.0, deadline - time.monotonic()))
        busy = [session.name for session, view in entries if _busy((session, view))]
        if busy:
            LOG.warning("%s still rendering after %.0f s; stopping anyway", ", ".join(busy), timeout)
        self.server.stop()


def _busy(entry: tuple[ClientSession, ViserClientView]) -> bool:
    session, view = entry
    return session.alive or (view.export_panel is not None and view.export_panel.running)
