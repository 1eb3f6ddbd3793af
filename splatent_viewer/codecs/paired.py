"""A scene codec paired with a faster decoder of the same latent space (the "live decoder").

An SD-Turbo scene's latents are decoded by the full SD VAE decoder, the costliest stage of a live
frame; TAESD decodes the same (scaled) SD latent space much faster, at lower fidelity.
:class:`PairedCodec` encodes with the scene's codec and decodes with the other one. Everything that
reads the latent layout (splats, reference bank, refiner checks) sees the scene
codec: ``name``, ``latent_channels``, ``downscale`` and ``latent_space`` are its; only
:attr:`PairedCodec.decoder_name` tells the decoder. Images decoded through a pair (viewer frames,
exports, metrics) are the live decoder's, not the scene codec's.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from splatent_viewer.codecs.base import LatentCodec
from splatent_viewer.errors import SplatentError

# Fast decoders to suggest per latent space.
_FAST_DECODERS = {"sd": "taesd"}


def check_decoder_compatible(*, codec: LatentCodec, decoder: LatentCodec) -> None:
    """Raises one :class:`SplatentError` naming both when ``decoder`` cannot decode ``codec``'s latents
    (different latent channels, downscale or latent space)."""
    problems = []
    if decoder.latent_channels != codec.latent_channels:
        problems.append(f"{decoder.latent_channels} latent channels, not {codec.latent_channels}")
    if decoder.downscale != codec.downscale:
        problems.append(f"downscale {decoder.downscale}, not {codec.downscale}")
    if decoder.latent_space != codec.latent_space:
        problems.append(f"latent space {decoder.latent_space!r}, not {codec.latent_space!r}")
    if not problems:
        return
    space, fast = codec.latent_space, _FAST_DECODERS.get(codec.latent_space)
    unset = f"leave --live-decoder unset to decode with {codec.name}"
    fix = (
        f"Use a decoder of the {space!r} latent space (--live-decoder.name {fast}) or {unset}."
        if fast
        else f"No other decoder of the {space!r} latent space is known: {unset}."
    )
    raise SplatentError(
        f"The live decoder {decoder.name!r} cannot decode latents of the scene codec {codec.name!r}: "
        f"it has {'; '.join(problems)}. {fix}"
    )


class PairedCodec(LatentCodec):
    """``encode`` = ``codec.encode``, ``decode`` = ``decoder.decode``; refuses an incompatible pair.

    ``decoder`` is moved (in place) to ``codec``'s device and dtype, and both stay frozen.
    """

    def __init__(self, *, codec: LatentCodec, decoder: LatentCodec) -> None:
        check_decoder_compatible(codec=codec, decoder=decoder)
        super().__init__()
        self.codec = codec
        self.decoder = decoder.to(device=codec.device, dtype=codec.dtype)
        self.name = codec.name
        self.latent_channels, self.downscale = codec.latent_channels, codec.downscale
        self.latent_space = codec.latent_space
        self.freeze()

    @property
    def decoder_name(self) -> str:
        return self.decoder.decoder_name

    def _encode(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B C h w"]:
        return self.codec.encode(images)

    def _decode(self, latents: Float[Tensor, "B C h w"]) -> Float[Tensor, "B 3 H W"]:
        return self.decoder.decode(latents)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, decoder={self.decoder_name!r}"


def describe_codec(codec: LatentCodec) -> str:
    """``"sd-turbo"``, or ``"sd-turbo latents decoded by taesd (live decoder)"`` for a pair (log lines)."""
    if codec.decoder_name == codec.name:
        return codec.name
    return f"{codec.name} latents decoded by {codec.decoder_name} (live decoder)"


__all__ = ["PairedCodec", "check_decoder_compatible", "describe_codec"]
