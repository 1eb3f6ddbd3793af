"""Scenes: one loader for nerfstudio-data, blender-data and COLMAP folders (through nerfstudio's dataparsers),
the checks and size fitting it shares with the nerfstudio plugin, and the project's procedural demo scenes."""

from splatent_viewer.data.check import check_scene
from splatent_viewer.data.fit import FitMode, fit_image
from splatent_viewer.data.scene import Scene, load_scene

__all__ = ["FitMode", "Scene", "check_scene", "fit_image", "load_scene"]
