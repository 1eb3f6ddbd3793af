"""The one-step latent refiner: a blurry rendered latent + its nearest training views' latents → a sharper latent.

The target latent and ``K`` reference latents (``K <= config.num_references``) are normalised
(``(z - latent_shift) * latent_scale``), tiled into one grid (:mod:`splatent_viewer.refine.grid`,
target top-left) and passed through a UNet **once** at the fixed ``config.timestep`` with **no
noise added**; the UNet's output is turned into the x0 prediction, the target cell is cropped
out and de-normalised. The codec decodes it elsewhere (:func:`splatent_viewer.frame.render_frame`).

Fewer references than the refiner was trained with: the grid keeps the training layout
(``grid_layout(config.num_references)``) and the missing cells stay zero (in normalised space),
so the UNet always sees the shapes it was trained on. More references than that are refused.
References must already be at the target's latent size (resize them bilinearly on latents).

The grid is zero-padded at the bottom/right to a multiple of the backbone's downsampling
factor; the padding never touches the target cell, which is cropped from the top-left.

RGB guidance (``config.guided``, embedded backbone): the Gaussians also carry SH colours, and their RGB render of the
target view, encoded by the codec (the *guide*), is usually closer to the ground truth than the latent render. A
guided refiner's grid holds the guide in the target cell (references in theirs), and a second grid with the latent
render in the target cell comes as ``latent_channels`` extra input channels; the UNet's residual is added to the
first grid. An untrained guided refiner therefore returns the guide, and one made from a pure-latent refiner
(:func:`guided_from`) keeps its body, sees the guide where it saw the render, and starts with zero weights on the
render's channels. The pure-latent refiner (the paper's setting) is ``guided=False``. A residual guided refiner
(``config.residual``) shows the RGB splats plus the decoded change it makes to the guide (:meth:`Refiner.image`), so
its identity start is the RGB splats exactly rather than their codec round trip.

Backbones: ``"embedded"`` (:mod:`.embedded_unet`, a compact UNet trained from scratch, identity
at init) and ``"sd-turbo"`` (:mod:`.sd_turbo`, SD-Turbo's UNet with a cached prompt embedding,
for the 4-channel SD latent space of the ``sd-turbo`` / ``taesd`` codecs).

Dtypes follow the codec convention: inputs are cast to the refiner's dtype and the output comes
back in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine.backbone import RefinerBackbone
from splatent_viewer.refine.embedded_unet import EmbeddedUNet, EmbeddedUNetConfig
from splatent_viewer.refine.grid import grid_layout, tile_grid, untile_target

PredictionType = Literal["residual", "epsilon", "v_prediction", "sample"]


@dataclass
class RefinerConfig:
    """What a refiner is: its backbone, the latent space it works in, and how it forms the grid."""

    backbone: Literal["embedded", "sd-turbo"] = "embedded"
    """UNet: embedded (compact UNet trained from scratch, any latent channels) or sd-turbo
    (SD-Turbo's UNet fine-tuned, 4-channel SD latents: codecs sd-turbo and taesd)."""
    codec: str = "taef2"
    """Name of the codec whose latents the refiner was trained on (taef2, sd-turbo, taesd)."""
    latent_channels: int = 32
    """Latent channels (32 for taef2, 4 for sd-turbo/taesd); checked against the codec on load."""
    num_references: int = 3
    """k used in training: the grid is always grid_layout(k) (k=3: 2x2); fewer references leave zero cells."""
    timestep: int = 300
    """Fixed diffusion timestep the UNet is run at (no noise is added to the latent)."""
    prediction_type: Optional[PredictionType] = None
    """How the UNet output becomes x0: residual (x0 = x_t + out; the embedded backbone), epsilon or
    v_prediction (diffusion formulas with alpha_cumprod), sample (out is x0). None: residual for
    embedded, the scheduler's for sd-turbo (filled in when the backbone is built)."""
    alpha_cumprod: Optional[float] = None
    """ā at ``timestep`` for epsilon/v_prediction (sd-turbo: read from its scheduler when built)."""
    latent_shift: tuple[float, ...] = (0.0,)
    """Subtracted from latents before the UNet (added back after): one value, or one per channel."""
    latent_scale: tuple[float, ...] = (1.0,)
    """Multiplies latents after the shift (divides after the UNet): one value, or one per channel.
    Codec latents are used as the codec's encode() returns them (sd-turbo/taesd: already x0.18215),
    so sd-turbo refiners keep 0 / 1."""
    embedded: EmbeddedUNetConfig = field(default_factory=EmbeddedUNetConfig)
    """Sizes of the embedded UNet (backbone embedded only)."""
    sd_turbo_path: Optional[Path] = None
    """SD-Turbo folder (unet/, scheduler/, text_encoder/, tokenizer/) an sd-turbo refiner is
    initialised from; not needed once the refiner is saved."""
    prompt: str = ""
    """Fixed text prompt of the sd-turbo backbone, embedded once with its CLIP text encoder and cached."""
    guided: bool = False
    """RGB guidance: the codec-encoded RGB-splat render of the target view is the base the UNet refines, the latent
    render extra input channels (embedded backbone). False: the paper's pure-latent refiner."""
    residual: bool = False
    """Guided refiners: the enhanced image is the RGB splats plus the decoded change the refiner makes to the guide,
    ``rgb + decode(refined) - decode(guide)`` (:meth:`Refiner.image`), so a refiner that returns its guide shows the
    RGB splats themselves, not their codec round trip (fern: 1.2 dB below them, benchmarks/RESULTS.md). False: the
    decoded refined latent."""
    correction_blur: float = 0.0
    """Residual refiners: standard deviation, in image pixels, of a Gaussian blur applied to the correction
    ``decode(refined) - decode(guide)`` before it is added to the RGB splats (0: none). The correction is made on the
    codec's 1/8 latent grid and its finest detail swims from frame to frame as the decoded view's does; on the CPU runs
    (benchmarks/RESULTS.md) σ = 1 px raised the adapted view by +0.33 dB on lego, +0.08 on the demo, ±0 on dino and
    cut its warped flicker by 17–20 %. Set by the adaptation (:attr:`AdaptationConfig.correction_blur`)."""

    @property
    def guide_channels(self) -> int:
        """Extra UNet input channels for the guidance (0 for a pure-latent refiner)."""
        return self.latent_channels if self.guided else 0

    def resolved_prediction_type(self) -> PredictionType:
        """The prediction type in use (None resolved for the embedded backbone)."""
        if self.prediction_type is not None:
            return self.prediction_type
        if self.backbone == "embedded":
            return "residual"
        raise SplatentError(
            "An sd-turbo refiner config needs prediction_type (it is read from the scheduler when built)."
        )

    def validate(self) -> None:
        """Raises a :class:`SplatentError` for inconsistent settings."""
        if self.backbone not in ("embedded", "sd-turbo"):
            raise SplatentError(f"Unknown refiner backbone {self.backbone!r}; use embedded or sd-turbo.")
        if self.guided and self.backbone != "embedded":
            raise SplatentError(
                "RGB guidance is built for the embedded backbone; train an sd-turbo refiner with "
                "guided=False (--no-guided)."
            )
        if self.residual and not self.guided:
            raise SplatentError("A residual refiner refines the RGB guide: residual=True needs guided=True.")
        if self.latent_channels < 1 or self.num_references < 0 or self.timestep < 0:
            raise SplatentError("Refiner latent_channels must be >= 1, num_references >= 0 and timestep >= 0.")
        for name in ("latent_shift", "latent_scale"):
            values = getattr(self, name)
            if len(values) not in (1, self.latent_channels):
                raise SplatentError(
                    f"Refiner {name} has {len(values)} values; give one, or one per channel ({self.latent_channels})."
                )
        if any(s == 0 for s in self.latent_scale):
            raise SplatentError("Refiner latent_scale values must be non-zero.")
        prediction = self.resolved_prediction_type() if self.backbone == "embedded" else self.prediction_type
        if self.backbone == "embedded" and prediction != "residual":
            raise SplatentError(
                "The embedded refiner predicts a residual; leave prediction_type unset (or 'residual')."
            )
        if prediction in ("epsilon", "v_prediction") and not (self.alpha_cumprod and 0 < self.alpha_cumprod <= 1):
            raise SplatentError(
                f"prediction_type {prediction} needs alpha_cumprod in (0, 1], got {self.alpha_cumprod}."
            )

    def setup(self, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Refiner:
        """A new refiner: embedded → identity UNet; sd-turbo → UNet, scheduler and prompt from ``sd_turbo_path``."""
        if self.backbone == "embedded":
            config = replace(self, prediction_type=self.prediction_type or "residual")
            config.validate()
            backbone: RefinerBackbone = EmbeddedUNet(
                latent_channels=config.latent_channels, config=config.embedded, extra_channels=config.guide_channels
            )
        else:
            from splatent_viewer.refine.sd_turbo import SDTurboBackbone

            if self.sd_turbo_path is None:
                raise SplatentError("An sd-turbo refiner needs sd_turbo_path (a local SD-Turbo folder).")
            backbone, prediction, alpha = SDTurboBackbone.from_pretrained(
                self.sd_turbo_path, prompt=self.prompt, timestep=self.timestep, latent_channels=self.latent_channels
            )
            config = replace(self, prediction_type=prediction, alpha_cumprod=alpha)
        return Refiner(config=config, backbone=backbone).to(device=device, dtype=dtype)


def fit_latent_normalisation(
    latents: Float[Tensor, "N C h w"], *, per_channel: bool = True, eps: float = 1e-6
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(latent_shift, latent_scale)`` that map ``latents`` to zero mean and unit variance (per channel or overall)."""
    x = latents.detach().float()
    dims = (0, 2, 3) if per_channel else (0, 1, 2, 3)
    mean = x.mean(dim=dims).reshape(-1)
    std = x.std(dim=dims).reshape(-1).clamp_min(eps)
    return tuple(float(v) for v in mean), tuple(float(v) for v in 1.0 / std)


def blur_image(images: Float[Tensor, "B C H W"], sigma: float) -> Float[Tensor, "B C H W"]:
    """Separable Gaussian blur of standard deviation ``sigma`` pixels (radius 3σ, edges replicated); as is for
    ``sigma <= 0``."""
    if sigma <= 0:
        return images
    radius = max(int(math.ceil(3 * sigma)), 1)
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(x * x) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    C = images.shape[1]
    out = F.conv2d(
        F.pad(images, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C
    )
    return F.conv2d(
        F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C
    )


class Refiner(nn.Module):
    """Grid tiling + one UNet pass at a fixed timestep + x0 + target crop (see the module docstring)."""

    config: RefinerConfig
    # buffers (declared for type checkers)
    shift: Float[Tensor, "1 C 1 1"]
    scale: Float[Tensor, "1 C 1 1"]
    timesteps: Int[Tensor, "1"]

    def __init__(self, *, config: RefinerConfig, backbone: RefinerBackbone) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = backbone
        self.layout = grid_layout(config.num_references)
        C = config.latent_channels
        # Derived from the config (not saved): [1, C, 1, 1] broadcast over the batch and over cells.
        self.register_buffer(
            "shift", torch.tensor(config.latent_shift).expand(C).reshape(1, C, 1, 1).clone(), persistent=False
        )
        self.register_buffer(
            "scale", torch.tensor(config.latent_scale).expand(C).reshape(1, C, 1, 1).clone(), persistent=False
        )
        self.register_buffer("timesteps", torch.tensor([config.timestep], dtype=torch.long), persistent=False)
        self.memory_format = torch.contiguous_format
        self.source: Path | None = None
        """The folder :func:`~splatent_viewer.refine.checkpoint.load_refiner` read it from (None: built in memory)."""
        self._identity_key: tuple[int, ...] = ()
        self._identity = False

    def returns_guide(self) -> bool:
        """Whether this refiner's output is its guide, unchanged: an RGB-guided embedded refiner whose output
        convolution is all zeros (the identity start of :func:`guided_from`, before any fine-tuning). A frame then
        skips it, and for a residual refiner the codec work too (its enhanced image is the RGB splats). Checked again
        whenever those weights change (their version counters and storage), so it holds while a refiner trains."""
        if not self.config.guided or self.config.backbone != "embedded":
            return False
        weights = [w for name, w in self.named_parameters() if name.startswith("backbone.unet.conv_out.")]
        if not weights:
            return False
        key = tuple(w._version for w in weights) + tuple(w.data_ptr() for w in weights)
        if key != self._identity_key:
            self._identity = not any(bool(w.detach().any()) for w in weights)
            self._identity_key = key
        return self._identity

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def use_channels_last(self, enabled: bool = True) -> Refiner:
        """Keeps the weights and the UNet input in channels_last (faster convolutions on tensor cores)."""
        self.memory_format = torch.channels_last if enabled else torch.contiguous_format
        return self.to(memory_format=self.memory_format)  # pyright: ignore[reportCallIssue] - torch's stubs lack this form

    def forward(
        self,
        *,
        target: Float[Tensor, "B C h w"],
        references: Float[Tensor, "B K C h w"],
        guide: Float[Tensor, "_B _C _h _w"] | None = None,
    ) -> Float[Tensor, "B C h w"]:
        """Refined target latent (in the refiner's dtype). ``K`` may be 0..num_references. ``guide``: the codec latent
        of the RGB splats' render of the target view, for (and only for) a guided refiner; one of another shape than
        the target is a :class:`SplatentError` (so its sizes are written ``_B`` ...: not matched by the annotation)."""
        C = self.config.latent_channels
        if target.ndim != 4 or target.shape[1] != C:
            raise SplatentError(
                f"The refiner expects {C}-channel target latents [B, {C}, h, w], got {list(target.shape)}; "
                f"it was trained for the {self.config.codec} codec."
            )
        if references.shape[1] > self.config.num_references:
            raise SplatentError(
                f"The refiner was trained with {self.config.num_references} references, got {references.shape[1]}; "
                f"pass at most {self.config.num_references}."
            )
        if self.config.guided != (guide is not None):
            raise SplatentError(
                "This refiner is RGB-guided: pass guide= (the encoded RGB render of the target view)."
                if self.config.guided
                else "This refiner is pure-latent: it takes no guide."
            )
        if guide is not None and guide.shape != target.shape:
            raise SplatentError(
                f"The guide latent is {list(guide.shape)}; it must match the target {list(target.shape)}."
            )
        B, _, h, w = target.shape
        dtype = self.dtype
        x = (target.to(dtype) - self.shift) * self.scale
        refs = (references.to(dtype) - self.shift[:, None]) * self.scale[:, None]
        if guide is None:
            grid = tile_grid(target=x, references=refs, layout=self.layout)
        else:  # the guide is the base; the latent render comes as a second grid of extra channels
            g = (guide.to(dtype) - self.shift) * self.scale
            grid = torch.cat(
                [
                    tile_grid(target=g, references=refs, layout=self.layout),
                    tile_grid(target=x, references=refs[:, :0], layout=self.layout),
                ],
                dim=1,
            )
        factor = self.backbone.downsample_factor
        pad_h, pad_w = -grid.shape[-2] % factor, -grid.shape[-1] % factor
        if pad_h or pad_w:
            grid = F.pad(grid, (0, pad_w, 0, pad_h))
        out = self.backbone(grid.contiguous(memory_format=self.memory_format), self.timesteps)
        x0 = self._x0(x_t=grid[:, :C], out=out)
        return untile_target(x0, height=h, width=w) / self.scale + self.shift

    def image(
        self,
        *,
        refined: Float[Tensor, "B C h w"],
        decode: Callable[[Tensor], Tensor],
        guide: Float[Tensor, "B C h w"] | None = None,
        rgb: Float[Tensor, "B 3 H W"] | None = None,
    ) -> Float[Tensor, "B 3 H W"]:
        """The enhanced image of this refiner's output ``refined`` (unclamped, float32): ``decode(refined)``, or for a
        residual refiner the RGB splats ``rgb`` plus the decoded change to the ``guide``,
        ``rgb + decode(refined) - decode(guide)`` (no gradient through the guide's term). ``decode``: the codec's
        decoder (latents [B C h w] → images [B 3 H W])."""
        if not self.config.residual:
            return decode(refined).float()
        if guide is None or rgb is None:
            raise SplatentError(
                "This refiner enhances the RGB splats (residual): pass the RGB render (rgb=) and its guide (guide=); "
                "a refiner dataset needs both (rebuild it with `splatent-refiner make-dataset`)."
            )
        if not torch.is_grad_enabled():  # inference: one decoder call for both (one launch sequence, one CUDA graph)
            both = decode(torch.cat([refined, guide.to(refined.dtype)])).float()
            decoded, guide_decoded = both[: len(refined)], both[len(refined) :]
        else:
            decoded = decode(refined).float()
            with torch.no_grad():
                guide_decoded = decode(guide).float()
        correction = blur_image(decoded - guide_decoded, self.config.correction_blur)
        return rgb.float() + correction  # the RGB splats plus the refiner's change to the guide

    def forward_positional(self, target: Tensor, references: Tensor, guide: Tensor | None = None) -> Tensor:
        """``forward(target=..., references=..., guide=...)`` (positional form, for CUDA-graph capture)."""
        return self(target=target, references=references, guide=guide)

    def _x0(self, *, x_t: Tensor, out: Tensor) -> Tensor:
        """x0 from the backbone output (python-float coefficients: no host syncs)."""
        kind = self.config.resolved_prediction_type()
        if kind in ("residual", "sample"):  # the embedded backbone adds its residual itself
            return out
        alpha = self.config.alpha_cumprod
        assert alpha is not None  # validated in (0, 1] for these prediction types
        a = float(alpha)
        if kind == "epsilon":
            return (x_t - (1 - a) ** 0.5 * out) / a**0.5
        return a**0.5 * x_t - (1 - a) ** 0.5 * out  # v_prediction

    def extra_repr(self) -> str:
        c = self.config
        return f"backbone={c.backbone!r}, codec={c.codec!r}, latent_channels={c.latent_channels}, grid={self.layout}"


def guided_from(refiner: Refiner, *, residual: bool = False) -> Refiner:
    """An RGB-guided copy of a pure-latent embedded ``refiner`` that starts as the identity on the guide: the same
    body (its first convolution reads the guide grid as it read the render grid), zero weights on the latent render's
    extra channels, and a zero output convolution. For scene adaptation from the shipped pure-latent refiner.
    ``residual``: its enhanced image is the RGB splats plus its decoded change to the guide (so it starts as the RGB
    splats, :attr:`RefinerConfig.residual`)."""
    if refiner.config.guided or refiner.config.backbone != "embedded":
        raise SplatentError("guided_from takes a pure-latent embedded refiner.")
    guided = replace(refiner.config, guided=True, residual=residual).setup(device=refiner.device, dtype=refiner.dtype)
    state = refiner.state_dict()
    conv_in = "backbone.unet.conv_in.weight"
    weight = torch.zeros_like(guided.state_dict()[conv_in])
    weight[:, : refiner.config.latent_channels] = state[conv_in]
    state[conv_in] = weight
    for name in ("backbone.unet.conv_out.weight", "backbone.unet.conv_out.bias"):
        state[name] = torch.zeros_like(state[name])
    guided.load_state_dict(state)
    guided.source = refiner.source  # the same weights: labelled as where they came from
    return guided


def with_correction_blur(refiner: Refiner, sigma: float) -> Refiner:
    """``refiner`` (changed in place and returned) with ``config.correction_blur = sigma`` when it is residual."""
    if refiner.config.residual:
        refiner.config = replace(refiner.config, correction_blur=float(sigma))
    return refiner


__all__ = [
    "PredictionType",
    "Refiner",
    "RefinerConfig",
    "blur_image",
    "fit_latent_normalisation",
    "guided_from",
    "with_correction_blur",
]
