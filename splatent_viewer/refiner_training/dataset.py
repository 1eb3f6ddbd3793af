"""The refiner's on-disk dataset: sharded safetensors + ``index.json``, and a torch ``Dataset`` over it.

One sample is one held-out view of a scene, with Splatent's fields:

- ``target``: the codec latent of the view's ground-truth image (``codec.encode(image)``);
- ``render``: the latent rendered by latent Gaussians that were NOT trained on that view;
- ``refs``: latents of the ``K_MAX`` nearest views among those the Gaussians WERE trained on,
  nearest first, resized to the target's latent size (zero-padded when fewer exist, see
  ``num_refs``);
- ``image``: the ground-truth image (uint8), so evaluation is in pixel space;
- ``guide`` (datasets built since RGB guidance): the codec latent of the same Gaussians' RGB (SH) splats rendered
  at the view, what an RGB-guided refiner starts from;
- ``rgb_psnr`` / ``rgb_ssim`` (index metadata only, datasets built since the RGB baseline): the
  same Gaussians' RGB (SH) splats rendered at the view, scored against the ground-truth image — the
  baseline that decoded and enhanced renders are compared with. Older datasets lack them.

Layout of a dataset folder::

    index.json                  codec, channels, downscale, units, shards, per-sample metadata
    shards/<unit>-<n>.safetensors   target/render[/guide] [n C h w] fp16, refs [n K_MAX C h w] fp16,
                                    image [n H W 3] uint8, num_refs [n] int64

A *unit* is one trained set of Gaussians (one scene × one training fraction, or one already
trained run); a shard holds samples of one unit and one latent size. A unit's shards are written
first (:func:`write_unit_shards`, also from worker processes), then the unit is committed to the
index (:meth:`DatasetWriter.commit`), which is rewritten atomically after each unit, so an
interrupted build leaves a valid dataset and building can resume.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, UInt8
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor
from torch.utils.data import Dataset

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.errors import SplatentError
from splatent_viewer.refine.refiner import Refiner
from splatent_viewer.safetensors_io import write_safetensors

FORMAT = "splatent-refiner-dataset"
VERSION = 1
INDEX_FILE = "index.json"
SHARD_DIR = "shards"
K_MAX = 5
"""References stored per sample (Splatent uses up to 5)."""


@dataclass
class RefinerSample:
    """One held-out view, as the dataset builder produces it (tensors on any device)."""

    target: Float[Tensor, "C h w"]
    """Codec latent of the ground-truth image."""
    render: Float[Tensor, "C h w"]
    """Latent rendered by Gaussians not trained on this view."""
    refs: Float[Tensor, "K C h w"]
    """Latents of the K ≤ K_MAX nearest training views (nearest first), at the target's latent size."""
    image: UInt8[Tensor, "H W 3"]
    """Ground-truth image."""
    view: int
    """Index of the view in its scene."""
    ref_views: list[int]
    """Scene indices of the reference views, nearest first."""
    rgb_psnr: float | None = None
    """PSNR of the same Gaussians' RGB splats at this view against ``image`` (None = not rendered)."""
    rgb_ssim: float | None = None
    """SSIM of the RGB splats against ``image`` (None = not rendered)."""
    guide: Float[Tensor, "C h w"] | None = None
    """Codec latent of the same Gaussians' RGB splats rendered at this view (the RGB guide; None = not made)."""
    rgb: UInt8[Tensor, "H W 3"] | None = None
    """The same Gaussians' RGB splats rendered at this view (the image a residual refiner enhances; None = not
    kept)."""


@dataclass
class UnitRecord:
    """One unit whose shards are on disk but which is not in the index yet (:meth:`DatasetWriter.commit`)."""

    key: str
    """Unit key, e.g. ``temple@0.5``."""
    scene: str
    """Scene name of its samples."""
    info: dict[str, Any]
    """Unit metadata stored in the index (source, fraction, training views, ...)."""
    shards: list[dict[str, Any]]
    """Shard entries (file, unit, latent_size, image_size, num_samples) in writing order."""
    samples: list[dict[str, Any]]
    """Sample entries; their ``shard`` indexes :attr:`shards`."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def read_index(root: Path) -> dict[str, Any]:
    """The dataset's ``index.json``; one clear error when it is missing or not a refiner dataset."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise SplatentError(
            f"{path} does not exist; build the dataset with `splatent-refiner make-dataset --output {root}`."
        )
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SplatentError(
            f"{path} is not readable JSON ({e}); rebuild the dataset with `splatent-refiner make-dataset`."
        ) from e
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise SplatentError(
            f"{path} is not a refiner dataset index (format {index.get('format') if isinstance(index, dict) else None!r})."
        )
    return index


class DatasetWriter:
    """Appends units of samples to a dataset folder (new or existing with the same codec)."""

    def __init__(self, root: Path, *, codec: str, latent_channels: int, downscale: int, shard_size: int = 64) -> None:
        self.root = Path(root)
        self.shard_size = shard_size
        if (self.root / INDEX_FILE).exists():
            self.index = read_index(self.root)
            have = (self.index["codec"], self.index["latent_channels"], self.index["downscale"])
            if have != (codec, latent_channels, downscale):
                raise SplatentError(
                    f"{self.root / INDEX_FILE} holds {have[0]} latents ({have[1]} ch, /{have[2]}), not {codec} "
                    f"({latent_channels} ch, /{downscale}); use another --output folder or the same codec."
                )
        else:
            self.index = {
                "format": FORMAT,
                "version": VERSION,
                "codec": codec,
                "latent_channels": latent_channels,
                "downscale": downscale,
                "k_max": K_MAX,
                "units": [],
                "shards": [],
                "samples": [],
            }
        (self.root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        if not (self.root / INDEX_FILE).exists():  # a valid (empty) dataset from the start, whatever happens next
            write_json_atomic(self.root / INDEX_FILE, self.index, indent=1)

    def has_unit(self, key: str) -> bool:
        """Whether the unit ``key`` was already written (a resumed build skips it)."""
        return any(u["key"] == key for u in self.index["units"])

    def add_unit(self, *, key: str, scene: str, info: dict[str, Any], samples: Sequence[RefinerSample]) -> None:
        """Writes the unit's shards (one per latent size, ``shard_size`` samples each), then the index."""
        if self.has_unit(key):
            raise SplatentError(f"Unit {key} is already in {self.root / INDEX_FILE}.")
        self.commit(
            write_unit_shards(self.root, key=key, scene=scene, info=info, samples=samples, shard_size=self.shard_size)
        )

    def commit(self, record: UnitRecord) -> None:
        """Adds a unit whose shards :func:`write_unit_shards` wrote to the index (rewritten atomically)."""
        if self.has_unit(record.key):
            raise SplatentError(f"Unit {record.key} is already in {self.root / INDEX_FILE}.")
        offset = len(self.index["shards"])
        self.index["shards"].extend(record.shards)
        self.index["samples"].extend({**s, "shard": s["shard"] + offset} for s in record.samples)
        self.index["units"].append(
            {
                "key": record.key,
                "scene": record.scene,
                "num_samples": len(record.samples),
                "num_shards": len(record.shards),
                **record.info,
            }
        )
        write_json_atomic(self.root / INDEX_FILE, self.index, indent=1)

    def reorder_units(self, keys: Sequence[str]) -> None:
        """Puts the units (with their shards and samples) in the order of ``keys``, every unit key once.

        A parallel build commits units as they finish; this restores the order a sequential build
        writes, so readers see the same sample order whatever the number of workers."""
        have = [u["key"] for u in self.index["units"]]
        if sorted(keys) != sorted(have):
            raise ValueError(f"reorder_units needs every unit key once: got {list(keys)}, the index has {have}")
        if list(keys) == have:
            return
        units = {u["key"]: u for u in self.index["units"]}
        shards, samples, remap = [], [], {}
        for key in keys:
            for old, shard in enumerate(self.index["shards"]):
                if shard["unit"] == key:
                    remap[old] = len(shards)
                    shards.append(shard)
            samples += [{**s, "shard": remap[s["shard"]]} for s in self.index["samples"] if s["unit"] == key]
        self.index = {**self.index, "units": [units[k] for k in keys], "shards": shards, "samples": samples}
        write_json_atomic(self.root / INDEX_FILE, self.index, indent=1)


def write_unit_shards(
    root: Path, *, key: str, scene: str, info: dict[str, Any], samples: Sequence[RefinerSample], shard_size: int = 64
) -> UnitRecord:
    """Writes a unit's shards under ``root/shards`` (one per latent size, ``shard_size`` samples each, each
    file atomically) without touching the index; :meth:`DatasetWriter.commit` adds the returned record.

    Shard names come from the unit key, so a unit rebuilt after an interrupted build overwrites its
    uncommitted shards instead of piling up new ones."""
    root = Path(root)
    (root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[int, int], list[RefinerSample]] = {}
    for s in samples:
        groups.setdefault((int(s.target.shape[-2]), int(s.target.shape[-1])), []).append(s)
    shards: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for (h, w), group in sorted(groups.items()):
        for start in range(0, len(group), shard_size):
            chunk = group[start : start + shard_size]
            rel = f"{SHARD_DIR}/{_slug(key)}-{h}x{w}-{start // shard_size:04d}.safetensors"
            _write_shard(root / rel, chunk)
            for row, s in enumerate(chunk):
                entry = {
                    "shard": len(shards),
                    "row": row,
                    "unit": key,
                    "scene": scene,
                    "view": s.view,
                    "train_views": int(info.get("num_train_views", 0)),
                    "ref_views": list(s.ref_views),
                    "num_refs": len(s.ref_views),
                }
                if s.rgb_psnr is not None:
                    entry["rgb_psnr"] = float(s.rgb_psnr)
                if s.rgb_ssim is not None:
                    entry["rgb_ssim"] = float(s.rgb_ssim)
                entries.append(entry)
            shards.append(
                {
                    "file": rel,
                    "unit": key,
                    "latent_size": [h, w],
                    "image_size": list(chunk[0].image.shape[:2]),
                    "num_samples": len(chunk),
                    "guide": all(s.guide is not None for s in chunk),
                    "rgb": all(s.rgb is not None for s in chunk),
                }
            )
    return UnitRecord(key=key, scene=scene, info=dict(info), shards=shards, samples=entries)


def _write_shard(path: Path, chunk: Sequence[RefinerSample]) -> None:
    c, h, w = chunk[0].target.shape
    refs = torch.zeros(len(chunk), K_MAX, c, h, w, dtype=torch.float16)
    for i, s in enumerate(chunk):
        refs[i, : s.refs.shape[0]] = s.refs.detach().cpu().to(torch.float16)
    tensors = {
        "target": torch.stack([s.target.detach().cpu() for s in chunk]).to(torch.float16),
        "render": torch.stack([s.render.detach().cpu() for s in chunk]).to(torch.float16),
        "refs": refs,
        "image": torch.stack([s.image.cpu() for s in chunk]).to(torch.uint8),
        "num_refs": torch.tensor([len(s.ref_views) for s in chunk], dtype=torch.int64),
    }
    guides = [s.guide for s in chunk]
    if all(g is not None for g in guides):
        tensors["guide"] = torch.stack([g.detach().cpu() for g in guides if g is not None]).to(torch.float16)
    rgbs = [s.rgb for s in chunk]
    if all(r is not None for r in rgbs):
        tensors["rgb"] = torch.stack([r.cpu() for r in rgbs if r is not None]).to(torch.uint8)
    write_safetensors(path, tensors, metadata={"format": FORMAT})


class RefinerDataset(Dataset):
    """Samples of a dataset folder, whole frames (evaluation) or random crops + flips (training).

    ``crop`` (latent px) takes the same random window of target, render, references and image
    (``downscale`` × larger); it is clamped to the smallest frame so every crop has one size and
    batches stack. ``flip`` flips all of them horizontally with probability ½. Shards are loaded
    (memory-mapped) on first use and kept.
    """

    def __init__(
        self,
        root: Path,
        *,
        crop: int | None = None,
        flip: bool = False,
        scenes: Sequence[str] | None = None,
        exclude_scenes: Sequence[str] = (),
        units: Sequence[str] | None = None,
        exclude_units: Sequence[str] = (),
    ) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        known = {s["scene"] for s in self.index["samples"]}
        for name in [*(scenes or []), *exclude_scenes]:
            if name not in known:
                raise SplatentError(f"Scene {name!r} is not in {self.root / INDEX_FILE}; it has {sorted(known)}.")
        known_units = {u["key"] for u in self.index["units"]}
        for name in [*(units or []), *exclude_units]:
            if name not in known_units:
                raise SplatentError(f"Unit {name!r} is not in {self.root / INDEX_FILE}; it has {sorted(known_units)}.")
        self.samples = [
            s
            for s in self.index["samples"]
            if (scenes is None or s["scene"] in scenes)
            and s["scene"] not in exclude_scenes
            and (units is None or s["unit"] in units)
            and s["unit"] not in exclude_units
        ]
        if not self.samples:
            raise SplatentError(
                f"No samples left in {self.root} after choosing scenes {scenes} / excluding {list(exclude_scenes)}"
                + (f", units {list(units)}" if units is not None else "")
                + (f" / excluding units {list(exclude_units)}" if exclude_units else "")
                + "."
            )
        self.downscale = int(self.index["downscale"])
        self.latent_channels = int(self.index["latent_channels"])
        self.codec = str(self.index["codec"])
        self.flip = flip
        self.crop = crop
        if crop is not None:
            smallest = min(min(self.index["shards"][s["shard"]]["latent_size"]) for s in self.samples)
            self.crop = min(crop, smallest)
        self._shards: dict[int, dict[str, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def scene_names(self) -> list[str]:
        """Scenes of the selected samples, in first-appearance order."""
        return list(dict.fromkeys(s["scene"] for s in self.samples))

    def _shard(self, shard_id: int) -> dict[str, Tensor]:
        if shard_id not in self._shards:
            path = self.root / self.index["shards"][shard_id]["file"]
            try:
                self._shards[shard_id] = load_file(str(path))
            except (SafetensorError, OSError, ValueError) as e:
                raise SplatentError(
                    f"Cannot read shard {path} ({e}); rebuild the dataset with `splatent-refiner make-dataset`."
                ) from e
        return self._shards[shard_id]

    def __getitem__(self, i: int) -> dict[str, Any]:
        """``target``/``render`` [C h w], ``refs`` [K_MAX C h w] (zeros past ``num_refs``), ``num_refs``,
        ``image`` [3 H W] in [0, 1] (H = downscale × h), ``scene``, ``view``, ``guide`` [C h w] when the dataset
        has RGB guides (:attr:`has_guides`) and ``rgb`` [3 H W] (the RGB splats) when it kept them; float32."""
        meta = self.samples[i]
        shard, row = self._shard(meta["shard"]), meta["row"]
        latents = {k: shard[k][row].float() for k in ("target", "render", "refs", "guide") if k in shard}
        images = {k: shard[k][row].permute(2, 0, 1).float() / 255.0 for k in ("image", "rgb") if k in shard}
        if self.crop is not None:
            h, w = latents["target"].shape[-2:]
            c, d = self.crop, self.downscale
            y, x = int(torch.randint(0, h - c + 1, ())), int(torch.randint(0, w - c + 1, ()))
            latents = {k: t[..., y : y + c, x : x + c] for k, t in latents.items()}
            images = {k: t[:, y * d : (y + c) * d, x * d : (x + c) * d] for k, t in images.items()}
        if self.flip and bool(torch.rand(()) < 0.5):
            latents = {k: t.flip(-1) for k, t in latents.items()}
            images = {k: t.flip(-1) for k, t in images.items()}
        return {
            **{k: t.contiguous() for k, t in latents.items()},
            **{k: t.contiguous() for k, t in images.items()},
            "num_refs": shard["num_refs"][row],
            "scene": meta["scene"],
            "view": meta["view"],
        }

    def _every_shard_has(self, key: str) -> bool:
        return all(self.index["shards"][i].get(key, False) for i in {int(m["shard"]) for m in self.samples})

    @property
    def has_rgb(self) -> bool:
        """True when every sample kept its RGB splats (datasets built since residual refiners; needed by them)."""
        return self._every_shard_has("rgb")

    @property
    def has_guides(self) -> bool:
        """True when every sample has an RGB guide (datasets built since RGB guidance; needed by guided refiners)."""
        return self._every_shard_has("guide")


def _batched(batch: dict, key: str, *, missing: str) -> Tensor:
    """``batch[key]`` with a batch dimension (a dataset item gets one), or a :class:`SplatentError` saying ``missing``
    and how to rebuild the dataset."""
    if key not in batch:
        raise SplatentError(f"{missing}; rebuild it with `splatent-refiner make-dataset`.")
    value = batch[key]
    return value if value.ndim == 4 else value[None]


def refiner_rgb(refiner: Refiner, batch: dict) -> Tensor | None:
    """The RGB splats of a dataset item or batch [B 3 H W] for a residual ``refiner`` (None for the others); a clear
    error for a dataset built without them."""
    if not refiner.config.residual:
        return None
    return _batched(
        batch,
        "rgb",
        missing="This refiner enhances the RGB splats (residual) but the dataset did not keep them (built before "
        "residual refiners)",
    )


def refiner_guide(refiner: Refiner, batch: dict) -> Tensor | None:
    """The RGB guides of a dataset item or batch for a guided ``refiner`` (None for a pure-latent one); a clear error
    for a dataset built before RGB guidance."""
    if not refiner.config.guided:
        return None
    return _batched(
        batch,
        "guide",
        missing="This refiner is RGB-guided but the dataset has no RGB guides (built before RGB guidance)",
    )


def latent_statistics(
    dataset: RefinerDataset, *, max_samples: int = 256
) -> tuple[Float[Tensor, " C"], Float[Tensor, " C"]]:
    """Per-channel mean and standard deviation of the target latents (up to ``max_samples`` evenly spread samples)."""
    step = max(1, len(dataset.samples) // max_samples)
    total = torch.zeros(dataset.latent_channels, dtype=torch.float64)
    sq = torch.zeros_like(total)
    count = 0
    for meta in dataset.samples[::step]:
        t = dataset._shard(meta["shard"])["target"][meta["row"]].double()
        total += t.sum((-1, -2))
        sq += (t * t).sum((-1, -2))
        count += t.shape[-1] * t.shape[-2]
    mean = total / count
    std = (sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()
