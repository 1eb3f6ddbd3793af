"""Data-parallel refiner training through Hugging Face accelerate (DDP), checked with 2 CPU processes.

``accelerate launch --multi_gpu`` starts the processes through torchrun; on a machine without CUDA
the trainer's Accelerator runs them on the CPU with the gloo backend (``--cpu`` would start one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from splatent_viewer.refine import load_refiner


def test_accelerate_launch_trains_with_two_processes(refiner_dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "splatent_viewer.scripts.refiner_cli",
        "train",
        "--dataset",
        str(refiner_dataset_dir),
        "--output",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "1",
        "--crop",
        "4",
        "--checkpoint-every",
        "1000",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    log = json.loads((out / "train_log.json").read_text())
    assert log["num_processes"] == 2
    assert [row["step"] for row in log["steps"]] == [1, 2]
    # Written once by the main process, loadable, and no longer the untrained identity (the output conv moved).
    refiner = load_refiner(out / "refiner", device="cpu", dtype=torch.float32)
    assert any(p.abs().sum() > 0 for n, p in refiner.named_parameters() if "conv_out" in n)
