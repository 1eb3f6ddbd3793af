"""A trained scene, ready to render: splats + codec + reference bank (+ refiner).

This is what the viewer, the exporter and the refiner's dataset builder load. Two sources:

- a run folder written by ``splatent-demo`` / :func:`save_trained_run` (``splats.safetensors`` +
  ``references.safetensors``), in the scene's own world coordinates;
- another tool's run file, through a loader registered under the ``splatent_viewer.run_loaders`` entry-point
  group: the nerfstudio plugin registers one for ``ns-train splatent``'s ``config.yml`` (the scene in nerfstudio's
  dataparser-transformed world, the one ``ns-render`` camera paths use). The core never imports the plugin.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.codecs import LatentCodec, LiveDecoderConfig, PairedCodec, load_codec
from splatent_viewer.cuda_graphs import CudaGraphRunner
from splatent_viewer.errors import SplatentError
from splatent_viewer.paths import assets_dir
from splatent_viewer.references import camera_scene_scale, select_references
from splatent_viewer.safetensors_io import read_safetensors, write_safetensors
from splatent_viewer.splats.io import load_splats, save_splats

if TYPE_CHECKING:
    from splatent_viewer.data.scene import Scene
    from splatent_viewer.refine.refiner import Refiner

LOG = logging.getLogger(__name__)

RUN_LOADERS_GROUP = "splatent_viewer.run_loaders"
"""Entry-point group of run loaders: ``name = "module:function"``, the function taking ``(path, *, device)`` and
returning a :class:`TrainedScene` (no refiner attached) or ``None`` when the file is not its kind."""

REFERENCES_FORMAT = "splatent-references"
SPLATS_FILE = "splats.safetensors"
REFERENCES_FILE = "references.safetensors"
ADAPTED_REFINER_DIR = "refiner_adapted"
"""Where ``splatent-refiner adapt`` (and ``ns-train splatent``'s last phase) writes a run's scene-adapted refiner, in
the run folder (beside ``splats.safetensors`` or ``config.yml``); ``refiner="auto"`` loads it."""
ADAPTATION_RECORD = "refiner_adapted.json"
"""Beside ``refiner_adapted/``: what the adaptation's validation measured and which weights it kept
(:func:`splatent_viewer.refiner_training.adapt.adapt_to_scene`)."""
NO_REFINER_MESSAGE = (
    "No refiner is loaded, so there is no enhanced render; pass --refiner PATH "
    "(a folder written by `splatent-refiner train`) or choose the decoded mode."
)


@dataclass
class ReferenceBank:
    """Training cameras and their codec latents: what the refiner looks at."""

    c2w: Float[Tensor, "N 4 4"]
    """Training cameras, OpenGL/nerfstudio camera-to-world."""
    Ks: Float[Tensor, "N 3 3"]
    """Pixel intrinsics at each training image's size."""
    sizes: Int[Tensor, "N 2"]
    """(height, width) of each training image."""
    latents: Float[Tensor, "N C h w"]
    """Codec latents of the training images, zero-padded to the largest (see :meth:`latent`)."""
    downscale: int
    """The codec's downscale (image size / latent size)."""
    scene_scale: float = field(default=0.0)
    """Largest distance of a training camera from their mean (0 → computed from ``c2w``)."""

    def __post_init__(self) -> None:
        if self.scene_scale <= 0 and self.c2w.shape[0] > 0:
            self.scene_scale = camera_scene_scale(self.c2w)
        # Host copies for per-frame lookups: choosing references and un-padding latents then need no device syncs.
        self._c2w_host = self.c2w.detach().float().cpu()
        self._sizes_host = [(int(h), int(w)) for h, w in self.sizes.tolist()]

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    @property
    def latent_channels(self) -> int:
        return int(self.latents.shape[1])

    def latent(self, index: int) -> Float[Tensor, "C h w"]:
        """The un-padded latent of training view ``index``."""
        h, w = (v // self.downscale for v in self._sizes_host[index])
        return self.latents[index, :, :h, :w]

    def nearest(self, *, c2w: Float[Tensor, "4 4"] | Float[Tensor, "3 4"], k: int) -> list[int]:
        """Indices of the ``k`` nearest training views, nearest first (a view at the query's exact pose is skipped)."""
        if k <= 0 or len(self) == 0:
            return []
        c2w = c2w.detach().float().cpu()  # on the host: a handful of cameras, and no device sync per frame
        bank = self._c2w_host
        is_member = bool(((bank[:, :3, :4] - c2w[:3, :4]).abs().amax(dim=(-1, -2)) <= 1e-5).any())
        k = min(k, len(self) - int(is_member))
        if k <= 0:
            return []
        idx = select_references(query_c2ws=c2w, train_c2ws=bank, k=k, scene_scale=self.scene_scale)
        return [int(i) for i in idx.tolist()]

    def to(self, device: torch.device | str) -> ReferenceBank:
        return ReferenceBank(
            c2w=self.c2w.to(device),
            Ks=self.Ks.to(device),
            sizes=self.sizes.to(device),
            latents=self.latents.to(device),
            downscale=self.downscale,
            scene_scale=self.scene_scale,
        )

    @classmethod
    def from_latents(
        cls,
        *,
        c2w: Float[Tensor, "N 4 4"],
        Ks: Float[Tensor, "N 3 3"],
        latents: list[Float[Tensor, "C _h _w"]],
        downscale: int,
    ) -> ReferenceBank:
        """A bank from per-view latents of possibly different sizes (padded here)."""
        if len(latents) != c2w.shape[0]:
            raise SplatentError(f"Reference bank: {c2w.shape[0]} cameras but {len(latents)} latents.")
        C = latents[0].shape[0]
        H = max(int(lat.shape[1]) for lat in latents)
        W = max(int(lat.shape[2]) for lat in latents)
        padded = latents[0].new_zeros(len(latents), C, H, W)
        for i, lat in enumerate(latents):
            padded[i, :, : lat.shape[1], : lat.shape[2]] = lat
        sizes = torch.tensor([[int(lat.shape[1]) * downscale, int(lat.shape[2]) * downscale] for lat in latents])
        c2w4 = (
            c2w if c2w.shape[-2] == 4 else torch.cat([c2w, c2w.new_tensor([0, 0, 0, 1]).expand(c2w.shape[0], 1, 4)], 1)
        )
        return cls(c2w=c2w4.float(), Ks=Ks.float(), sizes=sizes, latents=padded, downscale=downscale)

    @classmethod
    def from_scene(
        cls, *, scene: Scene, indices: list[int], codec: LatentCodec, device: torch.device | str, batch_size: int = 4
    ) -> ReferenceBank:
        """Encodes the scene's views ``indices`` with ``codec`` (each image top-left-cropped to a multiple of the downscale)."""
        ds = codec.downscale
        latents = []
        with torch.no_grad():
            for i in indices:
                img = scene.load_image(i)
                h, w = (img.shape[0] // ds) * ds, (img.shape[1] // ds) * ds
                latents.append(codec.encode(img[:h, :w].permute(2, 0, 1)[None].to(device)).float()[0])
        return cls.from_latents(
            c2w=scene.camera_to_worlds[indices].to(device),
            Ks=scene.Ks[indices].to(device),
            latents=latents,
            downscale=ds,
        )

    def save(self, path: Path) -> None:
        """Writes ``path`` (safetensors) atomically."""
        tensors = {"c2w": self.c2w, "Ks": self.Ks, "sizes": self.sizes.long(), "latents": self.latents.float()}
        meta = {"format": REFERENCES_FORMAT, "downscale": str(self.downscale), "scene_scale": repr(self.scene_scale)}
        write_safetensors(path, tensors, metadata=meta)

    @classmethod
    def load(cls, path: Path, *, device: torch.device | str = "cpu") -> ReferenceBank:
        """Reads a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise SplatentError(
                f"Reference bank {path} does not exist; it is written next to splats.safetensors "
                "by splatent-demo (re-run it) or by save_trained_run."
            )
        t, meta = read_safetensors(path, device=device)
        if meta.get("format") != REFERENCES_FORMAT or not {"c2w", "Ks", "sizes", "latents"} <= set(t):
            raise SplatentError(f"{path} is not a splatent reference bank (format {meta.get('format')!r}).")
        return cls(
            c2w=t["c2w"],
            Ks=t["Ks"],
            sizes=t["sizes"],
            latents=t["latents"],
            downscale=int(meta["downscale"]),
            scene_scale=float(meta["scene_scale"]),
        )


@dataclass
class TrainedScene:
    """Everything needed to render (and enhance) novel views of one trained scene."""

    params: dict[str, Tensor]
    """Raw splat parameters (:mod:`splatent_viewer.splats.params` layout, with ``latents``)."""
    codec: LatentCodec
    """The codec whose latents the Gaussians carry (a :class:`PairedCodec` after :meth:`set_live_decoder`: its
    encoder, name and latent layout are the scene codec's, its decoder the live decoder)."""
    sh_degree: int
    """SH degree of the RGB colours."""
    references: ReferenceBank
    """Training cameras + latents, for the refiner."""
    refiner: Refiner | None
    """The refiner, or None (then only decoded/RGB renders exist)."""
    latent_background: Float[Tensor, " C"] | None
    """Latent of the background colour (None = zeros)."""
    name: str
    """Display name (folder or experiment name)."""
    source: Path
    """Where it was loaded from."""
    device: torch.device
    """Device of the tensors."""
    scene_path: Path | None = None
    """The scene folder it was trained on, when known."""
    train_indices: list[int] | None = None
    """Indices (into the scene's frames) of the training views, when known; the bank's order."""
    rgb_background: Float[Tensor, "3"] | None = None
    """Background colour of the RGB splats (None = black)."""
    train_steps: int | None = None
    """Training steps the Gaussians were fitted for, when known (scene adaptation trains its validation unit as
    long)."""
    _decode_graph: CudaGraphRunner | None = field(default=None, init=False, repr=False)
    _refine_graph: CudaGraphRunner | None = field(default=None, init=False, repr=False)
    _encode_graph: CudaGraphRunner | None = field(default=None, init=False, repr=False)

    def decode(self, latents: Float[Tensor, "B C h w"]) -> Float[Tensor, "B 3 H W"]:
        """``codec.decode`` (replayed from a CUDA graph after :meth:`enable_fast_inference`)."""
        graphed = self._decode_graph
        if graphed is not None and graphed.fn == self.codec.decode:  # a graph of the current codec (bound methods: ==)
            return graphed(latents.to(self.codec.dtype))
        return self.codec.decode(latents)

    @property
    def refiner_label(self) -> str:
        """Which refiner renders the enhanced view, for people: "adapted to this scene" (the run's
        ``refiner_adapted/``), "generic (shipped)" (``assets/refiner``) or its folder; then RGB-guided or pure-latent;
        "none" without one."""
        refiner = self.refiner
        if refiner is None:
            return "none"
        source = refiner.source
        if source is None:
            which = "built in memory"
        elif source.name == ADAPTED_REFINER_DIR:
            which = "adapted to this scene"
            record = source.parent / ADAPTATION_RECORD
            try:
                info = json.loads(record.read_text()) if record.is_file() else {}
            except (OSError, ValueError):
                info = {}
            kept = info.get("kept")
            if kept == "start" and not info.get("validation"):
                which = "start weights (too little time for a validation unit: not fine-tuned)"
            elif kept == "start" and (info["validation"].get("unguarded") or {}).get("alpha", 0) != 0:
                which = "start weights (the adapted ones lowered this run's own renders of its training views)"
            elif kept == "start":
                which = "start weights (adaptation did not beat them on held-out training views)"
            elif kept == "interpolated":
                alpha = (info.get("validation") or {}).get("alpha")
                share = f"{alpha:g}" if isinstance(alpha, (int, float)) else "part"
                which = f"adapted to this scene ({share} of the way from the start to the fine-tuned weights)"
            elif kept == "stopped early":
                step = (info.get("validation") or {}).get("step")
                which = f"adapted to this scene (stopped early, at step {step} of {info.get('steps')})"
        elif source.resolve() == (assets_dir() / "refiner").resolve():
            which = "generic (shipped)"
        else:
            which = str(source)
        kind = "pure-latent"
        if refiner.config.guided:
            kind = "RGB-guided, on the RGB splats" if refiner.config.residual else "RGB-guided"
        return f"{which}, {kind}"

    def set_live_decoder(self, *, decoder: LatentCodec) -> TrainedScene:
        """Decodes frames with ``decoder`` (e.g. TAESD for SD-Turbo latents) instead of the scene codec's decoder:
        :attr:`codec` becomes a :class:`PairedCodec` (a compatible decoder of the same latent space, else a
        :class:`SplatentError`); references and the refiner keep the scene codec's latents. A decoder graph of
        :meth:`enable_fast_inference` is re-made for the new decoder. Returns ``self``."""
        base = self.codec.codec if isinstance(self.codec, PairedCodec) else self.codec
        self.codec = PairedCodec(codec=base, decoder=decoder)
        if self._decode_graph is not None:
            self._decode_graph = CudaGraphRunner(self.codec.decode, name=f"{self.codec.decoder_name} decoder")
            self._encode_graph = CudaGraphRunner(self.codec.encode, name=f"{self.codec.name} encoder")
        return self

    def refine(
        self,
        *,
        target: Float[Tensor, "B C h w"],
        references: Float[Tensor, "B K C h w"],
        guide: Float[Tensor, "B C h w"] | None = None,
    ) -> Float[Tensor, "B C h w"]:
        """The refiner's output for ``target`` and ``references`` (and the RGB ``guide`` of a guided refiner), in the
        refiner's dtype."""
        if self.refiner is None:
            raise SplatentError(NO_REFINER_MESSAGE)
        dtype = self.refiner.dtype
        inputs = [t.to(dtype) for t in (target, references, guide) if t is not None]
        graphed = self._refine_graph
        if graphed is not None and graphed.fn == self.refiner.forward_positional:  # same refiner (bound methods: ==)
            return graphed(*inputs)
        return self.refiner.forward_positional(*inputs)

    def encode_guide(self, rgb: Float[Tensor, "H W 3"]) -> Float[Tensor, "1 C h w"]:
        """The RGB guide of a guided refiner: the RGB-splat render encoded by the scene codec (its encoder, also when
        a live decoder decodes frames)."""
        image = rgb.clamp(0, 1).permute(2, 0, 1)[None].to(self.codec.dtype)
        graphed = self._encode_graph
        if graphed is not None and graphed.fn == self.codec.encode:
            return graphed(image.contiguous())
        return self.codec.encode(image)

    def enable_fast_inference(
        self, *, cuda_graphs: bool = True, channels_last: bool = False, cudnn_benchmark: bool = True
    ) -> TrainedScene:
        """Live-rendering speed-ups on CUDA (no-ops on the CPU): the codec's decoder and the refiner replayed
        from CUDA graphs (one per frame size) and cuDNN's autotuner on (a process-wide setting, right for a
        viewer or exporter that renders the same sizes over and over). ``channels_last`` also converts both
        (off by default: with the autotuner it was slower on an H200, see benchmarks/RESULTS.md). Returns ``self``."""
        if self.device.type != "cuda":
            return self
        if cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        if channels_last:
            self.codec.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue] - torch's stubs lack this form
            if self.refiner is not None:
                self.refiner.use_channels_last(True)
        if cuda_graphs:
            self._decode_graph = CudaGraphRunner(self.codec.decode, name=f"{self.codec.decoder_name} decoder")
            # the guide of an RGB-guided refiner (the RGB render, encoded every enhanced frame); captured on first use
            self._encode_graph = CudaGraphRunner(self.codec.encode, name=f"{self.codec.name} encoder")
            if self.refiner is not None:
                self._refine_graph = CudaGraphRunner(self.refiner.forward_positional, name="refiner")
        return self


def trained_scene_from_splats(
    *,
    scene: Scene,
    params: dict[str, Tensor],
    codec: LatentCodec,
    sh_degree: int,
    train_indices: list[int],
    device: torch.device | str,
    refiner: Refiner | None = None,
    name: str = "trained",
    train_latents: list[Float[Tensor, "C _h _w"]] | None = None,
    output_dir: Path | None = None,
    extra: dict | None = None,
    rgb_background: Float[Tensor, "3"] | None = None,
    latent_background: Float[Tensor, " C"] | None = None,
) -> TrainedScene:
    """A :class:`TrainedScene` for freshly trained splats. The reference bank holds the training views'
    latents: ``train_latents`` when the caller has them (the trainer's targets, :attr:`TrainResult.train_latents`,
    in ``train_indices`` order), else the views are encoded here. With ``output_dir``, the run is also written there
    (:func:`save_trained_run`, ``extra`` in its record; its ``steps`` are the scene's ``train_steps``) and is the
    scene's ``source``. ``rgb_background`` and ``latent_background``: what the trainer composited on
    (:attr:`TrainResult.rgb_background`; None: black/zeros)."""
    if train_latents is None:
        bank = ReferenceBank.from_scene(scene=scene, indices=train_indices, codec=codec, device=device)
    else:
        bank = ReferenceBank.from_latents(
            c2w=scene.camera_to_worlds[train_indices].to(device),
            Ks=scene.Ks[train_indices].to(device),
            latents=[t.float() for t in train_latents],
            downscale=codec.downscale,
        )
    if output_dir is not None:
        save_trained_run(
            output_dir=output_dir,
            params=params,
            codec=codec,
            sh_degree=sh_degree,
            references=bank,
            scene_path=scene.root,
            train_indices=list(train_indices),
            extra=extra,
            rgb_background=rgb_background,
            latent_background=latent_background,
        )
    return TrainedScene(
        params=params,
        codec=codec,
        sh_degree=sh_degree,
        references=bank,
        refiner=refiner,
        latent_background=None if latent_background is None else latent_background.to(device),
        name=name,
        source=scene.root if output_dir is None else Path(output_dir),
        scene_path=scene.root,
        device=torch.device(device),
        train_indices=list(train_indices),
        rgb_background=None if rgb_background is None else rgb_background.to(device),
        train_steps=(extra or {}).get("steps"),
    )


def save_trained_run(
    *,
    output_dir: Path,
    params: dict[str, Tensor],
    codec: LatentCodec,
    sh_degree: int,
    references: ReferenceBank,
    scene_path: Path | None = None,
    train_indices: list[int] | None = None,
    extra: dict | None = None,
    rgb_background: Float[Tensor, "3"] | None = None,
    latent_background: Float[Tensor, " C"] | None = None,
) -> None:
    """Writes a run folder that :func:`load_trained_scene` reads (each file atomically); the backgrounds (None:
    black/zeros) go into the splats' record."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(extra or {})
    meta.update({"scene": str(scene_path) if scene_path is not None else None, "train_indices": train_indices})
    for key, value in (("rgb_background", rgb_background), ("latent_background", latent_background)):
        if value is not None:
            meta[key] = value.detach().float().cpu().tolist()
    save_splats(path=output_dir / SPLATS_FILE, params=params, codec=codec.name, sh_degree=sh_degree, extra=meta)
    references.save(output_dir / REFERENCES_FILE)


def run_folder(path: Path) -> Path:
    """The folder of a run: a splatent-demo folder itself, or the folder of its splats.safetensors or config.yml."""
    path = Path(path)
    return path if path.is_dir() else path.parent


SHIPPED_REFINERS = ("guided", "embedded")
"""The names :func:`load_refiner_for` reads as the shipped refiner (any other string but "auto"/"none" is a folder)."""


def load_refiner_for(
    refiner: Path | str | None, *, codec: LatentCodec, device: torch.device, dtype: torch.dtype, run: Path | None = None
) -> Refiner | None:
    """``"none"``/None → None; ``"auto"`` → the run's scene-adapted refiner (``<run>/refiner_adapted``) when it has
    one, else as ``"guided"``; ``"guided"`` → the shipped refiner made RGB-guided and residual
    (:func:`~splatent_viewer.refine.guided_from`: its enhanced view starts as the RGB splats exactly; what scene
    adaptation starts from); ``"embedded"`` → the shipped pure-latent refiner (the paper's setting). Both give None with
    a warning when there is no shipped refiner (or it does not fit ``codec``); a path → that refiner (errors if it does
    not load or fit; a string that is not one of these names is read as a path)."""
    if refiner is None or refiner == "none":
        return None
    from splatent_viewer.refine.checkpoint import load_refiner  # the refiner package pulls in diffusers

    if refiner == "auto":
        adapted = None if run is None else run_folder(run) / ADAPTED_REFINER_DIR
        if adapted is not None and adapted.is_dir():
            LOG.info("refiner: %s (adapted to this scene)", adapted)
            return load_refiner(adapted, device=device, dtype=dtype, codec=codec)
        refiner = "guided"

    if refiner in SHIPPED_REFINERS:
        try:
            shipped = load_refiner("embedded", device=device, dtype=dtype, codec=codec)
        except SplatentError as e:
            LOG.warning("no enhancement: %s", e)
            return None
        if refiner == "embedded" or shipped.config.guided or shipped.config.backbone != "embedded":
            return shipped
        from splatent_viewer.refine import guided_from

        return guided_from(shipped, residual=True)
    return load_refiner(Path(refiner), device=device, dtype=dtype, codec=codec)


def _load_registered_run(path: Path, *, device: torch.device) -> TrainedScene:
    """The first registered run loader (:data:`RUN_LOADERS_GROUP`) that takes ``path``."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=RUN_LOADERS_GROUP), key=lambda e: e.name):
        scene = entry.load()(path, device=device)
        if scene is not None:
            return scene
    raise SplatentError(
        f"{path} is not a run this tool can read: pass a splatent-demo output folder (or its "
        "splats.safetensors) or an `ns-train splatent` config.yml (outputs/<name>/splatent/<timestamp>/"
        "config.yml; needs the nerfstudio plugin installed with splatent-viewer)."
    )


def load_trained_scene(
    path: Path,
    *,
    device: torch.device | str = "cpu",
    refiner: Path | str | None = "auto",
    codec_path: Path | None = None,
    refiner_dtype: torch.dtype | None = None,
    live_decoder: LiveDecoderConfig | None = None,
) -> TrainedScene:
    """Loads a run folder (``splatent-demo``), its ``splats.safetensors``, or a file a registered run loader reads
    (:data:`RUN_LOADERS_GROUP`; e.g. an ``ns-train splatent`` ``config.yml``).

    ``refiner="auto"`` uses the run's scene-adapted refiner (``refiner_adapted/`` in the run folder) when it has one,
    else as ``"guided"``: the shipped refiner made RGB-guided (the RGB splats until adapted); ``"embedded"``: the
    shipped pure-latent refiner; both only when it exists and the codec matches (else no enhancement, with a warning;
    :func:`load_refiner_for`); a path must load or it is an error; ``"none"`` disables it.
    ``refiner_dtype`` defaults to float16 on CUDA, float32 on CPU. ``live_decoder`` (when it names one)
    decodes frames with another codec of the same latent space (:class:`PairedCodec`, as
    :meth:`TrainedScene.set_live_decoder` sets later).
    """
    path = Path(path)
    device = torch.device(device)
    dtype = refiner_dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    if path.is_file() and path.suffix not in (".safetensors",):
        scene = _load_registered_run(path, device=device)
        if live_decoder is not None:
            scene.codec = live_decoder.setup(codec=scene.codec)  # before the refiner: a bad decoder fails fast
        scene.refiner = load_refiner_for(refiner, codec=scene.codec, device=device, dtype=dtype, run=path)
        return scene
    run_dir = path.parent if path.is_file() else path
    if not path.exists():
        raise SplatentError(
            f"{path} does not exist; pass a splatent-demo output folder or a nerfstudio config.yml "
            "(outputs/<name>/splatent/<timestamp>/config.yml)."
        )
    if not (run_dir / SPLATS_FILE).is_file():
        raise SplatentError(
            f"{run_dir} has no {SPLATS_FILE}; pass a splatent-demo output folder or a nerfstudio "
            "config.yml (outputs/<name>/splatent/<timestamp>/config.yml)."
        )
    splats = load_splats(run_dir / SPLATS_FILE, device=device)
    codec = load_codec(
        splats.codec, path=codec_path, device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32
    )
    if codec.latent_channels != splats.params["latents"].shape[1]:
        raise SplatentError(
            f"{run_dir / SPLATS_FILE} carries {splats.params['latents'].shape[1]}-channel latents but "
            f"codec {codec.name} has {codec.latent_channels}; pass the codec it was trained with."
        )
    if live_decoder is not None:
        codec = live_decoder.setup(codec=codec)  # before the refiner: a bad decoder fails fast
    bank = ReferenceBank.load(run_dir / REFERENCES_FILE, device=device)
    if bank.latent_channels != codec.latent_channels:
        raise SplatentError(
            f"{run_dir / REFERENCES_FILE} has {bank.latent_channels}-channel latents; the splats use "
            f"{codec.latent_channels} ({codec.name}). Re-create the run folder."
        )
    scene_path = splats.extra.get("scene")
    backgrounds: dict[str, Tensor | None] = {key: None for key in ("rgb_background", "latent_background")}
    for key in backgrounds:
        if splats.extra.get(key) is not None:
            backgrounds[key] = torch.tensor(splats.extra[key], dtype=torch.float32, device=device)
    if backgrounds["latent_background"] is not None and backgrounds["latent_background"].shape != (
        codec.latent_channels,
    ):
        raise SplatentError(
            f"{run_dir / SPLATS_FILE} records a {tuple(backgrounds['latent_background'].shape)} background latent; "
            f"codec {codec.name} has {codec.latent_channels} channels. Re-create the run folder."
        )
    scene = TrainedScene(
        params=splats.params,
        codec=codec,
        sh_degree=splats.sh_degree,
        references=bank,
        refiner=load_refiner_for(refiner, codec=codec, device=device, dtype=dtype, run=run_dir),
        latent_background=backgrounds["latent_background"],
        name=run_dir.name,
        source=path,
        device=device,
        scene_path=Path(scene_path) if scene_path else None,
        train_indices=splats.extra.get("train_indices"),
        rgb_background=backgrounds["rgb_background"],
        train_steps=splats.extra.get("steps"),
    )
    return scene
