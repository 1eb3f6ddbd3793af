"""The procedural demo scene: files agree with the ray tracer's geometry, generator behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import tyro

from splatent_viewer.data.demo_scene import LOOK_AT, DemoSceneConfig, demo_world, render_demo_scene
from splatent_viewer.data.raytracer import Sphere, camera_rays, render_view
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError


def _project(scene, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel positions [N, 2] and depths [N] of world point X in every view (loader's OpenCV path)."""
    cam = scene.viewmats() @ torch.cat([X, torch.ones(1)])
    uvw = (scene.Ks @ cam[:, :3, None])[..., 0]
    return uvw[:, :2] / uvw[:, 2:], cam[:, 2]


def test_cameras_look_at_scene_centre(demo_dir: Path) -> None:
    scene = load_scene(demo_dir)
    uv, depth = _project(scene, torch.tensor(LOOK_AT))
    assert torch.allclose(uv, torch.tensor([128.0, 128.0]).expand_as(uv), atol=1e-3)
    assert torch.allclose(depth, torch.full_like(depth, 3.5), atol=1e-4)


def test_sphere_tops_project_onto_traced_hits(demo_dir: Path) -> None:
    """Project each sphere's top with the loader's viewmat/K; the ray tracer's ray (built from the
    OpenGL c2w independently) through that pixel must hit the same point wherever it is visible."""
    scene = load_scene(demo_dir)
    world = demo_world(0)
    spheres = [p for p in world.primitives if isinstance(p, Sphere)]
    assert spheres
    for sph in spheres:
        X = torch.tensor(sph.centre) + torch.tensor([0.0, 0.0, sph.radius])
        uv, depth = _project(scene, X)
        inside = torch.nonzero((depth > 0) & (uv >= 0).all(1) & (uv < 256).all(1)).squeeze(1)
        agree = 0
        for i in inside.tolist():
            o, d = camera_rays(c2w=scene.camera_to_worlds[i], K=scene.Ks[i], pixels=uv[i][:, None])
            t, idx = world.nearest(o, d)
            hit = (o + d * t)[:, 0]
            if world.primitives[int(idx)] is sph:
                assert (hit - X).norm() < 2e-3, (i, hit, X)
                agree += 1
        assert agree >= 2, f"sphere at {sph.centre} visible in {agree} views"


def test_png_matches_rerender(demo_dir: Path) -> None:
    """A view re-rendered from the loaded pose equals the shipped PNG (orientation, seed, poses)."""
    scene = load_scene(demo_dir)
    meta = json.loads((demo_dir / "transforms.json").read_text())["splatent_demo_scene"]
    i, x0, y0, size = 7, 80, 88, 96  # a central crop (shifted principal point) keeps it fast
    K = scene.Ks[i].clone()
    K[0, 2] -= x0
    K[1, 2] -= y0
    with torch.no_grad():
        out = render_view(
            demo_world(meta["seed"]),
            c2w=scene.camera_to_worlds[i],
            K=K,
            width=size,
            height=size,
            supersample=meta["supersample"],
        )
    png = scene.load_image(i)[y0 : y0 + size, x0 : x0 + size]
    assert float(png.std()) > 0.1  # the crop shows objects, not just sky
    diff = (out.image - png).abs()
    assert float(diff.mean()) < 0.5 / 255 and float(diff.max()) < 3 / 255


def test_point_cloud_lies_on_visible_surfaces_or_far_sphere(demo_dir: Path) -> None:
    scene = load_scene(demo_dir)
    xyz, rgb = scene.load_points()
    assert xyz.shape == (12000, 3) and rgb is not None and rgb.shape == (12000, 3)
    assert 0.0 <= float(rgb.min()) and float(rgb.max()) <= 1.0 and float(rgb.std()) > 0.05
    # Sky / fog pixels put their point far_radius along the ray of the camera that saw them.
    to_cams = torch.cdist(xyz, scene.camera_centres().float())
    far = (to_cams - DemoSceneConfig.far_radius).abs().min(dim=1).values < 1e-3
    assert 0.05 < far.float().mean() < 0.6, float(far.float().mean())
    world = demo_world(0)
    near = xyz[~far]
    sample = near[torch.randperm(len(near), generator=torch.Generator().manual_seed(0))[:40]]
    for X in sample:
        uv, depth = _project(scene, X)
        inside = torch.nonzero((depth > 0) & (uv >= 0).all(1) & (uv < 256).all(1)).squeeze(1)
        rays = [
            camera_rays(c2w=scene.camera_to_worlds[i], K=scene.Ks[i], pixels=uv[i][:, None]) for i in inside.tolist()
        ]
        o, d = torch.cat([r[0] for r in rays], 1), torch.cat([r[1] for r in rays], 1)
        t, _ = world.nearest(o, d)
        error = float(((o + d * t) - X[:, None]).norm(dim=0).min())
        assert error < 2e-3, (X, error)  # seen (unoccluded) from at least one camera


def test_generator_writes_loadable_folder_and_guards_output(tmp_path: Path) -> None:
    cfg = DemoSceneConfig(output=tmp_path / "s", num_views=3, resolution=32, seed=3, supersample=1, num_points=50)
    out = render_demo_scene(cfg)
    scene = load_scene(out)
    assert len(scene) == 3 and (scene.widths == 32).all() and scene.Ks[0, 0, 2] == 16.0
    assert scene.load_points()[0].shape == (50, 3)
    assert "Apache-2.0" in (out / "README.md").read_text()
    first = scene.load_image(0)
    render_demo_scene(cfg)  # a folder it made is replaced, deterministically
    assert torch.equal(load_scene(out).load_image(0), first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(SplatentError, match="mine"):
        render_demo_scene(DemoSceneConfig(output=other, num_views=2, resolution=16, supersample=1))
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(SplatentError, match="multiple of 8"):
        render_demo_scene(DemoSceneConfig(output=tmp_path / "x", resolution=30))


def test_seed_changes_layout_and_is_deterministic() -> None:
    assert repr(demo_world(0)) == repr(demo_world(0))
    a, b = demo_world(0), demo_world(1)
    assert repr(a.primitives) != repr(b.primitives) and a.lighting.sun_direction != b.lighting.sun_direction
    kinds = {type(p).__name__ for p in a.primitives}
    assert {"Box", "Sphere", "Cylinder", "Torus", "Plane"} <= kinds


def test_cli_config_parses() -> None:
    cfg = tyro.cli(DemoSceneConfig, args=["--output", "x", "--num-views", "12", "--resolution", "64", "--seed", "4"])
    assert cfg == DemoSceneConfig(output=Path("x"), num_views=12, resolution=64, seed=4)
