"""Scenes: a loader for nerfstudio/blender folders and the project's procedural demo scenes."""

from splatent_viewer.data.scene import Scene, load_scene

__all__ = ["Scene", "load_scene"]
