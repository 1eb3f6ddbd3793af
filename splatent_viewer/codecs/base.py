"""The interface every latent codec (image ↔ latent autoencoder) implements.

Conventions shared by all codecs:

- ``encode`` takes RGB images in ``[0, 1]`` whose height and width are multiples of
  :attr:`LatentCodec.downscale` and returns latents in the codec's own latent space
  (already multiplied by the codec's scaling factor, if it has one).
- ``decode`` maps latents back to RGB *approximately* in ``[0, 1]``. The output is **not
  clamped**, so that losses computed on it keep their gradients everywhere; callers clamp with
  ``.clamp(0, 1)`` for display or saving.
- Inputs are cast to the codec's dtype; outputs come back in that dtype. Device is not changed:
  pass tensors on the codec's device.
- Both work under ``torch.no_grad()`` and with autograd (gradients flow to the inputs). The
  codec's own parameters are frozen on construction (``requires_grad_(True)`` undoes that).
"""

from __future__ import annotations

import abc

import torch
from jaxtyping import Float
from torch import Tensor, nn

from splatent_viewer.errors import SplatentError


class LatentCodec(nn.Module, abc.ABC):
    """An image ↔ latent autoencoder with a fixed latent layout."""

    name: str
    """Registry name (``"taef2"``, ``"sd-turbo"``, ``"taesd"``)."""
    latent_channels: int
    """Channels of the latent tensor."""
    downscale: int
    """Image size / latent size (8 for all shipped codecs)."""
    latent_space: str
    """The latent space the latents live in (``"flux2"``, ``"sd"``, ``"sdxl"``, ...): codecs with the same
    ``latent_space``, ``latent_channels`` and ``downscale`` decode each other's latents
    (see :class:`~splatent_viewer.codecs.paired.PairedCodec`)."""

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the codec's weights (inputs are cast to it)."""
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the codec's weights."""
        return next(self.parameters()).device

    @property
    def decoder_name(self) -> str:
        """Name of the codec whose decoder :meth:`decode` runs (another codec's for a
        :class:`~splatent_viewer.codecs.paired.PairedCodec`)."""
        return self.name

    def freeze(self) -> LatentCodec:
        """Evaluation mode, no parameter gradients (gradients still flow to the inputs)."""
        self.eval()
        self.requires_grad_(False)
        return self

    def encode(self, images: Float[Tensor, "B _rgb H W"]) -> Float[Tensor, "B C h w"]:
        """RGB images in ``[0, 1]`` → latents with ``h = H / downscale``, ``w = W / downscale``. Images with other
        than 3 channels (RGBA) are a :class:`SplatentError` saying so."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise SplatentError(
                f"{self.name}.encode expects RGB images shaped [B, 3, H, W], got {list(images.shape)}; "
                "drop the alpha channel and add a batch dimension."
            )
        height, width = images.shape[-2:]
        if height % self.downscale or width % self.downscale:
            fit_h, fit_w = height // self.downscale * self.downscale, width // self.downscale * self.downscale
            raise SplatentError(
                f"{self.name}.encode needs image height and width that are multiples of {self.downscale}, "
                f"got {height}x{width} (HxW); crop or resize to e.g. {fit_h}x{fit_w}."
            )
        return self._encode(images.to(dtype=self.dtype))

    def decode(self, latents: Float[Tensor, "B C h w"]) -> Float[Tensor, "B 3 H W"]:
        """Latents → RGB images approximately in ``[0, 1]``, NOT clamped (clamp for display)."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise SplatentError(
                f"{self.name}.decode expects latents shaped [B, {self.latent_channels}, h, w], got "
                f"{list(latents.shape)}; these latents come from a different codec or lack a batch dimension."
            )
        return self._decode(latents.to(dtype=self.dtype))

    @abc.abstractmethod
    def _encode(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B C h w"]:
        """Codec-specific encoding; inputs are validated and already in the codec's dtype."""

    @abc.abstractmethod
    def _decode(self, latents: Float[Tensor, "B C h w"]) -> Float[Tensor, "B 3 H W"]:
        """Codec-specific decoding; inputs are validated and already in the codec's dtype."""

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, latent_channels={self.latent_channels}, downscale={self.downscale}, "
            f"latent_space={self.latent_space!r}"
        )
