"""Which training views a rendered view should look at: the k nearest training cameras.

Distance between a query camera ``q`` and a training camera ``i``::

    cost(q, i) = |c_q - c_i| / scene_scale  +  angle_weight * angle(d_q, d_i)

with ``c`` the camera centres, ``d`` the viewing directions (the camera's forward axis) and
the angle in radians. Normalising the position term by the scene scale makes the mix
independent of the scene's units. Ties are broken by the lower training index, so the
selection is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.errors import SplatentError


@dataclass
class ReferenceSelectionConfig:
    """How nearest training views are chosen."""

    num_references: int = 3
    """How many references (k). Splatent uses up to 5; 0 disables them."""
    angle_weight: float = 0.5
    """Weight of the viewing-direction angle (radians) against the position distance (scene scales)."""
    exclude_tolerance: float = 1e-5
    """A training camera within this pose distance of the query is the query itself and is skipped."""


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
) -> Int[Tensor, "Q k"] | Int[Tensor, "k"]:
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
