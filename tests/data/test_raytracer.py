"""Ray tracer primitives, shadows and cameras against hand-computed answers."""

from __future__ import annotations

import math

import pytest
import torch

from splatent_viewer.data import textures as tx
from splatent_viewer.data.demo_scene import look_at_c2w
from splatent_viewer.data.raytracer import (
    Box,
    Cylinder,
    Lighting,
    Plane,
    Sphere,
    Torus,
    World,
    camera_rays,
    render_view,
)

WHITE = tx.Checker(size=1.0, color_a=(1.0, 1.0, 1.0), color_b=(1.0, 1.0, 1.0))


def rays(*pairs: tuple[tuple[float, float, float], tuple[float, float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    o = torch.tensor([p[0] for p in pairs], dtype=torch.float32).T.contiguous()
    d = torch.nn.functional.normalize(torch.tensor([p[1] for p in pairs], dtype=torch.float32), dim=1).T.contiguous()
    return o, d


def test_sphere_hits_from_outside_inside_and_misses() -> None:
    s = Sphere(texture=WHITE, centre=(1.0, 2.0, 3.0), radius=0.5)
    o, d = rays(((1, 2, 6), (0, 0, -1)), ((1, 2, 3), (1, 0, 0)), ((1, 2, 6), (0, 0, 1)), ((3, 2, 6), (0, 0, -1)))
    t = s.intersect(o, d)
    assert t[:2].tolist() == pytest.approx([2.5, 0.5])
    assert torch.isinf(t[2:]).all()
    n, u, v, face = s.surface(o + d * t[0])
    assert n[:, 0].tolist() == pytest.approx([0, 0, 1]) and v[0] == pytest.approx(0.0, abs=1e-6)


def test_rotated_box_hit_normal_and_faces() -> None:
    b = Box(texture=WHITE, centre=(0.0, 0.0, 1.0), half=(1.0, 0.5, 1.0), yaw=math.pi / 4)
    # a ray along the box's own (rotated) x axis, a ray down onto its top, a ray that misses
    c = math.cos(math.pi / 4)
    o, d = rays(((-5 * c, -5 * c, 1.0), (c, c, 0.0)), ((0.0, 0.0, 5.0), (0, 0, -1)), ((0.0, 3.0, 5.0), (0, 0, -1)))
    t = b.intersect(o, d)
    assert t[0] == pytest.approx(4.0) and t[1] == pytest.approx(3.0) and math.isinf(t[2])
    n, u, v, face = b.surface(o[:, :2] + d[:, :2] * t[:2])
    assert n[:, 0].tolist() == pytest.approx([-c, -c, 0.0], abs=1e-6) and face[0] == 0
    assert n[:, 1].tolist() == pytest.approx([0, 0, 1], abs=1e-6) and face[1] == 5
    assert v[0] == pytest.approx(1.0)  # side faces: v is the height above the box's bottom


def test_cylinder_side_and_caps() -> None:
    cyl = Cylinder(texture=WHITE, xy=(1.0, 0.0), radius=0.5, z0=0.0, z1=2.0)
    o, d = rays(((-3, 0, 1), (1, 0, 0)), ((1, 0, 5), (0, 0, -1)), ((-3, 0, 3), (1, 0, 0)), ((1.2, 0.1, -4), (0, 0, 1)))
    t = cyl.intersect(o, d)
    assert t.tolist()[:2] == pytest.approx([3.5, 3.0]) and math.isinf(t[2]) and t[3] == pytest.approx(4.0)
    n, u, v, face = cyl.surface(o + d * torch.where(torch.isinf(t), 0.0, t))
    assert n[:, 0].tolist() == pytest.approx([-1, 0, 0]) and face[0] == 0 and v[0] == pytest.approx(1.0)
    assert n[:, 1].tolist() == pytest.approx([0, 0, 1]) and face[1] == 5
    assert n[:, 3].tolist() == pytest.approx([0, 0, -1]) and face[3] == 4


def test_torus_hit_and_hole() -> None:
    tor = Torus(texture=WHITE, centre=(0.0, 0.0, 0.1), major=0.3, minor=0.1)
    o, d = rays(((0.3, 0.0, 2.0), (0, 0, -1)), ((0.0, 0.0, 2.0), (0, 0, -1)), ((-2.0, 0.0, 0.1), (1, 0, 0)))
    t = tor.intersect(o, d)
    assert t[0] == pytest.approx(1.8, abs=1e-4) and math.isinf(t[1]) and t[2] == pytest.approx(1.6, abs=1e-4)
    n, *_ = tor.surface(o[:, :1] + d[:, :1] * t[0])
    assert n[:, 0].tolist() == pytest.approx([0, 0, 1], abs=1e-3)


def test_nearest_and_shadows() -> None:
    world = World(
        primitives=[Plane(texture=WHITE, height=0.0), Sphere(texture=WHITE, centre=(0, 0, 1), radius=0.5)],
        lighting=Lighting(sun_direction=(0.0, 0.0, 1.0)),
    )
    o, d = rays(((0, 0, 5), (0, 0, -1)), ((2, 0, 5), (0, 0, -1)), ((0, 0, 5), (0, 0, 1)))
    t, idx = world.nearest(o, d)
    assert t[:2].tolist() == pytest.approx([3.5, 5.0]) and idx.tolist() == [1, 0, -1]
    up = torch.tensor([[0.0, 0.0, 1.0]] * 2).T.contiguous()
    shadowed = world.occluded(torch.tensor([[0.0, 0.0, 0.01], [2.0, 0.0, 0.01]]).T.contiguous(), up)
    assert shadowed.tolist() == [True, False]
    colour, _, _ = world.shade(o, d)
    # the plane under the sphere is darker than the lit plane beside it; the miss is sky
    lit = torch.tensor(world.lighting.ambient) + torch.tensor(world.lighting.sun)
    assert colour[1].tolist() == pytest.approx(lit.tolist(), rel=1e-5)
    assert torch.allclose(colour[2], world.sky(d[:, 2:])[0])


def test_camera_rays_follow_opengl_convention() -> None:
    c2w = look_at_c2w(torch.tensor([4.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0]))
    K = torch.tensor([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    o, d = camera_rays(c2w=c2w.float(), K=K, pixels=torch.tensor([[32.0, 32.0], [24.0, 0.0]]))
    assert d[:, 0].tolist() == pytest.approx([-1, 0, 0], abs=1e-6)  # principal point → forward
    assert d[2, 1] > 0.2  # top row (y = 0) looks up (+z world)
    assert o[:, 0].tolist() == pytest.approx([4, 0, 0])


def test_render_view_sphere_in_front() -> None:
    world = World(primitives=[Sphere(texture=WHITE, centre=(0, 0, 0), radius=1.0)])
    c2w = look_at_c2w(torch.tensor([0.0, -5.0, 0.0]), torch.tensor([0.0, 0.0, 0.0]))
    K = torch.tensor([[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]])
    out = render_view(world, c2w=c2w.float(), K=K, width=16, height=16, supersample=3)
    assert out.image.shape == (16, 16, 3)
    assert out.centre_fog[8, 8] == 0.0 and out.centre_fog[0, 0] == 1.0
    # the ray through pixel centre (8.5, 8.5), half a pixel right of and below the principal point,
    # hits the sphere just right of and below its front pole
    p = out.centre_points[8, 8]
    assert float(p.norm()) == pytest.approx(1.0, abs=1e-5)
    assert p[0] > 0.1 and p[2] == pytest.approx(-float(p[0]), abs=1e-5) and p[1] < -0.98
    assert not torch.allclose(out.image[8, 8], out.image[0, 0])
