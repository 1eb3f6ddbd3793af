"""Converts the upstream TAEF2 ``.pth`` state dicts (fp16) to the safetensors files the project ships.

    python -m splatent_viewer.scripts.convert_taef2 --src /work/shared/data/weights/taef2 --dst assets/taef2

Reads ``taef2_encoder.pth`` / ``taef2_decoder.pth`` (third-party: loaded with
``weights_only=True``), checks that each loads into the TAEF2 layout with ``strict=True``, and
writes ``taef2_encoder.safetensors`` / ``taef2_decoder.safetensors`` (dtype kept, fp16) plus the
upstream ``LICENSE``, each written atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
import tyro

from splatent_viewer.codecs.taef2 import DECODER_FILE, ENCODER_FILE, build_decoder, build_encoder
from splatent_viewer.errors import SplatentError
from splatent_viewer.paths import assets_dir


def _atomic_target(dst: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dst)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; these files are shipped
    os.replace(tmp, final)


def _convert_one(src: Path, dst: Path, name: str, build) -> None:
    from safetensors.torch import save_file

    if not src.is_file():
        raise SplatentError(f"{src} is missing; pass --src the folder holding taef2_encoder.pth and taef2_decoder.pth.")
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise SplatentError(f"{src} is not a readable PyTorch state dict ({err}); download it again.") from err
    try:
        build().load_state_dict(state, strict=True)  # layout check before anything is written
    except (RuntimeError, AttributeError) as err:
        raise SplatentError(
            f"{src} does not match the TAEF2 layout ({str(err).splitlines()[0]}); use the upstream TAEF2 weights."
        ) from err
    tensors = {key: value.contiguous() for key, value in state.items()}
    tmp = _atomic_target(dst, name)
    try:
        save_file(tensors, str(tmp), metadata={"source": src.name, "license": "MIT (see LICENSE)"})
        _publish(tmp, dst / name)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {dst / name} ({len(tensors)} tensors, {next(iter(tensors.values())).dtype})")


def main(src: Path, dst: Path = assets_dir() / "taef2") -> None:
    """Convert TAEF2 weights.

    Args:
        src: Folder with the upstream ``taef2_encoder.pth``, ``taef2_decoder.pth`` and ``LICENSE``.
        dst: Output folder (created if missing).
    """
    if not src.is_dir():
        raise SplatentError(
            f"{src} is not a folder; pass --src the folder holding taef2_encoder.pth and taef2_decoder.pth."
        )
    dst.mkdir(parents=True, exist_ok=True)
    _convert_one(src / "taef2_encoder.pth", dst, ENCODER_FILE, build_encoder)
    _convert_one(src / "taef2_decoder.pth", dst, DECODER_FILE, build_decoder)
    license_file = src / "LICENSE"
    if license_file.is_file():
        tmp = _atomic_target(dst, "LICENSE")
        try:
            shutil.copyfile(license_file, tmp)
            _publish(tmp, dst / "LICENSE")
        finally:
            tmp.unlink(missing_ok=True)
        print(f"wrote {dst / 'LICENSE'}")
    else:
        print(f"warning: {license_file} not found; copy the MIT license next to the weights by hand")


def entrypoint() -> None:
    try:
        tyro.cli(main)
    except SplatentError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    entrypoint()
