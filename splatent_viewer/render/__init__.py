"""Rasterize 3D Gaussians to N-channel feature images (+ expected depth, alpha).

``rasterize`` dispatches to gsplat 1.4.0 on CUDA or to a pure-torch tiled rasterizer that
mirrors gsplat's maths (CPU, autograd, and gsplat's test oracle).
"""

from splatent_viewer.render.rasterize import RasterOutput, rasterize

__all__ = ["RasterOutput", "rasterize"]
