"""A small vectorised ray tracer (torch, CPU) for the procedural demo scenes.

World is z-up. Analytic ray-primitive intersections (plane, oriented box, sphere, capped
cylinder) plus a sphere-traced torus; Lambert + sky ambient shading with hard shadows from
one sun; distance fog into a sky gradient; supersampled pixels. Cameras are nerfstudio
(OpenGL) camera-to-world matrices with pinhole intrinsics, pixel centres at ``i + 0.5``
(nerfstudio's and gsplat's convention), so rendered views agree with the ``transforms.json``
written next to them.

Vectors are stored component-major (``[3, M]``: each coordinate a contiguous row), which keeps
every elementwise op contiguous; rays are culled against each primitive's bounding sphere
before its exact test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from splatent_viewer.data.textures import Texture

_INF = float("inf")
_EPS = 1e-4

Vec = Float[Tensor, "3 M"]


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _safe(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``x`` with magnitudes below ``eps`` replaced by ``eps`` (keeps divisions finite)."""
    return torch.where(x.abs() > eps, x, torch.full_like(x, eps))


def _inf_like(t: Tensor) -> Tensor:
    return torch.full_like(t, _INF)


@dataclass
class Primitive:
    """Base class: ``intersect`` gives the nearest hit distance > eps (inf for none);
    ``surface`` gives the outward normal, texture coordinates (u, v) and a face id at hit points."""

    texture: Texture

    def bound(self) -> tuple[tuple[float, float, float], float] | None:
        """Bounding sphere (centre, radius), or None for unbounded primitives."""
        return None

    def intersect(self, o: Vec, d: Vec) -> Float[Tensor, " M"]:
        raise NotImplementedError

    def surface(self, p: Vec) -> tuple[Vec, Float[Tensor, " M"], Float[Tensor, " M"], Int[Tensor, " M"]]:
        raise NotImplementedError


@dataclass
class Plane(Primitive):
    """Horizontal plane ``z = height`` (seen from above), uv = world (x, y)."""

    height: float = 0.0

    def intersect(self, o: Vec, d: Vec) -> Tensor:
        t = (self.height - o[2]) / _safe(d[2], 1e-9)
        return torch.where(t > _EPS, t, _inf_like(t))

    def surface(self, p: Vec) -> tuple[Vec, Tensor, Tensor, Tensor]:
        n = torch.zeros_like(p)
        n[2] = 1.0
        return n, p[0], p[1], torch.zeros(p.shape[1], dtype=torch.int64)


@dataclass
class Box(Primitive):
    """Box with half extents ``half`` centred at ``centre``, turned by ``yaw`` (radians) about z.

    Faces: 0/1 = -x/+x, 2/3 = -y/+y, 4/5 = -z/+z (5 is the top). uv on a side face is
    (horizontal coordinate, height above the bottom), so bricks stand upright.
    """

    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    half: tuple[float, float, float] = (0.5, 0.5, 0.5)
    yaw: float = 0.0

    def bound(self) -> tuple[tuple[float, float, float], float]:
        return self.centre, math.sqrt(sum(h * h for h in self.half)) * 1.0001

    def _local(self, x: Vec, *, point: bool) -> Vec:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x0, x1 = (x[0] - self.centre[0], x[1] - self.centre[1]) if point else (x[0], x[1])
        x2 = x[2] - self.centre[2] if point else x[2]
        return torch.stack([c * x0 + s * x1, -s * x0 + c * x1, x2])

    def intersect(self, o: Vec, d: Vec) -> Tensor:
        ol, dl = self._local(o, point=True), self._local(d, point=False)
        tnear = torch.full_like(o[0], -_INF)
        tfar = torch.full_like(o[0], _INF)
        for i, h in enumerate(self.half):
            inv = 1.0 / _safe(dl[i])
            t0, t1 = (-h - ol[i]) * inv, (h - ol[i]) * inv
            tnear = torch.maximum(tnear, torch.minimum(t0, t1))
            tfar = torch.minimum(tfar, torch.maximum(t0, t1))
        t = torch.where(tnear > _EPS, tnear, tfar)  # ray starting inside: exit point
        return torch.where((tnear <= tfar) & (tfar > _EPS), t, _inf_like(t))

    def surface(self, p: Vec) -> tuple[Vec, Tensor, Tensor, Tensor]:
        pl = self._local(p, point=True)
        half = torch.tensor(self.half, dtype=p.dtype)[:, None]
        rel = pl / half
        axis = rel.abs().argmax(dim=0)
        sign = torch.sign(rel.gather(0, axis[None]))[0]
        nl = torch.zeros_like(p)
        nl[axis, torch.arange(p.shape[1])] = sign
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        n = torch.stack([c * nl[0] - s * nl[1], s * nl[0] + c * nl[1], nl[2]])
        face = 2 * axis + (sign > 0).to(torch.int64)
        height = pl[2] + self.half[2]
        u = torch.where(axis == 0, pl[1], pl[0])
        v = torch.where(axis == 2, pl[1], height)
        return n, u, v, face


@dataclass
class Sphere(Primitive):
    """Sphere; uv = (longitude × radius, colatitude × radius)."""

    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.5

    def bound(self) -> tuple[tuple[float, float, float], float]:
        return self.centre, self.radius * 1.0001

    def intersect(self, o: Vec, d: Vec) -> Tensor:
        return _sphere_hit(o, d, self.centre, self.radius)

    def surface(self, p: Vec) -> tuple[Vec, Tensor, Tensor, Tensor]:
        n = torch.stack([(p[i] - self.centre[i]) / self.radius for i in range(3)])
        lon = torch.atan2(n[1], n[0])
        colat = torch.acos(n[2].clamp(-1.0, 1.0))
        return n, lon * self.radius, colat * self.radius, torch.zeros(p.shape[1], dtype=torch.int64)


def _sphere_span(o: Vec, d: Vec, centre: tuple[float, float, float], radius: float) -> tuple[Tensor, Tensor, Tensor]:
    """Entry and exit distances of unit-direction rays through a sphere, and whether they meet it."""
    ox, oy, oz = o[0] - centre[0], o[1] - centre[1], o[2] - centre[2]
    b = ox * d[0] + oy * d[1] + oz * d[2]
    disc = b * b - (ox * ox + oy * oy + oz * oz - radius * radius)
    sq = torch.sqrt(disc.clamp_min(0.0))
    return -b - sq, -b + sq, disc >= 0


def _sphere_hit(o: Vec, d: Vec, centre: tuple[float, float, float], radius: float) -> Tensor:
    t0, t1, meets = _sphere_span(o, d, centre, radius)
    t = torch.where(t0 > _EPS, t0, t1)
    return torch.where(meets & (t > _EPS), t, _inf_like(t))


@dataclass
class Cylinder(Primitive):
    """Upright capped cylinder, axis through (x, y), from ``z0`` to ``z1``.

    Face 0 = side (uv = arc length, height), 4/5 = bottom/top caps (uv = local x, y).
    """

    xy: tuple[float, float] = (0.0, 0.0)
    radius: float = 0.2
    z0: float = 0.0
    z1: float = 0.5

    def bound(self) -> tuple[tuple[float, float, float], float]:
        hz = 0.5 * (self.z1 - self.z0)
        return (self.xy[0], self.xy[1], self.z0 + hz), math.hypot(self.radius, hz) * 1.0001

    def intersect(self, o: Vec, d: Vec) -> Tensor:
        ox, oy = o[0] - self.xy[0], o[1] - self.xy[1]
        a = d[0] * d[0] + d[1] * d[1]
        b = ox * d[0] + oy * d[1]
        c = ox * ox + oy * oy - self.radius**2
        disc = b * b - a * c
        sq = torch.sqrt(disc.clamp_min(0.0))
        a_safe = a.clamp_min(1e-12)
        best = _inf_like(a)
        side_ok = (disc >= 0) & (a > 1e-12)
        for t in ((-b - sq) / a_safe, (-b + sq) / a_safe):
            z = o[2] + t * d[2]
            ok = side_ok & (t > _EPS) & (z >= self.z0) & (z <= self.z1) & (t < best)
            best = torch.where(ok, t, best)
        dz = _safe(d[2])
        for zc in (self.z0, self.z1):
            t = (zc - o[2]) / dz
            x, y = ox + t * d[0], oy + t * d[1]
            ok = (t > _EPS) & (x * x + y * y <= self.radius**2) & (t < best)
            best = torch.where(ok, t, best)
        return best

    def surface(self, p: Vec) -> tuple[Vec, Tensor, Tensor, Tensor]:
        x, y = p[0] - self.xy[0], p[1] - self.xy[1]
        r = torch.sqrt(x * x + y * y)
        cap_eps = 1e-4 * max(1.0, self.z1 - self.z0)
        top = p[2] >= self.z1 - cap_eps
        on_cap = (top | (p[2] <= self.z0 + cap_eps)) & (r < self.radius * (1 - 1e-4))
        zero = torch.zeros_like(x)
        n = torch.stack(
            [
                torch.where(on_cap, zero, x / self.radius),
                torch.where(on_cap, zero, y / self.radius),
                torch.where(on_cap, torch.where(top, 1.0, -1.0), zero),
            ]
        )
        u = torch.where(on_cap, x, torch.atan2(y, x) * self.radius)
        v = torch.where(on_cap, y, p[2] - self.z0)
        face = torch.where(on_cap, torch.where(top, 5, 4), 0)
        return n, u, v, face


@dataclass
class Torus(Primitive):
    """Torus lying flat (axis z) at ``centre``; major radius ``major``, tube radius ``minor``.

    Intersected by sphere tracing its distance field between the bounding sphere's entry and
    exit; uv = (angle around the axis × major, angle around the tube × minor).
    """

    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    major: float = 0.3
    minor: float = 0.08
    steps: int = 48

    def bound(self) -> tuple[tuple[float, float, float], float]:
        return self.centre, (self.major + self.minor) * 1.0001

    def _sdf(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        ring = torch.sqrt(x * x + y * y) - self.major
        return torch.sqrt(ring * ring + z * z) - self.minor

    def intersect(self, o: Vec, d: Vec) -> Tensor:
        t0, t_end, meets = _sphere_span(o, d, self.centre, self.major + self.minor)
        ox, oy, oz = o[0] - self.centre[0], o[1] - self.centre[1], o[2] - self.centre[2]
        t = t0.clamp_min(10 * _EPS)
        alive = meets & (t < t_end)
        for _ in range(self.steps):
            dist = self._sdf(ox + t * d[0], oy + t * d[1], oz + t * d[2])
            t = torch.where(alive, t + dist, t)  # the torus SDF is exact, so full steps are safe
            alive = alive & (t < t_end) & (dist > 2e-5)
        final = self._sdf(ox + t * d[0], oy + t * d[1], oz + t * d[2])
        hit = meets & (final.abs() < 1e-3) & (t < t_end) & (t > _EPS)
        return torch.where(hit, t, _inf_like(t))

    def surface(self, p: Vec) -> tuple[Vec, Tensor, Tensor, Tensor]:
        x, y, z = p[0] - self.centre[0], p[1] - self.centre[1], p[2] - self.centre[2]
        phi = torch.atan2(y, x)
        radial = torch.sqrt(x * x + y * y) - self.major
        n = torch.stack([radial * torch.cos(phi), radial * torch.sin(phi), z])
        n = n / n.norm(dim=0, keepdim=True).clamp_min(1e-12)
        theta = torch.atan2(z, radial)
        return n, phi * self.major, theta * self.minor, torch.zeros(p.shape[1], dtype=torch.int64)


@dataclass
class Lighting:
    """Sun + sky. Colours are linear RGB; output is encoded with gamma 1/2.2."""

    sun_direction: tuple[float, float, float] = (0.4, -0.3, 0.85)
    """Direction towards the sun (normalised on use)."""
    sun: tuple[float, float, float] = (2.2, 2.05, 1.85)
    ambient: tuple[float, float, float] = (0.36, 0.40, 0.48)
    sky_horizon: tuple[float, float, float] = (0.86, 0.89, 0.93)
    sky_zenith: tuple[float, float, float] = (0.30, 0.48, 0.80)
    fog_start: float = 3.5
    """Horizontal distance from the origin at which surfaces start to fade into the sky."""
    fog_end: float = 9.0


@dataclass
class World:
    """Primitives and lighting."""

    primitives: list[Primitive] = field(default_factory=list)
    lighting: Lighting = field(default_factory=Lighting)

    def nearest(self, o: Vec, d: Vec) -> tuple[Float[Tensor, " M"], Int[Tensor, " M"]]:
        """Nearest hit distance (inf for none) and primitive index (-1 for none)."""
        best = _inf_like(o[0])
        idx = torch.full_like(best, -1, dtype=torch.int64)
        for i, prim in enumerate(self.primitives):
            b = prim.bound()
            if b is None:
                t = prim.intersect(o, d)
                closer = t < best
                best = torch.where(closer, t, best)
                idx = torch.where(closer, i, idx)
                continue
            t0, t1, meets = _sphere_span(o, d, *b)
            sel = torch.nonzero(meets & (t1 > _EPS) & (t0 < best)).squeeze(1)
            if len(sel) == 0:
                continue
            t = prim.intersect(o[:, sel], d[:, sel])
            closer = t < best[sel]
            best[sel] = torch.where(closer, t, best[sel])
            idx[sel] = torch.where(closer, i, idx[sel])
        return best, idx

    def occluded(self, o: Vec, d: Vec) -> Bool[Tensor, " M"]:
        """Whether anything lies along each ray (shadow test)."""
        hit = torch.zeros(o.shape[1], dtype=torch.bool)
        for prim in self.primitives:
            b = prim.bound()
            cand = ~hit
            if b is not None:
                _, t1, meets = _sphere_span(o, d, *b)
                cand &= meets & (t1 > _EPS)
            sel = torch.nonzero(cand).squeeze(1)
            if len(sel):
                hit[sel] = torch.isfinite(prim.intersect(o[:, sel], d[:, sel]))
        return hit

    def sky(self, d: Vec) -> Float[Tensor, "M 3"]:
        lt = self.lighting
        t = d[2].clamp(0.0, 1.0).sqrt()[:, None]
        return torch.tensor(lt.sky_horizon) + (torch.tensor(lt.sky_zenith) - torch.tensor(lt.sky_horizon)) * t

    def shade(self, o: Vec, d: Vec) -> tuple[Float[Tensor, "M 3"], Vec, Float[Tensor, " M"]]:
        """Linear colour, hit point and fog weight (1 = sky) of each ray."""
        lt = self.lighting
        t, idx = self.nearest(o, d)
        colour = self.sky(d)
        points = o + d * torch.where(torch.isfinite(t), t, torch.zeros_like(t))
        fog = torch.ones_like(t)
        sun_dir = torch.nn.functional.normalize(torch.tensor(lt.sun_direction, dtype=o.dtype), dim=0)
        for i, prim in enumerate(self.primitives):
            sel = torch.nonzero(idx == i).squeeze(1)
            if len(sel) == 0:
                continue
            p = points[:, sel]
            n, u, v, face = prim.surface(p)
            n = torch.where(_dot(n, d[:, sel]) > 0, -n, n)  # face the viewer
            albedo = prim.texture(u, v, face).clamp(0.0, 1.0) ** 2.2
            lambert = (n * sun_dir[:, None]).sum(0).clamp_min(0.0)
            lit = torch.nonzero(lambert > 0).squeeze(1)
            visible = torch.zeros_like(lambert)
            if len(lit):
                shadow_o = p[:, lit] + n[:, lit] * 2e-3
                visible[lit] = (~self.occluded(shadow_o, sun_dir[:, None].expand(3, len(lit)))).to(o.dtype)
            sky_light = torch.tensor(lt.ambient) * (0.75 + 0.25 * n[2])[:, None]
            light = sky_light + torch.tensor(lt.sun) * (lambert * visible)[:, None]
            r = torch.sqrt(p[0] ** 2 + p[1] ** 2)
            f = ((r - lt.fog_start) / (lt.fog_end - lt.fog_start)).clamp(0.0, 1.0)
            f = f * f * (3 - 2 * f)
            colour[sel] = albedo * light * (1 - f)[:, None] + colour[sel] * f[:, None]
            fog[sel] = f
        return colour, points, fog


def camera_rays(*, c2w: Float[Tensor, "4 4"], K: Float[Tensor, "3 3"], pixels: Float[Tensor, "2 M"]) -> tuple[Vec, Vec]:
    """World rays (origins, unit directions; component-major) through image positions ``pixels``
    (x right, y down; pixel centres at i + 0.5) of an OpenGL camera-to-world ``c2w`` (camera looks
    down its -z, y up)."""
    x = (pixels[0] - K[0, 2]) / K[0, 0]
    y = (pixels[1] - K[1, 2]) / K[1, 1]
    d_cam = torch.stack([x, -y, -torch.ones_like(x)])
    d = c2w[:3, :3] @ d_cam
    d = d / d.norm(dim=0, keepdim=True)
    return c2w[:3, 3:4].expand_as(d).contiguous(), d


def to_srgb(linear: Tensor) -> Tensor:
    return linear.clamp(0.0, 1.0) ** (1.0 / 2.2)


@dataclass
class RenderOutput:
    image: Float[Tensor, "H W 3"]
    """Supersampled colour, gamma-encoded, in [0, 1]."""
    centre_points: Float[Tensor, "H W 3"]
    """Hit point of the ray through each pixel centre (on the camera ray where nothing is hit)."""
    centre_fog: Float[Tensor, "H W"]
    """Fog weight at each pixel centre (1 = sky, no surface)."""


def render_view(
    world: World,
    *,
    c2w: Float[Tensor, "4 4"],
    K: Float[Tensor, "3 3"],
    width: int,
    height: int,
    supersample: int = 3,
    chunk: int = 1 << 17,
) -> RenderOutput:
    """Render one view; ``supersample`` × ``supersample`` stratified rays per pixel, averaged in
    linear light (odd values put one ray at the pixel centre, whose hit is also returned)."""
    s = supersample
    offs = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    px = (xs[:, :, None, None] + offs[None, None, None, :]).expand(height, width, s, s)
    py = (ys[:, :, None, None] + offs[None, None, :, None]).expand(height, width, s, s)
    pixels = torch.stack([px.reshape(-1), py.reshape(-1)])
    n = pixels.shape[1]
    colour, points, fog = torch.empty(n, 3), torch.empty(3, n), torch.empty(n)
    for start in range(0, n, chunk):
        o, d = camera_rays(c2w=c2w.float(), K=K.float(), pixels=pixels[:, start : start + chunk])
        colour[start : start + chunk], points[:, start : start + chunk], fog[start : start + chunk] = world.shade(o, d)
    mid = (s * s) // 2
    return RenderOutput(
        image=to_srgb(colour.reshape(height, width, s * s, 3).mean(2)),
        centre_points=points.T.reshape(height, width, s * s, 3)[:, :, mid],
        centre_fog=fog.reshape(height, width, s * s)[:, :, mid],
    )
