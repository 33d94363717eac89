"""Two-process DDP (gloo, CPU) gives the same weights as one process on the union of the two batches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from ddp_worker import PlainBatchSampler, ToyDataset, collate, ddp_config, toy_model

from seqspeech.training import Trainer, load_checkpoint
from seqspeech.training.checkpoint import step_checkpoint_name

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_ddp_matches_single_process_on_doubled_batch(tmp_path):
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        env["MASTER_PORT"],
        str(WORKER),
        str(tmp_path / "ddp"),
        str(STEPS),
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rank 1: step 4" in proc.stdout

    # only rank 0 writes
    assert (tmp_path / "ddp" / "log.jsonl").exists()
    starts = [line for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines() if '"start"' in line]
    assert len(starts) == 1 and '"world_size": 2' in starts[0]

    # same settings as the worker, one process, batches of 4 = the two ranks' halves together
    config = ddp_config(STEPS)
    Trainer(toy_model(), ToyDataset(16), PlainBatchSampler(16, 4), collate, config, tmp_path / "single").fit()

    ddp = load_checkpoint(tmp_path / "ddp" / step_checkpoint_name(STEPS))["model"]
    single = load_checkpoint(tmp_path / "single" / step_checkpoint_name(STEPS))["model"]
    initial = toy_model().state_dict()
    for name, value in single.items():
        assert torch.allclose(ddp[name], value, atol=1e-5, rtol=1e-4), name
        assert not torch.allclose(initial[name], value, atol=1e-4), name  # training moved every tensor
