"""Bad scene folders stop ns-train splatent with one clear message naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from PIL import Image

from nerfstudio_plugin.datamanager import check_scene
from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene
from splatent_viewer.errors import SplatentError


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "s"
    return render_demo_scene(
        DemoSceneConfig(output=out, num_views=3, resolution=32, seed=3, supersample=1, num_points=50)
    )


def _empty_frames(d: Path) -> None:
    meta = json.loads((d / "transforms.json").read_text())
    meta["frames"] = []
    (d / "transforms.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "mutate, names, message",
    [
        (lambda d: (d / "images/frame_00001.png").unlink(), "frame_00001.png", "does not exist"),
        (lambda d: (d / "images/frame_00001.png").write_bytes(b"junk"), "frame_00001.png", "unreadable or corrupt"),
        (lambda d: Image.new("RGB", (40, 32)).save(d / "images/frame_00001.png"), "frame_00001.png", "is 40x32 but"),
        (_empty_frames, "transforms.json", "lists no frames"),
    ],
    ids=["missing", "corrupt", "size", "empty"],
)
def test_bad_scene_is_one_clear_error(small_scene, tmp_path, mutate, names, message):
    d = tmp_path / "scene"
    shutil.copytree(small_scene, d)
    check_scene(NerfstudioDataParserConfig(data=d))  # the intact copy passes
    mutate(d)
    with pytest.raises(SplatentError, match=message) as err:
        check_scene(NerfstudioDataParserConfig(data=d))
    assert names in str(err.value)
