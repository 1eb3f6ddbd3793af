"""``ns-train splatent`` vs plain splatfacto on CUDA: held-out PSNR/SSIM and wall time.

Both methods run through nerfstudio's own ``Trainer`` with identical trainer settings (the
splatent method config; splatfacto gets :class:`SplatfactoModelConfig` and no latent optimizer
group), the same dataparser and the same step count. Evaluation is nerfstudio's
``pipeline.get_average_eval_image_metrics()`` on the dataparser's eval split: splatent reports the
decoded latent render (``psnr``/``ssim``) and its RGB splats (``psnr_rgb_gaussians``); splatfacto
its RGB render.

Differences to typing ``ns-train`` (the GPU machine has no nerfstudio install, only carried
wheels): configs are built here instead of through the CLI (so nerfstudio's method registry, which
imports every method's dependencies, is not needed); splatfacto's LPIPS metric is not built
(its AlexNet weights would be downloaded; LPIPS plays no part in training).

    python benchmarks/ns_train_gpu.py --scenes temple:nerfstudio fern:nerfstudio --root DIR --steps 7000 \
        --output results.md
    # splatent with the decoded-image loss (rows labelled "splatent+decoded"):
    python benchmarks/ns_train_gpu.py --methods splatent --decoded-weight 1.0 --decoded-every 1 ...
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import tyro


@dataclass
class Args:
    scenes: list[str] = field(default_factory=lambda: ["temple:nerfstudio", "fern:nerfstudio", "lego:blender"])
    """NAME:DATAPARSER pairs; the scene folder is ROOT/NAME; dataparser nerfstudio or blender."""
    root: Path = Path("../shared/data/scenes")
    """Folder holding the scenes."""
    methods: list[str] = field(default_factory=lambda: ["splatent", "splatfacto"])
    """Methods to train."""
    steps: int = 7000
    """Training iterations of each run."""
    output_dir: Path = Path("/tmp/ns_train_gpu")
    """nerfstudio output folder."""
    output: Path | None = None
    """Markdown table (appended row by row) and a .json beside it."""
    device: str = "cuda"
    """cuda (splatfacto needs it); cpu only smoke-tests splatent."""
    decoded_weight: Optional[float] = None
    """splatent's --pipeline.model.loss.decoded-weight (None: the method's default); set, its rows read splatent+decoded."""
    decoded_every: Optional[int] = None
    """splatent's --pipeline.model.loss.decoded-every (None: the method's default)."""
    refiner: Optional[str] = None
    """splatent's --pipeline.model.refiner (None: the method's default, the shipped refiner; "none" leaves the
    rgb_enhanced metrics out, e.g. on a machine without diffusers)."""
    seed: int = 42
    """nerfstudio's --machine.seed (its default 42)."""
    profile_steps: int = 0
    """After training, time this many more steps of nerfstudio's loop (callbacks + ``train_iteration``) without and
    then with torch's profiler: ms per step at the run's final Gaussian count, and the profiler's table of the top
    CUDA/CPU ops (written beside ``--output`` as ``*_profile_METHOD_SCENE.txt``)."""
    set: tuple[str, ...] = ()
    """More splatent model fields as FIELD=VALUE (the value read as JSON, else kept as a string), e.g.
    num_downscales=0 background_color=black."""


class _NaNMetric(torch.nn.Module):
    def forward(self, a, b):
        return torch.tensor(float("nan"), device=a.device)


def _config(
    method: str,
    scene: Path,
    dataparser: str,
    steps: int,
    output_dir: Path,
    device: str,
    model_overrides: Optional[dict] = None,
    seed: int = 42,
):
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.models.splatfacto import SplatfactoModel, SplatfactoModelConfig

    from nerfstudio_plugin.splatent_config import splatent_config

    cfg = copy.deepcopy(splatent_config)
    if method == "splatent":
        for name, value in (model_overrides or {}).items():  # dotted names reach nested configs (loss.decoded_weight)
            *parents, leaf = name.split(".")
            target = cfg.pipeline.model
            for part in parents:
                target = getattr(target, part, None)
            if target is None or not hasattr(target, leaf):
                raise ValueError(f"SplatentModelConfig has no field {name!r}")
            setattr(target, leaf, value)
    if method == "splatfacto":

        class SplatfactoNoLPIPS(SplatfactoModel):
            """Stock splatfacto; LPIPS (AlexNet download) is not built, so the metric is left out."""

            def populate_modules(self):
                import torchmetrics.image.lpip as lp  # splatfacto imports LPIPS from here inside populate_modules

                original = lp.LearnedPerceptualImagePatchSimilarity
                lp.LearnedPerceptualImagePatchSimilarity = lambda **kw: _NaNMetric()
                try:
                    super().populate_modules()
                finally:
                    lp.LearnedPerceptualImagePatchSimilarity = original

        @dataclass
        class Cfg(SplatfactoModelConfig):
            _target: type = field(default_factory=lambda: SplatfactoNoLPIPS)

        cfg.method_name = "splatfacto"
        cfg.pipeline.model = Cfg()
        cfg.optimizers.pop("latents")
        from nerfstudio.engine.optimizers import AdamOptimizerConfig

        for group in cfg.optimizers.values():  # stock splatfacto: nerfstudio's Adam (splatent's is fused on CUDA)
            group["optimizer"] = AdamOptimizerConfig(lr=group["optimizer"].lr, eps=group["optimizer"].eps)
        from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig

        cfg.pipeline.datamanager = FullImageDatamanagerConfig(cache_images_type="uint8")
    if dataparser == "blender":
        cfg.pipeline.datamanager.dataparser = BlenderDataParserConfig()
    else:
        cfg.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(load_3D_points=True)
    cfg.data = scene
    cfg.pipeline.datamanager.data = scene
    cfg.max_num_iterations = steps
    cfg.steps_per_eval_image = cfg.steps_per_eval_all_images = cfg.steps_per_eval_batch = steps + 1
    cfg.steps_per_save = steps
    cfg.vis = "tensorboard"
    cfg.output_dir = output_dir
    cfg.experiment_name = scene.name
    cfg.machine.device_type = device
    cfg.machine.seed = seed
    cfg.viewer.quit_on_train_completion = True
    for group in cfg.optimizers.values():
        if group.get("scheduler") is not None and hasattr(group["scheduler"], "max_steps"):
            group["scheduler"].max_steps = steps
    return cfg


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _stage_labels(trainer) -> list[tuple[object, str, object, bool]]:
    """Wraps the stages of nerfstudio's training step in ``torch.profiler.record_function`` ranges (``## name``), so
    the profile's table has each stage's CPU and CUDA total beside the ops: the batch, the forward (``get_outputs``),
    the losses, the metrics, the optimizer steps and each callback (densification's ``step_post_backward`` among
    them); the backward is what the step spends outside them. Returns what :func:`_unlabel` restores."""
    from torch.profiler import record_function

    model, pipeline = trainer.pipeline.model, trainer.pipeline
    targets = [
        (pipeline.datamanager, "next_train", "## next_train"),
        (model, "get_outputs", "## get_outputs"),
        (model, "get_loss_dict", "## get_loss_dict"),
        (model, "get_metrics_dict", "## get_metrics_dict"),
        (trainer.optimizers, "optimizer_scaler_step_all", "## optimizer_scaler_step_all"),
        (trainer.optimizers, "scheduler_step_all", "## scheduler_step_all"),
    ] + [(cb, "func", f"## callback {getattr(cb.func, '__qualname__', cb.func)}") for cb in trainer.callbacks]
    saved = []
    for obj, name, label in targets:
        original = getattr(obj, name)

        def wrapped(*a, __f=original, __label=label, **kw):
            with record_function(__label):
                return __f(*a, **kw)

        saved.append((obj, name, original, name in vars(obj)))
        setattr(obj, name, wrapped)
    return saved


def _unlabel(saved: list[tuple[object, str, object, bool]]) -> None:
    for obj, name, original, own in reversed(saved):
        if own:
            setattr(obj, name, original)
        else:
            delattr(obj, name)  # the class's method shows through again


def count_syncs(one, start: int, steps: int) -> dict[str, int]:
    """Host-device synchronisations of ``steps`` steps, by the Python line that caused them (torch's sync debug mode:
    every synchronising CUDA call warns). Not counted: syncs inside C++ extensions (gsplat's ``isect_tiles`` reads its
    intersection count on the host), whose warnings go to stderr instead of Python's warnings."""
    import collections
    import warnings

    counts: collections.Counter[str] = collections.Counter()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(steps):
                one(start + i)
            torch.cuda.synchronize()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    for w in caught:
        if "synchroniz" in str(w.message):
            counts[f"{Path(w.filename).name}:{w.lineno}"] += 1
    return dict(counts.most_common())


def profile_steps(trainer, steps: int, device: str, table_path: Optional[Path]) -> dict:
    """Steady-state cost of a step of nerfstudio's training loop (as ``Trainer.train`` runs it, minus its writer and
    viewer updates) after the run: mean ms per step over ``steps`` plain steps, then the same steps under
    ``torch.profiler`` with the step's stages labelled (:func:`_stage_labels`): the top-40 ops by CUDA time and by
    CPU time (CPU only off CUDA), and on CUDA the host syncs per step by call site (:func:`count_syncs`), all to
    ``table_path``."""
    from nerfstudio.engine.callbacks import TrainingCallbackLocation
    from torch.profiler import ProfilerActivity, profile

    def one(step: int) -> None:
        trainer.pipeline.train()
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        trainer.train_iteration(step)
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)

    start = trainer.step + 1
    for i in range(5):  # warm-up
        one(start + i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        one(start + 5 + i)
    _sync(device)
    ms = (time.perf_counter() - t0) * 1e3 / max(steps, 1)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    saved = _stage_labels(trainer)
    try:
        with profile(activities=activities) as prof:
            for i in range(steps):
                one(start + 5 + steps + i)
            _sync(device)
    finally:
        _unlabel(saved)
    averages = prof.key_averages()
    sorts = ["cuda_time_total", "self_cpu_time_total"] if device == "cuda" else ["cpu_time_total"]
    tables = [f"sorted by {k}\n{averages.table(sort_by=k, row_limit=40, max_name_column_width=70)}" for k in sorts]
    head = f"{steps} profiled steps after the run ({ms:.2f} ms/step without the profiler)\n"
    if table_path is not None:
        table_path.write_text(head + "\n\n".join(tables))
    syncs: dict[str, int] = {}
    if device == "cuda":  # after the tables are written: a failure here loses only this part
        n = min(steps, 20)
        syncs = count_syncs(one, start + 5 + 2 * steps, n)
        lines = [f"{site}: {count / n:.2f} per step" for site, count in syncs.items()]
        tables.append(f"host syncs over {n} steps ({sum(syncs.values()) / n:.2f} per step):\n" + "\n".join(lines))
        if table_path is not None:
            table_path.write_text(head + "\n\n".join(tables))
    return {"profile_ms_per_step": ms, "profile_steps": steps, "syncs": syncs}


def run_one(
    method: str,
    scene: Path,
    dataparser: str,
    steps: int,
    output_dir: Path,
    device: str,
    model_overrides: Optional[dict] = None,
    seed: int = 42,
    profile: int = 0,
    profile_path: Optional[Path] = None,
    report=None,
) -> dict:
    """Trains, evaluates (at exactly ``steps``), hands the result to ``report`` (so a run killed while profiling
    still leaves its row), then profiles ``profile`` more steps."""
    cfg = _config(method, scene, dataparser, steps, output_dir, device, model_overrides, seed)
    cfg.set_timestamp()
    cfg.save_config()
    trainer = cfg.setup(local_rank=0, world_size=1)
    trainer.setup()
    _sync(device)
    t0 = time.perf_counter()
    trainer.train()
    _sync(device)
    seconds = time.perf_counter() - t0
    gaussians = int(trainer.pipeline.model.num_points)
    pipeline = trainer.pipeline
    pipeline.eval()
    metrics = pipeline.get_average_eval_image_metrics(output_path=None, get_std=False)
    n_eval = len(pipeline.datamanager.eval_dataset)
    n_train = len(pipeline.datamanager.train_dataset)
    label = method + ("+decoded" if method == "splatent" and (model_overrides or {}).get("loss.decoded_weight") else "")
    out = {
        "method": label,
        "model_overrides": model_overrides or {},
        "scene": scene.name,
        "steps": steps,
        "train_seconds": seconds,
        "gaussians": gaussians,
        "train_views": n_train,
        "eval_views": n_eval,
        "metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
        "config": str(cfg.get_base_dir() / "config.yml"),
    }
    if report is not None:
        report(out)
    if profile > 0:  # after the eval: the profiled steps densify further
        out.update(profile_steps(trainer, profile, device, profile_path))
    del trainer, pipeline
    torch.cuda.empty_cache()
    return out


def splatent_overrides(args: Args) -> dict:
    """The SplatentModelConfig fields the arguments set (only those given)."""
    given = {
        "loss.decoded_weight": args.decoded_weight,
        "loss.decoded_every": args.decoded_every,
        "refiner": args.refiner,
    }
    given = {k: v for k, v in given.items() if v is not None}
    for item in args.set:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            given[name] = json.loads(raw)
        except json.JSONDecodeError:
            given[name] = raw
    return given


def main(args: Args) -> list[dict]:
    results = []
    overrides = splatent_overrides(args)
    header = [
        f"device {torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}, torch {torch.__version__}, {args.steps} steps, "
        f"date {time.strftime('%Y-%m-%d')}" + (f", splatent with {overrides}" if overrides else "") + "\n",
        "| scene | train/eval views | method | Gaussians | PSNR | SSIM | RGB-splats PSNR | RGB-splats SSIM | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(header) + "\n")
    for spec in args.scenes:
        name, dataparser = spec.split(":")
        for method in args.methods:

            def report(r: dict, name: str = name) -> None:
                results.append(r)
                m = r["metrics"]
                row = (
                    f"| {name} | {r['train_views']}/{r['eval_views']} | {r['method']} | {r['gaussians']} | "
                    f"{m['psnr']:.2f} | {m['ssim']:.3f} | {m.get('psnr_rgb_gaussians', m['psnr']):.2f} | "
                    f"{m.get('ssim_rgb_gaussians', m['ssim']):.3f} | {r['train_seconds']:.1f} |"
                )
                print(row, flush=True)
                if args.output:
                    with args.output.open("a") as f:
                        f.write(row + "\n")
                    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2))

            run_one(
                method,
                args.root / name,
                dataparser,
                args.steps,
                args.output_dir,
                args.device,
                overrides,
                seed=args.seed,
                profile=args.profile_steps,
                profile_path=None
                if args.output is None
                else args.output.with_name(f"{args.output.stem}_profile_{method}_{name}.txt"),
                report=report,
            )
            if args.output and args.profile_steps > 0:  # the profile's numbers too
                args.output.with_suffix(".json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(tyro.cli(Args))
