"""Trained-scene run folders: save → load round trip, reference bank, and bad-folder errors."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import render_frame
from splatent_viewer.trained import REFERENCES_FILE, SPLATS_FILE, ReferenceBank, load_trained_scene


def test_run_folder_round_trip_renders_identically(tiny_trained_scene_dir):
    a = load_trained_scene(tiny_trained_scene_dir, refiner="none")
    b = load_trained_scene(tiny_trained_scene_dir / SPLATS_FILE, refiner="none")
    assert a.codec.name == "taef2" and a.refiner is None and a.scene_path is not None
    assert a.train_indices is not None and len(a.train_indices) == len(a.references)
    c2w, K = a.references.c2w[0], a.references.Ks[0]
    fa = render_frame(scene=a, c2w=c2w, K=K, width=64, height=64, outputs=("decoded", "rgb"))
    fb = render_frame(scene=b, c2w=c2w, K=K, width=64, height=64, outputs=("decoded", "rgb"))
    torch.testing.assert_close(fa.decoded, fb.decoded, atol=0, rtol=0)
    # The trained latent render at a training view is close to that view's encoded latent (it was fitted to it).
    err = (fa.latent - a.references.latent(0)).abs().mean() / a.references.latent(0).abs().mean()
    assert err < 0.6


def test_reference_bank_nearest_and_padding():
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.0, 1.0, 3.0])
    lat = [torch.randn(4, 2, 3), torch.randn(4, 3, 2), torch.randn(4, 2, 2)]
    bank = ReferenceBank.from_latents(c2w=c2w, Ks=torch.eye(3).repeat(3, 1, 1), latents=lat, downscale=8)
    assert bank.latents.shape == (3, 4, 3, 3)
    for i in range(3):
        torch.testing.assert_close(bank.latent(i), lat[i])
    q = torch.eye(4)
    q[0, 3] = 2.6
    assert bank.nearest(c2w=q, k=2) == [2, 1]
    assert bank.nearest(c2w=c2w[0], k=5) == [1, 2]  # the query's own view is skipped


def test_bad_run_folders(tmp_path, tiny_trained_scene_dir):
    with pytest.raises(SplatentError, match="does not exist"):
        load_trained_scene(tmp_path / "nope")
    with pytest.raises(SplatentError, match="has no splats.safetensors"):
        load_trained_scene(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / SPLATS_FILE).write_bytes((tiny_trained_scene_dir / SPLATS_FILE).read_bytes())
    with pytest.raises(SplatentError, match="references.safetensors does not exist"):
        load_trained_scene(run)
    (run / REFERENCES_FILE).write_bytes(b"garbage")
    with pytest.raises(SplatentError, match="not a readable safetensors file"):
        load_trained_scene(run)


def test_refiner_label_says_which_refiner_renders_the_enhanced_view(tiny_trained_scene_dir, tmp_path):
    import shutil

    from splatent_viewer.refine import save_refiner
    from splatent_viewer.refine.refiner import guided_from
    from splatent_viewer.trained import ADAPTED_REFINER_DIR

    assert load_trained_scene(tiny_trained_scene_dir, refiner="none").refiner_label == "none"
    shipped = load_trained_scene(tiny_trained_scene_dir, refiner="embedded")
    assert shipped.refiner_label == "generic (shipped), pure-latent"
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    save_refiner(guided_from(shipped.refiner), run / ADAPTED_REFINER_DIR)
    assert load_trained_scene(run, refiner="auto").refiner_label == "adapted to this scene, RGB-guided"
    save_refiner(shipped.refiner, tmp_path / "mine")
    assert load_trained_scene(run, refiner=tmp_path / "mine").refiner_label.endswith("mine, pure-latent")
