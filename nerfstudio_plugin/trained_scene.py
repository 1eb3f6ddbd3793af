"""An ``ns-train splatent`` run as a :class:`splatent_viewer.trained.TrainedScene` (the run loader this plugin
registers under the ``splatent_viewer.run_loaders`` entry-point group, so the viewer and ``splatent-render`` read
``config.yml`` files without the core importing the plugin).

The scene lives in nerfstudio's dataparser-transformed world (the one ``ns-render`` camera paths and the nerfstudio
viewer use). Splats, reference bank and background latent come from the checkpoint; the codec from the run's config.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from nerfstudio_plugin.splatent_model import train_indices_in
from splatent_viewer.errors import SplatentError
from splatent_viewer.trained import TrainedScene


def _train_indices(scene_path: Path, train_files: list[Path]) -> list[int] | None:
    """Indices of nerfstudio's training images among the scene folder's frames (the core loader's order); None when
    the folder is gone or a file is not among its frames."""
    from splatent_viewer.data.scene import load_scene

    try:
        scene = load_scene(scene_path)
    except (SplatentError, OSError):
        return None
    return train_indices_in(scene, train_files)


def load_nerfstudio_run(config_path: Path, *, device: torch.device | str = "cpu") -> TrainedScene | None:
    """Loads ``outputs/<exp>/splatent/<timestamp>/config.yml`` and its latest checkpoint (no refiner attached);
    None for a file that is not a ``.yml``/``.yaml``."""
    from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager
    from nerfstudio.utils.eval_utils import eval_setup

    from nerfstudio_plugin.splatent_model import SplatentModel

    config_path = Path(config_path)
    if config_path.suffix not in (".yml", ".yaml"):
        return None
    device = torch.device(device)
    if not config_path.is_file():
        raise SplatentError(
            f"{config_path} does not exist; pass the config.yml of an `ns-train splatent` run "
            "(outputs/<name>/splatent/<timestamp>/config.yml)."
        )
    try:
        method = yaml.load(config_path.read_text(), Loader=yaml.Loader).method_name
    except Exception as e:  # noqa: BLE001 - any parse failure is the same user error
        raise SplatentError(f"{config_path} is not a nerfstudio config.yml ({e}).") from e
    if method != "splatent":
        raise SplatentError(
            f"{config_path} is a `{method}` run; only `ns-train splatent` runs carry latents. "
            f"Train one with `ns-train splatent --data SCENE`."
        )
    _, pipeline, ckpt, step = eval_setup(config_path, test_mode="inference")
    model = pipeline.model
    assert isinstance(model, SplatentModel)
    datamanager = pipeline.datamanager
    assert isinstance(datamanager, FullImageDatamanager)  # splatent's datamanager is one
    model.eval()
    if model.reference_c2w.shape[0] == 0:
        raise SplatentError(f"{ckpt} has no reference bank (it is built when training starts); re-train the run.")
    model.to(device)
    scene = model.trained_scene(with_refiner=False)  # the caller attaches the refiner it was asked for
    scene.name = config_path.parent.parent.parent.name
    scene.source = config_path
    scene.scene_path = Path(datamanager.config.data or datamanager.config.dataparser.data)
    scene.train_indices = _train_indices(scene.scene_path, datamanager.train_dataset.image_filenames)
    scene.train_steps = step + 1  # the checkpoint's step counts from 0
    return scene
