"""Procedural textures for the demo-scene ray tracer.

Every texture maps surface coordinates ``(u, v)`` (world units along the surface) to an sRGB
albedo in [0, 1]. They are deterministic functions of integer hashes, so a scene renders the
same on every machine, and they carry detail down to about one pixel of a 256² view (mortar
lines, wood grain, glyph strokes): that is the detail latent splats blur and the refiner must
restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int
from torch import Tensor

_MASK32 = 0xFFFFFFFF


def hash_uniform(*coords: Int[Tensor, "*shape"], seed: int) -> Float[Tensor, "*shape"]:
    """Uniform [0, 1) value per integer lattice point (murmur3-style mixing on 32 bits)."""
    h = torch.full_like(coords[0], (seed * 0x9E3779B1 + 0x7F4A7C15) & _MASK32, dtype=torch.int64)
    for c in coords:
        h = ((h ^ (c.to(torch.int64) & _MASK32)) * 0x85EBCA6B) & _MASK32
        h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK32
    h = h ^ (h >> 16)
    return h.to(torch.float32) * (1.0 / 4294967296.0)


def _smooth(t: Tensor) -> Tensor:
    return t * t * (3.0 - 2.0 * t)


def value_noise(u: Float[Tensor, " M"], v: Float[Tensor, " M"], *, seed: int) -> Float[Tensor, " M"]:
    """Smooth value noise in [0, 1] with unit lattice spacing."""
    iu, iv = torch.floor(u), torch.floor(v)
    fu, fv = _smooth(u - iu), _smooth(v - iv)
    iu, iv = iu.to(torch.int64), iv.to(torch.int64)
    a = hash_uniform(iu, iv, seed=seed)
    b = hash_uniform(iu + 1, iv, seed=seed)
    c = hash_uniform(iu, iv + 1, seed=seed)
    d = hash_uniform(iu + 1, iv + 1, seed=seed)
    return torch.lerp(torch.lerp(a, b, fu), torch.lerp(c, d, fu), fv)


def fbm(u: Float[Tensor, " M"], v: Float[Tensor, " M"], *, seed: int, octaves: int = 4) -> Float[Tensor, " M"]:
    """Fractal sum of value noise (lacunarity 2, gain 0.5), normalised to [0, 1]."""
    total = torch.zeros_like(u)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total = total + amp * value_noise(u, v, seed=seed + 101 * o)
        norm += amp
        u, v = u * 2.03 + 17.1, v * 2.03 - 9.7  # offset octaves so lattice points do not line up
        amp *= 0.5
    return total / norm


def _mix(a: Float[Tensor, "3"], b: Float[Tensor, "3"], t: Float[Tensor, " M"]) -> Float[Tensor, "M 3"]:
    return a + (b - a) * t[:, None]


def _rgb(c: tuple[float, float, float]) -> Tensor:
    return torch.tensor(c, dtype=torch.float32)


@runtime_checkable  # annotations are checked at run time in the tests
class Texture(Protocol):
    """Albedo of a surface at ``(u, v)`` on face ``face`` (faces let a box texture its top apart)."""

    def __call__(
        self, u: Float[Tensor, " M"], v: Float[Tensor, " M"], face: Int[Tensor, " M"]
    ) -> Float[Tensor, "M 3"]: ...


@dataclass
class Bricks:
    """Running-bond bricks with mortar joints and per-brick colour variation."""

    brick: tuple[float, float] = (0.12, 0.05)
    mortar: float = 0.008
    color: tuple[float, float, float] = (0.62, 0.25, 0.16)
    mortar_color: tuple[float, float, float] = (0.78, 0.76, 0.70)
    seed: int = 0

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        bw, bh = self.brick
        row = torch.floor(v / bh)
        ub = u / bw + 0.5 * torch.remainder(row, 2.0)
        col = torch.floor(ub)
        fu, fv = (ub - col) * bw, (v / bh - row) * bh
        joint = (fu < self.mortar) | (fv < self.mortar)
        r, c = row.to(torch.int64), col.to(torch.int64)
        shade = 0.7 + 0.5 * hash_uniform(r, c, seed=self.seed)
        grit = 0.85 + 0.3 * value_noise(u * 90.0, v * 90.0, seed=self.seed + 1)
        brick = _rgb(self.color) * (shade * grit)[:, None]
        mortar = _rgb(self.mortar_color) * (0.9 + 0.2 * grit[:, None] - 0.1)
        return torch.where(joint[:, None], mortar, brick).clamp(0.0, 1.0)


@dataclass
class Checker:
    """Two-colour checkerboard with square cells of side ``size``."""

    size: float = 0.1
    color_a: tuple[float, float, float] = (0.9, 0.9, 0.88)
    color_b: tuple[float, float, float] = (0.12, 0.12, 0.14)

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        parity = torch.remainder(torch.floor(u / self.size) + torch.floor(v / self.size), 2.0)
        return _mix(_rgb(self.color_a), _rgb(self.color_b), parity)


@dataclass
class Wood:
    """Planks with wavy grain rings along ``v`` and dark seams between planks."""

    plank_width: float = 0.22
    plank_length: float = 1.3
    ring_frequency: float = 28.0
    light: tuple[float, float, float] = (0.74, 0.52, 0.30)
    dark: tuple[float, float, float] = (0.45, 0.27, 0.13)
    seed: int = 0

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        plank = torch.floor(u / self.plank_width)
        p = plank.to(torch.int64)
        # plank ends are staggered by a per-plank offset
        v_shift = v / self.plank_length + hash_uniform(p, seed=self.seed)
        board = torch.floor(v_shift)
        b = board.to(torch.int64)
        local_u = u - plank * self.plank_width
        centre = (0.2 + 0.6 * hash_uniform(p, b, seed=self.seed + 1)) * self.plank_width
        warp = fbm(u * 3.0, v * 0.6 + 13.0 * hash_uniform(p, b, seed=self.seed + 2), seed=self.seed + 3, octaves=3)
        rings = torch.abs(local_u - centre) * self.ring_frequency + 3.0 * warp
        grain = 0.5 + 0.5 * torch.cos(2.0 * torch.pi * rings)
        grain = grain**3 * 0.8 + 0.2 * value_noise(u * 300.0, v * 12.0, seed=self.seed + 4)
        tone = 0.85 + 0.3 * hash_uniform(p, b, seed=self.seed + 5)
        col = _mix(_rgb(self.light), _rgb(self.dark), grain) * tone[:, None]
        seam = (local_u < 0.006) | ((v_shift - board) * self.plank_length < 0.006)
        return torch.where(seam[:, None], col * 0.35, col).clamp(0.0, 1.0)


@dataclass
class Stripes:
    """Periodic bands of several colours at an angle, with thin dark pin-stripes between bands."""

    period: float = 0.06
    angle: float = 0.6
    colors: tuple[tuple[float, float, float], ...] = ((0.85, 0.2, 0.2), (0.95, 0.9, 0.8), (0.15, 0.3, 0.7))
    line: float = 0.004

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        s = u * torch.cos(torch.tensor(self.angle)) + v * torch.sin(torch.tensor(self.angle))
        band = torch.floor(s / self.period)
        idx = torch.remainder(band, float(len(self.colors))).to(torch.int64)
        col = torch.stack([_rgb(c) for c in self.colors])[idx]
        frac = (s / self.period - band) * self.period
        return torch.where((frac < self.line)[:, None], col * 0.25, col)


@dataclass
class Dots:
    """Hexagonal grid of round dots on a plain ground."""

    spacing: float = 0.05
    radius: float = 0.015
    color: tuple[float, float, float] = (0.1, 0.2, 0.55)
    background: tuple[float, float, float] = (0.93, 0.88, 0.72)

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        row = torch.floor(v / self.spacing)
        u = u / self.spacing + 0.5 * torch.remainder(row, 2.0)
        du = (u - torch.floor(u) - 0.5) * self.spacing
        dv = (v / self.spacing - row - 0.5) * self.spacing
        inside = (du * du + dv * dv) < self.radius**2
        return torch.where(inside[:, None], _rgb(self.color).expand(len(u), 3), _rgb(self.background).expand(len(u), 3))


@dataclass
class Glyphs:
    """Lines of printed-text-like glyphs: random 5×7 bitmaps from a small alphabet, words and gaps.

    ``pixel`` is the size of one glyph dot; a character cell is 6×9 dots (one column and two rows
    of spacing). A coloured title band of double-size glyphs covers two of every ``title_every``
    lines (``title_every`` even).
    """

    pixel: float = 0.006
    ink: tuple[float, float, float] = (0.08, 0.08, 0.12)
    paper: tuple[float, float, float] = (0.95, 0.93, 0.86)
    band: tuple[float, float, float] = (0.75, 0.12, 0.1)
    title_every: int = 8
    alphabet: int = 48
    offset: tuple[float, float] = (0.0, 0.0)
    """Shift of the page in (u, v), so the title band need not start at v = 0."""
    seed: int = 0

    def _ink(self, u: Tensor, v: Tensor, pixel: float, seed: int) -> tuple[Tensor, Tensor]:
        px, py = torch.floor(u / pixel).to(torch.int64), torch.floor(v / pixel).to(torch.int64)
        col, row = torch.div(px, 6, rounding_mode="floor"), torch.div(py, 9, rounding_mode="floor")
        gx, gy = px - 6 * col, py - 9 * row
        glyph = (hash_uniform(col, row, seed=seed) * self.alphabet).to(torch.int64)
        # words: a space with probability ~1/6; each line has a blank stretch (ragged margin) of
        # 0-20 columns in every 48, at a random place
        space = hash_uniform(col, row, seed=seed + 1) < 0.17
        line_len = 28 + (hash_uniform(row, seed=seed + 2) * 21).to(torch.int64)
        shift = (hash_uniform(row, seed=seed + 4) * 48).to(torch.int64)
        in_line = torch.remainder(col + shift, 48) < line_len
        bit = hash_uniform(glyph, gy * 5 + gx, seed=seed + 3) < 0.42
        ink = bit & (gx < 5) & (gy < 7) & ~space & in_line
        return ink, row

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        u, v = u + self.offset[0], v + self.offset[1]
        ink, row = self._ink(u, v, self.pixel, self.seed)
        # a double-size glyph cell is exactly two text lines tall, so the band is lines 0 and 1
        big_ink, _ = self._ink(u, v, 2 * self.pixel, self.seed + 7)
        in_title = torch.remainder(row, self.title_every) < 2
        n = len(u)
        paper, band, ink_rgb = (_rgb(c).expand(n, 3) for c in (self.paper, self.band, self.ink))
        title = torch.where(big_ink[:, None], paper, band)
        body = torch.where(ink[:, None], ink_rgb, paper)
        return torch.where(in_title[:, None], title, body)


@dataclass
class Marble:
    """Veined stone: a sine of fbm-warped coordinates."""

    scale: float = 6.0
    base: tuple[float, float, float] = (0.88, 0.87, 0.84)
    vein: tuple[float, float, float] = (0.25, 0.3, 0.35)
    seed: int = 0

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        u, v = u * self.scale, v * self.scale
        n = fbm(u, v, seed=self.seed, octaves=5)
        vein = torch.abs(torch.sin(u * 1.3 + v * 0.7 + 9.0 * n)) ** 0.25
        speck = value_noise(u * 40.0, v * 40.0, seed=self.seed + 1)
        return _mix(_rgb(self.vein), _rgb(self.base), vein * (0.9 + 0.1 * speck))


@dataclass
class PerFace:
    """One texture on the top face (face 5 of a box, the caps of a cylinder) and another elsewhere."""

    side: Texture
    top: Texture
    top_faces: tuple[int, ...] = (5,)

    def __call__(self, u: Tensor, v: Tensor, face: Tensor) -> Tensor:
        out = self.side(u, v, face)
        is_top = torch.zeros_like(face, dtype=torch.bool)
        for f in self.top_faces:
            is_top |= face == f
        if is_top.any():
            out[is_top] = self.top(u[is_top], v[is_top], face[is_top])
        return out
