"""End-to-end: ``ns-train splatent`` on the CPU, ``ns-eval``, reloading in fresh processes, latent cache.

Runs nerfstudio's own CLIs as subprocesses (the venv's ``ns-train`` / ``ns-eval``), headless
(``--vis tensorboard``), 30 iterations on the 12-view 64² tiny scene. About 2 minutes in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

BIN = Path(sys.executable).parent

RENDER_SCRIPT = r"""
import sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from nerfstudio.utils.eval_utils import eval_setup

_, pipeline, _, _ = eval_setup(Path(sys.argv[1]), test_mode="test")
model = pipeline.model
cams = pipeline.datamanager.eval_dataset.cameras
out = model.get_outputs_for_camera(cams[0:1])
res = {k: out[k].contiguous().float() for k in ["rgb", "rgb_gaussians", "latent", "depth", "accumulation"]}
res["refs"] = torch.tensor(model.nearest_references(cams.camera_to_worlds[0], k=3))
res["c2w"] = cams.camera_to_worlds[0:1].contiguous()
res["K"] = cams.get_intrinsics_matrices()[0:1].contiguous()
res["bg"] = model.background_color.float()
save_file(res, sys.argv[2])
"""


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", SPLATENT_LATENT_CACHE=str(cache))
    return env


ADAPT = [
    "--pipeline.model.adapt-refiner",
    "True",
    "--pipeline.model.adaptation.folds",
    "2",
    "--pipeline.model.adaptation.unit-steps",
    "10",
    "--pipeline.model.adaptation.steps",
    "2",
    "--pipeline.model.adaptation.batch-size",
    "2",
]


def _train(scene: Path, out: Path, cache: Path, extra: list[str] | None = None) -> tuple[Path, str]:
    cmd = [
        str(BIN / "ns-train"),
        "splatent",
        "--data",
        str(scene),
        "--machine.device-type",
        "cpu",
        "--max-num-iterations",
        "30",
        "--steps-per-eval-image",
        "1000",
        "--viewer.quit-on-train-completion",
        "True",
        "--vis",
        "tensorboard",
        "--output-dir",
        str(out),
        *(extra or []),
    ]
    proc = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    configs = sorted(out.glob("*/splatent/*/config.yml"))
    assert len(configs) == 1, log[-2000:]
    return configs[0], " ".join(log.split())  # rich wraps lines; normalise whitespace


@pytest.fixture(scope="module")
def trained(tiny_scene_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ns_splatent")
    cache = root / "latent_cache"
    config1, log1 = _train(tiny_scene_dir, root / "run1", cache)
    files = sorted((cache / "taef2").glob("*.safetensors"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    config2, log2 = _train(tiny_scene_dir, root / "run2", cache, extra=ADAPT)  # the second run also adapts its refiner
    return dict(
        root=root, cache=cache, config=config1, log1=log1, log2=log2, files=files, mtimes=mtimes, config2=config2
    )


def test_training_writes_checkpoint_with_latents(trained: dict) -> None:
    ckpts = list((trained["config"].parent / "nerfstudio_models").glob("step-*.ckpt"))
    assert len(ckpts) == 1
    # weights_only=True (torch's default since 2.6): the checkpoint must hold no numpy scalars.
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)["pipeline"]
    n = state["_model.gauss_params.means"].shape[0]
    assert state["_model.gauss_params.latents"].shape == (n, 32)  # taef2: 32 channels
    # reference bank: 11 training views, 64² images → 8² latents
    assert state["_model.reference_latents"].shape == (11, 32, 8, 8)
    assert state["_model.reference_c2w"].shape == (11, 4, 4)
    assert (
        state["_model.reference_Ks"].shape == (11, 3, 3) and state["_model.reference_sizes"].tolist() == [[64, 64]] * 11
    )
    assert state["_model.reference_latents"].abs().sum() > 0
    assert state["_model.pca_components"].shape == (32, 3)


def test_latent_cache_hit_on_second_run(trained: dict) -> None:
    # The run folder's record, not the console (whose lines wrap with the terminal width and temp-path length).
    first, second = (
        json.loads((c.parent / "splatent_latents.json").read_text()) for c in (trained["config"], trained["config2"])
    )
    assert (first["hits"], first["encoded"], first["images"]) == (0, 11, 11)
    assert (second["hits"], second["encoded"]) == (11, 0)
    assert first["cache_dir"] == str(trained["cache"] / "taef2")
    assert len(trained["files"]) == 11
    after = sorted((trained["cache"] / "taef2").glob("*.safetensors"))
    assert after == trained["files"]
    assert {p: p.stat().st_mtime_ns for p in after} == trained["mtimes"]


def test_ns_eval_reports_decoded_and_rgb_metrics(trained: dict) -> None:
    out = trained["root"] / "eval.json"
    cmd = [str(BIN / "ns-eval"), "--load-config", str(trained["config"]), "--output-path", str(out)]
    proc = subprocess.run(cmd, env=_env(trained["cache"]), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    results = json.loads(out.read_text())["results"]
    for key in ["psnr", "ssim", "psnr_rgb_gaussians", "ssim_rgb_gaussians"]:
        assert key in results and results[key] == results[key], key  # present and not NaN
    assert 0 < results["psnr"] < 100 and 0 < results["psnr_rgb_gaussians"] < 100


def test_checkpoint_renders_identically_in_fresh_processes(trained: dict) -> None:
    from splatent_viewer.cameras import opengl_c2w_to_viewmat, scale_intrinsics
    from splatent_viewer.codecs import CodecConfig
    from splatent_viewer.render import rasterize
    from splatent_viewer.splats import sh_colors, splat_geometry

    outs = [trained["root"] / f"render{i}.safetensors" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RENDER_SCRIPT, str(trained["config"]), str(o)],
            env=_env(trained["cache"]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for o in outs
    ]
    for p in procs:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log[-4000:]
    a, b = (load_file(str(o)) for o in outs)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert a["rgb"].shape == (64, 64, 3) and a["latent"].shape == (64, 64, 3) and a["depth"].shape == (64, 64, 1)
    assert a["refs"].shape == (3,) and a["refs"].unique().numel() == 3

    # Independently re-render from the checkpoint tensors: the model must have loaded exactly them.
    ckpt = next((trained["config"].parent / "nerfstudio_models").glob("step-*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["pipeline"]
    params = {k.split(".")[-1]: v for k, v in state.items() if k.startswith("_model.gauss_params.")}
    viewmat = opengl_c2w_to_viewmat(a["c2w"])
    common = dict(
        **splat_geometry(params),
        viewmats=viewmat,
    )
    rgb = rasterize(
        **common, features=sh_colors(params=params, viewmats=viewmat, sh_degree=3), Ks=a["K"], width=64, height=64
    )
    expected = (rgb.features[0] + (1 - rgb.alpha[0]) * a["bg"]).clamp(0, 1)
    torch.testing.assert_close(a["rgb_gaussians"], expected, atol=1e-5, rtol=0)
    lat = rasterize(
        **common,
        features=params["latents"],
        Ks=scale_intrinsics(a["K"], 1 / 8),
        width=8,
        height=8,
        backgrounds=state["_model.background_latent"][None],
    )
    codec = CodecConfig().setup()
    with torch.no_grad():
        decoded = codec.decode(lat.features.permute(0, 3, 1, 2))[0].permute(1, 2, 0).clamp(0, 1)
    torch.testing.assert_close(a["rgb"], decoded, atol=1e-4, rtol=0)


def test_run_loads_as_trained_scene_and_renders_like_the_model(trained: dict) -> None:
    """The viewer/exporter's loader gives the same decoded and RGB renders as the nerfstudio model."""
    from splatent_viewer.frame import render_frame
    from splatent_viewer.trained import load_trained_scene

    out = trained["root"] / "render_for_loader.safetensors"
    proc = subprocess.run(
        [sys.executable, "-c", RENDER_SCRIPT, str(trained["config"]), str(out)],
        env=_env(trained["cache"]),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ref = load_file(str(out))
    scene = load_trained_scene(trained["config"], refiner="none")
    assert len(scene.references) == 11 and scene.codec.name == "taef2" and scene.latent_background is not None
    frame = render_frame(scene=scene, c2w=ref["c2w"][0], K=ref["K"][0], width=64, height=64, outputs=("decoded", "rgb"))
    torch.testing.assert_close(frame.decoded, ref["rgb"], atol=1e-4, rtol=0)
    torch.testing.assert_close(frame.rgb, ref["rgb_gaussians"], atol=1e-5, rtol=0)
    assert scene.references.nearest(c2w=ref["c2w"][0], k=3) == ref["refs"].tolist()
    # Its training views are known by scene index (what `splatent-refiner make-dataset --runs` needs).
    from splatent_viewer.data.scene import load_scene

    frames = load_scene(scene.scene_path)
    assert scene.train_indices is not None and len(scene.train_indices) == 11
    held_out = sorted(set(range(len(frames.image_paths))) - set(scene.train_indices))
    assert held_out == frames.split_indices["val"].tolist()  # nerfstudio's 90/10 split = the loader's


def test_refiner_dataset_from_a_nerfstudio_run(trained: dict, tmp_path: Path) -> None:
    """`splatent-refiner make-dataset --runs config.yml` renders the run's held-out views in its (transformed) world."""
    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.frame import render_frame
    from splatent_viewer.refiner_training.build_dataset import MakeDatasetConfig, make_dataset
    from splatent_viewer.refiner_training.dataset import read_index
    from splatent_viewer.trained import load_trained_scene

    make_dataset(MakeDatasetConfig(output=tmp_path / "ds", runs=(trained["config"],), device="cpu"))
    index = read_index(tmp_path / "ds")
    scene = load_trained_scene(trained["config"], refiner="none")
    frames = load_scene(scene.scene_path)
    held_out = frames.split_indices["val"].tolist()
    assert [s["view"] for s in index["samples"]] == held_out
    assert all(set(s["ref_views"]) <= set(scene.train_indices) for s in index["samples"])
    # The sample's render is the run's render at that view (nerfstudio's eval camera = the mapped scene camera).
    from safetensors.torch import load_file as load_tensors

    shard = load_tensors(str(tmp_path / "ds" / index["shards"][0]["file"]))
    ref = load_file(str(trained["root"] / "render_for_loader.safetensors"))  # eval view 0 of the model
    frame = render_frame(scene=scene, c2w=ref["c2w"][0], K=ref["K"][0], width=64, height=64, outputs=("latent",))
    torch.testing.assert_close(shard["render"][0].float(), frame.latent, atol=2e-2, rtol=2e-2)


def test_ns_train_adapts_the_refiner_as_its_last_phase_and_every_tool_uses_it(trained: dict) -> None:
    """--pipeline.model.adapt-refiner (on by default on CUDA): refiner_adapted/ in the run folder, config.yml points at
    it, and the viewer/exporter's loader and ns-eval use it without flags; the first run (no adaptation) has none."""
    import yaml

    from splatent_viewer.refiner_training.dataset import read_index
    from splatent_viewer.trained import ADAPTED_REFINER_DIR, load_trained_scene

    run2 = trained["config2"].parent
    adapted = run2 / ADAPTED_REFINER_DIR
    assert (adapted / "refiner.json").is_file() and not (trained["config"].parent / ADAPTED_REFINER_DIR).exists()
    config = yaml.load(trained["config2"].read_text(), Loader=yaml.Loader)
    assert Path(config.pipeline.model.refiner) == adapted
    scene = load_trained_scene(trained["config2"])  # refiner="auto"
    assert scene.refiner is not None and scene.refiner.config.guided
    index = read_index(run2 / "adaptation" / "dataset")
    assert {s["view"] for s in index["samples"]} == set(scene.train_indices)  # training views only
    # the validation's do-no-harm guard rendered the run's own Gaussians at some of its training views
    record = json.loads((run2 / "refiner_adapted.json").read_text())
    check = read_index(run2 / "adaptation" / "run_check")
    assert check["samples"] and {s["view"] for s in check["samples"]} <= set(scene.train_indices)
    assert record["validation"]["guard"]["views"] == len(check["samples"])
    # its validation unit trained as long as the run (30 steps, within 4 × the units' 10); the loader knows the steps
    assert record["validation"]["unit_steps"] == 30 and scene.train_steps == 30
    out = trained["root"] / "eval2.json"
    proc = subprocess.run(
        [str(BIN / "ns-eval"), "--load-config", str(trained["config2"]), "--output-path", str(out)],
        env=_env(trained["cache"]),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "psnr_enhanced" in json.loads(out.read_text())["results"]
