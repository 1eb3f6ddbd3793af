"""Which training views a rendered view should look at: the k nearest training cameras.

Distance between a query camera ``q`` and a training camera ``i``::

    cost(q, i) = |c_q - c_i| / scene_scale  +  angle_weight * angle(d_q, d_i)

with ``c`` the camera centres, ``d`` the viewing directions (the camera's forward axis) and
the angle in radians. Normalising the position term by the scene scale makes the mix
independent of the scene's units. Ties are broken by the lower training index, so the
selection is deterministic.

The refiner learns from references chosen this way (``angle_weight`` 0.5, the dataset builder's), so
the tools use the same rule and expose no knob for it: only the count (the refiner's k, or
``--num-references``) and, for videos, the hysteresis of :class:`StickyReferences` are options.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.errors import SplatentError


def camera_centers(c2ws: Float[Tensor, "*batch 4 4"] | Float[Tensor, "*batch 3 4"]) -> Float[Tensor, "*batch 3"]:
    """Camera centres of camera-to-world matrices."""
    return c2ws[..., :3, 3]


def viewing_directions(c2ws: Float[Tensor, "*batch 4 4"] | Float[Tensor, "*batch 3 4"]) -> Float[Tensor, "*batch 3"]:
    """Unit forward axes of OpenGL camera-to-world matrices (cameras look down -z)."""
    d = -c2ws[..., :3, 2]
    return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def camera_scene_scale(c2ws: Float[Tensor, "N 4 4"] | Float[Tensor, "N 3 4"]) -> float:
    """Scene scale from the training cameras: largest distance of a camera centre from their mean."""
    centers = camera_centers(c2ws)
    scale = (centers - centers.mean(dim=0)).norm(dim=-1).max().item()
    return scale if scale > 0 else 1.0


def reference_costs(
    *,
    query_c2ws: Float[Tensor, "Q 4 4"] | Float[Tensor, "Q 3 4"],
    train_c2ws: Float[Tensor, "N 4 4"] | Float[Tensor, "N 3 4"],
    scene_scale: float,
    angle_weight: float = 0.5,
) -> Float[Tensor, "Q N"]:
    """The selection cost between every query and every training camera (lower is nearer)."""
    q = query_c2ws.to(torch.float64)
    t = train_c2ws.to(device=q.device, dtype=torch.float64)
    position = torch.cdist(camera_centers(q), camera_centers(t)) / scene_scale
    cos = (viewing_directions(q) @ viewing_directions(t).T).clamp(-1.0, 1.0)
    return position + angle_weight * torch.arccos(cos)


def select_references(
    *,
    query_c2ws: Float[Tensor, "Q 4 4"] | Float[Tensor, "Q 3 4"] | Float[Tensor, "4 4"] | Float[Tensor, "3 4"],
    train_c2ws: Float[Tensor, "N 4 4"] | Float[Tensor, "N 3 4"],
    k: int,
    scene_scale: float | None = None,
    angle_weight: float = 0.5,
    exclude_tolerance: float = 1e-5,
) -> Int[Tensor, "Q k"] | Int[Tensor, " k"]:
    """Indices of the ``k`` nearest training cameras for each query, nearest first.

    A training camera whose pose equals the query's (within ``exclude_tolerance``) is the query
    itself and is never returned. ``scene_scale`` defaults to :func:`camera_scene_scale` of the
    training cameras. A single query (``[4, 4]``) gives a ``[k]`` result.
    """
    single = query_c2ws.ndim == 2
    queries = query_c2ws[None] if single else query_c2ws
    n = train_c2ws.shape[0]
    if k < 0:
        raise SplatentError(f"Number of references must be >= 0, got {k}.")
    if scene_scale is None:
        scene_scale = camera_scene_scale(train_c2ws)
    costs = reference_costs(
        query_c2ws=queries, train_c2ws=train_c2ws, scene_scale=scene_scale, angle_weight=angle_weight
    )
    same = (queries[:, None, :3, :4].to(torch.float64) - train_c2ws[None, :, :3, :4].to(costs)).abs().amax(dim=(-1, -2))
    costs = costs.masked_fill(same <= exclude_tolerance, float("inf"))
    available = int((costs.isfinite()).sum(dim=1).min().item()) if n else 0
    if k > available:
        raise SplatentError(
            f"Asked for {k} references but only {available} training views are available; use --num-references {available} or fewer."
        )
    # Stable sort: equal costs keep index order, so ties resolve to the lower index.
    order = torch.sort(costs, dim=1, stable=True).indices[:, :k]
    order = order.to(train_c2ws.device)
    return order[0] if single else order


@dataclass
class StickyReferences:
    """Reference selection with hysteresis, for temporally stable flythroughs.

    Plain nearest selection swaps a reference as soon as another training view becomes marginally
    nearer, which changes the refiner's input (and so the output) abruptly between two frames.
    This keeps the current set until the nearest set is clearly better::

        switch  iff  cost(nearest set) < cost(current set) * (1 - relative_margin) - absolute_margin

    with the cost of a set the sum of its members' :func:`reference_costs`. A current member that
    became unusable (the query is that training camera itself) makes the cost infinite, so it
    always switches then. The order is kept stable too: while a set is kept its order is frozen,
    and on a switch the references that stay keep their slots and the new ones fill the freed slots
    nearest first (the first selection is nearest first).

    Call :meth:`select` once per frame, in path order.
    """

    train_c2ws: Float[Tensor, "N 4 4"]
    """Training cameras (OpenGL camera-to-world)."""
    k: int
    """How many references per frame."""
    scene_scale: float | None = None
    """Normalises the position term; default :func:`camera_scene_scale` of ``train_c2ws``."""
    angle_weight: float = 0.5
    """Weight of the viewing-direction angle (radians) against the position distance (scene scales), as in
    :func:`select_references`."""
    relative_margin: float = 0.15
    """The nearest set must be this fraction cheaper than the current one to replace it."""
    absolute_margin: float = 0.0
    """... and cheaper by at least this much (cost units: scene scales / radians)."""
    exclude_tolerance: float = 1e-5
    """A training camera within this pose distance of the query is the query itself and is skipped."""
    current: list[int] | None = None
    """The references of the last frame (None before the first)."""
    switches: int = 0
    """Frames whose set differed from the previous frame's (the first selection is not counted)."""

    def __post_init__(self) -> None:  # (scene_scale is a float from here on)
        if not 0.0 <= self.relative_margin < 1.0 or self.absolute_margin < 0.0:
            raise SplatentError(
                f"Hysteresis margins must satisfy 0 <= relative < 1 and absolute >= 0, got "
                f"{self.relative_margin} and {self.absolute_margin}."
            )
        if self.scene_scale is None:
            self.scene_scale = camera_scene_scale(self.train_c2ws)

    def reset(self) -> None:
        """Forget the current set (e.g. at a cut in the path)."""
        self.current, self.switches = None, 0

    def select(self, c2w: Float[Tensor, "4 4"] | Float[Tensor, "3 4"]) -> list[int]:
        """The references for the next frame, in stable slot order."""
        nearest = select_references(
            query_c2ws=c2w,
            train_c2ws=self.train_c2ws,
            k=self.k,
            scene_scale=self.scene_scale,
            angle_weight=self.angle_weight,
            exclude_tolerance=self.exclude_tolerance,
        ).tolist()
        if self.current is None:
            self.current = nearest
            return list(self.current)
        if set(nearest) == set(self.current):  # (summing in another order could differ in the last bit)
            return list(self.current)
        assert self.scene_scale is not None  # set in __post_init__
        costs = reference_costs(
            query_c2ws=c2w[None],
            train_c2ws=self.train_c2ws,
            scene_scale=self.scene_scale,
            angle_weight=self.angle_weight,
        )[0]
        same = (c2w[None, :3, :4].to(torch.float64) - self.train_c2ws[:, :3, :4].to(costs)).abs().amax(dim=(-1, -2))
        costs = costs.masked_fill(same <= self.exclude_tolerance, float("inf"))
        old_cost = float(costs[self.current].sum())
        new_cost = float(costs[nearest].sum())
        if new_cost < old_cost * (1.0 - self.relative_margin) - self.absolute_margin:  # inf old cost: always
            incoming = [i for i in nearest if i not in self.current]  # nearest first
            self.current = [i if i in nearest else incoming.pop(0) for i in self.current]
            self.switches += 1
        return list(self.current)
