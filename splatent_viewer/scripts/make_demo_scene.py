"""Render the project's procedural demo scene into a nerfstudio-format folder.

    python -m splatent_viewer.scripts.make_demo_scene --output assets/demo_scene --num-views 36 --resolution 256 --seed 0

Seed 0 is the shipped ``assets/demo_scene``; other seeds give other tabletop layouts.
"""

from __future__ import annotations

import sys
import time

import torch
import tyro
from rich.console import Console

from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene
from splatent_viewer.errors import SplatentError


def main(config: DemoSceneConfig) -> None:
    console = Console()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out = render_demo_scene(config, progress=True)
    except SplatentError as e:
        console.print(f"[bold red]error:[/] {e}")
        sys.exit(2)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    console.print(
        f"wrote {out} ({config.num_views} views at {config.resolution}x{config.resolution}, "
        f"{size / 2**20:.2f} MiB) in {time.perf_counter() - start:.1f} s"
    )


def entrypoint() -> None:
    main(tyro.cli(DemoSceneConfig, description=__doc__.splitlines()[0] if __doc__ else None))


if __name__ == "__main__":
    entrypoint()
