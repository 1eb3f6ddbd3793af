"""The "embedded" refiner backbone: a compact diffusers ``UNet2DModel`` on codec latents, trained from scratch.

``x0 = x_t + unet(x_t, t)`` with the fixed timestep ``t`` and the UNet's final convolution
zero-initialised, so an untrained refiner is exactly the identity (its output is its input).
Attention (diffusers ``Attention``, PyTorch SDPA: flash / memory-efficient kernels in fp16/bf16)
sits only at the reduced resolutions, where a grid of 64² latents (512² images) in a 2x2 layout
has at most 32² tokens; the full-resolution level is convolutional. No float64, no host syncs:
the timestep is a device buffer, so the forward is CUDA-graph / ``torch.compile`` friendly and
works in channels_last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor, nn

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine.backbone import RefinerBackbone


@dataclass
class EmbeddedUNetConfig:
    """Sizes of the embedded refiner UNet (diffusers ``UNet2DModel``)."""

    block_out_channels: tuple[int, ...] = (64, 128, 192)
    """Channels per resolution level (level i works at 1/2^i of the grid); each is a multiple of norm_num_groups."""
    layers_per_block: int = 1
    """Residual blocks per down level (up levels get one more, as in diffusers)."""
    attention_from_level: int = 2
    """Levels from this index on (and the mid block) have self-attention; 2 = 1/4 of the grid resolution."""
    attention_head_dim: int = 32
    """Channels per attention head."""
    norm_num_groups: int = 32
    """GroupNorm groups."""

    def validate(self) -> None:
        """Raises a :class:`SplatentError` for sizes diffusers cannot build."""
        levels = len(self.block_out_channels)
        if levels < 1 or self.layers_per_block < 1:
            raise SplatentError("The embedded refiner needs at least one level and one layer per block.")
        if any(c % self.norm_num_groups or c % self.attention_head_dim for c in self.block_out_channels):
            raise SplatentError(
                f"Embedded refiner channels {self.block_out_channels} must be multiples of norm_num_groups "
                f"({self.norm_num_groups}) and attention_head_dim ({self.attention_head_dim})."
            )
        if not 0 <= self.attention_from_level <= levels:
            raise SplatentError(f"attention_from_level must be in 0..{levels}, got {self.attention_from_level}.")


class EmbeddedUNet(RefinerBackbone):
    """Residual one-step denoiser ``x0 = x_t + unet(x_t, t)``; the identity until trained.

    ``extra_channels`` more input channels (an RGB-guided refiner's second grid) are seen by the UNet but not part of
    the base: ``x0 = x[:, :C] + unet(x, t)``."""

    def __init__(self, *, latent_channels: int, config: EmbeddedUNetConfig, extra_channels: int = 0) -> None:
        super().__init__()
        from diffusers.models.unets.unet_2d import UNet2DModel

        config.validate()
        levels = len(config.block_out_channels)
        attn = [i >= config.attention_from_level for i in range(levels)]
        self.unet = UNet2DModel(
            in_channels=latent_channels + extra_channels,
            out_channels=latent_channels,
            block_out_channels=tuple(config.block_out_channels),
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
            up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
            layers_per_block=config.layers_per_block,
            attention_head_dim=config.attention_head_dim,
            norm_num_groups=config.norm_num_groups,
            add_attention=True,  # mid block (lowest resolution)
        )
        # Zero final conv: the residual starts at exactly 0 (identity refiner); its gradient is not zero.
        conv_out = self.unet.conv_out
        assert conv_out.bias is not None  # diffusers' output convolution has a bias
        nn.init.zeros_(conv_out.weight)
        nn.init.zeros_(conv_out.bias)
        self.downsample_factor = 2 ** (levels - 1)
        """Grid height/width must be multiples of this (the refiner pads)."""
        self.latent_channels = latent_channels
        """Channels of the base the residual is added to (the first input channels) and of the output."""

    def forward(self, x_t: Float[Tensor, "B Cin H W"], timesteps: Int[Tensor, "1"]) -> Float[Tensor, "B C H W"]:
        return x_t[:, : self.latent_channels] + self.unet(x_t, timesteps).sample

    def export_config(self) -> dict[str, Any]:
        """Nothing beyond :class:`RefinerConfig` is needed to rebuild this backbone."""
        return {}


def embedded_config_from_dict(data: dict) -> EmbeddedUNetConfig:
    """Inverse of ``dataclasses.asdict`` (JSON lists back to tuples)."""
    known = set(asdict(EmbeddedUNetConfig()))
    unknown = set(data) - known
    if unknown:
        raise SplatentError(f"unknown embedded refiner settings {sorted(unknown)}")
    data = dict(data)
    if "block_out_channels" in data:
        data["block_out_channels"] = tuple(int(c) for c in data["block_out_channels"])
    return EmbeddedUNetConfig(**data)


__all__ = ["EmbeddedUNet", "EmbeddedUNetConfig", "embedded_config_from_dict"]
