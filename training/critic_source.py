"""A critic learned by another run, for a value-guided run to be guided by and hold fixed (``--critic-from``):
IQL's in-sample critic "trained on the dataset alone, then held fixed for the actor". Found (a run directory, a
checkpoint file, or a folder of runs holding the finished IQL run of this run's dataset and seed), checked (a
critic of this run's sizes, learned on the same data under the same state normalization) and copied into the
model's critic, which the trainer then holds fixed (``Critic.fix``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.agents.checkpoint import find_checkpoint
from seqrl.agents.critic import Critic
from seqrl.core.errors import SeqRLError
from seqrl.core.files import read_yaml

from .rundir import DATA_IDENTITY, RunSummary, describe_data


def train_one_first(source: Path, seed: int) -> str:
    """What to do when ``source`` holds no IQL run to take the critic from."""
    return (f"Train one first (python train_offline.py --config configs/cpu/iql-<task>.yaml --seed {seed}"
            + ("" if source == Path("runs") else f" --run-dir {source}/<name>")
            + "), give a run directory, or --critic-from None to learn the critic alongside.")


def find_critic_run(source: Path, dataset: str, seed: int) -> tuple[Path, str]:
    """The checkpoint ``source`` names: a checkpoint file, a run directory's last.pt, or in a folder of runs the
    finished IQL run of ``dataset`` (its id) and ``seed`` (the newest if several); and how it was found."""
    if source.is_file() or (source / "config.yaml").is_file():
        return find_checkpoint(source, "last"), "given"
    if not source.is_dir():
        raise SeqRLError(f"--critic-from {source}: no such run directory, checkpoint or folder of runs. "
                         + train_one_first(source, seed))
    found, unfinished = [], []
    for run in sorted(p for p in source.iterdir() if (p / "config.yaml").is_file()):
        try:
            cfg = read_yaml(run / "config.yaml")
        except SeqRLError:
            continue
        if not isinstance(cfg, dict) or cfg.get("agent") != "iql" or cfg.get("seed") != seed:
            continue
        done = RunSummary.read(run)
        if done is None:
            unfinished.append(run.name)
        elif done.dataset == dataset:
            found.append(run)
    if not found:
        waiting = f" ({', '.join(unfinished)} has not finished: wait for it, or resume it)" if unfinished else ""
        raise SeqRLError(f"--critic-from {source}: no finished IQL run of {dataset!r} with seed {seed} there{waiting}. "
                         + train_one_first(source, seed))
    newest = max(found, key=lambda p: p.name)  # names end in the run's start time (RunName)
    how = f"the finished IQL run of seed {seed} in {source}" + (f" (the newest of {len(found)})" if len(found) > 1 else "")
    return newest / "last.pt", how


def load_critic(critic: Critic, source: Path, dataset: str, seed: int, identity: dict[str, Any],
                obs_mean: np.ndarray, obs_std: np.ndarray) -> str:
    """Copy the critic of the run ``source`` finds into ``critic``; refused, saying why, unless it has one of
    ``critic``'s sizes, learned on the data of ``identity`` with this run's state statistics. Returns what was
    loaded, for the log."""
    path, how = find_critic_run(source, dataset, seed)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise SeqRLError(f"--critic-from {path}: cannot read it ({type(e).__name__}: {e}).") from None
    weights = payload.get("model", {}) if isinstance(payload, dict) else {}
    theirs = {k.removeprefix("critic."): v for k, v in weights.items() if k.startswith("critic.")}
    kind = payload.get("agent") if isinstance(payload, dict) else None
    if not theirs:
        raise SeqRLError(f"--critic-from {path}: a checkpoint of the {kind or 'unknown'} agent holds no critic; give an "
                         "IQL run (--agent iql, configs/cpu/iql-<task>.yaml) or a value-guided one.")
    ours = critic.state_dict()
    if {k: tuple(v.shape) for k, v in theirs.items()} != {k: tuple(v.shape) for k, v in ours.items()}:
        raise SeqRLError(f"--critic-from {path}: its critic has hidden layers {hidden_of(theirs)} on "
                         f"{theirs['v.0.weight'].shape[1]} state features, this run's {hidden_of(ours)} on "
                         f"{ours['v.0.weight'].shape[1]}; give --value.critic.hidden {' '.join(map(str, hidden_of(theirs)))}, "
                         "or a critic of this task.")
    saved = payload.get("data")
    if saved is None or {k: saved.get(k) for k in DATA_IDENTITY} != {k: identity[k] for k in DATA_IDENTITY}:
        raise SeqRLError(f"--critic-from {path}: its critic learned on "
                         f"{'data it does not name' if saved is None else describe_data(saved)}; this run loads "
                         f"{describe_data(identity)}. A critic guides only on its own data: give a run of this dataset.")
    if not (np.allclose(payload["obs_mean"], obs_mean) and np.allclose(payload["obs_std"], obs_std)):
        raise SeqRLError(f"--critic-from {path}: its states were normalized with other statistics than this run's "
                         "(a --val-fraction on one of the two?), so its critic would read other states; give a run "
                         "trained on the same episodes.")
    critic.load_state_dict(theirs)
    return f"{how}: {path} ({kind} run, update {payload.get('step')}), held fixed"


def hidden_of(critic_state: dict[str, Any]) -> list[int]:
    """The hidden widths of a critic's V network, read from its weights (``v.0.weight``, ``v.2.weight``, ...)."""
    layers = sorted((int(k.split(".")[1]), v) for k, v in critic_state.items() if k.startswith("v.") and k.endswith(".weight"))
    return [int(v.shape[0]) for _, v in layers[:-1]]
