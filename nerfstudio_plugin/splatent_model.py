"""Splatent as a nerfstudio model: splatfacto Gaussians that also carry a codec latent.

Each Gaussian has RGB (spherical harmonics, trained with splatfacto's own L1+SSIM loss at image
resolution) and a latent vector with the codec's channel count, trained with an L1 loss against the
codec-encoded training image at latent resolution (intrinsics scaled by 1/downscale). Densification
is splatfacto's gsplat ``DefaultStrategy``; ``latents`` is one of ``gauss_params``, so it is cloned,
split and pruned with everything else.

Rendering goes through :func:`splatent_viewer.render.rasterize` (gsplat on CUDA, the pure-torch
rasterizer on CPU), so ``ns-train splatent --machine.device-type cpu`` works.

Images whose height/width are not multiples of the codec's downscale are cropped to the largest
multiple **from the top-left corner** for the latent targets (intrinsics stay valid unchanged).

With a refiner (``--pipeline.model.refiner``: ``embedded``, a refiner folder, or ``none``), eval /
viewer renders (never training steps) also output ``rgb_enhanced``: the rendered latent refined
with its nearest training views' latents from the reference bank, decoded. The refiner is loaded
on the first such render and kept out of the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type, Union

import torch
from jaxtyping import Float, Int
from pytorch_msssim import SSIM
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.models.splatfacto import SplatfactoModel, SplatfactoModelConfig
from nerfstudio.utils.colors import get_color
from nerfstudio.utils.rich_utils import CONSOLE

from gsplat.strategy import DefaultStrategy

from nerfstudio_plugin.latent_cache import LatentCache, crop_to_multiple, image_key
from nerfstudio_plugin.pca import fit_pca, project_pca
from splatent_viewer.cameras import opengl_c2w_to_viewmat, scale_intrinsics
from splatent_viewer.codecs import CodecConfig, LatentCodec
from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import resize_latent
from splatent_viewer.references import select_references
from splatent_viewer.refine import Refiner, load_refiner, read_refiner_config
from splatent_viewer.refine.checkpoint import check_codec
from splatent_viewer.splats import init_splats, sh_colors
from splatent_viewer.render import rasterize

# torchvision's AlexNet weights, as torchmetrics' LPIPS (net_type="alex") loads them.
_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def lpips_weights_available() -> bool:
    """True when torchmetrics' LPIPS can be built without a download (AlexNet in the torch hub cache)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_FILE).is_file()


@dataclass
class SplatentModelConfig(SplatfactoModelConfig):
    """Splatfacto Gaussians carrying RGB and a codec latent (Splatent's latent 3DGS stage)."""

    _target: Type = field(default_factory=lambda: SplatentModel)
    codec: CodecConfig = field(default_factory=CodecConfig)
    """Latent codec whose latent space the Gaussians learn (taef2: 32 channels; sd-turbo/taesd: 4)."""
    latent_loss_weight: float = 1.0
    """Weight of the L1 loss between the latent render and the encoded training image (latent resolution)."""
    rgb_loss_weight: float = 1.0
    """Weight of splatfacto's RGB (1-λ)·L1 + λ·(1-SSIM) loss on the SH colours (image resolution)."""
    decoded_loss_weight: float = 0.0
    """Weight of an L1 loss on the decoded latent render vs. the image (backpropagates through the decoder)."""
    decoded_loss_every: int = 10
    """Apply the decoded-image loss every this many steps (decoding is slow on CPU)."""
    latent_cache_dir: Optional[Path] = None
    """Where encoded training latents are cached (<dir>/<codec>/<sha256>.safetensors). Default:
    $SPLATENT_LATENT_CACHE, else ~/.cache/splatent/latents."""
    num_references: int = 3
    """Default k of nearest_references (nearest training views of a camera)."""
    use_absgrad: bool = False
    """Densify on absgrad (gsplat CUDA only); False uses the plain screen-space gradient, on any device."""
    use_lpips: bool = True
    """Report LPIPS in eval metrics when torchvision's AlexNet weights are in the torch hub cache (never downloads)."""
    refiner: Union[Literal["embedded", "none"], Path] = "embedded"
    """Refiner for the rgb_enhanced output (eval/viewer renders only): embedded (the shipped
    assets/refiner; skipped with one log line while none is shipped), a refiner folder, or none."""
    refiner_num_references: Optional[int] = None
    """Training views the refiner attends to for rgb_enhanced; default the refiner's own k."""


class SplatentModel(SplatfactoModel):
    """Splatfacto with a latent vector per Gaussian, a codec, a reference bank and a PCA view of latents."""

    config: SplatentModelConfig

    # ---------------------------------------------------------------- setup
    def populate_modules(self) -> None:
        # Not calling SplatfactoModel.populate_modules: it builds LPIPS (downloads) and uses .cuda().
        if self.config.use_bilateral_grid:
            raise SplatentError("splatent does not support --pipeline.model.use-bilateral-grid; leave it False.")
        if self.config.use_absgrad:
            raise SplatentError("splatent densifies on plain screen-space gradients; set --pipeline.model.use-absgrad False.")
        codec = self.config.codec.setup(device="cpu")
        object.__setattr__(self, "_codec", codec)  # not a submodule: kept out of checkpoints and param groups
        object.__setattr__(self, "_refiner", None)  # loaded on the first eval render; never a submodule either
        self._refiner_missing = self.config.refiner == "none"
        if self.config.refiner not in ("embedded", "none"):  # an explicit folder: fail now, not mid-render
            refiner_config, _ = read_refiner_config(Path(self.config.refiner))
            check_codec(refiner_config, codec, source=self.config.refiner)
        C = codec.latent_channels
        self.latent_channels = C
        self.downscale = codec.downscale

        if self.seed_points is not None and not self.config.random_init:
            points = self.seed_points[0].float()
            colors = self.seed_points[1].float() / 255.0 if self.seed_points[1].shape[0] > 0 else None
        else:
            points = (torch.rand(self.config.num_random, 3) - 0.5) * self.config.random_scale
            colors = None
        raw = init_splats(points=points, colors=colors, latent_channels=C, sh_degree=self.config.sh_degree)
        if self.config.sh_degree == 0:  # splatfacto's colour-only mode uses sigmoid colours
            rgb = colors if colors is not None else torch.rand(points.shape[0], 3)
            raw["features_dc"] = torch.logit(rgb.clamp(1e-4, 1 - 1e-4))
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
        self.crop_box = None
        if self.config.background_color == "random":
            self.background_color = torch.tensor([0.1490, 0.1647, 0.2157])  # viser's background, as splatfacto
        else:
            self.background_color = get_color(self.config.background_color)

        # Reference bank (training cameras + their latents), latent background, PCA basis: buffers,
        # filled before training, saved in checkpoints, resized on load.
        self.register_buffer("reference_c2w", torch.zeros(0, 3, 4))
        self.register_buffer("reference_latents", torch.zeros(0, C, 1, 1))
        self.register_buffer("reference_sizes", torch.zeros(0, 2, dtype=torch.long))
        self.register_buffer("background_latent", torch.zeros(C))
        self.register_buffer("pca_mean", torch.zeros(C))
        self.register_buffer("pca_components", torch.eye(C, 3))
        self.register_buffer("pca_lo", torch.zeros(3))
        self.register_buffer("pca_hi", torch.ones(3))

        self.strategy = DefaultStrategy(
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
            source = self.config.refiner
            try:
                refiner = load_refiner(source if source == "embedded" else Path(source), device=self.device, codec=self.codec)
            except SplatentError as err:
                if source != "embedded":
                    raise
                self._refiner_missing = True
                CONSOLE.log(f"splatent: no rgb_enhanced output ({err})")
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
        self.__dict__.pop("_reference_sizes_list", None)
        for name in ["reference_c2w", "reference_latents", "reference_sizes", "background_latent",
                     "pca_mean", "pca_components", "pca_lo", "pca_hi"]:
            if name in dict:
                setattr(self, name, torch.zeros_like(dict[name], device=self.device))
        if "gauss_params.latents" in dict and dict["gauss_params.latents"].shape[1] != self.latent_channels:
            raise SplatentError(
                f"The checkpoint's Gaussians carry {dict['gauss_params.latents'].shape[1]}-channel latents but the codec "
                f"{self.config.codec.name!r} has {self.latent_channels}; load it with the codec it was trained with."
            )
        return super().load_state_dict(dict, **kwargs)

    # ---------------------------------------------------------------- reference bank
    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        pipeline = training_callback_attributes.pipeline
        if pipeline is not None:
            self.build_reference_bank(datamanager=pipeline.datamanager)
        return super().get_training_callbacks(training_callback_attributes)

    def _latent_background_rgb(self) -> Tensor:
        """Colour that RGBA images are composited with before encoding (the eval background)."""
        return self.background_color.float().cpu()

    @torch.no_grad()
    def build_reference_bank(self, *, datamanager) -> Dict[str, int]:
        """Encodes every training image (through the on-disk cache) into the reference bank, fits the
        PCA basis and the background latent. Returns ``{"hits": n, "encoded": m}``."""
        dataset = datamanager.train_dataset
        cached = getattr(datamanager, "cached_train", None)
        n = len(dataset)
        ds = self.downscale
        cache = LatentCache(codec_name=self.config.codec.name, root=self.config.latent_cache_dir)
        bg = self._latent_background_rgb()
        latents: List[Tensor] = []
        hits = encoded = cropped = 0
        for i in range(n):
            image = cached[i]["image"] if cached is not None else dataset.get_data(i, image_type="uint8")["image"]
            image = image.cpu()
            if image.shape[0] < ds or image.shape[1] < ds:
                raise SplatentError(
                    f"Training image {dataset.image_filenames[i]} is {image.shape[1]}x{image.shape[0]}, smaller than the "
                    f"codec's {ds}x{ds} latent cell; use larger images."
                )
            crop = crop_to_multiple(image, ds)
            cropped += int(crop.shape[:2] != image.shape[:2])
            has_alpha = crop.shape[-1] == 4
            key = image_key(crop, extra=f"bg={bg.tolist()}" if has_alpha else "")
            latent = cache.get(key)
            if latent is None or latent.shape[0] != self.latent_channels:
                img = crop.float() / 255.0 if crop.dtype == torch.uint8 else crop.float()
                if has_alpha:
                    img = img[..., :3] * img[..., 3:] + (1 - img[..., 3:]) * bg
                latent = self.codec.encode(img[None].permute(0, 3, 1, 2).to(self.device)).float()[0].cpu()
                cache.put(key, latent)
                encoded += 1
            else:
                hits += 1
            latents.append(latent.float())
        if cropped:
            CONSOLE.log(
                f"splatent: {cropped} training image(s) have a size that is not a multiple of {ds}; their latent "
                "targets use the top-left crop to the largest multiple (intrinsics unchanged)."
            )
        CONSOLE.log(f"splatent latent cache ({cache.dir}): {hits} hits, {encoded} encoded")

        hmax = max(t.shape[1] for t in latents)
        wmax = max(t.shape[2] for t in latents)
        bank = torch.zeros(n, self.latent_channels, hmax, wmax)
        sizes = torch.zeros(n, 2, dtype=torch.long)
        for i, t in enumerate(latents):
            bank[i, :, : t.shape[1], : t.shape[2]] = t
            sizes[i] = torch.tensor(t.shape[1:])
        self.reference_latents = bank.to(self.device)
        self.reference_sizes = sizes.to(self.device)
        self.__dict__.pop("_reference_sizes_list", None)
        self.reference_c2w = dataset.cameras.camera_to_worlds.float().to(self.device)

        samples = torch.cat([t.flatten(1).T for t in latents])
        mean, comps, lo, hi = fit_pca(samples)
        self.pca_mean, self.pca_components = mean.to(self.device), comps.to(self.device)
        self.pca_lo, self.pca_hi = lo.to(self.device), hi.to(self.device)
        flat = bg.view(1, 3, 1, 1).expand(1, 3, ds * 2, ds * 2).to(self.device)
        self.background_latent = self.codec.encode(flat).float().mean(dim=(0, 2, 3))
        return {"hits": hits, "encoded": encoded}

    def reference_latent(self, index: int) -> Float[Tensor, "C h w"]:
        """Encoded latent of training image ``index`` (unpadded)."""
        # Sizes as a Python list: indexing the GPU tensor would sync the device at every training step.
        sizes = self.__dict__.get("_reference_sizes_list")
        if sizes is None or len(sizes) != self.reference_sizes.shape[0]:
            sizes = self.reference_sizes.tolist()
            self.__dict__["_reference_sizes_list"] = sizes
        h, w = sizes[index]
        return self.reference_latents[index, :, :h, :w]

    def nearest_references(
        self, camera_to_world: Float[Tensor, "*Q 3 4"] | Float[Tensor, "*Q 4 4"], k: Optional[int] = None
    ) -> Int[Tensor, "*Q k"]:
        """Indices (into the training set / reference bank) of the ``k`` training cameras nearest to
        ``camera_to_world`` (nerfstudio OpenGL convention), nearest first; a training camera with the
        same pose is skipped. ``k`` defaults to ``config.num_references``."""
        if self.reference_c2w.shape[0] == 0:
            raise SplatentError("The model has no reference bank yet; it is built when training starts (or loaded from a checkpoint).")
        k = self.config.num_references if k is None else k
        return select_references(query_c2ws=camera_to_world.to(self.reference_c2w), train_c2ws=self.reference_c2w, k=k)

    # ---------------------------------------------------------------- rendering
    def _raster_params(self, crop_ids: Optional[Tensor]) -> Dict[str, Tensor]:
        if crop_ids is None:
            return dict(self.gauss_params.items())
        return {k: v[crop_ids] for k, v in self.gauss_params.items()}

    def get_outputs(self, camera: Cameras) -> Dict[str, Union[torch.Tensor, List]]:
        """Outputs: ``rgb`` (decoded latent render in eval; the RGB splats while training, unless the
        decoded loss needs the decode), ``rgb_gaussians``, ``latent`` (PCA view, eval), ``depth``,
        ``accumulation``, ``background``; while training also ``latent_render`` [h, w, C]."""
        if not isinstance(camera, Cameras):
            return {}
        if self.training:
            assert camera.shape[0] == 1, "Only one camera at a time"
            c2w = self.camera_optimizer.apply_to_camera(camera)
        else:
            c2w = camera.camera_to_worlds
        W_full, H_full = int(camera.width.item()), int(camera.height.item())

        crop_ids = None
        if self.crop_box is not None and not self.training:
            crop_ids = self.crop_box.within(self.means).squeeze()
            if crop_ids.sum() == 0:
                empty = self.get_empty_outputs(W_full, H_full, self.background_color)
                empty["rgb_gaussians"] = empty["rgb"]
                empty["latent"] = torch.zeros_like(empty["rgb"])
                return empty
        params = self._raster_params(crop_ids)

        viewmat = opengl_c2w_to_viewmat(c2w.to(self.device))
        K_full = camera.get_intrinsics_matrices().to(self.device)
        d = self._get_downscale_factor()
        camera.rescale_output_resolution(1 / d)
        K = camera.get_intrinsics_matrices().to(self.device)
        W, H = int(camera.width.item()), int(camera.height.item())
        self.last_size = (H, W)
        camera.rescale_output_resolution(d)

        sh_degree = min(self.step // self.config.sh_degree_interval, self.config.sh_degree) if self.config.sh_degree > 0 else 0
        if self.config.sh_degree > 0:
            colors = sh_colors(params=params, viewmats=viewmat, sh_degree=sh_degree)
        else:
            colors = torch.sigmoid(params["features_dc"])
        scales = torch.exp(params["scales"])
        opac = torch.sigmoid(params["opacities"]).squeeze(-1)
        background = self._get_background_color()
        out_rgb = rasterize(
            means=params["means"], quats=params["quats"], scales=scales, opacities=opac, features=colors,
            viewmats=viewmat, Ks=K, width=W, height=H,
        )
        self.info = out_rgb.info
        if self.training:
            self.strategy.step_pre_backward(self.gauss_params, self.optimizers, self.strategy_state, self.step, self.info)
        alpha = out_rgb.alpha[0]
        rgb = torch.clamp(out_rgb.features[0] + (1 - alpha) * background, 0.0, 1.0)
        depth = out_rgb.depth[0]
        depth = torch.where(alpha > 0, depth, depth.detach().max())

        ds = self.downscale
        lat_h, lat_w = H_full // ds, W_full // ds
        out_lat = rasterize(
            means=params["means"], quats=params["quats"], scales=scales, opacities=opac, features=params["latents"],
            viewmats=viewmat, Ks=scale_intrinsics(K_full, 1.0 / ds), width=lat_w, height=lat_h,
            backgrounds=self.background_latent[None].to(params["latents"]),
        )
        latent_render = out_lat.features[0]  # [h, w, C]

        outputs: Dict[str, Union[Tensor, List]] = {
            "rgb_gaussians": rgb,
            "depth": depth,
            "accumulation": alpha,
            "background": background,
        }
        if self.training:
            outputs["rgb"] = rgb
            outputs["latent_render"] = latent_render
            return outputs

        bg_eval = background.to(self.device)
        decoded = self.codec.decode(latent_render.permute(2, 0, 1)[None]).float()[0].permute(1, 2, 0).clamp(0, 1)
        full = bg_eval.expand(H_full, W_full, 3).clone()
        full[: decoded.shape[0], : decoded.shape[1]] = decoded
        pca = project_pca(latent_render, mean=self.pca_mean, components=self.pca_components, lo=self.pca_lo, hi=self.pca_hi)
        pca_full = torch.zeros(H_full, W_full, 3, device=self.device)
        up = pca.repeat_interleave(ds, 0).repeat_interleave(ds, 1)
        pca_full[: up.shape[0], : up.shape[1]] = up
        outputs["rgb"] = full
        enhanced = self._enhanced(latent_render=latent_render, camera_to_world=c2w)
        if enhanced is not None:
            full_enhanced = bg_eval.expand(H_full, W_full, 3).clone()
            full_enhanced[: enhanced.shape[0], : enhanced.shape[1]] = enhanced
            outputs["rgb_enhanced"] = full_enhanced
        outputs["latent"] = pca_full
        outputs["background"] = bg_eval.expand(H_full, W_full, 3)
        return outputs

    @torch.no_grad()
    def _enhanced(
        self, *, latent_render: Float[Tensor, "h w C"], camera_to_world: Float[Tensor, "1 3 4"]
    ) -> Optional[Float[Tensor, "H W 3"]]:
        """The latent render refined with its nearest reference latents (resized to its size), decoded;
        None without a refiner or a reference bank."""
        if self.training or self.reference_latents.shape[0] == 0:
            return None
        refiner = self.refiner
        if refiner is None:
            return None
        k = self.config.refiner_num_references
        k = refiner.config.num_references if k is None else k
        k = max(0, min(k, refiner.config.num_references, self.reference_latents.shape[0] - 1))
        h, w, C = latent_render.shape
        refs = latent_render.new_zeros(1, 0, C, h, w)
        if k > 0:
            indices = self.nearest_references(camera_to_world.reshape(-1, 3, 4)[0], k=k)
            # The viewer/exporter's resize, so every renderer feeds the refiner the same references.
            refs = torch.stack([resize_latent(self.reference_latent(int(i)), height=h, width=w)
                                for i in indices.tolist()])[None]
        latent = refiner(target=latent_render.permute(2, 0, 1)[None], references=refs)
        return self.codec.decode(latent).float()[0].permute(1, 2, 0).clamp(0, 1)

    # ---------------------------------------------------------------- losses / metrics
    def _gt_full(self, batch: Dict[str, Tensor]) -> Tensor:
        image = batch["image"]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        return self.composite_with_background(image.to(self.device), self.background_color.to(self.device))

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, torch.Tensor]:
        loss_dict = super().get_loss_dict(outputs, batch, metrics_dict)  # RGB splats: outputs["rgb"] while training
        loss_dict["main_loss"] = self.config.rgb_loss_weight * loss_dict["main_loss"]
        if "latent_render" in outputs and self.reference_latents.shape[0] > 0:
            idx = int(batch["image_idx"])
            target = self.reference_latent(idx).permute(1, 2, 0)
            render = outputs["latent_render"]
            if render.shape != target.shape:
                raise SplatentError(
                    f"Latent render {tuple(render.shape)} and encoded target {tuple(target.shape)} of training image "
                    f"{idx} differ; the image size does not match its camera."
                )
            loss_dict["latent_loss"] = self.config.latent_loss_weight * (render - target).abs().mean()
            if self.config.decoded_loss_weight > 0 and self.step % max(self.config.decoded_loss_every, 1) == 0:
                decoded = self.codec.decode(render.permute(2, 0, 1)[None]).float()[0].permute(1, 2, 0)
                gt = self._gt_full(batch)[: decoded.shape[0], : decoded.shape[1]]
                loss_dict["decoded_loss"] = self.config.decoded_loss_weight * (decoded - gt).abs().mean()
        return loss_dict

    def get_image_metrics_and_images(
        self, outputs: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
        """PSNR/SSIM (and LPIPS when its weights are local) of the decoded latent render (``psnr``,
        ``ssim``, ``lpips``; over the top-left crop that the codec covers), of the refined render when
        there is one (``psnr_enhanced``, ``ssim_enhanced``, ``lpips_enhanced``; same crop) and of the
        RGB splats (``psnr_rgb_gaussians``, ``ssim_rgb_gaussians``, ``lpips_rgb_gaussians``)."""
        gt = self._gt_full(batch)
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


__all__ = ["SplatentModel", "SplatentModelConfig", "lpips_weights_available"]
