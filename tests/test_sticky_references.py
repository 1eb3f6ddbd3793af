"""Reference hysteresis (StickyReferences) against plain nearest selection."""

from __future__ import annotations

import math

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.export.camera_paths import look_at, orbit_path
from splatent_viewer.references import StickyReferences, reference_costs, select_references

UP = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
ORIGIN = torch.zeros(3, dtype=torch.float64)


def _cam(angle: float, radius: float = 4.0, height: float = 1.0) -> torch.Tensor:
    eye = torch.tensor([radius * math.cos(angle), radius * math.sin(angle), height], dtype=torch.float64)
    return look_at(eye=eye, target=ORIGIN, up=UP)


def _jittered_ring(n: int = 16, seed: int = 0) -> torch.Tensor:
    """Training cameras around the object at uneven angles and heights (a hand-held capture)."""
    g = torch.Generator().manual_seed(seed)
    angles = (torch.arange(n) + 0.4 * (torch.rand(n, generator=g) - 0.5)) * 2 * math.pi / n
    heights = 1.0 + 0.5 * (torch.rand(n, generator=g) - 0.5)
    return torch.stack([_cam(float(a), height=float(h)) for a, h in zip(angles, heights)])


def _set_changes(sets: list[list[int]]) -> int:
    return sum(set(a) != set(b) for a, b in zip(sets, sets[1:]))


def _list_changes(lists: list[list[int]]) -> int:
    """Changes of what the refiner sees: the set or the order of its reference tiles."""
    return sum(a != b for a, b in zip(lists, lists[1:]))


def _shaky_orbit(frames: int = 240, shake: float = 0.15, seed: int = 1) -> list[torch.Tensor]:
    """An orbit with hand-held shake: noisy eye positions and look-at points."""
    g = torch.Generator().manual_seed(seed)
    path = []
    for f in range(frames):
        a = 2 * math.pi * f / frames
        eye = torch.tensor([4 * math.cos(a), 4 * math.sin(a), 1.0], dtype=torch.float64)
        eye = eye + 0.5 * shake * torch.randn(3, generator=g, dtype=torch.float64)
        path.append(look_at(eye=eye, target=2 * shake * torch.randn(3, generator=g, dtype=torch.float64), up=UP))
    return path


def test_fewer_switches_than_nearest_along_an_orbit():
    train = _jittered_ring()
    path = orbit_path(train_c2ws=train, num_frames=240)
    nearest = [select_references(query_c2ws=c, train_c2ws=train, k=3).tolist() for c in path]
    sticky = StickyReferences(train_c2ws=train, k=3, relative_margin=0.15)
    chosen = [sticky.select(c) for c in path]
    assert sticky.switches == _set_changes(chosen) == _list_changes(chosen)  # order only changes with the set
    # Nearest-first re-sorts the tiles whenever two references swap rank; the sticky order does not.
    assert _list_changes(nearest) >= 2 * _list_changes(chosen)
    # One loop past 16 cameras needs at least 16 set changes; hysteresis needs no more.
    assert _set_changes(chosen) == len(train) <= _set_changes(nearest)
    # Every chosen set stays close to the best one: at most 1 / (1 - margin) of its cost.
    for c, s, n in zip(path, chosen, nearest):
        costs = reference_costs(query_c2ws=c[None], train_c2ws=train, scene_scale=sticky.scene_scale)[0]
        assert costs[s].sum() <= costs[n].sum() / (1 - 0.15) + 1e-9


def test_shaky_path_nearest_chatters_sticky_does_not():
    train = _jittered_ring()
    path = _shaky_orbit()
    nearest = [select_references(query_c2ws=c, train_c2ws=train, k=3).tolist() for c in path]
    sticky = StickyReferences(train_c2ws=train, k=3, relative_margin=0.15)
    for c in path:
        sticky.select(c)
    assert _set_changes(nearest) >= len(train) + 6  # back-and-forth swaps at the transitions
    assert sticky.switches == len(train)
    no_margin = StickyReferences(train_c2ws=train, k=3, relative_margin=0.0)
    assert [no_margin.select(c) for c in path] and no_margin.switches == _set_changes(
        nearest
    )  # margin 0 = nearest sets


def test_order_is_stable_while_kept_and_survivors_keep_their_slots():
    train = _jittered_ring()
    path = orbit_path(train_c2ws=train, num_frames=120)
    sticky = StickyReferences(train_c2ws=train, k=3)
    prev = None
    for c in path:
        cur = sticky.select(c)
        assert len(set(cur)) == 3
        if prev is not None:
            for slot, (a, b) in enumerate(zip(prev, cur)):
                if a in cur:  # a reference that stays keeps its slot
                    assert cur.index(a) == slot
        prev = cur
    # The first selection is nearest first.
    fresh = StickyReferences(train_c2ws=train, k=3)
    assert fresh.select(path[0]) == select_references(query_c2ws=path[0], train_c2ws=train, k=3).tolist()


def test_switches_when_the_old_references_are_far_worse():
    train = _jittered_ring()
    sticky = StickyReferences(train_c2ws=train, k=2, relative_margin=0.5)
    first = sticky.select(_cam(0.0))
    jumped = sticky.select(_cam(math.pi))  # a cut to the other side of the object
    assert set(jumped) == set(select_references(query_c2ws=_cam(math.pi), train_c2ws=train, k=2).tolist())
    assert set(jumped).isdisjoint(first)
    assert sticky.switches == 1


def test_never_keeps_the_query_itself():
    train = _jittered_ring()
    sticky = StickyReferences(train_c2ws=train, k=2, relative_margin=0.9)
    first = sticky.select(_cam(0.05))
    # Move onto a training camera that is in the current set: it must be dropped (infinite cost) despite the huge margin.
    member = first[0]
    chosen = sticky.select(train[member])
    assert member not in chosen


def test_bad_margins_are_rejected():
    with pytest.raises(SplatentError, match="margins"):
        StickyReferences(train_c2ws=_jittered_ring(), k=2, relative_margin=1.0)
