"""Training the refiner on a dataset from ``splatent-refiner make-dataset`` (``splatent-refiner train``).

One step: a batch of random crops (same window on render, target, references and image), ``k``
references (random in 0..num_references per step, or fixed), the refiner's one UNet pass, and

    latent_weight · MSE(normalised latents) + image_weight · L1|MSE(decode(pred), image)
    + ssim_weight · (1 - SSIM) + lpips_weight · LPIPS(VGG)   (LPIPS only when its weights are on disk)

with the codec's decoder frozen (gradients flow through it to the prediction). The embedded
backbone's latent normalisation (``latent_shift`` / ``latent_scale``) is fitted to the dataset's
target latents at the start; sd-turbo keeps the codec's own scaling.

Data parallel through Hugging Face ``accelerate`` (single process works as is; ``accelerate launch
-m splatent_viewer.scripts.refiner_cli train ...`` for DDP), bf16 autocast on CUDA, fp32 on CPU.
Checkpoints (refiner folder + optimizer state in safetensors + step in JSON) are written
atomically every ``checkpoint_every`` steps; ``--resume`` continues from the latest.

Output folder: ``refiner/`` (the final refiner, for ``--refiner``), ``checkpoints/step-NNNNNN/``,
``train_log.json`` (losses per step).

Learning rate: linear warm-up, then constant (the default: the shipped refiner's recipe) or, with
``--lr-schedule cosine``, a cosine decay to ``min_lr_ratio`` · lr at the end of the run.

``--max-seconds`` stops training early (at the step where the time is up) and saves the refiner as
at the last step, so a run inside a fixed time budget always leaves a refiner; ``train_log.json``
records the steps done. The cosine decay follows whichever runs out first, steps or seconds
(progress = max(step / steps, elapsed / max_seconds)), so a time-capped run still ends at the low
learning rate instead of being cut at its peak.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch
from jaxtyping import Float
from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import save_file
from torch import Tensor
from torch.utils.data import DataLoader, RandomSampler

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.codecs import LatentCodec, load_codec
from splatent_viewer.errors import SplatentError
from splatent_viewer.progress import Progress
from splatent_viewer.refine.checkpoint import load_refiner, save_refiner
from splatent_viewer.refine.embedded_unet import EmbeddedUNetConfig
from splatent_viewer.refine.refiner import Refiner, RefinerConfig, guided_from
from splatent_viewer.refiner_training.dataset import RefinerDataset, latent_statistics, refiner_guide, refiner_rgb
from splatent_viewer.safetensors_io import read_safetensors
from splatent_viewer.training.losses import ssim

CONSOLE = Console()
REFINER_DIR = "refiner"
CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "train_log.json"
VGG16_FILE = "vgg16-397923af.pth"


@dataclass
class RefinerTrainConfig:
    """Train a refiner on a refiner dataset."""

    dataset: Path = Path("outputs/refiner_dataset")
    """Dataset folder written by `splatent-refiner make-dataset`."""
    output: Path = Path("outputs/refiner_train")
    """Where refiner/ (final), checkpoints/ and train_log.json go."""
    backbone: Literal["embedded", "sd-turbo"] = "embedded"
    """embedded (compact UNet from scratch, any codec) or sd-turbo (SD-Turbo's UNet; 4-channel SD latents)."""
    base: Optional[Path] = None
    """SD-Turbo folder (unet/, scheduler/, text_encoder/, tokenizer/) for --backbone sd-turbo."""
    embedded: EmbeddedUNetConfig = field(default_factory=EmbeddedUNetConfig)
    """Sizes of the embedded UNet."""
    num_references: int = 3
    """k the refiner is built for (grid layout); at most 5, the references the dataset stores."""
    k: Optional[int] = None
    """References per step; None = random in 0..num_references each step (so k=0 works too)."""
    timestep: int = 300
    """Fixed diffusion timestep of the UNet pass."""
    steps: int = 2000
    """Optimisation steps."""
    batch_size: int = 8
    """Samples per step (per process under DDP)."""
    lr: Optional[float] = None
    """AdamW learning rate (default: 2e-4 embedded, 2e-5 sd-turbo)."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up steps."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """After the warm-up: constant, or cosine decay to min_lr_ratio · lr at the end of the run (steps or
    --max-seconds, whichever comes first)."""
    min_lr_ratio: float = 0.05
    """Final learning rate of the cosine schedule, as a fraction of --lr."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm (0 disables clipping)."""
    crop: int = 32
    """Random crop size in latent pixels (clamped to the smallest frame)."""
    flip: bool = True
    """Random horizontal flips."""
    latent_weight: float = 1.0
    """Weight of the MSE between predicted and target latents (normalised)."""
    image_weight: float = 1.0
    """Weight of the decoded-image loss against the ground-truth image."""
    image_loss: Literal["l1", "mse"] = "l1"
    """Decoded-image loss."""
    ssim_weight: float = 0.2
    """Weight of (1 - SSIM) on the decoded image."""
    lpips_weight: float = 0.1
    """Weight of LPIPS(VGG) on the decoded image; used only when torchvision's VGG16 weights are on disk."""
    scenes: Optional[tuple[str, ...]] = None
    """Train on these scenes only (default: all)."""
    exclude_scenes: tuple[str, ...] = ()
    """Scenes left out (leave-one-scene-out evaluation)."""
    exclude_units: tuple[str, ...] = ()
    """Dataset units left out (scene adaptation's validation unit)."""
    checkpoint_every: int = 500
    """Write a resumable checkpoint every this many steps."""
    keep_checkpoints: int = 2
    """Checkpoints kept (older ones are deleted)."""
    time_checkpoints: int = 0
    """With --max-seconds, also write a checkpoint each time another 1/this of the time budget has passed (0: none), so
    a run that the budget ends still leaves evenly spaced points behind (scene adaptation's early stopping)."""
    resume: bool = False
    """Continue from the latest checkpoint in --output."""
    seed: int = 0
    """Random seed (initialisation, batches, k)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Compute device; auto = cuda when available (accelerate picks the process's GPU)."""
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """Autocast; auto = bf16 on CUDA, none on CPU."""
    codec_path: Optional[Path] = None
    """Weights folder of the dataset's codec (default: its usual location)."""
    max_seconds: Optional[float] = None
    """Stop after this many seconds of training steps even before --steps, saving the refiner as usual (a time budget)."""
    guided: bool = False
    """RGB guidance: the refiner refines the encoded RGB-splat render (the dataset's guides) with the latent render as
    extra input channels (embedded backbone). False: the paper's pure-latent refiner."""
    residual: bool = False
    """With --guided: the enhanced image is the RGB splats plus the decoded change the refiner makes to the guide
    (``RefinerConfig.residual``), so the identity start is the RGB splats, not their codec round trip. Needs a dataset
    that kept the RGB splats (built since residual refiners)."""
    init: Optional[str] = None
    """Start from these weights instead of a new refiner: embedded (the shipped refiner) or a refiner folder (fine-tuning,
    e.g. scene adaptation). A pure-latent one becomes guided with --guided (same body, starts as the identity on the
    guide); its k, timestep and normalisation are kept."""

    def interrupted_message(self) -> str:
        """What Ctrl+C leaves behind (printed by the CLI)."""
        return (
            f"the checkpoints written every {self.checkpoint_every} steps are in {self.output / CHECKPOINT_DIR}: rerun "
            "with --resume to continue from the latest; no final refiner was written"
        )


@dataclass
class TrainResult:
    """What :func:`train_refiner` produced."""

    refiner_dir: Path
    """The final refiner folder."""
    log: list[dict[str, float]]
    """Losses per step (this run and, after --resume, the earlier ones)."""
    steps_done: int = 0
    """The step training ended at (below the configured steps when --max-seconds stopped it)."""
    step_seconds: float | None = None
    """Mean wall seconds of this run's steps after its first (which pays the warm-up); None below two steps."""


def checkpoints(output: Path) -> list[tuple[int, Path]]:
    """The complete checkpoint folders in ``output`` with their steps, lowest step first."""
    done = [p for p in (Path(output) / CHECKPOINT_DIR).glob("step-*") if (p / "state.json").is_file()]
    return sorted((int(p.name.split("-")[1]), p) for p in done)


def latest_checkpoint(output: Path) -> Path | None:
    """The highest-step complete checkpoint folder in ``output``, or None."""
    done = checkpoints(output)
    return done[-1][1] if done else None


def prune_checkpoints(output: Path, *, keep: int) -> None:
    """Deletes all but the ``keep`` highest-step checkpoints in ``output``."""
    done = checkpoints(output)
    for _, old in done[: max(0, len(done) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, str]]:
    sd = optimizer.state_dict()
    tensors = {
        f"state.{pid}.{name}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
        for pid, st in sd["state"].items()
        for name, v in st.items()
    }
    return tensors, {"param_groups": json.dumps(sd["param_groups"])}


def _optimizer_from_tensors(optimizer: torch.optim.Optimizer, path: Path) -> None:
    tensors, meta = read_safetensors(path)
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})


def save_checkpoint(*, output: Path, step: int, refiner: Refiner, optimizer: torch.optim.Optimizer, keep: int) -> Path:
    """Writes ``checkpoints/step-NNNNNN`` atomically (built in a temp folder, renamed into place)."""
    root = Path(output) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save_refiner(refiner, tmp / REFINER_DIR)
        tensors, meta = _optimizer_to_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"), metadata=meta)
        (tmp / "state.json").write_text(json.dumps({"step": step}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune_checkpoints(output, keep=keep)
    return final


def _lpips_loss(device: torch.device):
    """LPIPS(VGG) from torchmetrics when torchvision's VGG16 weights are already cached (never downloads)."""
    if not (Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE).is_file():
        return None
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    metric = LearnedPerceptualImagePatchSimilarity(net_type="vgg", normalize=True).to(device)
    metric.requires_grad_(False)
    return metric


def refiner_losses(
    *,
    pred: Float[Tensor, "B C h w"],
    target: Float[Tensor, "B C h w"],
    image: Float[Tensor, "B 3 H W"],
    refiner: Refiner,
    codec: LatentCodec,
    config: RefinerTrainConfig,
    lpips=None,
    guide: Float[Tensor, "B C h w"] | None = None,
    rgb: Float[Tensor, "B 3 H W"] | None = None,
) -> dict[str, Tensor]:
    """The weighted terms and their ``total`` (the enhanced image, :meth:`Refiner.image`, unclamped, so every term
    has gradients; a residual refiner's needs the ``guide`` and the RGB splats ``rgb``).

    Computed in fp32 with autocast off: decoding (and backpropagating through) the codec in bf16
    made training diverge on CUDA (gradient norms in the hundreds, loss rising)."""
    with torch.autocast(device_type=pred.device.type, enabled=False):
        return _refiner_losses_fp32(
            pred=pred.float(),
            target=target.float(),
            image=image.float(),
            refiner=refiner,
            codec=codec,
            config=config,
            lpips=lpips,
            guide=None if guide is None else guide.float(),
            rgb=None if rgb is None else rgb.float(),
        )


def _refiner_losses_fp32(*, pred, target, image, refiner, codec, config, lpips, guide, rgb) -> dict[str, Tensor]:
    scale = refiner.scale.float()
    terms = {"latent": (((pred - target) * scale) ** 2).mean()}
    decoded = refiner.image(refined=pred, decode=codec.decode, guide=guide, rgb=rgb)
    diff = decoded - image
    terms["image"] = diff.abs().mean() if config.image_loss == "l1" else (diff**2).mean()
    terms["ssim"] = 1.0 - ssim(decoded, image)
    total = (
        config.latent_weight * terms["latent"]
        + config.image_weight * terms["image"]
        + config.ssim_weight * terms["ssim"]
    )
    if lpips is not None and config.lpips_weight > 0:
        terms["lpips"] = lpips(decoded.clamp(0, 1), image)
        total = total + config.lpips_weight * terms["lpips"]
    terms["total"] = total
    return terms


def new_refiner(config: RefinerTrainConfig, dataset: RefinerDataset) -> Refiner:
    """The refiner a training with ``config`` starts from: ``config.init``'s weights (made guided with
    ``config.guided``), else a new one sized for ``dataset``."""
    if config.init is not None:
        start = load_refiner(
            "embedded" if config.init == "embedded" else Path(config.init), device="cpu", dtype=torch.float32
        )
        if (start.config.codec, start.config.latent_channels) != (dataset.codec, dataset.latent_channels):
            raise SplatentError(
                f"--init {config.init} is a {start.config.codec} refiner ({start.config.latent_channels} "
                f"channels); {config.dataset} holds {dataset.codec} latents ({dataset.latent_channels})."
            )
        if config.guided and not start.config.guided:
            start = guided_from(start, residual=config.residual)
        elif start.config.guided and not config.guided:
            raise SplatentError(f"--init {config.init} is RGB-guided; pass --guided to fine-tune it.")
        elif start.config.residual != config.residual:
            raise SplatentError(
                f"--init {config.init} is {'' if start.config.residual else 'not '}a residual refiner; fine-tune it "
                f"with{'' if start.config.residual else 'out'} --residual."
            )
        return start.requires_grad_(True)
    if not 0 <= config.num_references <= 5:
        raise SplatentError(f"--num-references must be in 0..5 (the dataset stores 5), got {config.num_references}.")
    new_config = functools.partial(
        RefinerConfig,
        codec=dataset.codec,
        latent_channels=dataset.latent_channels,
        num_references=config.num_references,
        timestep=config.timestep,
    )
    if config.backbone == "sd-turbo":
        if config.base is None:
            raise SplatentError(
                "--backbone sd-turbo needs --base DIR, a local SD-Turbo folder (unet/, scheduler/, text_encoder/, tokenizer/)."
            )
        refiner_config = new_config(backbone="sd-turbo", sd_turbo_path=config.base)
    else:
        mean, std = latent_statistics(dataset)
        refiner_config = new_config(
            backbone="embedded",
            embedded=config.embedded,
            latent_shift=tuple(mean.tolist()),
            latent_scale=tuple((1.0 / std).tolist()),
            guided=config.guided,
            residual=config.residual,
        )
    return refiner_config.setup(device="cpu", dtype=torch.float32)


def train_refiner(config: RefinerTrainConfig, *, progress: bool = True) -> TrainResult:
    """Trains (or resumes) a refiner; writes the final one to ``config.output / "refiner"``."""
    from accelerate import Accelerator

    on_cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    precision = config.mixed_precision if config.mixed_precision != "auto" else ("no" if on_cpu else "bf16")
    accelerator = Accelerator(cpu=on_cpu, mixed_precision=precision)
    device = accelerator.device
    torch.manual_seed(config.seed)

    dataset = RefinerDataset(
        config.dataset,
        crop=config.crop,
        flip=config.flip,
        scenes=config.scenes,
        exclude_scenes=config.exclude_scenes,
        exclude_units=config.exclude_units,
    )
    if config.k is not None and not 0 <= config.k <= config.num_references:
        raise SplatentError(f"--k {config.k} must be in 0..--num-references ({config.num_references}).")
    output = Path(config.output)
    start, log = 0, []
    checkpoint = latest_checkpoint(output) if config.resume else None
    if config.resume and checkpoint is None:
        CONSOLE.print(f"[yellow]--resume: no checkpoint in {output / CHECKPOINT_DIR}, starting from scratch")
    if checkpoint is not None:
        refiner = load_refiner(checkpoint / REFINER_DIR, device="cpu", dtype=torch.float32)
        refiner.requires_grad_(True)
        start = int(json.loads((checkpoint / "state.json").read_text())["step"])
        if (output / LOG_FILE).is_file():
            log = [r for r in json.loads((output / LOG_FILE).read_text())["steps"] if r["step"] <= start]
    else:
        refiner = new_refiner(config, dataset)
    refiner.train()
    lr = config.lr if config.lr is not None else (2e-5 if config.backbone == "sd-turbo" else 2e-4)
    optimizer = torch.optim.AdamW(
        [p for p in refiner.parameters() if p.requires_grad], lr=lr, weight_decay=config.weight_decay
    )
    if checkpoint is not None:
        _optimizer_from_tensors(optimizer, checkpoint / "optimizer.safetensors")
    if not 0.0 <= config.min_lr_ratio <= 1.0:
        raise SplatentError(f"--min-lr-ratio must be in [0, 1], got {config.min_lr_ratio}.")

    remaining = max(0, config.steps - start)
    # Each process draws ``remaining`` batches (accelerate shards the sampler across processes).
    sampler = RandomSampler(
        dataset,
        replacement=True,
        num_samples=max(1, remaining) * config.batch_size * accelerator.num_processes,
        generator=torch.Generator().manual_seed(config.seed * 1_000_003 + start),
    )
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True)
    codec = load_codec(dataset.codec, path=config.codec_path, device=device, dtype=torch.float32)
    if codec.latent_channels != refiner.config.latent_channels:
        raise SplatentError(
            f"{config.dataset} holds {codec.latent_channels}-channel latents but the checkpoint's refiner "
            f"takes {refiner.config.latent_channels}; use another --output or drop --resume."
        )
    lpips = _lpips_loss(device) if config.lpips_weight > 0 else None
    if refiner.config.guided and not dataset.has_guides:
        raise SplatentError(
            f"{config.dataset} has no RGB guides (built before RGB guidance): rebuild it with "
            "`splatent-refiner make-dataset`, or train a pure-latent refiner (no --guided)."
        )

    if refiner.config.residual and not dataset.has_rgb:
        raise SplatentError(
            f"{config.dataset} did not keep the RGB splats (built before residual refiners): rebuild it with "
            "`splatent-refiner make-dataset`, or train without --residual."
        )

    def guide_of(batch: dict) -> Tensor | None:
        return refiner_guide(refiner, batch)

    model, optimizer, loader = accelerator.prepare(refiner, optimizer, loader)
    k_rng = torch.Generator().manual_seed(config.seed * 7919 + start)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        CONSOLE.print(
            f"[bold]refiner[/] {config.backbone} · {len(dataset)} samples from {len(dataset.scene_names())} scenes "
            f"· steps {start}→{config.steps} · batch {config.batch_size}×{accelerator.num_processes} · lr {lr:g} "
            f"· {precision} · {device} · LPIPS {'on' if lpips is not None else 'off (no VGG16 weights on disk)'}"
        )
    header = {
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "lr": lr,
        "device": str(device),
        "num_processes": accelerator.num_processes,
        "lpips": lpips is not None,
    }

    columns = (
        TextColumn("[bold]training refiner"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    step = start
    started = time.perf_counter()
    time_used = 0.0  # fraction of --max-seconds spent (0 without it); the same on every process
    time_marks = 0  # how many 1/time_checkpoints of --max-seconds had passed at the last step
    with Progress(*columns, disable=not (progress and accelerator.is_main_process), console=CONSOLE) as bar:
        task = bar.add_task("training refiner", total=config.steps, completed=start, loss=math.nan)
        for batch in loader:
            if step >= config.steps:
                break
            k = (
                config.k
                if config.k is not None
                else int(torch.randint(0, config.num_references + 1, (), generator=k_rng))
            )
            step_lr = lr * lr_factor(step=step, config=config, time_used=time_used)
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            k = min(k, int(batch["num_refs"].min()))  # a scene with few training views stores fewer
            with accelerator.autocast():
                guide = guide_of(batch)
                pred = model(target=batch["render"], references=batch["refs"][:, :k], guide=guide)
                terms = refiner_losses(
                    pred=pred,
                    target=batch["target"],
                    image=batch["image"],
                    guide=guide,
                    rgb=refiner_rgb(refiner, batch),
                    refiner=accelerator.unwrap_model(model),
                    codec=codec,
                    config=config,
                    lpips=lpips,
                )
            accelerator.backward(terms["total"])
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm or float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            elapsed = time.perf_counter() - started
            row = {
                "step": step,
                "k": k,
                "lr": step_lr,
                **{name: float(v.detach()) for name, v in terms.items()},
                "grad_norm": float(grad_norm) if grad_norm is not None else math.nan,
                "seconds": elapsed,  # since this run's loop began (a resume starts again at 0)
            }  # None: DeepSpeed only
            log.append(row)
            bar.update(task, completed=step, loss=row["total"])
            if config.max_seconds is not None:
                time_used = _time_used(accelerator, elapsed, config.max_seconds)
            if step < config.steps and time_used >= 1.0:
                if accelerator.is_main_process:
                    CONSOLE.print(
                        f"[yellow]--max-seconds {config.max_seconds:g}: stopping at step {step} of {config.steps}"
                    )
                break
            time_marks, marks_before = int(time_used * config.time_checkpoints), time_marks
            if (step % config.checkpoint_every == 0 or time_marks > marks_before) and step < config.steps:
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    # Log first: a resume keeps the rows up to its checkpoint's step, so a crash in between loses none.
                    write_json_atomic(output / LOG_FILE, {**header, "steps": log}, indent=1)
                    save_checkpoint(
                        output=output,
                        step=step,
                        refiner=accelerator.unwrap_model(model),
                        optimizer=optimizer.optimizer,
                        keep=config.keep_checkpoints,
                    )

    accelerator.wait_for_everyone()
    final = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        save_checkpoint(
            output=output, step=step, refiner=final, optimizer=optimizer.optimizer, keep=config.keep_checkpoints
        )
        save_refiner(final, output / REFINER_DIR)
        write_json_atomic(output / LOG_FILE, {**header, "steps_done": step, "steps": log}, indent=1)
        CONSOLE.print(f"wrote {output / REFINER_DIR} (step {step}) and {output / LOG_FILE}")
    timed = [row["seconds"] for row in log[len(log) - (step - start) :]]  # this run's rows
    step_seconds = (timed[-1] - timed[0]) / (len(timed) - 1) if len(timed) >= 2 else None
    return TrainResult(refiner_dir=output / REFINER_DIR, log=log, steps_done=step, step_seconds=step_seconds)


def lr_factor(*, step: int, config: RefinerTrainConfig, time_used: float = 0.0) -> float:
    """Learning-rate multiplier of the step that follows ``step`` completed steps: linear warm-up, then cosine
    decay to ``min_lr_ratio`` (or constant). ``time_used`` is the fraction of ``--max-seconds`` spent."""
    warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
    if config.lr_schedule == "constant" or step < config.warmup_steps:
        return warm
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, max((step - config.warmup_steps) / span, time_used))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _time_used(accelerator, elapsed: float, max_seconds: float) -> float:
    """Fraction of ``max_seconds`` that ``elapsed`` seconds are (>= 1: time is up); under DDP the largest over the
    processes, so every process sets the same learning rate and stops at the same step."""
    used = elapsed / max_seconds if max_seconds > 0 else float("inf")
    if accelerator.num_processes == 1:
        return used
    value = torch.tensor([min(used, 2.0)], device=accelerator.device)
    return float(accelerator.reduce(value, reduction="max").item())
