"""Refiner checkpoints: a folder with ``refiner.safetensors`` (all weights, incl. the sd-turbo prompt
embedding) and ``refiner.json`` (format, version, :class:`RefinerConfig`, backbone architecture).

``load_refiner("embedded")`` loads the refiner shipped in ``assets/refiner/``. Every problem
(missing or foreign files, weights that do not fit the config, a refiner for another latent
space) is one :class:`SplatentError` naming the file and the fix.

Codec check: a refiner whose ``latent_channels`` differ from the codec's is refused. Equal
channels but another codec name is accepted silently within the SD latent family (``sd-turbo``
and ``taesd`` share one latent space) and with a warning otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from splatent_viewer.codecs import LatentCodec
from splatent_viewer.errors import SplatentError
from splatent_viewer.paths import assets_dir
from splatent_viewer.refine.embedded_unet import EmbeddedUNet, embedded_config_from_dict
from splatent_viewer.refine.refiner import Refiner, RefinerConfig

FORMAT = "splatent-refiner"
VERSION = 1
WEIGHTS_FILE = "refiner.safetensors"
CONFIG_FILE = "refiner.json"
_SAME_LATENT_SPACE = [{"sd-turbo", "taesd"}]


def embedded_refiner_dir() -> Path:
    """Where the shipped refiner lives (``assets/refiner``)."""
    return assets_dir() / "refiner"


def _config_to_json(config: RefinerConfig) -> dict:
    data = asdict(config)
    data["sd_turbo_path"] = None if config.sd_turbo_path is None else str(config.sd_turbo_path)
    return data


def _config_from_json(data: dict, *, source: Path) -> RefinerConfig:
    known = {f.name for f in fields(RefinerConfig)}
    unknown = set(data) - known
    if unknown:
        raise SplatentError(
            f"{source} has unknown refiner settings {sorted(unknown)}; it was written by a newer splatent-viewer, "
            "update this one."
        )
    data = dict(data)
    try:
        if "embedded" in data:
            data["embedded"] = embedded_config_from_dict(data["embedded"])
        for key in ("latent_shift", "latent_scale"):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        if data.get("sd_turbo_path") is not None:
            data["sd_turbo_path"] = Path(data["sd_turbo_path"])
        config = RefinerConfig(**data)
        config.validate()
    except (SplatentError, TypeError, ValueError) as err:
        raise SplatentError(f"{source} holds an invalid refiner config: {err}") from err
    return config


def _resolve(path: Path | Literal["embedded"]) -> Path:
    if path == "embedded":
        folder = embedded_refiner_dir()
        if not (folder / CONFIG_FILE).is_file():
            raise SplatentError(
                f"No embedded refiner: {folder / CONFIG_FILE} does not exist (the shipped refiner has not been trained "
                "yet). Train one with `splatent-refiner train` and pass its folder, or run without a refiner."
            )
        return folder
    folder = Path(path).expanduser()
    if folder.is_file() and folder.name in (CONFIG_FILE, WEIGHTS_FILE):
        folder = folder.parent
    if not folder.is_dir():
        raise SplatentError(
            f"Refiner folder {folder} does not exist; pass a folder written by save_refiner / `splatent-refiner train`."
        )
    return folder


def read_refiner_config(path: Path | Literal["embedded"]) -> tuple[RefinerConfig, dict]:
    """``(config, backbone architecture)`` from ``refiner.json`` alone (cheap: no weights are read)."""
    folder = _resolve(path)
    file = folder / CONFIG_FILE
    if not file.is_file():
        raise SplatentError(
            f"{file} is missing, so {folder} is not a refiner folder; pass a folder written by save_refiner."
        )
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise SplatentError(f"{file} is not readable JSON ({err}); re-save the refiner.") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SplatentError(f"{file} is not a splatent refiner config (format != {FORMAT!r}); pass a refiner folder.")
    if data.get("version") != VERSION:
        raise SplatentError(
            f"{file} has refiner format version {data.get('version')}, this splatent-viewer reads version {VERSION}; "
            "use a matching splatent-viewer or re-save the refiner."
        )
    if not isinstance(data.get("config"), dict):
        raise SplatentError(f"{file} has no refiner config; re-save the refiner.")
    return _config_from_json(data["config"], source=file), dict(data.get("backbone") or {})


def check_codec(config: RefinerConfig, codec: LatentCodec, *, source: Path | str) -> None:
    """Refuses a refiner for another latent space (channels); warns on another codec name with equal channels."""
    if config.latent_channels != codec.latent_channels:
        raise SplatentError(
            f"The refiner {source} works on {config.latent_channels}-channel latents ({config.codec}) but the codec "
            f"{codec.name!r} has {codec.latent_channels}; use a refiner trained for {codec.name}."
        )
    if config.codec != codec.name and not any({config.codec, codec.name} <= s for s in _SAME_LATENT_SPACE):
        warnings.warn(
            f"The refiner {source} was trained for the {config.codec!r} codec, used with {codec.name!r}; "
            "results may be poor.",
            stacklevel=3,
        )


def load_refiner(
    path: Path | Literal["embedded"],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    codec: LatentCodec | None = None,
) -> Refiner:
    """A saved refiner (a folder, or its refiner.json / refiner.safetensors) in eval mode, frozen.

    ``"embedded"``: the shipped ``assets/refiner``. With ``codec``, the latent spaces are checked.
    """
    config, extra = read_refiner_config(path)
    folder = _resolve(path)
    if codec is not None:
        check_codec(config, codec, source=folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise SplatentError(f"{weights} is missing; copy the whole refiner folder (refiner.json + {WEIGHTS_FILE}).")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise SplatentError(
            f"{weights} is not a readable safetensors file ({err}); re-save or re-copy the refiner."
        ) from err
    if config.backbone == "embedded":
        backbone = EmbeddedUNet(
            latent_channels=config.latent_channels, config=config.embedded, extra_channels=config.guide_channels
        )
    else:
        from splatent_viewer.refine.sd_turbo import SDTurboBackbone

        if "unet_config" not in extra or "prompt_embeds_shape" not in extra:
            raise SplatentError(f"{folder / CONFIG_FILE} lacks the sd-turbo UNet architecture; re-save the refiner.")
        backbone = SDTurboBackbone.from_export(extra)
    refiner = Refiner(config=config, backbone=backbone)
    expected = refiner.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise SplatentError(
            f"{weights} does not match {folder / CONFIG_FILE} ({detail}); the two files come from different refiners."
        )
    refiner.load_state_dict(state)
    refiner.requires_grad_(False)
    refiner.source = folder
    return refiner.eval().to(device=device, dtype=dtype)


def save_refiner(refiner: Refiner, path: Path) -> Path:
    """Writes ``path/refiner.safetensors`` + ``path/refiner.json`` atomically (a temp folder renamed into place).

    An existing refiner folder is replaced; a non-empty folder holding other files is refused.
    """
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SplatentError(f"{path} exists and is not a folder; choose a folder path for the refiner.")
        others = sorted(p.name for p in path.iterdir() if p.name not in (CONFIG_FILE, WEIGHTS_FILE))
        if others:
            raise SplatentError(
                f"{path} holds other files ({', '.join(others[:3])}); save the refiner to a new or empty folder."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = refiner.backbone.export_config()
    meta = {"format": FORMAT, "version": VERSION, "config": _config_to_json(refiner.config), "backbone": extra}
    state = {k: v.detach().to("cpu").contiguous() for k, v in refiner.state_dict().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a saved refiner is an ordinary folder
    try:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT, "version": str(VERSION)})
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        old = None
        if path.exists():  # swap: old aside, new in, old removed
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "refiner")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "check_codec",
    "embedded_refiner_dir",
    "load_refiner",
    "read_refiner_config",
    "save_refiner",
]
