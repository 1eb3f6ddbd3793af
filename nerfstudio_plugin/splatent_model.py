"""Splatent as a nerfstudio model: nerfstudio's API mapped onto the core latent-splat step.

What a training step is lives once, in :mod:`splatent_viewer.training` (the core trainer of ``splatent-demo`` and
``splatent-refiner make-dataset`` runs the same functions in its own loop):

- initialisation: nerfstudio's seed points, or random points in the training cameras' frustums when the scene has
  none (:func:`~splatent_viewer.training.points.initial_points`; the datamanager hands the cameras over);
- both passes of a camera: :func:`~splatent_viewer.training.step.render_step` (RGB at splatfacto's resolution
  schedule, latents at 1/downscale), whose RGB ``info`` drives gsplat's ``DefaultStrategy`` with splatfacto's
  settings (``latents`` is one of ``gauss_params``: cloned, split and pruned with everything else);
- losses: :func:`~splatent_viewer.training.step.step_losses` (``--pipeline.model.loss.*``), plus the camera
  optimiser's;
- optimiser groups: :class:`~splatent_viewer.training.step.LearningRates` (``splatent_config`` builds nerfstudio's
  ``optimizers`` from it);
- training latents: :func:`~splatent_viewer.training.encode.encode_images` through the on-disk latent cache, into a
  :class:`~splatent_viewer.trained.ReferenceBank` kept in the checkpoint.

Eval and viewer renders go through :func:`splatent_viewer.frame.render_frame`, the function the viewer and the
exporter use: ``rgb`` (decoded latent render), ``rgb_enhanced`` (with a refiner: the latent refined with its nearest
training views' latents, decoded), ``rgb_gaussians``, ``latent`` (PCA view), ``depth``, ``accumulation``. The
refiner is loaded on the first such render and kept out of the checkpoint; training steps never use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type, Union

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.lib_bilagrid import color_correct
from nerfstudio.models.splatfacto import SplatfactoModel, SplatfactoModelConfig
from nerfstudio.utils.colors import get_color
from nerfstudio.utils.rich_utils import CONSOLE
from PIL import Image
from pytorch_msssim import SSIM
from torch import Tensor

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.cameras import intrinsics_matrix, opengl_c2w_to_viewmat
from splatent_viewer.codecs import CodecConfig, LatentCodec
from splatent_viewer.data.scene import Scene, load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import render_frame
from splatent_viewer.pca import LatentPCA
from splatent_viewer.refine import Refiner
from splatent_viewer.refine.checkpoint import check_codec, read_refiner_config
from splatent_viewer.refiner_training.adapt import AdaptationConfig, adapt_to_scene
from splatent_viewer.splats import init_splats
from splatent_viewer.trained import SHIPPED_REFINERS, ReferenceBank, TrainedScene, load_refiner_for
from splatent_viewer.training.densify import SyncFreeDefaultStrategy
from splatent_viewer.training.encode import LatentCache, background_latent, encode_images
from splatent_viewer.training.losses import l1_ssim_loss, psnr_tensor
from splatent_viewer.training.points import TrainingCameras, initial_points
from splatent_viewer.training.step import LossConfig, StepRender, render_step, step_losses
from splatent_viewer.training.trainer import default_strategy

TRAIN_CAMERAS_KEY = "splatent_train_cameras"
"""Key of the training cameras (:class:`TrainingCameras`) that :class:`~nerfstudio_plugin.datamanager.SplatentDatamanager`
puts in the training dataset's metadata, which nerfstudio's pipeline hands to the model (for the frustum init)."""
LATENTS_RECORD = "splatent_latents.json"
"""Written into the run folder when training starts: the latent cache, hits and encoded images."""

# torchvision's AlexNet weights, as torchmetrics' LPIPS (net_type="alex") loads them.
_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
_BANK_BUFFERS = ("reference_c2w", "reference_Ks", "reference_sizes", "reference_latents")
_PCA_BUFFERS = ("pca_mean", "pca_components", "pca_lo", "pca_hi")


def train_indices_in(scene: Scene, train_files: List[Path]) -> Optional[List[int]]:
    """Indices of nerfstudio's training images among ``scene``'s frames (the core loader's order), matched by file;
    None when a file is not among them (then the held-out views cannot be told apart)."""
    index = {p.resolve(): i for i, p in enumerate(scene.image_paths)}
    found = [index.get(Path(f).resolve()) for f in train_files]
    return None if any(i is None for i in found) else [int(i) for i in found if i is not None]


def lpips_weights_available() -> bool:
    """True when torchmetrics' LPIPS can be built without a download (AlexNet in the torch hub cache)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_FILE).is_file()


_CORE_STRATEGY = default_strategy()  # the core trainer's densification table: splatfacto's fields default to it


def auto_background(dataset) -> Literal["random", "black", "white"]:
    """``background_color="auto"`` for a nerfstudio training dataset: where its first image has an alpha channel, the
    colour the dataparser composited it on (``alpha_color``; white or black, another colour as random) or, when it
    keeps the alpha, random; black for opaque images."""
    with Image.open(dataset.image_filenames[0]) as image:  # the header only
        alpha = "A" in image.getbands()
    if not alpha:
        return "black"
    composited = dataset._dataparser_outputs.alpha_color
    if composited is None:
        return "random"
    for name in ("white", "black"):
        if torch.allclose(composited.float().cpu(), get_color(name)):
            return name
    return "random"


@dataclass
class SplatentModelConfig(SplatfactoModelConfig):
    """Splatfacto Gaussians carrying RGB and a codec latent (Splatent's latent 3DGS stage).

    Rendering resolution, background and densification default to the core trainer's (``splatent-demo``,
    ``make-dataset``), not splatfacto's: one trainer, whichever loop runs it (benchmarks/RESULTS.md, issue 16)."""

    _target: Type = field(default_factory=lambda: SplatentModel)
    num_downscales: int = 0
    """RGB pass at 1/2^num_downscales resolution, halving the factor every resolution_schedule steps. 0 (the core
    trainer's): full resolution from the first step; splatfacto's 2 rendered the demo scene's RGB at 1/4 for the first
    3000 steps and scored 14.7 instead of 21.6 dB there after 3000 steps."""
    background_color: Literal["auto", "random", "black", "white"] = "auto"
    """Background of the RGB pass. auto (:func:`auto_background`, resolved when training starts and written to the
    run's config.yml): images with alpha that the dataparser composited (blender-data: on white) get that colour, so
    empty space needs no Gaussians; images with alpha kept get splatfacto's random (the ground truth is composited on
    the same background each step, which teaches transparency); opaque images the core trainer's black (splatfacto's
    random made ns-train paint dino's black background with 1.1M Gaussians). Measured on lego (benchmarks/RESULTS.md,
    issue 18)."""
    warmup_length: int = _CORE_STRATEGY.refine_start_iter
    """Steps before densification starts (the core trainer's)."""
    refine_every: int = _CORE_STRATEGY.refine_every
    """Densify every this many steps (the core trainer's)."""
    reset_alpha_every: int = _CORE_STRATEGY.reset_every // _CORE_STRATEGY.refine_every
    """Reset opacities every this many refinements (the core trainer's: effectively never)."""
    densify_grad_thresh: float = _CORE_STRATEGY.grow_grad2d
    """Grow Gaussians whose mean screen-space gradient exceeds this (the core trainer's, for plain gradients)."""
    densify_size_thresh: float = _CORE_STRATEGY.grow_scale3d
    """Gaussians larger than this (× scene scale) split, smaller ones clone (the core trainer's)."""
    cull_alpha_thresh: float = _CORE_STRATEGY.prune_opa
    """Prune Gaussians less opaque than this (the core trainer's)."""
    cull_scale_thresh: float = _CORE_STRATEGY.prune_scale3d
    """Prune Gaussians larger than this × scene scale (the core trainer's)."""
    split_screen_size: float = _CORE_STRATEGY.grow_scale2d
    """Split Gaussians larger than this fraction of the screen (the core trainer's)."""
    cull_screen_size: float = _CORE_STRATEGY.prune_scale2d
    """Prune Gaussians larger than this fraction of the screen, before stop_screen_size_at (the core trainer's)."""
    stop_screen_size_at: int = _CORE_STRATEGY.refine_scale2d_stop_iter
    """Screen-size splitting/pruning stops at this step (the core trainer's 0: none)."""
    codec: CodecConfig = field(default_factory=CodecConfig)
    """Latent codec whose latent space the Gaussians learn (taef2: 32 channels; sd-turbo/taesd: 4)."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss weights: latent L1, RGB L1+SSIM (with splatfacto's ssim_lambda), decoded-image L1 (the core trainer's)."""
    latent_cache_dir: Optional[Path] = None
    """Where encoded training latents are cached (<dir>/<codec>/<sha256>.safetensors). Default:
    $SPLATENT_LATENT_CACHE, else ~/.cache/splatent/latents."""
    use_absgrad: bool = False
    """Densify on absgrad (gsplat CUDA only); False uses the plain screen-space gradient, on any device."""
    use_lpips: bool = True
    """Report LPIPS in eval metrics when torchvision's AlexNet weights are in the torch hub cache (never downloads)."""
    refiner: Union[Literal["guided", "embedded", "none"], Path] = "guided"
    """Refiner for the rgb_enhanced output (eval/viewer renders only): guided (the shipped assets/refiner made
    RGB-guided: the RGB splats plus its change, the RGB splats exactly until adapted), embedded (the shipped pure-latent
    refiner; either skipped with one log line when it does not fit the codec), a refiner folder, or none. After
    the adaptation phase: the adapted refiner's folder."""
    num_references: Optional[int] = None
    """Training views the refiner attends to for rgb_enhanced; default the refiner's own k."""
    adapt_refiner: Optional[bool] = None
    """Adapt the refiner to this scene as the last phase of training (`splatent-refiner adapt` on the run's training
    views only; written to the run folder as refiner_adapted/, which ns-eval, ns-render, the viewers and
    splatent-render then use). None: on CUDA only (on the CPU it takes long)."""
    adaptation: AdaptationConfig = field(default_factory=lambda: AdaptationConfig(max_seconds=180.0))
    """How the refiner is adapted (starting weights, guidance, units, steps, time budget)."""


class SplatentModel(SplatfactoModel):
    """Splatfacto with a latent vector per Gaussian, a codec, a reference bank and a PCA view of latents."""

    config: SplatentModelConfig
    # Declared for type checkers only (no class attributes): nn.Module.__getattr__ types buffers and attributes
    # set with object.__setattr__ as ``Tensor | Module``.
    _codec: LatentCodec
    _refiner: Optional[Refiner]
    _bank: Optional[ReferenceBank]
    reference_c2w: Float[Tensor, "N 4 4"]
    reference_Ks: Float[Tensor, "N 3 3"]
    reference_sizes: Int[Tensor, "N 2"]
    reference_latents: Float[Tensor, "N C h w"]
    background_latent: Float[Tensor, " C"]
    pca_mean: Float[Tensor, " C"]
    pca_components: Float[Tensor, "C 3"]
    pca_lo: Float[Tensor, "3"]
    pca_hi: Float[Tensor, "3"]

    # ---------------------------------------------------------------- setup
    def populate_modules(self) -> None:
        # Not calling SplatfactoModel.populate_modules: it builds LPIPS (downloads) and moves tensors to CUDA itself.
        for flag, reason in (
            ("use_bilateral_grid", "use-bilateral-grid"),
            ("use_scale_regularization", "use-scale-regularization"),
        ):
            if getattr(self.config, flag):
                raise SplatentError(f"splatent does not support --pipeline.model.{reason}; leave it False.")
        codec = self.config.codec.setup(device="cpu")
        object.__setattr__(self, "_codec", codec)  # not a submodule: kept out of checkpoints and param groups
        object.__setattr__(self, "_refiner", None)  # loaded on the first eval render; never a submodule either
        object.__setattr__(self, "_bank", None)  # ReferenceBank view of the reference buffers
        self._refiner_missing = self.config.refiner == "none"
        if self.config.refiner not in (*SHIPPED_REFINERS, "none"):  # an explicit folder: fail now, not mid-render
            refiner_config, _ = read_refiner_config(Path(self.config.refiner))
            check_codec(refiner_config, codec, source=self.config.refiner)
        C = codec.latent_channels
        self.latent_channels = C
        self.downscale = codec.downscale

        seed = None
        if self.seed_points is not None and not self.config.random_init and len(self.seed_points[0]) > 0:
            rgb = self.seed_points[1].float() / 255.0 if self.seed_points[1].shape[0] > 0 else None
            seed = (self.seed_points[0].float(), rgb)
        cameras: Optional[TrainingCameras] = (self.kwargs.get("metadata") or {}).get(TRAIN_CAMERAS_KEY)
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))  # follows --machine.seed
        if seed is None and cameras is None:
            # Loading a checkpoint (ns-eval, ns-render, the viewer): every parameter is replaced on load.
            seed = ((torch.rand(64, 3, generator=generator) - 0.5) * self.config.random_scale, None)
        points, colors = initial_points(
            points=seed, cameras=cameras, num_random=self.config.num_random, generator=generator
        )
        raw = init_splats(
            points=points, colors=colors, latent_channels=C, sh_degree=self.config.sh_degree, generator=generator
        )
        order = ["means", "scales", "quats", "features_dc", "features_rest", "opacities", "latents"]
        self.gauss_params = torch.nn.ParameterDict({k: torch.nn.Parameter(raw[k].contiguous()) for k in order})

        self.camera_optimizer = self.config.camera_optimizer.setup(num_cameras=self.num_train_data, device="cpu")

        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = SSIM(data_range=1.0, size_average=True, channel=3)
        self.lpips = None
        if self.config.use_lpips and lpips_weights_available():
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            self.lpips = LearnedPerceptualImagePatchSimilarity(normalize=True)
        self.step = 0
        self._train_sizes: Optional[List[Tuple[int, int]]] = None  # set by build_reference_bank
        self.crop_box = None
        self._set_background(self.config.background_color)

        # Reference bank (training cameras + their latents), latent background, PCA basis: buffers,
        # filled when training starts, saved in checkpoints, resized on load.
        self.register_buffer("reference_c2w", torch.zeros(0, 4, 4))
        self.register_buffer("reference_Ks", torch.zeros(0, 3, 3))
        self.register_buffer("reference_sizes", torch.zeros(0, 2, dtype=torch.long))
        self.register_buffer("reference_latents", torch.zeros(0, C, 1, 1))
        self.register_buffer("background_latent", torch.zeros(C))
        self.register_buffer("pca_mean", torch.zeros(C))
        self.register_buffer("pca_components", torch.eye(C, 3))
        self.register_buffer("pca_lo", torch.zeros(3))
        self.register_buffer("pca_hi", torch.ones(3))

        self.strategy = SyncFreeDefaultStrategy(
            prune_opa=self.config.cull_alpha_thresh,
            grow_grad2d=self.config.densify_grad_thresh,
            grow_scale3d=self.config.densify_size_thresh,
            grow_scale2d=self.config.split_screen_size,
            prune_scale3d=self.config.cull_scale_thresh,
            prune_scale2d=self.config.cull_screen_size,
            refine_scale2d_stop_iter=self.config.stop_screen_size_at,
            refine_start_iter=self.config.warmup_length,
            refine_stop_iter=self.config.stop_split_at,
            reset_every=self.config.reset_alpha_every * self.config.refine_every,
            refine_every=self.config.refine_every,
            pause_refine_after_reset=self.num_train_data + self.config.refine_every,
            absgrad=self.config.use_absgrad,
            revised_opacity=False,
            verbose=True,
        )
        self.strategy_state = self.strategy.initialize_state(scene_scale=1.0)

    @property
    def codec(self) -> LatentCodec:
        """The frozen codec, moved to the model's device on first use there."""
        codec: LatentCodec = self._codec
        if codec.device != self.device:
            codec = codec.to(self.device)
            object.__setattr__(self, "_codec", codec)
        return codec

    @property
    def refiner(self) -> Optional[Refiner]:
        """The refiner (loaded on first use, on the model's device), or None when there is none."""
        refiner: Optional[Refiner] = self._refiner
        if refiner is None and not self._refiner_missing:
            refiner = load_refiner_for(self.config.refiner, codec=self.codec, device=self.device, dtype=torch.float32)
            if refiner is None:
                self._refiner_missing = True
                CONSOLE.log("splatent: no rgb_enhanced output (the shipped refiner does not fit this codec)")
                return None
            object.__setattr__(self, "_refiner", refiner)
        if refiner is not None and refiner.device != self.device:
            refiner = refiner.to(self.device)
            object.__setattr__(self, "_refiner", refiner)
        return refiner

    @property
    def latents(self) -> Tensor:
        return self.gauss_params["latents"]

    def get_gaussian_param_groups(self) -> Dict[str, List[torch.nn.Parameter]]:
        return {name: [self.gauss_params[name]] for name in self.gauss_params.keys()}

    def load_state_dict(self, dict, **kwargs):  # type: ignore  # noqa: A002
        # Buffers sized by the training set: resize before loading (gauss_params are resized by splatfacto).
        if "reference_latents" in dict and "reference_Ks" not in dict:
            raise SplatentError(
                "This checkpoint was written by an older splatent (its reference bank has no "
                "intrinsics); re-train the run with `ns-train splatent`."
            )
        for name in (*_BANK_BUFFERS, "background_latent", *_PCA_BUFFERS):
            if name in dict:
                setattr(self, name, torch.zeros_like(dict[name], device=self.device))
        if "gauss_params.latents" in dict and dict["gauss_params.latents"].shape[1] != self.latent_channels:
            raise SplatentError(
                f"The checkpoint's Gaussians carry {dict['gauss_params.latents'].shape[1]}-channel latents but the codec "
                f"{self.config.codec.name!r} has {self.latent_channels}; load it with the codec it was trained with."
            )
        object.__setattr__(self, "_bank", None)
        return super().load_state_dict(dict, **kwargs)

    # ---------------------------------------------------------------- background
    def _set_background(self, mode: str) -> None:
        """The eval/viewer background of ``mode`` (random: viser's, as splatfacto; auto before it is resolved:
        black)."""
        if mode == "random":
            self.background_color = torch.tensor([0.1490, 0.1647, 0.2157])  # viser's background, as splatfacto
        else:
            self.background_color = get_color("black" if mode == "auto" else mode)

    def _get_background_color(self) -> Tensor:
        """Splatfacto's, with ``auto`` not yet resolved (a config that never trained) as black."""
        if self.config.background_color == "auto":
            return torch.zeros(3, device=self.device)
        return super()._get_background_color()

    def resolve_background(self, *, datamanager) -> Literal["random", "black", "white"]:
        """Resolves ``background_color="auto"`` from the training images (see the field), sets it on the config and
        the eval background, and returns the mode in use."""
        mode = self.config.background_color
        if mode == "auto":
            mode = self.config.background_color = auto_background(datamanager.train_dataset)
            self._set_background(mode)
            CONSOLE.log(f"splatent: background {mode} (background_color=auto)")
        return mode

    # ---------------------------------------------------------------- reference bank
    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        pipeline = training_callback_attributes.pipeline
        trainer = training_callback_attributes.trainer
        if pipeline is not None:
            if self.config.background_color == "auto":
                mode = self.resolve_background(datamanager=pipeline.datamanager)
                saved = None if trainer is None else trainer.config.pipeline.model
                if trainer is not None and isinstance(saved, SplatentModelConfig):  # ns-eval, viewers: the same mode
                    saved.background_color = mode
                    trainer.config.save_config()
            self.build_reference_bank(
                datamanager=pipeline.datamanager, record_dir=None if trainer is None else Path(trainer.base_dir)
            )
        callbacks = super().get_training_callbacks(training_callback_attributes)
        adapt = self.config.adapt_refiner if self.config.adapt_refiner is not None else self.device.type == "cuda"
        if adapt and trainer is not None and self.config.refiner != "none":
            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._adapt_after_last_step, args=[trainer]
                )
            )
        return callbacks

    def _adapt_after_last_step(self, trainer, step: int) -> None:  # nerfstudio calls func(*args, step=step)
        if step == trainer._start_step + trainer.config.max_num_iterations - 1:  # the Trainer's last step (resumes too)
            self.adapt_to_run(trainer)

    def adapt_to_run(self, trainer) -> None:
        """The last phase of training: adapts the refiner to this scene's training views (:func:`adapt_to_scene`),
        writes it to the run folder and points the run's config.yml at it (so ns-eval, ns-render and the viewers use
        it). A scene the core loader cannot match to nerfstudio's training images is skipped with one line."""
        datamanager = trainer.pipeline.datamanager
        scene_path = Path(datamanager.config.data or datamanager.config.dataparser.data)
        fit = getattr(datamanager.config, "fit", "crop")
        try:
            scene = load_scene(scene_path, size_multiple=self.downscale, fit=fit)
        except SplatentError as err:
            CONSOLE.log(f"splatent: refiner not adapted ({err})")
            return
        train_views = train_indices_in(scene, datamanager.train_dataset.image_filenames)
        if train_views is None:
            CONSOLE.log(f"splatent: refiner not adapted (the training images are not frames of {scene_path})")
            return
        settings = self.config.adaptation
        if self.config.refiner not in SHIPPED_REFINERS:  # the shipped refiner: adaptation makes it guided itself
            settings = replace(settings, refiner=str(self.config.refiner))
        trained = self.trained_scene(with_refiner=False)  # the validation's do-no-harm check renders these
        trained.train_steps = trainer._start_step + trainer.config.max_num_iterations  # its unit trains as long
        result = adapt_to_scene(
            scene=scene,
            train_views=train_views,
            codec=self.codec,
            run=Path(trainer.base_dir),
            config=settings,
            device=self.device,
            trained=trained,
        )
        self.config.refiner = result.refiner  # the trainer's config object: saved below into config.yml
        object.__setattr__(self, "_refiner", None)
        self._refiner_missing = False
        trainer.config.pipeline.model.refiner = result.refiner
        trainer.config.save_config()

    @torch.no_grad()
    def build_reference_bank(self, *, datamanager, record_dir: Optional[Path] = None) -> Dict[str, int]:
        """Encodes every (undistorted, size-fitted) training image through the latent cache into the reference bank,
        fits the PCA basis and the background latent; writes ``record_dir/splatent_latents.json`` when given.
        Returns ``{"hits": n, "encoded": m}``."""
        multiple = getattr(datamanager.config, "size_multiple", None)
        if multiple is None or multiple % self.downscale:
            raise SplatentError(
                f"The datamanager fits images to multiples of {multiple}, but codec {self.config.codec.name} "
                f"needs multiples of {self.downscale}; set --pipeline.datamanager.size-multiple {self.downscale} "
                "(splatent's datamanager does by default)."
            )
        dataset = datamanager.train_dataset
        cached = datamanager.cached_train  # undistorted and fitted to the codec's multiple by the datamanager
        bg = self.background_color.float()
        cache = LatentCache(codec_name=self.config.codec.name, root=self.config.latent_cache_dir)

        def images():
            for data in cached:
                image = data["image"]
                image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
                yield self.composite_with_background(image, bg.to(image.device))

        latents, stats = encode_images(images=images(), codec=self.codec, device=self.device, cache=cache)
        cams = dataset.cameras
        # host copy of the (fitted) training sizes: a training step then reads no size from the device
        self._train_sizes = list(zip(cams.width.reshape(-1).tolist(), cams.height.reshape(-1).tolist()))
        bank = ReferenceBank.from_latents(
            c2w=cams.camera_to_worlds.float(),
            Ks=cams.get_intrinsics_matrices().float(),
            latents=latents,
            downscale=self.downscale,
        )
        for name, value in zip(_BANK_BUFFERS, (bank.c2w, bank.Ks, bank.sizes, bank.latents)):
            setattr(self, name, value.to(self.device))
        object.__setattr__(self, "_bank", None)
        pca = LatentPCA.fit(latents=latents)
        for name, value in zip(_PCA_BUFFERS, (pca.mean, pca.components, pca.lo, pca.hi)):
            setattr(self, name, value.to(self.device))
        self.background_latent = background_latent(codec=self.codec, colour=bg, device=self.device)
        record = {"cache_dir": str(cache.dir), "hits": stats.hits, "encoded": stats.encoded, "images": len(latents)}
        CONSOLE.log(f"splatent latent cache ({cache.dir}): {stats.hits} hits, {stats.encoded} encoded")
        if record_dir is not None:
            write_json_atomic(record_dir / LATENTS_RECORD, record)
        return {"hits": stats.hits, "encoded": stats.encoded}

    @property
    def reference_bank(self) -> ReferenceBank:
        """The training cameras and latents (the checkpoint's buffers) as the core's :class:`ReferenceBank` (empty
        before training starts: renders then use no references)."""
        bank: Optional[ReferenceBank] = self._bank
        if bank is None or bank.latents.device != self.reference_latents.device:
            bank = ReferenceBank(
                c2w=self.reference_c2w,
                Ks=self.reference_Ks,
                sizes=self.reference_sizes,
                latents=self.reference_latents,
                downscale=self.downscale,
            )
            object.__setattr__(self, "_bank", bank)
        return bank

    def nearest_references(self, camera_to_world: Float[Tensor, "3 4"] | Float[Tensor, "4 4"], k: int) -> List[int]:
        """Indices (into the training set / reference bank) of the ``k`` training cameras nearest to
        ``camera_to_world`` (nerfstudio OpenGL convention), nearest first; a training camera with the same pose is skipped."""
        if self.reference_c2w.shape[0] == 0:
            raise SplatentError(
                "The model has no reference bank yet; it is built when training starts (or loaded from a checkpoint)."
            )
        c2w = camera_to_world.reshape(-1, 4)[:3]
        return self.reference_bank.nearest(c2w=torch.cat([c2w, c2w.new_tensor([[0, 0, 0, 1]])]), k=k)

    def trained_scene(
        self,
        *,
        params: Optional[Dict[str, Tensor]] = None,
        rgb_background: Optional[Tensor] = None,
        with_refiner: bool = True,
    ) -> TrainedScene:
        """This model as the core's :class:`TrainedScene` (what :func:`render_frame`, the viewer and the exporter
        render): the current Gaussians (or ``params``), codec, reference bank and (``with_refiner``) refiner."""
        sh_degree = min(self.step // self.config.sh_degree_interval, self.config.sh_degree)
        return TrainedScene(
            params={k: v.detach() for k, v in (params or self.gauss_params).items()},
            codec=self.codec,
            sh_degree=sh_degree,
            references=self.reference_bank,
            refiner=self.refiner if with_refiner else None,
            latent_background=self.background_latent.detach().float(),
            name="splatent",
            source=Path("."),
            device=self.device,
            rgb_background=rgb_background
            if rgb_background is not None
            else self.background_color.float().to(self.device),
        )

    # ---------------------------------------------------------------- rendering
    def get_outputs(self, camera: Cameras) -> Dict[str, Union[torch.Tensor, List]]:
        """Training: ``rgb`` (RGB splats at splatfacto's resolution schedule), ``latent_render`` [C, h, w],
        ``accumulation``, ``background`` (+ ``depth`` with splatfacto's ``output_depth_during_training``).
        Eval/viewer: ``rgb`` (decoded latent render), ``rgb_enhanced`` (with a refiner), ``rgb_gaussians``, ``latent``
        (PCA view), ``depth``, ``accumulation``, ``background``."""
        if not isinstance(camera, Cameras):
            return {}
        if self.training:
            return self._training_outputs(camera)
        return self._render_outputs(camera)

    def _training_outputs(self, camera: Cameras) -> Dict[str, Union[torch.Tensor, List]]:
        assert camera.shape[0] == 1, "Only one camera at a time"
        if self.config.use_absgrad and self.device.type != "cuda":
            raise SplatentError(
                "--pipeline.model.use-absgrad needs CUDA (gsplat computes absgrad; the CPU rasterizer does not): "
                "leave it False on the CPU."
            )
        c2w = self.camera_optimizer.apply_to_camera(camera)
        background = self._get_background_color()
        width, height = self._training_size(camera)
        render = render_step(
            params=self.gauss_params,
            viewmat=opengl_c2w_to_viewmat(c2w),
            K=self._training_intrinsics(camera),
            width=width,
            height=height,
            latent_downscale=self.downscale,
            sh_degree=min(self.step // self.config.sh_degree_interval, self.config.sh_degree),
            rgb_downscale=self._get_downscale_factor(),
            depth=self.config.output_depth_during_training,  # splatfacto's: off (one channel less to composite)
            rgb_background=background,
            latent_background=self.background_latent,
            absgrad=self.config.use_absgrad,
            latent=self.config.loss.latent_step(self.step),
        )
        self.info = render.info
        self.strategy.step_pre_backward(self.gauss_params, self.optimizers, self.strategy_state, self.step, self.info)
        assert render.rgb is not None and render.alpha is not None
        self.last_size = tuple(render.rgb.shape[:2])
        outputs: Dict[str, Union[torch.Tensor, List]] = {
            "rgb": render.rgb,
            "accumulation": render.alpha,
            "background": background,
        }
        if render.latent is not None:  # not on the steps between latent passes (--pipeline.model.loss.latent-every)
            outputs["latent_render"] = render.latent
        if render.depth is not None:
            outputs["depth"] = torch.where(render.alpha > 0, render.depth, render.depth.detach().max())
        return outputs

    def _training_intrinsics(self, camera: Cameras) -> Tensor:
        """[1, 3, 3] pinhole intrinsics of a training camera, built on the camera's device (nerfstudio's
        ``get_intrinsics_matrices`` fills a host tensor from the device values: five syncs a step)."""
        return intrinsics_matrix(
            fx=camera.fx.reshape(-1), fy=camera.fy.reshape(-1), cx=camera.cx.reshape(-1), cy=camera.cy.reshape(-1)
        ).to(self.device, torch.float32)

    def _training_size(self, camera: Cameras) -> Tuple[int, int]:
        """(width, height) of a training camera: from the host copy of the training cameras' sizes (nerfstudio's
        datamanager tags the camera with its index, ``cam_idx``), else read from the (device) camera, a sync."""
        index = (camera.metadata or {}).get("cam_idx")
        sizes = self._train_sizes
        if isinstance(index, int) and sizes is not None and 0 <= index < len(sizes):
            return sizes[index]
        return int(camera.width.item()), int(camera.height.item())

    @torch.no_grad()
    def _render_outputs(self, camera: Cameras) -> Dict[str, Union[torch.Tensor, List]]:
        W, H = int(camera.width.item()), int(camera.height.item())
        params = None
        if self.crop_box is not None:
            crop_ids = self.crop_box.within(self.means).squeeze()
            if crop_ids.sum() == 0:
                empty = self.get_empty_outputs(W, H, self.background_color.to(self.device))
                rgb = empty["rgb"]
                assert isinstance(rgb, Tensor)  # nerfstudio types its outputs Tensor | List
                return {**empty, "rgb_gaussians": rgb, "latent": torch.zeros_like(rgb)}
            params = {k: v[crop_ids] for k, v in self.gauss_params.items()}
        background = self._get_background_color()
        scene = self.trained_scene(params=params, rgb_background=background)
        c2w = camera.camera_to_worlds.reshape(3, 4).float()
        c2w = torch.cat([c2w, c2w.new_tensor([[0.0, 0.0, 0.0, 1.0]])])
        K = camera.get_intrinsics_matrices().reshape(3, 3).float()
        # The latent passes cover the largest multiple of the downscale (the datamanager fits training and eval
        # images to it; the viewer's own sizes may not be); the rest shows the background.
        ds = self.downscale
        Wc, Hc = W // ds * ds, H // ds * ds
        wanted = ("decoded", "latent", "enhanced") if self.refiner is not None else ("decoded", "latent")
        frame = render_frame(
            scene=scene, c2w=c2w, K=K, width=Wc, height=Hc, outputs=wanted, num_references=self.config.num_references
        )
        full = render_frame(scene=scene, c2w=c2w, K=K, width=W, height=H, outputs=("rgb", "depth", "alpha"))
        assert frame.decoded is not None and frame.latent is not None and full.rgb is not None
        assert full.depth is not None and full.alpha is not None

        def padded(image: Tensor) -> Tensor:
            out = background.expand(H, W, 3).clone()
            out[: image.shape[0], : image.shape[1]] = image
            return out

        pca = LatentPCA(mean=self.pca_mean, components=self.pca_components, lo=self.pca_lo, hi=self.pca_hi)
        latent_view = pca.project(frame.latent).repeat_interleave(ds, 0).repeat_interleave(ds, 1)
        alpha = full.alpha[..., None]
        depth = full.depth[..., None]
        outputs: Dict[str, Union[Tensor, List]] = {
            "rgb": padded(frame.decoded),
            "rgb_gaussians": full.rgb,
            "latent": F.pad(
                latent_view.permute(2, 0, 1), (0, W - latent_view.shape[1], 0, H - latent_view.shape[0])
            ).permute(1, 2, 0),
            "depth": torch.where(alpha > 0, depth, depth.max()),
            "accumulation": alpha,
            "background": background.expand(H, W, 3),
        }
        if frame.enhanced is not None:
            outputs["rgb_enhanced"] = padded(frame.enhanced)
        return outputs

    # ---------------------------------------------------------------- losses / metrics
    def _gt_full(self, batch: Dict[str, Tensor], background: Tensor) -> Tensor:
        image = batch["image"]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        return self.composite_with_background(image.to(self.device), background.to(self.device))

    def get_metrics_dict(self, outputs, batch) -> Dict[str, torch.Tensor]:
        """splatfacto's training metrics (``psnr`` of the RGB output, ``gaussian_count``, the camera optimiser's) with
        the PSNR computed on the device: torchmetrics' copies the pixel count from the host, a sync every step
        (nerfstudio reads the metrics on the host only at its logging steps)."""
        gt = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        metrics: Dict[str, torch.Tensor] = {"psnr": psnr_tensor(outputs["rgb"], gt)}
        if self.config.color_corrected_metrics:
            metrics["cc_psnr"] = psnr_tensor(color_correct(outputs["rgb"], gt), gt)
        metrics["gaussian_count"] = self.num_points  # type: ignore[assignment]  # splatfacto's: an int
        self.camera_optimizer.get_metrics_dict(metrics)
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, torch.Tensor]:
        """The core step's losses (:func:`step_losses`: ``latent_loss``, ``rgb_loss``, ``decoded_loss``) and the
        camera optimiser's."""
        background = outputs["background"]
        gt = self.composite_with_background(self.get_gt_img(batch["image"]), background)
        mask = self._downscale_if_required(batch["mask"]).to(self.device) if "mask" in batch else None
        if "rgb_gaussians" not in outputs:  # a training step's outputs (the latent render on latent steps only)
            render = StepRender(
                rgb=outputs["rgb"],
                alpha=outputs["accumulation"],
                depth=outputs.get("depth"),
                latent=outputs.get("latent_render"),
                info=self.info,
            )
            target = self.reference_bank.latent(int(batch["image_idx"]))
            if render.latent is not None and render.latent.shape != target.shape:
                raise SplatentError(
                    f"Latent render {tuple(render.latent.shape)} and encoded target {tuple(target.shape)} of training "
                    f"image {int(batch['image_idx'])} differ; the image size does not match its camera."
                )
            losses = step_losses(
                render=render,
                image=gt,
                target_latent=target,
                loss=self.config.loss,
                ssim_lambda=self.config.ssim_lambda,
                step=self.step,
                decode=self.codec.decode,
                full_image=self._gt_full(batch, background) if self.config.loss.decoded_weight > 0 else None,
                mask=mask,
            )
        else:  # an eval batch (nerfstudio's eval loss): the RGB splats only
            pred = outputs["rgb_gaussians"] * (mask if mask is not None else 1)
            gt = gt * (mask if mask is not None else 1)
            losses = {
                "rgb_loss": l1_ssim_loss(
                    pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], ssim_lambda=self.config.ssim_lambda
                )
            }
        if self.training:
            self.camera_optimizer.get_loss_dict(losses)
        return losses

    def get_image_metrics_and_images(
        self, outputs: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
        """PSNR/SSIM (and LPIPS when its weights are local) of the decoded latent render (``psnr``,
        ``ssim``, ``lpips``; over the top-left crop that the codec covers), of the refined render when
        there is one (``psnr_enhanced``, ``ssim_enhanced``, ``lpips_enhanced``; same crop) and of the
        RGB splats (``psnr_rgb_gaussians``, ``ssim_rgb_gaussians``, ``lpips_rgb_gaussians``)."""
        gt = self._gt_full(batch, self._get_background_color())
        ds = self.downscale
        hc, wc = gt.shape[0] // ds * ds, gt.shape[1] // ds * ds

        def chw(x: Tensor) -> Tensor:
            return torch.moveaxis(x, -1, 0)[None]

        metrics: Dict[str, float] = {}
        compared = [("", outputs["rgb"][:hc, :wc], gt[:hc, :wc]), ("_rgb_gaussians", outputs["rgb_gaussians"], gt)]
        if "rgb_enhanced" in outputs:
            compared.append(("_enhanced", outputs["rgb_enhanced"][:hc, :wc], gt[:hc, :wc]))
        for suffix, pred, g in compared:
            metrics[f"psnr{suffix}"] = float(self.psnr(chw(g), chw(pred)).item())
            metrics[f"ssim{suffix}"] = float(self.ssim(chw(g), chw(pred)))
            if self.lpips is not None:
                metrics[f"lpips{suffix}"] = float(self.lpips(chw(g), chw(pred)))
        images = {
            "img": torch.cat([gt, outputs["rgb"], outputs["rgb_gaussians"]], dim=1),
            "latent": outputs["latent"],
        }
        if "rgb_enhanced" in outputs:
            images["img_enhanced"] = torch.cat([gt, outputs["rgb_enhanced"]], dim=1)
        return metrics, images


__all__ = ["LATENTS_RECORD", "TRAIN_CAMERAS_KEY", "SplatentModel", "SplatentModelConfig", "lpips_weights_available"]
