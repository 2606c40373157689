"""Exact resume after SIGKILL, and atomic checkpoint writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import REPO

STEPS = 200  # the kill comes at the first checkpoint (update 50); the rest is resumed
ARGS = ["--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--steps", str(STEPS), "--checkpoint-every", "50",
        "--eval-every", "100000", "--eval-episodes", "1", "--context-len", "5", "--width", "16", "--n-layers", "1",
        "--batch-size", "8", "--log-every", "1", "--warmup-steps", "20", "--lr", "1e-3", "--device", "cpu",
        "--precision", "fp32"]


def losses(run_dir) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()  # honours purge_step
    out: dict[int, float] = {}
    for e in acc.Scalars("losses/action_mse"):
        out[e.step] = e.value  # later files win
    return out


def train(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train_offline.py", *args], cwd=REPO, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_gives_the_uninterrupted_run(data_root, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    p = train([*ARGS, "--run-dir", str(full)])
    assert p.wait(timeout=600) == 0, p.stderr.read()

    p = train([*ARGS, "--run-dir", str(cut)])
    deadline = time.time() + 300
    while not (cut / "last.pt").is_file():  # kill -9 as soon as the first checkpoint exists
        assert p.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    killed_at = torch.load(cut / "last.pt", weights_only=False)["step"]
    assert killed_at < STEPS

    p = train(["--resume", str(cut)])
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert f"resuming {cut} at update {killed_at}" in out

    killed_wall = torch.load(cut / "last.pt", weights_only=False)["wall_s"]
    done = json.loads((cut / "done.json").read_text())  # the time of both processes, the first's up to its checkpoint
    assert done["wall_s"] > killed_wall > 0

    a, b = losses(full), losses(cut)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    np.testing.assert_array_equal([a[s] for s in range(1, STEPS + 1)], [b[s] for s in range(1, STEPS + 1)])
    wa = torch.load(full / "last.pt", weights_only=False)["model"]
    wb = torch.load(cut / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


DIES_AT_FIRST_CHECKPOINT = """
import os, sys, time
from tensorboard.summary.writer import record_writer
write = record_writer.RecordWriter.write
def slow_write(self, data):  # a slow disk: TensorBoard's writer thread falls behind the training loop
    time.sleep(0.02)
    write(self, data)
record_writer.RecordWriter.write = slow_write
import seqrl.training.trainer as t
def die_at_checkpoint(path, *a, **k):  # killed as the first checkpoint is written (os._exit, as SIGKILL: no
    os._exit(9)                         # writer.close(), no atexit): what was logged before it must be on disk
t.save_checkpoint = die_at_checkpoint
from seqrl.cli.train import main
sys.exit(main())
"""


def test_the_logs_up_to_a_checkpoint_are_on_disk_before_it_is_written(data_root, tmp_path):
    # TensorBoard's writer queues events and writes them from a thread: without a flush before each checkpoint, a run
    # killed just after one lost the events still queued before it, and its resumed curve had a gap there.
    run = tmp_path / "run"
    p = subprocess.run([sys.executable, "-c", DIES_AT_FIRST_CHECKPOINT, *ARGS, "--run-dir", str(run)], cwd=REPO,
                       env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 9, p.stderr
    assert sorted(losses(run)) == list(range(1, 51))  # the first checkpoint is at update 50


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from seqrl.agents import AgentBundle, ModelConfig, save_checkpoint
    from seqrl.datasets import DatasetInfo

    m = ModelConfig(width=8, n_layers=1).create(3, 1)
    info = DatasetInfo("x", "d4rl", "-", "hopper", "Hopper-v5")
    bundle = AgentBundle(m, np.zeros(3), np.ones(3), 1.0, [1.0], info, step=1, config={})
    save_checkpoint(tmp_path / "last.pt", bundle)
    before = (tmp_path / "last.pt").read_bytes()

    def dies_midway(self, data):  # the checkpoint is serialized in memory, then written: killed while writing
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", dies_midway)
    bundle.step = 2
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last.pt", bundle)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_wall_time_adds_up_over_the_processes_of_a_run(tmp_path, monkeypatch):
    from seqrl.agents import load_checkpoint
    from seqrl.training.trainer import Trainer
    from seqrl.agents import ModelConfig
    from seqrl.training.config import TrainConfig
    from test_recipe import dataset

    now = [100.0]
    monkeypatch.setattr(Trainer, "clock", staticmethod(lambda: now[0]))
    cfg = TrainConfig(env="hopper", model=ModelConfig(backbone="mingru", context_len=4, width=16, n_layers=1), batch_size=4, steps=3,
                      warmup_steps=0, device="cpu")
    first = Trainer(cfg, dataset(), [10.0], torch.device("cpu"), tmp_path)
    now[0] = 130.0
    first.save("last.pt")  # 30 s in, then killed; what it did after its checkpoint is lost, and not counted
    _, payload = load_checkpoint(tmp_path / "last.pt")
    assert payload["wall_s"] == 30.0
    now[0] = 500.0  # the gap between the processes is not counted either
    second = Trainer(cfg, dataset(), [10.0], torch.device("cpu"), tmp_path)
    second.restore(payload)
    now[0] = 520.0
    assert second.wall_s() == 50.0
