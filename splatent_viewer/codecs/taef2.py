"""TAEF2: the tiny autoencoder for the FLUX.2 latent space (MIT, Ollin Boer Bohan).

32 latent channels at 1/8 of the image size, roughly in ``[-3, 3]``, no scale factor. The layer
layout follows the weights' ``FORMAT.md``: plain ``nn.Sequential`` stacks whose indices are the
state-dict keys, so the shipped weights load with ``strict=True``.

Weights live in ``assets/taef2/taef2_{encoder,decoder}.safetensors`` (fp16), converted from the
upstream ``.pth`` files with :mod:`splatent_viewer.scripts.convert_taef2`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor, nn

from splatent_viewer.codecs.base import LatentCodec
from splatent_viewer.errors import SplatentError
from splatent_viewer.paths import assets_dir

LATENT_CHANNELS = 32
WIDTH = 64
ENCODER_FILE = "taef2_encoder.safetensors"
DECODER_FILE = "taef2_decoder.safetensors"
CONVERT_COMMAND = "python -m splatent_viewer.scripts.convert_taef2 --src /path/to/taef2_pth_folder --dst assets/taef2"


def _conv(n_in: int, n_out: int, *, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """``3 * tanh(x / 3)``: keeps decoder inputs in ``(-3, 3)``, smooth and ~identity near 0."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block ``ReLU(conv-relu-conv-relu-conv(x) + x)``, optionally with a global-norm pre-step.

    With ``global_norm``, ``x ← x + pool(x)`` first (1x1 conv → GroupNorm(4) → ReLU → 1x1 conv),
    and that new ``x`` feeds both the main branch and the skip.
    """

    def __init__(self, n: int = WIDTH, *, global_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.fuse = nn.ReLU()
        self.pool: nn.Sequential | None = None
        if global_norm:
            hidden = 4 * n
            self.pool = nn.Sequential(
                nn.Conv2d(n, hidden, 1, bias=False),
                nn.GroupNorm(4, hidden),
                nn.ReLU(),
                nn.Conv2d(hidden, n, 1, bias=False),
            )

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + x)


def build_encoder() -> nn.Sequential:
    """Image ``[B,3,H,W]`` in [0,1] → latent ``[B,32,H/8,W/8]`` (indices match the weight keys)."""
    n = WIDTH
    down = lambda: _conv(n, n, stride=2, bias=False)  # noqa: E731
    gn = lambda: Block(n, global_norm=True)  # noqa: E731
    return nn.Sequential(
        _conv(3, n), Block(n),  # 0, 1
        down(), Block(n), Block(n), Block(n),  # 2-5
        down(), Block(n), Block(n), Block(n),  # 6-9
        down(), gn(), gn(), gn(),  # 10-13
        _conv(n, LATENT_CHANNELS),  # 14
    )  # fmt: skip


def build_decoder() -> nn.Sequential:
    """Latent ``[B,32,h,w]`` → image ``[B,3,8h,8w]`` approximately in [0,1] (indices match the weight keys)."""
    n = WIDTH
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    conv_nb = lambda: _conv(n, n, bias=False)  # noqa: E731
    gn = lambda: Block(n, global_norm=True)  # noqa: E731
    return nn.Sequential(
        SoftClamp(), _conv(LATENT_CHANNELS, n), nn.ReLU(),  # 0-2
        gn(), gn(), gn(),  # 3-5
        up(), conv_nb(), Block(n), Block(n), Block(n),  # 6-10
        up(), conv_nb(), Block(n), Block(n), Block(n),  # 11-15
        up(), conv_nb(), Block(n),  # 16-18
        _conv(n, 3),  # 19
    )  # fmt: skip


def _load_state_dict(file: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.is_file():
        raise SplatentError(f"TAEF2 weights {file} are missing; regenerate them with `{CONVERT_COMMAND}`.")
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise SplatentError(
            f"TAEF2 weights {file} are unreadable ({err}); regenerate them with `{CONVERT_COMMAND}`."
        ) from err


def _load_into(module: nn.Module, file: Path) -> None:
    state = _load_state_dict(file)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise SplatentError(
            f"TAEF2 weights {file} do not match the TAEF2 layout ({str(err).splitlines()[0]}); "
            f"regenerate them with `{CONVERT_COMMAND}`."
        ) from err


class TAEF2Codec(LatentCodec):
    """TAEF2 encoder + decoder. ``TAEF2Codec()`` is randomly initialised; use :meth:`from_dir` for weights."""

    name = "taef2"
    latent_channels = LATENT_CHANNELS
    downscale = 8
    latent_space = "flux2"

    def __init__(self) -> None:
        super().__init__()
        self.encoder = build_encoder()
        self.decoder = build_decoder()
        self.freeze()

    @classmethod
    def from_dir(
        cls, path: Path | None = None, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> TAEF2Codec:
        """Loads ``taef2_encoder.safetensors`` and ``taef2_decoder.safetensors`` from ``path``
        (default ``assets/taef2``)."""
        folder = Path(path) if path is not None else assets_dir() / "taef2"
        codec = cls()
        _load_into(codec.encoder, folder / ENCODER_FILE)
        _load_into(codec.decoder, folder / DECODER_FILE)
        codec.to(device=device, dtype=dtype).freeze()
        return codec

    def _encode(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B 32 h w"]:
        return self.encoder(images)

    def _decode(self, latents: Float[Tensor, "B 32 h w"]) -> Float[Tensor, "B 3 H W"]:
        return self.decoder(latents)
