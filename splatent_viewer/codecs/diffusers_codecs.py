"""Codecs backed by diffusers autoencoders: the SD-Turbo VAE (``AutoencoderKL``) and TAESD (``AutoencoderTiny``).

Weights are never downloaded unless asked (``allow_download=True``): they come from a local
folder or the Hugging Face cache (``local_files_only=True``), and anything missing or of the
wrong kind becomes one :class:`SplatentError` naming the folder and how to get the weights.

Conventions (diffusers 0.42.1, checked in its source):

- ``AutoencoderKL``: images in ``[-1, 1]`` → ``latent_dist``; we take its mean (deterministic)
  and apply the pipelines' ``(z - shift_factor) * scaling_factor`` (0.18215, no shift for
  SD-Turbo); ``decode`` undoes that and maps ``[-1, 1]`` back to ``[0, 1]``.
- ``AutoencoderTiny``: ``encode`` also takes ``[-1, 1]`` (``EncoderTiny`` maps it to ``[0, 1]``
  itself) and returns *raw* latents, which already live in the scaled SD latent space
  (``scaling_factor`` is 1.0); ``decode`` returns ``[-1, 1]``. Its ``scale_latents`` /
  ``unscale_latents`` only pack latents into ``[0, 1]`` for 8-bit storage and are not used here.

Latent spaces (:attr:`LatentCodec.latent_space`): an ``AutoencoderKL``'s is told by its config's
``scaling_factor`` / ``shift_factor`` (0.18215 / none: ``"sd"``, SD 1.x-2.x and SD-Turbo; 0.13025 / none:
``"sdxl"``; anything else a name of its own). TAESD is declared ``"sd"``: TAESDXL's config is identical to
TAESD's, so a TAESDXL folder passed as taesd cannot be told apart.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.codecs.base import LatentCodec
from splatent_viewer.errors import SplatentError

SD_TURBO_REPO = "stabilityai/sd-turbo"
TAESD_REPO = "madebyollin/taesd"

_SD_TURBO_HOWTO = (
    f"download it with `huggingface-cli download {SD_TURBO_REPO} --include 'vae/*' --local-dir DIR` on a machine "
    "with internet and pass --codec.path DIR (or allow downloading with --codec.allow-download)"
)
_TAESD_HOWTO = (
    f"download it with `huggingface-cli download {TAESD_REPO} --local-dir DIR` on a machine with internet "
    "and pass --codec.path DIR (or allow downloading with --codec.allow-download)"
)

# (scaling_factor, shift_factor) of the AutoencoderKL configs whose latent space we can name.
_KL_LATENT_SPACES = {(0.18215, 0.0): "sd", (0.13025, 0.0): "sdxl"}


def _locate(path: Path, *, expected_class: str, howto: str) -> tuple[Path, str | None]:
    """``(folder, subfolder)`` for ``from_pretrained``: ``path/vae`` when it has a config, else ``path``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise SplatentError(f"{expected_class} folder {path} does not exist; {howto}.")
    if (path / "vae" / "config.json").is_file():
        folder, subfolder, config = path, "vae", path / "vae" / "config.json"
    elif (path / "config.json").is_file():
        folder, subfolder, config = path, None, path / "config.json"
    else:
        raise SplatentError(
            f"{path} has no config.json (nor vae/config.json), so it is not a diffusers {expected_class}; {howto}."
        )
    try:
        class_name = json.loads(config.read_text()).get("_class_name")
    except (OSError, ValueError) as err:
        raise SplatentError(f"{config} is not a readable JSON config ({err}); {howto}.") from err
    if class_name != expected_class:
        raise SplatentError(f"{config} is for model class {class_name or '(none)'}, not {expected_class}; {howto}.")
    return folder, subfolder


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """Hides diffusers' load-time chatter (``accelerate`` advice, hub deprecation warnings) during one load."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            yield
    finally:
        diffusers_logging.set_verbosity(level)


def _from_pretrained(
    model_cls, path: Path | None, *, repo: str, use_repo_vae_subfolder: bool, allow_download: bool, howto: str
):
    """Loads ``model_cls`` from ``path`` or, when ``path`` is None, the Hugging Face cache (download only if allowed)."""
    if path is not None:
        folder, subfolder = _locate(path, expected_class=model_cls.__name__, howto=howto)
        source, local_only = str(folder), True
    else:
        source, subfolder, local_only = repo, ("vae" if use_repo_vae_subfolder else None), not allow_download
    where = f"{source}/{subfolder}" if subfolder else source
    try:
        with _quiet_diffusers():
            model = model_cls.from_pretrained(source, subfolder=subfolder, local_files_only=local_only)
    except Exception as err:  # noqa: BLE001 - diffusers/hub raise OSError, ValueError, EnvironmentError, ...
        first_line = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
        cached = " in the Hugging Face cache (downloads off)" if path is None and local_only else ""
        raise SplatentError(
            f"could not load {model_cls.__name__} from {where}{cached}: {first_line}; {howto}."
        ) from err
    if not isinstance(model, model_cls):
        raise SplatentError(f"{where} holds a {type(model).__name__}, not an {model_cls.__name__}; {howto}.")
    return model


class _DiffusersVAECodec(LatentCodec):
    """A diffusers autoencoder in [-1, 1] image space, latents mapped as ``(z - shift) * scale``."""

    _model_class: str  # diffusers class name
    _repo: str  # Hugging Face repo id used when no path is given
    _repo_vae_subfolder: bool  # the repo keeps the VAE in ``vae/``
    _howto: str  # how to get the weights (error messages)
    _default_scaling: float

    def __init__(self, vae) -> None:
        downscale = type(self)._vae_downscale(vae)
        super().__init__()
        self.vae = vae
        config = vae.config
        self.latent_channels = int(config.latent_channels)
        self.downscale = downscale
        self.scaling_factor = float(getattr(config, "scaling_factor", None) or self._default_scaling)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)
        self.freeze()

    @staticmethod
    def _vae_downscale(vae) -> int:
        """The image-to-latent size factor of ``vae`` (a :class:`SplatentError` for one the codec cannot use)."""
        raise NotImplementedError

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        allow_download: bool = False,
    ) -> _DiffusersVAECodec:
        """From a local folder (or its ``vae/`` subfolder); ``None``: the Hugging Face cache of ``cls._repo``."""
        import diffusers

        vae = _from_pretrained(
            getattr(diffusers, cls._model_class),
            path,
            repo=cls._repo,
            use_repo_vae_subfolder=cls._repo_vae_subfolder,
            allow_download=allow_download,
            howto=cls._howto,
        )
        return cls(vae).to(device=device, dtype=dtype)

    def _raw_latents(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B C h w"]:
        raise NotImplementedError

    def _encode(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B C h w"]:
        return (self._raw_latents(images * 2 - 1) - self.shift_factor) * self.scaling_factor

    def _decode(self, latents: Float[Tensor, "B C h w"]) -> Float[Tensor, "B 3 H W"]:
        sample = self.vae.decode(latents / self.scaling_factor + self.shift_factor).sample
        return (sample + 1) / 2


class SDTurboCodec(_DiffusersVAECodec):
    """The SD-Turbo (SD 2.1) VAE: 4 latent channels, /8, latents scaled by 0.18215."""

    name = "sd-turbo"
    _model_class, _repo, _repo_vae_subfolder, _howto = "AutoencoderKL", SD_TURBO_REPO, True, _SD_TURBO_HOWTO
    _default_scaling = 0.18215

    def __init__(self, vae) -> None:
        super().__init__(vae)
        known = [
            space
            for (scale, shift), space in _KL_LATENT_SPACES.items()
            if abs(self.scaling_factor - scale) < 1e-6 and abs(self.shift_factor - shift) < 1e-6
        ]
        self.latent_space = (
            known[0]
            if known
            else (f"AutoencoderKL(scaling_factor={self.scaling_factor:g}, shift_factor={self.shift_factor:g})")
        )

    @staticmethod
    def _vae_downscale(vae) -> int:
        return 2 ** (len(vae.config.block_out_channels) - 1)

    def _raw_latents(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B C h w"]:
        return self.vae.encode(images).latent_dist.mean  # deterministic: the posterior mean


class TAESDCodec(_DiffusersVAECodec):
    """TAESD, the tiny autoencoder for the SD latent space (4 channels, /8, same scale as SD-Turbo latents)."""

    name = "taesd"
    latent_space = "sd"
    _model_class, _repo, _repo_vae_subfolder, _howto = "AutoencoderTiny", TAESD_REPO, False, _TAESD_HOWTO
    _default_scaling = 1.0

    @staticmethod
    def _vae_downscale(vae) -> int:
        config = vae.config
        downscale = 2 ** (len(config.encoder_block_out_channels) - 1)
        upscale = int(config.upsampling_scaling_factor) ** (len(config.decoder_block_out_channels) - 1)
        if upscale != downscale:
            raise SplatentError(
                f"this AutoencoderTiny downsamples by {downscale} but upsamples by {upscale}; use a matching TAESD config."
            )
        return downscale

    def _raw_latents(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B C h w"]:
        return self.vae.encode(images).latents
