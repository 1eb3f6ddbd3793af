"""Server-side cost of one viewer frame, per display mode and stage (what `splatent-viewer` spends per frame).

    python benchmarks/viewer_frame.py                        # GPU: 512², 100 frames, synthetic 200k Gaussians
    python benchmarks/viewer_frame.py --load-config outputs/demo
    python benchmarks/viewer_frame.py --size 64 --frames 3 --gaussians 2000   # CPU smoke run
    python benchmarks/viewer_frame.py --guided --no-sd-turbo --variants fast  # the RGB-guided residual frame

Every frame goes through the viewer's own path (``SceneRenderer.render`` → ``render_frame(time_stages=True)``
→ compose) plus the JPEG encode the viewer sends, in two variants (``--variants``): ``eager`` (plain modules, viser's
host-side imageio encoder: the viewer before the speed work) and ``fast`` (``enable_fast_inference``:
CUDA graphs of decoder and refiner, cuDNN autotuner; nvJPEG on the GPU when torchvision has it; ``fast-cl`` adds
channels_last). Setups:

1. **taef2 + embedded refiner**: the trained scene (``--load-config``) or ``--gaussians`` random Gaussians with
   the real TAEF2 codec; the shipped embedded refiner, or a freshly initialised one (said in the output).
2. **sd-turbo size**: random Gaussians with 4-channel latents, a random-init SD 2.1 / SD-Turbo-size VAE
   (AutoencoderKL) as codec and a random-init SD-Turbo-size ``UNet2DConditionModel`` (866M, fp16 on CUDA) as the
   refiner backbone, k=3 (2x2 grid). Weights are random: only the timings mean anything.
3. **sd-turbo size + TAESD live decode** (``--taesd-live-decoder``, with setup 2): the same scene and refiner, frames
   decoded by a random-init TAESD (``AutoencoderTiny()``: diffusers' defaults are TAESD's architecture) through
   ``TrainedScene.set_live_decoder``, as ``splatent-viewer --live-decoder.name taesd`` runs it.

Stage timings come from CUDA events between the stages (device time; one wait per frame); "total" is the wall time
of the whole frame incl. JPEG, FPS = 1000 / total. Means over ``--frames`` frames after ``--warmup``.
Writes a markdown table to ``--output`` (atomically) and prints it.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro
from rich.console import Console

from splatent_viewer.codecs import load_codec
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.progress import track
from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.splats.params import init_splats
from splatent_viewer.trained import ReferenceBank, TrainedScene
from splatent_viewer.viewer.camera import intrinsics_from_fov
from splatent_viewer.viewer.gui import ViewSettings
from splatent_viewer.viewer.jpeg import encode_jpeg, gpu_jpeg_available
from splatent_viewer.viewer.modes import available_modes
from splatent_viewer.viewer.renderer import CameraState, SceneRenderer

CONSOLE = Console()
STAGES = ("raster", "decode", "rgb", "guide", "refine", "decode_enhanced", "compose", "jpeg")


@dataclass
class Args:
    load_config: Optional[Path] = None
    """A trained run (splatent-demo folder or nerfstudio config.yml); default: random Gaussians."""
    gaussians: int = 200_000
    """Random Gaussians of the synthetic scenes."""
    size: int = 512
    """Square frame size (pixels; a multiple of 8)."""
    frames: int = 100
    """Timed frames per mode."""
    warmup: int = 5
    """Untimed frames per mode first."""
    device: DeviceName = "auto"
    """cuda, cpu or auto."""
    jpeg_quality: int = 90
    """JPEG quality of the encode stage."""
    sd_turbo: bool = True
    """Also time the SD-Turbo-size setup (866M UNet; ~3.5 GB fp32 on CPU)."""
    taesd_live_decoder: bool = True
    """With --sd-turbo: also time that setup with frames decoded by a TAESD-size live decoder (its own rows)."""
    variants: tuple[Literal["eager", "fast", "fast-cl"], ...] = ("eager", "fast")
    """In this order. eager: plain modules, host JPEG (imageio, viser's own encoder); fast: what the viewer runs,
    ``TrainedScene.enable_fast_inference()`` (cuDNN autotuner, CUDA graphs of decoder and refiner) and its JPEG
    encoder (nvJPEG on CUDA); fast-cl: the same plus channels_last."""
    output: Path = Path("benchmarks/viewer_frame.md")
    """Markdown table written here."""
    refiner: str = "embedded"
    """TAEF2 refiner of setup 1: "embedded" (the shipped one) or a refiner folder (e.g. a candidate's, to time it)."""
    guided: bool = False
    """Setup 1 with its refiner made RGB-guided and residual (``guided_from(refiner, residual=True)``, what scene
    adaptation ships): an enhanced frame then also rasterizes the RGB splats, encodes them (the guide) and decodes the
    guide with the refined latent (one batched decode)."""


def _orbit(n: int, *, radius: float) -> torch.Tensor:
    """OpenGL camera-to-worlds on a circle (z up) looking at the origin."""
    out = []
    for i in range(n):
        a = 2 * math.pi * i / n
        eye = torch.tensor([radius * math.cos(a), radius * math.sin(a), 0.3 * radius])
        back = eye / eye.norm()  # OpenGL cameras look down -z: z points away from the target
        right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
        right = right / right.norm()
        c2w = torch.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, torch.linalg.cross(back, right), back, eye
        out.append(c2w)
    return torch.stack(out)


def _cameras(n: int, *, radius: float, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    c2w = _orbit(n, radius=radius).to(device)
    K = intrinsics_from_fov(fov_y=math.radians(50), width=size, height=size).to(device)
    return c2w, K[None].expand(n, 3, 3).clone()


def synthetic_scene(*, n: int, codec, refiner, size: int, device: torch.device, name: str) -> TrainedScene:
    """``n`` random Gaussians in a unit ball, 8 orbit reference views with random latents."""
    g = torch.Generator().manual_seed(0)
    points = torch.randn(n, 3, generator=g)
    points = points / points.norm(dim=1, keepdim=True).clamp_min(1e-6) * torch.rand(n, 1, generator=g) ** (1 / 3)
    C = codec.latent_channels
    # On the device: init_splats' 3-NN scale estimate is an O(n²) cdist (minutes for 200k points on the CPU).
    params = init_splats(
        points=points.to(device),
        colors=None,
        latent_channels=C,
        sh_degree=3,
        init_opacity=0.5,
        latents=torch.randn(n, C, generator=g).to(device),
        generator=g,
    )
    c2w, Ks = _cameras(8, radius=3.0, size=size, device=device)
    h = size // codec.downscale
    bank = ReferenceBank.from_latents(
        c2w=c2w, Ks=Ks, latents=[torch.randn(C, h, h, generator=g).to(device)] * 8, downscale=codec.downscale
    )
    return TrainedScene(
        params=params,
        codec=codec,
        sh_degree=3,
        references=bank,
        refiner=refiner,
        latent_background=None,
        name=name,
        source=Path("synthetic"),
        device=device,
    )


def embedded_refiner(*, codec, device: torch.device, dtype: torch.dtype, path: str = "embedded"):
    from splatent_viewer.refine import RefinerConfig, load_refiner

    if path != "embedded":
        refiner = load_refiner(Path(path), device=device, dtype=dtype, codec=codec)
        return (
            refiner,
            f"{path} ({refiner.config.embedded.block_out_channels}, attention from level {refiner.config.embedded.attention_from_level})",
        )
    try:
        return load_refiner("embedded", device=device, dtype=dtype, codec=codec), "embedded (trained, shipped)"
    except SplatentError:
        config = RefinerConfig(
            backbone="embedded", codec=codec.name, latent_channels=codec.latent_channels, num_references=3
        )
        return config.setup(device=device, dtype=dtype).eval(), "embedded (UNTRAINED: fresh init, no shipped weights)"


def sd_turbo_setup(*, device: torch.device, dtype: torch.dtype):
    """Random-init SD 2.1/SD-Turbo-size VAE codec and UNet refiner (k=3)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from splatent_viewer.codecs.diffusers_codecs import SDTurboCodec
    from splatent_viewer.refine import Refiner, RefinerConfig
    from splatent_viewer.refine.sd_turbo import SDTurboBackbone

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        scaling_factor=0.18215,
    )
    codec = SDTurboCodec(vae).to(device=device, dtype=dtype)
    unet = UNet2DConditionModel(
        in_channels=4,
        out_channels=4,
        block_out_channels=(320, 640, 1280, 1280),
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
        layers_per_block=2,
    )
    backbone = SDTurboBackbone(unet=unet, prompt_embeds=torch.zeros(1, 77, 1024))
    config = RefinerConfig(
        backbone="sd-turbo",
        codec="sd-turbo",
        latent_channels=4,
        num_references=3,
        prediction_type="epsilon",
        alpha_cumprod=0.7,
    )
    refiner = Refiner(config=config, backbone=backbone).to(device=device, dtype=dtype).eval().requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    return codec, refiner, f"sd-turbo size (random init: UNet {params:.0f}M, SD VAE), {str(dtype).split('.')[-1]}"


def taesd_live_decoder(*, device: torch.device, dtype: torch.dtype):
    """Random-init TAESD codec: ``AutoencoderTiny()``'s defaults are TAESD's architecture (64-wide blocks, 1/3/3/3
    encoder and 3/3/3/1 decoder blocks, 4 latent channels, scaling factor 1)."""
    from diffusers import AutoencoderTiny

    from splatent_viewer.codecs.diffusers_codecs import TAESDCodec

    torch.manual_seed(0)
    return TAESDCodec(AutoencoderTiny()).to(device=device, dtype=dtype)


def _jpeg_ms(image, quality: int, *, variant: str) -> float:
    """JPEG time of one frame. eager: viser 0.2.7's own host encoder (imageio), i.e. what set_background_image ran
    before; fast: the viewer's encode_jpeg (nvJPEG on the GPU when torchvision has it, else Pillow)."""
    t = time.perf_counter()
    if variant == "eager":
        from viser._scene_api import _encode_image_binary  # private, but the version is pinned

        _encode_image_binary(image.cpu().numpy(), "jpeg", jpeg_quality=quality)
    else:
        encode_jpeg(image, quality=quality)
    return (time.perf_counter() - t) * 1e3


def time_modes(*, renderer: SceneRenderer, args: Args, label: str, variant: str) -> list[str]:
    scene = renderer.scene
    c2w, _ = _cameras(
        args.warmup + args.frames,
        radius=3.0 if scene.source == Path("synthetic") else 1.0,
        size=args.size,
        device=scene.device,
    )
    if scene.source != Path("synthetic"):  # a trained scene: orbit its own training cameras' centre
        bank = scene.references
        idx = torch.arange(args.warmup + args.frames) % len(bank)
        c2w = bank.c2w[idx]
    rows = []
    for mode in available_modes(has_refiner=scene.refiner is not None):
        settings = ViewSettings(mode=mode, max_resolution=args.size, num_references=3, jpeg_quality=args.jpeg_quality)
        sums: dict[str, float] = {}
        total = 0.0
        for i in track(
            range(args.warmup + args.frames),
            description=f"{label[:28]} · {variant} · {mode}",
            console=CONSOLE,
            transient=True,
        ):
            camera = CameraState(c2w=c2w[i].cpu(), fov_y=math.radians(50), aspect=1.0, moving=False)
            t = time.perf_counter()
            out = renderer.render(camera=camera, settings=settings, preview=False)
            jpeg = _jpeg_ms(out.image, args.jpeg_quality, variant=variant)
            wall = (time.perf_counter() - t) * 1e3
            if i >= args.warmup:
                for k, v in {**out.timings_ms, "jpeg": jpeg}.items():
                    sums[k] = sums.get(k, 0.0) + v
                total += wall
        n = args.frames
        cells = " | ".join(f"{sums[s] / n:.2f}" if s in sums else "–" for s in STAGES)
        rows.append(f"| {label} | {variant} | {mode} | {cells} | {total / n:.2f} | {1000 * n / total:.0f} |")
    return rows


def _run_setup(*, scene: TrainedScene, args: Args, label: str) -> list[str]:
    rows = []
    for variant in args.variants:
        if variant != "eager":
            scene.enable_fast_inference(channels_last=variant == "fast-cl")
        rows += time_modes(renderer=SceneRenderer(scene=scene), args=args, label=label, variant=variant)
    return rows


def main(args: Args) -> str:
    device = resolve_device(args.device)
    if args.size % 8:
        raise SplatentError(f"--size must be a multiple of 8, got {args.size}.")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or 'x86_64'}, {torch.get_num_threads()} threads)"
    )
    rows: list[str] = []

    if args.load_config is not None:
        # eager modules: the variants switch the fast path on themselves
        scene = TrainedSceneConfig(
            load_config=args.load_config, device=args.device, refiner="embedded", cuda_graphs=False
        ).setup(device=device)
        label = f"{scene.name} ({scene.params['means'].shape[0]:,} G)"
        if scene.refiner is None or args.refiner != "embedded":
            refiner, note = embedded_refiner(codec=scene.codec, device=device, dtype=dtype, path=args.refiner)
            scene.refiner = refiner
        else:
            note = "embedded (trained)"
    else:
        codec = load_codec("taef2", device=device, dtype=dtype)
        refiner, note = embedded_refiner(codec=codec, device=device, dtype=dtype, path=args.refiner)
        scene = synthetic_scene(
            n=args.gaussians, codec=codec, refiner=refiner, size=args.size, device=device, name="synthetic"
        )
        label = f"taef2, {args.gaussians:,} random G"
    if args.guided:
        from splatent_viewer.refine import guided_from

        if scene.refiner is None:
            raise SplatentError("--guided needs a refiner (setup 1 has none).")
        scene.refiner = guided_from(scene.refiner, residual=True)
        note += ", RGB-guided residual (guided_from)"
    CONSOLE.print(f"setup 1: {label}; refiner: {note}")
    rows += _run_setup(scene=scene, args=args, label=f"{label}; {note}")
    del scene
    if device.type == "cuda":
        torch.cuda.empty_cache()

    if args.sd_turbo:
        codec, refiner, note = sd_turbo_setup(device=device, dtype=dtype)
        CONSOLE.print(f"setup 2: {note}")
        scene = synthetic_scene(
            n=args.gaussians, codec=codec, refiner=refiner, size=args.size, device=device, name="sd-turbo-size"
        )
        rows += _run_setup(scene=scene, args=args, label=f"{note}, {args.gaussians:,} random G")
        if args.taesd_live_decoder:  # a fresh scene (no CUDA graphs yet), same codec and refiner in their eager layout
            label = f"{note} + TAESD live decode (random init), {args.gaussians:,} random G"
            CONSOLE.print(f"setup 3: {label}")
            codec.to(memory_format=torch.contiguous_format)
            refiner.use_channels_last(False)
            scene = synthetic_scene(
                n=args.gaussians,
                codec=codec,
                refiner=refiner,
                size=args.size,
                device=device,
                name="sd-turbo-size+taesd",
            )
            scene.set_live_decoder(decoder=taesd_live_decoder(device=device, dtype=dtype))
            rows += _run_setup(scene=scene, args=args, label=label)

    header = (
        f"Viewer frame cost at {args.size}×{args.size}, mean of {args.frames} frames after {args.warmup} warm-up; "
        f"{name}; torch {torch.__version__}; {datetime.date.today().isoformat()}.\n"
        f"Command: `python benchmarks/viewer_frame.py --size {args.size} --frames {args.frames} "
        f"--gaussians {args.gaussians}{' --load-config ' + str(args.load_config) if args.load_config else ''}"
        f"{' --guided' if args.guided else ''}`\n\n"
        f"GPU JPEG (nvJPEG via torchvision): {gpu_jpeg_available(device) if device.type == 'cuda' else False}. "
        f"Stage times: CUDA events between stages (device time); total: wall time per frame incl. JPEG.\n\n"
        f"| setup | variant | mode | {' | '.join(STAGES)} | total ms | FPS |\n|---|---|---|{'---|' * len(STAGES)}---|---|"
    )
    table = header + "\n" + "\n".join(rows) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(table)
    os.replace(tmp, args.output)
    CONSOLE.print(table)
    return table


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args))
