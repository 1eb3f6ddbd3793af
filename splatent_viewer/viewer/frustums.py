"""Training cameras as frustums in one client's 3D scene, the current references highlighted and,
optionally, showing their decoded reference latents as images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import viser

from splatent_viewer.trained import ReferenceBank
from splatent_viewer.viewer.camera import fov_y_of, opengl_c2w_to_viser

BASE_COLOR = (150, 150, 150)
NEAREST_COLOR = (255, 60, 0)
REFERENCE_COLOR = (255, 170, 0)


class CameraFrustums:
    """Keeps ``scene`` (a client's :class:`viser.SceneApi`) in sync with the wanted frustum state.

    ``thumbnail(i)`` returns the decoded reference latent ``i`` as ``uint8`` HxWx3 (called only when
    reference images are shown; cached here).
    """

    def __init__(
        self,
        *,
        scene: viser.SceneApi,
        bank: ReferenceBank,
        thumbnail: Callable[[int], np.ndarray],
        root: str = "/training_cameras",
    ) -> None:
        self._scene, self._bank, self._thumbnail, self._root = scene, bank, thumbnail, root
        self._scale = 0.08 * bank.scene_scale
        self._handles: dict[int, viser.CameraFrustumHandle] = {}
        self._highlighted: tuple[int, ...] = ()
        self._images = False
        self._thumbs: dict[int, np.ndarray] = {}

    @property
    def shown(self) -> bool:
        return bool(self._handles)

    @property
    def highlighted(self) -> tuple[int, ...]:
        return self._highlighted

    def _add(self, index: int, *, rank: int | None) -> None:
        bank = self._bank
        height, width = (int(v) for v in bank.sizes[index])
        wxyz, position = opengl_c2w_to_viser(c2w=bank.c2w[index])
        color = BASE_COLOR if rank is None else (NEAREST_COLOR if rank == 0 else REFERENCE_COLOR)
        image = None
        if rank is not None and self._images:
            if index not in self._thumbs:
                self._thumbs[index] = self._thumbnail(index)
            image = self._thumbs[index]
        # Re-adding under the same name replaces the node (viser 0.2.7 frustums have no colour setter).
        self._handles[index] = self._scene.add_camera_frustum(
            f"{self._root}/{index:04d}",
            fov=fov_y_of(K=bank.Ks[index].cpu(), height=height),
            aspect=width / height,
            scale=self._scale,
            color=color,
            image=image,
            wxyz=wxyz,
            position=position,
        )

    def update(self, *, visible: bool, highlighted: Sequence[int], images: bool) -> None:
        """Shows/hides the frustums and re-draws only those whose highlight or image changed."""
        highlighted = tuple(int(i) for i in highlighted)
        if not visible:
            for handle in self._handles.values():
                handle.remove()
            self._handles.clear()
            self._highlighted, self._images = (), False
            return
        rank = {i: r for r, i in enumerate(highlighted)}
        if not self._handles:
            self._images = images
            for i in range(len(self._bank)):
                self._add(i, rank=rank.get(i))
        else:
            old = {i: r for r, i in enumerate(self._highlighted)}
            redraw = {i for i in set(old) | set(rank) if old.get(i) != rank.get(i)}
            if images != self._images:
                redraw |= set(old) | set(rank)
            self._images = images
            for i in sorted(redraw):
                self._add(i, rank=rank.get(i))
        self._highlighted = highlighted
