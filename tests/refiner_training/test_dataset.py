"""Refiner dataset: make-dataset from a tiny scene (fields, counts, references, resume), runs, and the reader's crops."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.references import select_references
from splatent_viewer.refiner_training.build_dataset import MakeDatasetConfig, evenly_spaced, make_dataset, similarity_to
from splatent_viewer.refiner_training.dataset import K_MAX, DatasetWriter, RefinerDataset, latent_statistics, read_index
from splatent_viewer.training.losses import psnr, ssim
from splatent_viewer.training.step import LossConfig
from splatent_viewer.training.trainer import LatentSplatTrainerConfig


def test_make_dataset_writes_held_out_samples_with_nearest_training_references(tiny_scene_dir, tmp_path):
    out = tmp_path / "ds"
    config = MakeDatasetConfig(
        output=out,
        scenes=(tiny_scene_dir,),
        train_fractions=(0.5,),
        steps=2,
        device="cpu",
        trainer=LatentSplatTrainerConfig(loss=LossConfig(rgb_weight=0.0), densify=False),
    )
    make_dataset(config)
    index = read_index(out)
    scene = load_scene(tiny_scene_dir)
    train = scene.split_indices["train"].tolist()  # 11 of 12 views
    subset = evenly_spaced(train, 0.5)
    assert len(subset) == 6 and subset[0] == train[0] and subset[-1] == train[-1]
    [unit] = index["units"]
    assert (unit["key"], unit["scene"], unit["fraction"], unit["train_views"]) == ("tiny@0.5", "tiny", 0.5, subset)
    held_out = [v for v in range(len(scene)) if v not in subset]  # unused train views and the val view
    assert [s["view"] for s in index["samples"]] == held_out and unit["num_samples"] == 6
    codec = load_codec("taef2")
    data = RefinerDataset(out)
    for i, meta in enumerate(index["samples"]):
        expected = select_references(
            query_c2ws=scene.camera_to_worlds[meta["view"]], train_c2ws=scene.camera_to_worlds[subset], k=K_MAX
        )
        assert meta["ref_views"] == [subset[j] for j in expected.tolist()]
        assert meta["train_views"] == 6 and meta["num_refs"] == K_MAX
        item = data[i]
        gt = scene.load_image(meta["view"])
        assert item["target"].shape == (32, 8, 8) and item["refs"].shape == (K_MAX, 32, 8, 8)
        assert torch.equal(
            (item["image"] * 255).round().to(torch.uint8), (gt * 255 + 0.5).to(torch.uint8).permute(2, 0, 1)
        )
        assert item["render"].abs().mean() > 0.01 and not torch.allclose(item["render"], item["target"], atol=0.1)
        if i not in (0, len(index["samples"]) - 1):
            continue  # encoding is slow on the CPU: check the stored latents of two samples
        with torch.no_grad():
            target = codec.encode(gt.permute(2, 0, 1)[None])[0]
            ref0 = codec.encode(scene.load_image(meta["ref_views"][0]).permute(2, 0, 1)[None])[0]
        torch.testing.assert_close(item["target"], target, atol=5e-3, rtol=5e-3)  # stored as fp16
        torch.testing.assert_close(item["refs"][0], ref0, atol=5e-3, rtol=5e-3)
        # the RGB guide: the unit's RGB splats at the view, encoded (what a guided refiner gets when it renders)
        assert item["guide"].shape == (32, 8, 8) and not torch.allclose(item["guide"], item["render"], atol=0.1)
    assert data.has_guides and all(s["guide"] for s in index["shards"])

    # Resume: a second build skips the unit (no retraining, shards untouched).
    shard = out / index["shards"][0]["file"]
    mtime = shard.stat().st_mtime_ns
    make_dataset(config)
    assert read_index(out) == index and shard.stat().st_mtime_ns == mtime


def test_make_dataset_from_a_trained_run_renders_its_held_out_views(tmp_path):
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene
    from splatent_viewer.frame import render_frame
    from splatent_viewer.splats import init_splats
    from splatent_viewer.trained import ReferenceBank, load_trained_scene, save_trained_run

    # The run's "training" is skipped (random latents): what matters is which views are rendered, and how.
    scene_dir = render_demo_scene(
        DemoSceneConfig(output=tmp_path / "mini", num_views=5, resolution=32, seed=3, supersample=1, num_points=300)
    )
    scene = load_scene(scene_dir)
    codec = load_codec("taef2")
    points, colors = scene.load_points()
    params = init_splats(
        points=points,
        colors=colors,
        latent_channels=32,
        sh_degree=0,
        init_opacity=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    params["latents"] = torch.randn(params["latents"].shape, generator=torch.Generator().manual_seed(1))
    train = [0, 2, 4]
    run = tmp_path / "run"
    save_trained_run(
        output_dir=run,
        params=params,
        codec=codec,
        sh_degree=0,
        scene_path=scene_dir,
        train_indices=train,
        references=ReferenceBank.from_scene(scene=scene, indices=train, codec=codec, device="cpu"),
    )
    make_dataset(MakeDatasetConfig(output=tmp_path / "ds", runs=(run,), device="cpu"))
    index = read_index(tmp_path / "ds")
    assert [u["key"] for u in index["units"]] == ["mini@run:run"]
    assert [s["view"] for s in index["samples"]] == [1, 3]
    assert all(s["num_refs"] == 3 and sorted(s["ref_views"]) == train for s in index["samples"])
    trained = load_trained_scene(run, device="cpu", refiner="none")
    item = RefinerDataset(tmp_path / "ds")[1]
    expected = render_frame(
        scene=trained, c2w=scene.camera_to_worlds[3], K=scene.Ks[3], width=32, height=32, outputs=("latent",)
    ).latent
    torch.testing.assert_close(item["render"], expected, atol=5e-3, rtol=5e-3)
    assert item["refs"][3:].abs().max() == 0  # 3 training views: the other K_MAX slots stay zero
    # The RGB-splat baseline: the same Gaussians' RGB render of the view against the stored ground truth.
    rgb = render_frame(
        scene=trained, c2w=scene.camera_to_worlds[3], K=scene.Ks[3], width=32, height=32, outputs=("rgb",)
    ).rgb.permute(2, 0, 1)[None]
    gt = item["image"][None]
    meta = index["samples"][1]
    assert meta["rgb_psnr"] == pytest.approx(psnr(rgb, gt), abs=1e-4)
    assert meta["rgb_ssim"] == pytest.approx(float(ssim(rgb, gt)), abs=1e-4)


def test_similarity_recovers_a_nerfstudio_style_world_transform(tiny_scene_dir):
    c2w = load_scene(tiny_scene_dir).camera_to_worlds
    angle = 0.7
    R = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    moved = c2w.clone()
    moved[:, :3, :3] = R @ c2w[:, :3, :3]
    moved[:, :3, 3] = 0.3 * (c2w[:, :3, 3] @ R.T) + torch.tensor([0.1, -0.2, 0.5])
    R_fit, s, t = similarity_to(source=c2w, target=moved)
    torch.testing.assert_close(R_fit, R, atol=1e-5, rtol=0)
    assert s == pytest.approx(0.3, rel=1e-5)
    torch.testing.assert_close(t, torch.tensor([0.1, -0.2, 0.5]), atol=1e-5, rtol=0)
    R_id, s_id, t_id = similarity_to(source=c2w, target=c2w)
    torch.testing.assert_close(R_id, torch.eye(3), atol=1e-5, rtol=0)
    assert s_id == pytest.approx(1.0) and t_id.abs().max() < 1e-5


def _find_window(full: torch.Tensor, crop: torch.Tensor) -> tuple[int, int, bool]:
    c = crop.shape[-1]
    hits = [
        (y, x, f)
        for f in (False, True)
        for y in range(full.shape[-2] - c + 1)
        for x in range(full.shape[-1] - c + 1)
        if torch.equal((full.flip(-1) if f else full)[..., y : y + c, x : x + c], crop)
    ]
    assert len(hits) == 1, hits
    return hits[0]


def test_a_rendered_training_view_never_references_itself(tiny_trained_scene_dir):
    """The adaptation's guard renders the run's own training views: each references other training views only, also
    where its pose, mapped into the run's world, misses the bank's exact-pose test (moved 1 mm here)."""
    from dataclasses import replace

    from splatent_viewer.refiner_training.build_dataset import heldout_samples
    from splatent_viewer.trained import load_trained_scene

    trained = load_trained_scene(tiny_trained_scene_dir, device="cpu", refiner="none")
    assert trained.scene_path is not None and trained.train_indices is not None
    scene = load_scene(trained.scene_path, size_multiple=8)
    train = [int(i) for i in trained.train_indices]
    c2w = scene.camera_to_worlds.clone()
    c2w[train[1], :3, 3] += 1e-3
    for views in (scene, replace(scene, camera_to_worlds=c2w)):
        samples = heldout_samples(
            trained=trained, scene=views, views=train[:2], train_indices=train, desc="", progress=False
        )
        for sample in samples:
            assert sample.view not in sample.ref_views and len(sample.ref_views) == min(K_MAX, len(train) - 1)


def test_reader_crops_and_flips_every_field_with_one_window(refiner_dataset_dir):
    full = RefinerDataset(refiner_dataset_dir)
    cropped = RefinerDataset(refiner_dataset_dir, crop=3, flip=True)
    torch.manual_seed(0)
    flips = set()
    for _ in range(4):
        for i in range(len(full)):
            whole, item = full[i], cropped[i]
            y, x, flipped = _find_window(whole["target"], item["target"])
            flips.add(flipped)
            window = lambda t, s=1: (t.flip(-1) if flipped else t)[..., y * s : (y + 3) * s, x * s : (x + 3) * s]  # noqa: E731
            assert torch.equal(item["render"], window(whole["render"]))
            assert torch.equal(item["refs"], window(whole["refs"]))
            assert torch.equal(item["image"], window(whole["image"], 8))
            assert item["image"].shape == (3, 24, 24) and (item["scene"], item["view"]) == (
                whole["scene"],
                whole["view"],
            )
    assert flips == {False, True}
    # Crops larger than the smallest frame (scene b: 4x8 latents) are clamped so batches stack.
    big = RefinerDataset(refiner_dataset_dir, crop=100)
    assert big.crop == 4 and {big[i]["target"].shape for i in range(len(big))} == {(32, 4, 4)}


def test_dataset_scene_selection_statistics_and_errors(refiner_dataset_dir, tmp_path):
    assert RefinerDataset(refiner_dataset_dir).scene_names() == ["a", "b", "c"]
    only_b = RefinerDataset(refiner_dataset_dir, scenes=["b"])
    assert len(only_b) == 2 and {only_b[i]["target"].shape for i in range(2)} == {(32, 4, 8)}
    assert RefinerDataset(refiner_dataset_dir, exclude_scenes=["a"]).scene_names() == ["b", "c"]
    with pytest.raises(SplatentError, match="'nope' is not in"):
        RefinerDataset(refiner_dataset_dir, scenes=["nope"])
    with pytest.raises(SplatentError, match="index.json does not exist"):
        RefinerDataset(tmp_path / "missing")
    with pytest.raises(SplatentError, match="not sd-turbo"):
        DatasetWriter(refiner_dataset_dir, codec="sd-turbo", latent_channels=4, downscale=8)
    data = RefinerDataset(refiner_dataset_dir)
    targets = torch.cat([data[i]["target"].flatten(1) for i in range(len(data))], dim=1)
    mean, std = latent_statistics(data)
    torch.testing.assert_close(mean, targets.mean(1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std, targets.std(1, unbiased=False), atol=1e-4, rtol=1e-4)
    index = json.loads((refiner_dataset_dir / "index.json").read_text())
    assert [s["latent_size"] for s in index["shards"]] == [[8, 8], [4, 8], [8, 8]]


def _toy_build(output, scene_dir, **overrides) -> MakeDatasetConfig:
    # A shared scene at two fractions and one procedural scene (made in a worker too) at another.
    base = dict(
        output=output,
        scenes=(scene_dir,),
        train_fractions=(1.0, 0.5),
        procedural=1,
        procedural_seed=4,
        procedural_views=5,
        procedural_resolution=32,
        procedural_fractions=(0.5,),
        steps=2,
        device="cpu",
        trainer=LatentSplatTrainerConfig(densify=False, rgb_downscale=2),
    )
    return MakeDatasetConfig(**{**base, **overrides})


def test_two_workers_build_the_same_dataset_as_one(tiny_scene_dir, tmp_path):
    make_dataset(_toy_build(tmp_path / "one", tiny_scene_dir))
    make_dataset(_toy_build(tmp_path / "two", tiny_scene_dir, workers=2))
    one, two = read_index(tmp_path / "one"), read_index(tmp_path / "two")
    keys = ["tiny@1", "tiny@0.5", "procedural-004@0.5"]
    assert [u["key"] for u in one["units"]] == keys and [u["key"] for u in two["units"]] == keys  # plan order
    assert len(one["samples"]) == len(two["samples"]) == 1 + 6 + 3
    strip = lambda s: {k: v for k, v in s.items() if k not in ("rgb_psnr", "rgb_ssim")}  # noqa: E731
    assert [strip(s) for s in one["samples"]] == [strip(s) for s in two["samples"]]
    assert all(0 < s["rgb_psnr"] < 60 and 0 < s["rgb_ssim"] <= 1 for s in two["samples"])
    assert [s["file"] for s in one["shards"]] == [s["file"] for s in two["shards"]]
    a, b = RefinerDataset(tmp_path / "one"), RefinerDataset(tmp_path / "two")
    for i in range(len(a)):
        # Same seeds per unit: the same data, up to thread-count rounding (the workers run 1 thread each here).
        torch.testing.assert_close(a[i]["target"], b[i]["target"], atol=2e-2, rtol=0)
        torch.testing.assert_close(a[i]["render"], b[i]["render"], atol=5e-2, rtol=0)
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert one["samples"][0]["rgb_psnr"] == pytest.approx(two["samples"][0]["rgb_psnr"], abs=0.05)

    # Resume with workers: nothing left to build, the index is untouched (no worker is started).
    make_dataset(_toy_build(tmp_path / "two", tiny_scene_dir, workers=2))
    assert read_index(tmp_path / "two") == two


@pytest.mark.parametrize("workers", [1, 2])
def test_max_seconds_starts_no_unit_after_the_budget_and_a_rerun_builds_the_rest(
    tiny_scene_dir, tmp_path, workers, monkeypatch
):
    from types import SimpleNamespace

    from splatent_viewer.refiner_training import build_dataset

    # The build's clock stands still until the first unit is committed, then jumps past the 0.5 s budget:
    # the first jobs are handed out at once (one in process, one per worker), no later one starts.
    clock = {"now": 0.0}
    monkeypatch.setattr(build_dataset, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    commit = DatasetWriter.commit

    def commit_then_time_passes(self, record):
        commit(self, record)
        clock["now"] = 10.0

    monkeypatch.setattr(DatasetWriter, "commit", commit_then_time_passes)
    out = tmp_path / "ds"
    make_dataset(_toy_build(out, tiny_scene_dir, workers=workers, max_seconds=0.5))
    first = read_index(out)
    built = [u["key"] for u in first["units"]]
    assert built == (["tiny@1"] if workers == 1 else ["tiny@1", "tiny@0.5"])
    assert not (out / "scenes" / "procedural-004" / "transforms.json").exists()  # not started either
    assert len(first["samples"]) == sum(u["num_samples"] for u in first["units"])
    make_dataset(_toy_build(out, tiny_scene_dir, workers=workers))
    assert [u["key"] for u in read_index(out)["units"]] == ["tiny@1", "tiny@0.5", "procedural-004@0.5"]


def test_a_failing_worker_stops_the_build_with_one_error_and_a_valid_index(tiny_scene_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "transforms.json").write_text('{"frames": "not a list"}')
    config = _toy_build(
        tmp_path / "ds",
        tiny_scene_dir,
        scenes=(tiny_scene_dir, broken),
        train_fractions=(0.5,),
        procedural=0,
        workers=2,
    )
    with pytest.raises(SplatentError, match=r"worker failed on unit broken@0\.5: .*rerun the same command to resume"):
        make_dataset(config)
    index = read_index(tmp_path / "ds")  # still a valid dataset: whatever finished is committed, nothing half-written
    assert {u["key"] for u in index["units"]} <= {"tiny@0.5"}
    assert len(index["samples"]) == sum(u["num_samples"] for u in index["units"])


def test_reorder_units_moves_shards_and_samples_together(refiner_dataset_dir, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(refiner_dataset_dir, root)
    before = RefinerDataset(root)
    items = {(before[i]["scene"], before[i]["view"]): before[i]["target"] for i in range(len(before))}
    writer = DatasetWriter(root, codec="taef2", latent_channels=32, downscale=8)
    writer.reorder_units(["c@1", "a@1", "b@1"])
    after = RefinerDataset(root)
    assert after.scene_names() == ["c", "a", "b"] and [s["view"] for s in after.samples] == [5, 0, 1, 2, 3, 4]
    for i in range(len(after)):
        assert torch.equal(after[i]["target"], items[after[i]["scene"], after[i]["view"]])
    with pytest.raises(ValueError, match="every unit key once"):
        writer.reorder_units(["c@1", "a@1"])


@pytest.mark.parametrize(("gpus", "started", "expected"), [(1, 0, 0), (1, 3, 0), (2, 0, 0), (2, 3, 1)])
def test_a_cuda_worker_sets_an_indexed_device(monkeypatch, gpus, started, expected):
    """`--device cuda` on one GPU set_device'd the index-less "cuda", which torch refuses (every worker died at
    start on an H100, 2026-12-07); several GPUs go round-robin by start order."""
    import multiprocessing

    from splatent_viewer.refiner_training import build_dataset

    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: chosen.append(dev))
    monkeypatch.setattr(build_dataset.signal, "signal", lambda *a: None)  # keep this process's Ctrl+C
    monkeypatch.setattr(build_dataset.threading, "Thread", lambda **kw: type("T", (), {"start": lambda self: None})())
    threads = torch.get_num_threads()
    try:
        build_dataset._init_worker(threads, "cuda", multiprocessing.Value("i", started))
    finally:
        torch.set_num_threads(threads)
    assert chosen == [torch.device("cuda", expected)] and chosen[0].index is not None
    assert build_dataset._WORKER.pop("device") == torch.device("cuda", expected)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc (Linux)")
def test_a_worker_ends_when_its_main_process_is_killed(tmp_path):
    """`kill -9` of make-dataset must not leave its workers building on (they ignore Ctrl+C, which the main process
    handles, so nothing else would stop them)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from splatent_viewer.refiner_training.build_dataset import _init_worker\n"
        "if __name__ == '__main__':\n"
        "    ctx = multiprocessing.get_context('spawn')\n"
        "    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker, initargs=(1, 'cpu', ctx.Value('i', 0)))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 120)\n"
        "    time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its killed main process"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie that nobody reaps counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
