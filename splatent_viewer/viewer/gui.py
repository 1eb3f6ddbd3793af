"""One client's control panel: display mode, references, resolution, JPEG quality, cameras, stats, errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Optional

import viser

from splatent_viewer.viewer.modes import SPLIT_MODES, Mode, available_modes


@dataclass(frozen=True)
class ViewSettings:
    """What a client asked to see; read by its render thread at the start of each frame.

    The one definition of the viewer's display settings: ``splatent-viewer`` takes them as its initial values
    (``--mode``, ``--num-references``, ``--max-resolution``, ...; :class:`~splatent_viewer.viewer.ViewerConfig`
    nests this class) and each browser's controls start from them and read back into them. ``mode`` and
    ``num_references`` are None only in the initial values (a scene-dependent default, see :meth:`resolved`);
    the settings a render thread reads always name both.
    """

    mode: Optional[Mode] = None
    """Display mode: decoded, enhanced, split (decoded | enhanced) or split-rgb (RGB splats | enhanced; these three
    need a refiner), rgb, latent, depth.
    Default: enhanced with a refiner, decoded without."""
    num_references: Optional[int] = None
    """Nearest training views the refiner attends to (0-5); also the highlighted frustums.
    Default: the refiner's k, else 3."""
    max_resolution: int = 512
    """Longer side (pixels) of a frame rendered at rest."""
    preview_resolution: int = 256
    """Longer side of a frame rendered while the camera moves (at most max_resolution)."""
    jpeg_quality: int = 90
    """JPEG quality of frames rendered at rest."""
    preview_jpeg_quality: int = 60
    """JPEG quality of preview frames."""
    split_position: float = 0.5
    """Split mode: where the divider sits (0 = all enhanced, 1 = all decoded)."""
    show_cameras: bool = False
    """Show the training cameras as frustums (references highlighted)."""
    show_reference_images: bool = False
    """Show the current references' decoded latents as images on their frustums."""

    def resolved(self, *, has_refiner: bool, refiner_references: int | None, max_references: int) -> ViewSettings:
        """These settings with every initial value filled in for a scene: the mode (enhanced with a refiner, else
        decoded), the reference count (``refiner_references``, else 3; at most ``max_references``) and a preview
        no larger than the full frame."""
        k = self.num_references
        if k is None:
            k = refiner_references if refiner_references is not None else 3
        return replace(
            self,
            mode=self.mode or ("enhanced" if has_refiner else "decoded"),
            num_references=max(0, min(k, max_references)),
            preview_resolution=min(self.preview_resolution, self.max_resolution),
        )


class ViewerGui:
    """Builds the controls on ``gui`` (a client's :class:`viser.GuiApi`) and reads them back as :class:`ViewSettings`.

    ``defaults`` are resolved settings (:meth:`ViewSettings.resolved`). ``on_change`` runs (on viser's callback
    thread) after any control changes.
    """

    def __init__(
        self,
        *,
        gui: viser.GuiApi,
        defaults: ViewSettings,
        has_refiner: bool,
        max_references: int,
        on_change: Callable[[], None],
    ) -> None:
        self._defaults = defaults
        modes = available_modes(has_refiner=has_refiner)
        mode = defaults.mode if defaults.mode in modes else "decoded"
        max_refs = max(0, min(5, max_references))
        with gui.add_folder("Render"):
            self.mode = gui.add_dropdown(
                "Mode",
                options=modes,
                initial_value=mode,
                hint="decoded latent · enhanced (refiner) · split: decoded | enhanced · split-rgb: RGB splats | enhanced · "
                "RGB splats · latent PCA · depth",
            )
            self.split = gui.add_slider(
                "Split",
                min=0.0,
                max=1.0,
                step=0.01,
                initial_value=defaults.split_position,
                visible=mode in SPLIT_MODES,
                hint="Divider: decoded on the left, enhanced on the right",
            )
            self.references = gui.add_slider(
                "References",
                min=0,
                max=max_refs,
                step=1,
                initial_value=min(defaults.num_references or 0, max_refs),
                hint="Nearest training views the refiner attends to",
            )
            self.max_resolution = gui.add_slider(
                "Max resolution",
                min=64,
                max=2048,
                step=64,
                initial_value=defaults.max_resolution,
                hint="Longer side of the full-quality frame",
            )
            self.jpeg_quality = gui.add_slider(
                "JPEG quality", min=10, max=100, step=5, initial_value=defaults.jpeg_quality
            )
        self.refiner_note = gui.add_markdown(
            "_No refiner loaded: enhanced and split modes are unavailable. Start with `--refiner PATH` "
            "(a folder from `splatent-refiner train`)._",
            visible=not has_refiner,
        )
        with gui.add_folder("Cameras"):
            self.show_cameras = gui.add_checkbox(
                "Training cameras",
                initial_value=defaults.show_cameras,
                hint="Frustums of the training views; references highlighted",
            )
            self.show_reference_images = gui.add_checkbox(
                "Reference images",
                initial_value=defaults.show_reference_images,
                hint="Decoded reference latents on their frustums",
            )
        with gui.add_folder("Stats"):
            self.stats = gui.add_markdown("Waiting for the first frame…")
        self.error = gui.add_markdown("", visible=False)

        def changed(_event: object) -> None:
            self.split.visible = self.mode.value in SPLIT_MODES
            on_change()

        for handle in (
            self.mode,
            self.split,
            self.references,
            self.max_resolution,
            self.jpeg_quality,
            self.show_cameras,
            self.show_reference_images,
        ):
            handle.on_update(changed)

    def settings(self) -> ViewSettings:
        """The current values of the controls."""
        return replace(
            self._defaults,
            mode=self.mode.value,
            split_position=float(self.split.value),
            num_references=int(self.references.value),
            max_resolution=int(self.max_resolution.value),
            preview_resolution=min(self._defaults.preview_resolution, int(self.max_resolution.value)),
            jpeg_quality=int(self.jpeg_quality.value),
            show_cameras=bool(self.show_cameras.value),
            show_reference_images=bool(self.show_reference_images.value),
        )

    def set_stats(self, text: str) -> None:
        self.stats.content = text

    def set_error(self, text: str | None) -> None:
        """Shows ``text`` as the error line (``None`` hides it)."""
        if text is None:
            if self.error.visible:
                self.error.visible = False
            return
        self.error.content = text
        self.error.visible = True
