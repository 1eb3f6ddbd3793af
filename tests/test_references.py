"""Nearest-reference selection."""

import math

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.references import camera_scene_scale, select_references


def look_at_c2w(eye, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """OpenGL camera-to-world looking from eye at target."""
    eye, target, up = (torch.tensor(v, dtype=torch.float64) for v in (eye, target, up))
    back = eye - target
    back = back / back.norm()
    right = torch.linalg.cross(up, back)
    right = right / right.norm()
    cam_up = torch.linalg.cross(back, right)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, back, eye
    return c2w


def ring(n: int, radius: float = 4.0, height: float = 1.0) -> torch.Tensor:
    return torch.stack(
        [
            look_at_c2w((radius * math.cos(2 * math.pi * i / n), radius * math.sin(2 * math.pi * i / n), height))
            for i in range(n)
        ]
    )


def test_ring_neighbours_nearest_first():
    cams = ring(12)
    query = look_at_c2w((4.0 * math.cos(0.1), 4.0 * math.sin(0.1), 1.0))  # just past camera 0 towards 1
    idx = select_references(query_c2ws=query, train_c2ws=cams, k=3)
    assert idx.tolist() == [0, 1, 11]


def test_training_view_excludes_itself():
    cams = ring(12)
    idx = select_references(query_c2ws=cams[5], train_c2ws=cams, k=2)
    assert 5 not in idx.tolist()
    assert sorted(idx.tolist()) == [4, 6]


def test_ties_resolve_to_lower_index():
    cams = ring(8)
    # Query exactly between cameras 2 and 3 at the same radius: equal cost to both.
    a = 2 * math.pi * 2.5 / 8
    idx = select_references(query_c2ws=look_at_c2w((4 * math.cos(a), 4 * math.sin(a), 1.0)), train_c2ws=cams, k=1)
    assert idx.tolist() == [2]
    # Duplicated cameras: the lower index wins every time.
    dup = torch.cat([cams, cams])
    idx = select_references(query_c2ws=look_at_c2w((4.0, 0.1, 1.0)), train_c2ws=dup, k=2)
    assert idx.tolist() == [0, 8]


def test_direction_term_matters():
    # Two cameras at the same distance from the query: one looks the same way, one looks away.
    same_dir = look_at_c2w((1.0, 0.0, 0.0), target=(1.0, 5.0, 0.0))
    other_dir = look_at_c2w((-1.0, 0.0, 0.0), target=(-1.0, -5.0, 0.0))
    query = look_at_c2w((0.0, 0.0, 0.0), target=(0.0, 5.0, 0.0))
    cams = torch.stack([other_dir, same_dir])
    assert select_references(query_c2ws=query, train_c2ws=cams, k=1, scene_scale=1.0).tolist() == [1]
    # Without the angle term both are equally near and the tie goes to index 0.
    assert select_references(query_c2ws=query, train_c2ws=cams, k=1, scene_scale=1.0, angle_weight=0.0).tolist() == [0]


def test_scale_normalisation_makes_units_irrelevant():
    cams = ring(10)
    query = look_at_c2w((3.0, 2.5, 1.5))
    a = select_references(query_c2ws=query, train_c2ws=cams, k=4)
    scaled = cams.clone()
    scaled[:, :3, 3] *= 100.0
    q2 = query.clone()
    q2[:3, 3] *= 100.0
    b = select_references(query_c2ws=q2, train_c2ws=scaled, k=4)
    assert a.tolist() == b.tolist()
    assert camera_scene_scale(scaled) == pytest.approx(100 * camera_scene_scale(cams))


def test_batched_queries_match_single():
    cams = ring(9)
    queries = cams[[0, 4]].clone()
    queries[:, :3, 3] *= 1.1
    batched = select_references(query_c2ws=queries, train_c2ws=cams, k=3)
    assert batched.shape == (2, 3)
    for q in range(2):
        assert batched[q].tolist() == select_references(query_c2ws=queries[q], train_c2ws=cams, k=3).tolist()


def test_too_many_references_is_a_clear_error():
    cams = ring(4)
    with pytest.raises(SplatentError, match="only 3 training views"):
        select_references(query_c2ws=cams[0], train_c2ws=cams, k=4)
    assert select_references(query_c2ws=cams[0], train_c2ws=cams, k=0).numel() == 0
