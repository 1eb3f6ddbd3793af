"""PLY point clouds and procedural textures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from splatent_viewer.data import textures as tx
from splatent_viewer.data.ply import read_ply_points, write_ply_points
from splatent_viewer.errors import SplatentError


def test_ply_roundtrip(tmp_path: Path) -> None:
    pts = torch.randn(257, 3)
    cols = torch.randint(0, 256, (257, 3), dtype=torch.uint8)
    write_ply_points(tmp_path / "p.ply", points=pts, colors=cols)
    xyz, rgb = read_ply_points(tmp_path / "p.ply")
    assert torch.equal(xyz, pts) and torch.allclose(rgb * 255, cols.float())
    header = (tmp_path / "p.ply").read_bytes()[:200]
    assert b"binary_little_endian" in header and b"element vertex 257" in header


def test_ply_ascii_with_extra_properties(tmp_path: Path) -> None:
    text = "ply\nformat ascii 1.0\nelement vertex 2\nproperty double x\nproperty double y\nproperty double z\nproperty float nx\nend_header\n1 2 3 0\n-1 0.5 2 1\n"
    (tmp_path / "a.ply").write_text(text)
    xyz, rgb = read_ply_points(tmp_path / "a.ply")
    assert xyz.tolist() == [[1, 2, 3], [-1, 0.5, 2]] and rgb is None


def test_ply_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.ply").write_text("hello")
    with pytest.raises(SplatentError, match="bad.ply"):
        read_ply_points(tmp_path / "bad.ply")
    write_ply_points(tmp_path / "cut.ply", points=torch.zeros(100, 3), colors=torch.zeros(100, 3, dtype=torch.uint8))
    data = (tmp_path / "cut.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:-50])
    with pytest.raises(SplatentError, match="truncated"):
        read_ply_points(tmp_path / "cut.ply")


def _grid(n: int = 400, step: float = 0.0031) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    v, u = torch.meshgrid(torch.arange(n) * step, torch.arange(n) * step, indexing="ij")
    return u.reshape(-1), v.reshape(-1), torch.zeros(n * n, dtype=torch.int64)


def test_hash_is_deterministic_uniform_and_seeded() -> None:
    i = torch.arange(-5000, 5000)
    a = tx.hash_uniform(i, i * 7, seed=1)
    assert torch.equal(a, tx.hash_uniform(i, i * 7, seed=1))
    assert 0.0 <= float(a.min()) and float(a.max()) < 1.0 and abs(float(a.mean()) - 0.5) < 0.02
    assert not torch.equal(a, tx.hash_uniform(i, i * 7, seed=2))


def test_bricks_mortar_fraction() -> None:
    b = tx.Bricks(brick=(0.1, 0.05), mortar=0.01, color=(0.6, 0.2, 0.1), mortar_color=(0.8, 0.8, 0.8))
    rgb = b(*_grid())
    mortar = (rgb[:, 1] > 0.5).float().mean()  # brick green channel ≤ 0.2 × 1.2 × 1.15
    expected = 1 - (1 - 0.01 / 0.1) * (1 - 0.01 / 0.05)
    assert float(mortar) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize(
    "texture",
    [tx.Wood(), tx.Glyphs(pixel=0.01), tx.Marble(), tx.Dots(), tx.Stripes(), tx.Checker(size=0.05)],
    ids=lambda t: type(t).__name__,
)
def test_textures_have_fine_detail(texture) -> None:
    rgb = texture(*_grid())
    assert rgb.shape == (160000, 3) and float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
    img = rgb.reshape(400, 400, 3).mean(-1)
    # neighbouring samples 3 mm apart differ noticeably somewhere: real high-frequency content
    assert float((img[:, 1:] - img[:, :-1]).abs().mean() + (img[1:] - img[:-1]).abs().mean()) > 0.01
