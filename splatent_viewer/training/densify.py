"""gsplat's ``DefaultStrategy`` without its per-step host syncs.

Every training step, ``DefaultStrategy.step_post_backward`` accumulates each Gaussian's screen-space gradient norm,
visibility count and (with screen-size refinement) largest screen radius. gsplat 1.4.0 does it sparsely:
``torch.where(radii > 0)`` and boolean indexing, whose output sizes the host must read — three device syncs in
every step, each stalling the CPU until the GPU has finished the backward pass (measured on one H100: the CPU of
``ns-train splatent`` waited ~4 ms a step in syncs, benchmarks/RESULTS.md, issue 18). :class:`SyncFreeDefaultStrategy`
accumulates the same sums densely over the ``[C, N]`` grid with ``torch.where``: the same state (for one camera,
bit for bit: adding 0.0 where gsplat adds nothing), no sync. Growing, pruning and resets are gsplat's own.
"""

from __future__ import annotations

from typing import Any

import torch
from gsplat.strategy import DefaultStrategy


class SyncFreeDefaultStrategy(DefaultStrategy):
    """gsplat's ``DefaultStrategy`` whose per-step statistics need no host sync (unpacked rasterizer info only; the
    packed layout keeps gsplat's own update). Same fields, same densification."""

    @torch.no_grad()
    def _update_state(
        self,
        params: dict[str, torch.nn.Parameter] | torch.nn.ParameterDict,
        state: dict[str, Any],
        info: dict[str, Any],
        packed: bool = False,
    ) -> None:
        if packed:
            super()._update_state(params, state, info, packed=packed)
            return
        source = info[self.key_for_gradient]
        grads = (source.absgrad if self.absgrad else source.grad).clone()  # [C, N, 2]
        grads[..., 0] *= info["width"] / 2.0 * info["n_cameras"]
        grads[..., 1] *= info["height"] / 2.0 * info["n_cameras"]
        n_gaussian = len(list(params.values())[0])
        for key in ("grad2d", "count") + (("radii",) if self.refine_scale2d_stop_iter > 0 else ()):
            if state[key] is None:
                state[key] = torch.zeros(n_gaussian, device=grads.device)
        sel = info["radii"] > 0.0  # [C, N]
        state["grad2d"] += torch.where(sel, grads.norm(dim=-1), 0.0).sum(0)
        state["count"] += sel.sum(0, dtype=torch.float32)
        if self.refine_scale2d_stop_iter > 0:
            radii = info["radii"].float() / float(max(info["width"], info["height"]))
            torch.maximum(state["radii"], torch.where(sel, radii, 0.0).amax(0), out=state["radii"])


__all__ = ["SyncFreeDefaultStrategy"]
