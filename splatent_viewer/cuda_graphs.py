"""Replaying CUDA graphs of fixed-shape inference calls (the codec's decoder and the refiner).

The live frame runs two small networks whose cost on the GPU is mostly kernel-launch overhead
(hundreds of tiny kernels for a 64² latent). A captured CUDA graph launches them all at once.
:class:`CudaGraphRunner` captures one graph per input signature (shape, dtype, device) the first
time it sees it, keeps the few most recent ones, and replays them afterwards; on the CPU, while
disabled, or if capture fails (a warning, then eager for good) it calls the function directly.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

LOG = logging.getLogger(__name__)


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[Tensor, ...]
    output: Tensor


class CudaGraphRunner:
    """``runner(*inputs)`` = ``fn(*inputs)``, replayed from a CUDA graph when the inputs are CUDA tensors.

    ``fn`` must be a pure function of its tensor inputs (no host syncs, no data-dependent shapes) and
    return one tensor. Outputs are copies, so a later call does not overwrite an earlier result.
    Calls are serialised by a lock (capture and replay from several threads are safe).
    """

    def __init__(self, fn: Callable[..., Tensor], *, name: str, max_graphs: int = 6, warmup: int = 2) -> None:
        self.fn, self.name = fn, name
        self.max_graphs, self.warmup = max_graphs, warmup
        self.enabled = True
        """False after a failed capture (then every call is eager)."""
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def num_graphs(self) -> int:
        """Graphs captured and kept (one per input signature)."""
        return len(self._graphs)

    def __call__(self, *inputs: Tensor) -> Tensor:
        if not (self.enabled and inputs and all(t.is_cuda for t in inputs)):
            return self.fn(*inputs)
        key = tuple((tuple(t.shape), t.dtype, t.device) for t in inputs)
        with self._lock:
            entry = self._graphs.get(key)
            if entry is None:
                entry = self._capture(inputs)
                if entry is None:
                    return self.fn(*inputs)
                self._graphs[key] = entry
                while len(self._graphs) > self.max_graphs:
                    self._graphs.popitem(last=False)
            else:
                self._graphs.move_to_end(key)
            for static, x in zip(entry.inputs, inputs):
                static.copy_(x)
            entry.graph.replay()
            return entry.output.clone()

    def _capture(self, inputs: tuple[Tensor, ...]) -> _Graph | None:
        device = inputs[0].device
        static = tuple(t.detach().clone() for t in inputs)
        try:
            # warm-up on a side stream (cuDNN/cuBLAS pick their kernels and workspaces), then capture
            stream = torch.cuda.Stream(device)
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                for _ in range(self.warmup):
                    self.fn(*static)
            torch.cuda.current_stream(device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                output = self.fn(*static)
        except Exception as err:  # noqa: BLE001 - any capture problem: fall back to eager, once, loudly
            self.enabled = False
            LOG.warning("CUDA graph capture of %s failed (%s); running it eagerly from now on.", self.name, err)
            torch.cuda.synchronize(device)
            return None
        if not isinstance(output, Tensor):
            self.enabled = False
            LOG.warning("%s does not return one tensor; CUDA graphs disabled for it.", self.name)
            return None
        return _Graph(graph=graph, inputs=static, output=output)


__all__ = ["CudaGraphRunner"]
