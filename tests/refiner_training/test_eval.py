"""Refiner evaluation: rows per scene and k, pixel-space metrics against the ground truth, the refiner actually used."""

from __future__ import annotations

import json

import pytest
import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, RefinerConfig, save_refiner
from splatent_viewer.refiner_training.dataset import RefinerDataset
from splatent_viewer.refiner_training.evaluate import RefinerEvalConfig, evaluate_refiner, run_eval
from splatent_viewer.training.losses import psnr

TINY_UNET = EmbeddedUNetConfig(block_out_channels=(32,), attention_from_level=1)


def test_eval_writes_one_row_per_scene_and_k_plus_all(refiner_dataset_dir, tmp_path):
    # An untrained embedded refiner is the identity: enhanced must equal decoded.
    save_refiner(RefinerConfig(embedded=TINY_UNET, num_references=3).setup(), tmp_path / "identity")
    table = tmp_path / "table.md"
    rows = run_eval(
        RefinerEvalConfig(
            dataset=refiner_dataset_dir,
            refiner=tmp_path / "identity",
            output=table,
            scenes=("b", "c"),
            ks=(0, 3),
            device="cpu",
        ),
        progress=False,
    )
    assert [(r["scene"], r["k"], r["views"]) for r in rows] == [
        ("b", 0, 2),
        ("b", 3, 2),
        ("c", 0, 1),
        ("c", 3, 1),
        ("all", 0, 3),
        ("all", 3, 3),
    ]
    for r in rows:
        assert r["enhanced_psnr"] == pytest.approx(r["decoded_psnr"], abs=0.01)
        assert 5 < r["decoded_psnr"] < 40 and 5 < r["roundtrip_psnr"] < 40
    lines = table.read_text().splitlines()
    assert lines[2].startswith(
        "| scene | train fraction | views | k | decoded PSNR | enhanced PSNR | Δ PSNR | RGB splats PSNR"
    )
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[4:]]
    assert [c[0] for c in cells] == ["b", "b", "c", "c", "all", "all"]
    # The fixture predates the RGB-splat baseline (no rgb_psnr/rgb_ssim, no unit fraction): "–", not a crash.
    assert all(c[1] == "–" and c[7] == "–" and c[10] == "–" for c in cells)
    assert all(r["rgb_psnr"] is None and r["rgb_ssim"] is None and r["fraction"] is None for r in rows)
    saved = json.loads(table.with_suffix(".json").read_text())
    assert saved["rows"] == rows and len(saved["views"]) == 6

    # The decoded PSNR of scene c is the decoded render against the stored ground-truth image.
    item = RefinerDataset(refiner_dataset_dir, scenes=["c"])[0]
    with torch.no_grad():
        decoded = load_codec("taef2").decode(item["render"][None]).clamp(0, 1)
    assert rows[2]["decoded_psnr"] == pytest.approx(psnr(decoded, item["image"][None]), abs=1e-4)


def test_eval_uses_the_refiner_and_its_references(refiner_dataset_dir):
    refiner = RefinerConfig(embedded=TINY_UNET, num_references=3).setup()
    with torch.no_grad():  # a non-identity refiner whose output depends on the whole grid
        torch.nn.init.normal_(refiner.backbone.unet.conv_out.weight, std=0.05)
    dataset = RefinerDataset(refiner_dataset_dir, scenes=["c"])
    rows, views = evaluate_refiner(
        dataset=dataset, refiner=refiner, codec=load_codec("taef2"), ks=(0, 3), progress=False
    )
    k0, k3 = (v for v in views if v["scene"] == "c")
    assert abs(k0["enhanced_psnr"] - k0["decoded_psnr"]) > 0.01
    assert k0["enhanced_psnr"] != k3["enhanced_psnr"] and (k0["num_refs"], k3["num_refs"]) == (0, 3)
    with pytest.raises(SplatentError, match="outside 0..3"):
        evaluate_refiner(dataset=dataset, refiner=refiner, codec=load_codec("taef2"), ks=(5,), progress=False)


def test_eval_splits_rows_by_training_fraction_and_reports_the_rgb_splat_baseline(tmp_path):
    from splatent_viewer.refiner_training.dataset import DatasetWriter, RefinerSample
    from splatent_viewer.refiner_training.evaluate import markdown_table

    gen = torch.Generator().manual_seed(0)

    def sample(view: int, rgb: float | None) -> RefinerSample:
        latent = lambda *shape: torch.randn(*shape, 32, 2, 2, generator=gen)  # noqa: E731
        return RefinerSample(
            target=latent(),
            render=latent(),
            refs=latent(3),
            image=torch.randint(0, 256, (16, 16, 3), generator=gen, dtype=torch.uint8),
            view=view,
            ref_views=[0, 1, 2],
            rgb_psnr=rgb,
            rgb_ssim=None if rgb is None else rgb / 100,
        )

    root = tmp_path / "ds"
    writer = DatasetWriter(root, codec="taef2", latent_channels=32, downscale=8)
    writer.add_unit(key="s@1", scene="s", info={"fraction": 1.0}, samples=[sample(0, 20.0), sample(1, 22.0)])
    writer.add_unit(key="s@0.5", scene="s", info={"fraction": 0.5}, samples=[sample(2, 10.0)])
    writer.add_unit(
        key="old@1", scene="old", info={"fraction": 1.0}, samples=[sample(3, None)]
    )  # an older dataset's unit
    refiner = RefinerConfig(embedded=TINY_UNET, num_references=3).setup()
    rows, views = evaluate_refiner(
        dataset=RefinerDataset(root), refiner=refiner, codec=load_codec("taef2"), ks=(0,), progress=False
    )
    got = [(r["scene"], r["fraction"], r["views"], r["rgb_psnr"]) for r in rows]
    assert got == [
        ("s", 1.0, 2, pytest.approx(21.0)),
        ("s", 0.5, 1, pytest.approx(10.0)),
        ("old", 1.0, 1, None),
        ("all", 1.0, 3, None),
        ("all", 0.5, 1, pytest.approx(10.0)),
    ]
    assert rows[0]["rgb_ssim"] == pytest.approx(0.21)
    assert {v["unit"] for v in views} == {"s@1", "s@0.5", "old@1"}
    # Decoded metrics are per fraction too: the 0.5 row is its one view's.
    assert rows[1]["decoded_psnr"] == pytest.approx(next(v["decoded_psnr"] for v in views if v["view"] == 2))
    lines = markdown_table(rows).splitlines()
    assert [c.strip() for c in lines[2].split("|")[1:7]] == [
        "s",
        "1",
        "2",
        "0",
        f"{rows[0]['decoded_psnr']:.2f}",
        f"{rows[0]['enhanced_psnr']:.2f}",
    ]
    assert lines[2].split("|")[8].strip() == "21.00" and lines[2].split("|")[11].strip() == "0.2100"
    assert lines[4].split("|")[8].strip() == "–"
