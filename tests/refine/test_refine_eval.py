"""Refiner evaluation: rows per scene and k, pixel-space metrics against the ground truth, the refiner actually used."""

from __future__ import annotations

import json

import pytest
import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, RefinerConfig, save_refiner
from splatent_viewer.refine.dataset import RefinerDataset
from splatent_viewer.refine.evaluate import RefinerEvalConfig, evaluate_refiner, run_eval
from splatent_viewer.training.losses import psnr

TINY_UNET = EmbeddedUNetConfig(block_out_channels=(32,), attention_from_level=1)


def test_eval_writes_one_row_per_scene_and_k_plus_all(refiner_dataset_dir, tmp_path):
    # An untrained embedded refiner is the identity: enhanced must equal decoded.
    save_refiner(RefinerConfig(embedded=TINY_UNET, num_references=3).setup(), tmp_path / "identity")
    table = tmp_path / "table.md"
    rows = run_eval(RefinerEvalConfig(dataset=refiner_dataset_dir, refiner=tmp_path / "identity", output=table,
                                      scenes=("b", "c"), ks=(0, 3), device="cpu"), progress=False)
    assert [(r["scene"], r["k"], r["views"]) for r in rows] == [("b", 0, 2), ("b", 3, 2), ("c", 0, 1), ("c", 3, 1),
                                                                 ("all", 0, 3), ("all", 3, 3)]
    for r in rows:
        assert r["enhanced_psnr"] == pytest.approx(r["decoded_psnr"], abs=0.01)
        assert 5 < r["decoded_psnr"] < 40 and 5 < r["roundtrip_psnr"] < 40
    lines = table.read_text().splitlines()
    assert lines[2].startswith("| scene | views | k | decoded PSNR | enhanced PSNR")
    assert [line.split("|")[1].strip() for line in lines[4:]] == ["b", "b", "c", "c", "all", "all"]
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
    rows, views = evaluate_refiner(dataset=dataset, refiner=refiner, codec=load_codec("taef2"), ks=(0, 3), progress=False)
    k0, k3 = (v for v in views if v["scene"] == "c")
    assert abs(k0["enhanced_psnr"] - k0["decoded_psnr"]) > 0.01
    assert k0["enhanced_psnr"] != k3["enhanced_psnr"] and (k0["num_refs"], k3["num_refs"]) == (0, 3)
    with pytest.raises(SplatentError, match="outside 0..3"):
        evaluate_refiner(dataset=dataset, refiner=refiner, codec=load_codec("taef2"), ks=(5,), progress=False)
