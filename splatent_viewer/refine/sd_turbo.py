"""The "sd-turbo" refiner backbone: SD-Turbo's UNet with a fixed, cached prompt embedding.

Built once from a local SD-Turbo folder (``unet/``, ``scheduler/``, ``text_encoder/``,
``tokenizer/``): the UNet is loaded, ``ā_t`` and the prediction type are read from the
scheduler config (x0 is formed by :class:`~splatent_viewer.refine.refiner.Refiner`), and the
prompt is embedded once with the CLIP text encoder, which is then dropped. The embedding is a
persistent buffer, so it is saved in ``refiner.safetensors`` and a saved refiner needs neither
the text encoder, nor the tokenizer, nor the ``transformers`` package again.

Latents: the refiner takes the codecs' ``encode()`` output as is. For ``sd-turbo`` that is the
VAE posterior mean already multiplied by 0.18215 (and ``taesd`` latents live in the same scaled
space), which is the latent scale SD-Turbo's UNet was trained on — so ``latent_scale`` stays 1.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine.backbone import RefinerBackbone

SD_TURBO_REPO = "stabilityai/sd-turbo"
_HOWTO = (
    f"download it with `huggingface-cli download {SD_TURBO_REPO} --include 'unet/*' 'scheduler/*' 'text_encoder/*' "
    "'tokenizer/*' --local-dir DIR` on a machine with internet and pass DIR"
)
_REQUIRED = {
    "unet": ("config.json",),
    "scheduler": ("scheduler_config.json",),
    "text_encoder": ("config.json",),
    "tokenizer": ("vocab.json", "merges.txt"),
}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hides diffusers/transformers load-time chatter during one load."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        diffusers_logging.set_verbosity(level)


def check_sd_turbo_folder(folder: Path) -> Path:
    """The folder if it has every part the refiner needs, else one :class:`SplatentError` listing what is missing."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SplatentError(f"SD-Turbo folder {folder} does not exist; {_HOWTO}.")
    missing = [
        f"{sub}/{name}" for sub, names in _REQUIRED.items() for name in names if not (folder / sub / name).is_file()
    ]
    if missing:
        raise SplatentError(f"SD-Turbo folder {folder} lacks {', '.join(missing)}; {_HOWTO}.")
    return folder


def scheduler_terms(folder: Path, *, timestep: int) -> tuple[str, float]:
    """``(prediction_type, ā_timestep)`` from ``folder/scheduler/scheduler_config.json`` (DDPM noise schedule)."""
    path = folder / "scheduler" / "scheduler_config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SplatentError(f"{path} is not a readable scheduler config ({err}); {_HOWTO}.") from err
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise SplatentError(f"{path}: prediction_type {prediction!r} is not supported (epsilon, v_prediction, sample).")
    with _quiet():  # Euler/DDPM configs share the beta schedule keys; DDPM ignores the rest
        scheduler = DDPMScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    assert isinstance(scheduler, DDPMScheduler)  # not the (scheduler, unused kwargs) pair: none were asked for
    n = scheduler.alphas_cumprod.shape[0]
    if not 0 <= timestep < n:
        raise SplatentError(f"Refiner timestep {timestep} is outside the scheduler's 0..{n - 1} ({path}).")
    return prediction, float(scheduler.alphas_cumprod[timestep])


@torch.no_grad()
def embed_prompt(folder: Path, *, prompt: str) -> Float[Tensor, "1 L D"]:
    """CLIP text embedding of ``prompt`` (padded to the tokenizer's max length, as Stable Diffusion pipelines do)."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as err:
        raise SplatentError(
            "Building an sd-turbo refiner embeds its prompt once with CLIP, which needs the transformers package: "
            "pip install transformers (saved refiners do not need it)."
        ) from err
    try:
        with _quiet():
            tokenizer = CLIPTokenizer.from_pretrained(str(folder), subfolder="tokenizer", local_files_only=True)
            encoder = CLIPTextModel.from_pretrained(str(folder), subfolder="text_encoder", local_files_only=True)
    except Exception as err:  # noqa: BLE001 - transformers raises OSError, ValueError, ...
        raise SplatentError(f"could not load the CLIP tokenizer/text encoder from {folder}: {err}; {_HOWTO}.") from err
    ids = tokenizer(
        prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    return encoder.eval()(ids)[0].float()


class SDTurboBackbone(RefinerBackbone):
    """``UNet2DConditionModel`` run with a cached prompt embedding; returns the raw UNet output."""

    prompt_embeds: Float[Tensor, "1 L D"]  # a buffer (declared for type checkers)

    def __init__(self, *, unet: UNet2DConditionModel, prompt_embeds: Float[Tensor, "1 L D"]) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("prompt_embeds", prompt_embeds.detach().clone())  # saved with the weights
        self.downsample_factor = 2 ** (len(unet.config["block_out_channels"]) - 1)
        """Grid height/width must be multiples of this (the refiner pads)."""

    @classmethod
    def from_pretrained(
        cls, folder: Path, *, prompt: str, timestep: int, latent_channels: int
    ) -> tuple[SDTurboBackbone, str, float]:
        """``(backbone, prediction_type, ā_timestep)`` from a local SD-Turbo folder (never downloads)."""
        folder = check_sd_turbo_folder(folder)
        prediction, alpha = scheduler_terms(folder, timestep=timestep)
        try:
            with _quiet():
                unet = UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet", local_files_only=True)
        except Exception as err:  # noqa: BLE001
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SplatentError(f"could not load the UNet from {folder / 'unet'}: {first}; {_HOWTO}.") from err
        if unet.config["in_channels"] != latent_channels or unet.config["out_channels"] != latent_channels:
            raise SplatentError(
                f"The UNet in {folder / 'unet'} takes {unet.config['in_channels']}-channel latents, the refiner config says "
                f"{latent_channels}; sd-turbo refiners work on 4-channel SD latents (codecs sd-turbo, taesd)."
            )
        embeds = embed_prompt(folder, prompt=prompt)
        if embeds.shape[-1] != unet.config["cross_attention_dim"]:
            raise SplatentError(
                f"The text encoder in {folder / 'text_encoder'} gives {embeds.shape[-1]}-d embeddings but the UNet "
                f"expects {unet.config['cross_attention_dim']}; the folder mixes models. {_HOWTO}."
            )
        return cls(unet=unet, prompt_embeds=embeds), prediction, alpha

    @classmethod
    def from_export(cls, extra: dict) -> SDTurboBackbone:
        """An empty backbone of the saved architecture (weights are loaded afterwards)."""
        with _quiet():
            unet = UNet2DConditionModel.from_config(extra["unet_config"])
        assert isinstance(unet, UNet2DConditionModel)  # not the (model, unused kwargs) pair: none were asked for
        return cls(unet=unet, prompt_embeds=torch.zeros(*extra["prompt_embeds_shape"]))

    def export_config(self) -> dict[str, Any]:
        """What :meth:`from_export` needs: the UNet config and the prompt embedding's shape."""
        unet_config = {k: v for k, v in dict(self.unet.config).items() if not k.startswith("_")}
        return {"unet_config": unet_config, "prompt_embeds_shape": list(self.prompt_embeds.shape)}

    def forward(self, x_t: Float[Tensor, "B C H W"], timesteps: Int[Tensor, "1"]) -> Float[Tensor, "B C H W"]:
        context = self.prompt_embeds.expand(x_t.shape[0], -1, -1)
        return self.unet(x_t, timesteps, encoder_hidden_states=context).sample


__all__ = ["SDTurboBackbone", "check_sd_turbo_folder", "embed_prompt", "scheduler_terms"]
