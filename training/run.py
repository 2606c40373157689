"""One training run from a checked config: claim the run directory, load and check the data, train (or resume),
and write the run's summary (``done.json``). Under ``torchrun --nproc_per_node N`` every rank trains (DDP); rank 0
owns the directory, logs, evaluates and saves."""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from seqrl.agents.checkpoint import find_checkpoint, load_checkpoint
from seqrl.agents.kinds import AGENTS
from seqrl.agents.scoring import env_maker
from seqrl.core.command import os_error_text, stopped_by
from seqrl.core.errors import SeqRLError
from seqrl.core.files import read_yaml
from seqrl.core.runtime import machine_summary, seed_everything
from seqrl.core.tasks import Task, get_task
from seqrl.datasets import TrajectoryDataset, resolve_dataset
from seqrl.datasets.d4rl import default_cache_dir
from seqrl.envs import actions_outside, check_dims, make_env

from .config import TrainConfig, check_config
from .distributed import DistInfo, init_distributed, max_param_difference
from .rundir import (DATA_IDENTITY, Claim, RunName, RunSummary, check_resume, claim_run_dir, describe_data,
                     logged_median, remove_if_empty)
from .trainer import Diverged, EvalRecord, Trainer, resolve_targets


def check_resume_request(cfg: TrainConfig) -> list[str]:
    """On --resume: the flags given may not change what the run is; returns the changes that may happen."""
    assert cfg.resume is not None
    if cfg.run_dir is not None and Path(cfg.run_dir).resolve() != Path(cfg.resume).resolve():
        raise SeqRLError(f"--resume {cfg.resume} continues the run in its own directory; drop --run-dir {cfg.run_dir}.")
    saved = read_yaml(cfg.resume / "config.yaml", "The run's config")
    changes = check_resume(saved, cfg.to_dict(), cfg.resume)
    done = RunSummary.read(cfg.resume)
    if done is not None and isinstance(done.updates, int) and cfg.steps <= done.updates:
        raise SeqRLError(f"--resume {str(cfg.resume)!r}: the run already finished its {done.updates} updates. "
                         f"Pass --steps N with N > {done.updates} to train it further, or evaluate it: "
                         f"python evaluate.py {cfg.resume}")
    return changes


@dataclass
class Progress:
    """How far a run got, for the one line that says where it stopped and how to go on from there."""

    run_dir: Path
    steps: int
    resume: bool
    trainer: Trainer | None = None

    def kept(self) -> str:
        """`` at update N of M; its last checkpoint (...) is intact. Continue with: ...``, or what else holds."""
        t = self.trainer
        at = "" if t is None else f" at update {t.step} of {self.steps}"
        if t is not None and t.saved_step is not None:
            return (f"{at}; its last checkpoint ({self.run_dir / 'last.pt'}, update {t.saved_step}) is intact. "
                    f"Continue with: python train_offline.py --resume {self.run_dir}")
        if self.resume:
            return (f"{at} before training resumed; {self.run_dir} is as it was. Continue with: "
                    f"python train_offline.py --resume {self.run_dir}")
        when = " before its first checkpoint" if t else " before training started"
        return f"{at}{when}; nothing of the run is kept. Run the same command again"

    def diverged(self) -> str:
        """What a diverged run leaves: its last checkpoint (written before it diverged) or nothing, and no done.json."""
        t = self.trainer
        if t is not None and t.saved_step is not None:
            return (f"Its last checkpoint ({self.run_dir / 'last.pt'}, update {t.saved_step}, finite) is kept; the run "
                    "is not finished. Train again with other settings in another --run-dir (or --overwrite this one).")
        return "Nothing of it was checkpointed. Train again with other settings (the same --run-dir takes the new run)."


def train(cfg: TrainConfig) -> Path:
    """Train the run ``cfg`` describes; returns its directory."""
    check_config(cfg)  # every flag in range, none ignored or contradictory, a known backbone: before any work
    resume_changes = check_resume_request(cfg) if cfg.resume else []
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    dist_info, device = init_distributed(cfg.device)
    run_dir = Path(cfg.resume or cfg.run_dir or Path("runs") / str(RunName.new(cfg)))
    new_dir = not run_dir.exists()
    # rank 0 owns the directory: locked while it trains; a directory with a run is refused (see rundir)
    claim = claim_run_dir(run_dir, resume=bool(cfg.resume), overwrite=cfg.overwrite) if dist_info.is_main else None
    progress = Progress(run_dir, cfg.steps, bool(cfg.resume))
    try:
        return _train(cfg, dist_info, device, run_dir, resume_changes, claim, progress)
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM (seqrl.core.command): say where it stopped, what is kept
        stop = stopped_by(e)
        stop.said = f"stopped by {stop.name}{progress.kept()}."
        raise stop from None
    except OSError as e:  # a full disk, a path made read-only under the run: the same, with what went wrong
        raise SeqRLError(f"{os_error_text(e)}. Training stopped{progress.kept()}.") from None
    except Diverged as e:  # a failed run: what went non-finite, what to try, what is kept
        raise SeqRLError(f"{e} {progress.diverged()}") from None
    finally:
        if claim is not None:
            claim.release()
        if new_dir and dist_info.is_main:  # nothing written: leave no empty directory
            remove_if_empty(run_dir)


def _train(cfg: TrainConfig, dist_info: DistInfo, device: torch.device, run_dir: Path,
           resume_changes: list[str], claim: Claim | None, progress: Progress) -> Path:
    seed_everything(cfg.seed)  # the same initial weights on every rank
    task = get_task(cfg.env) if cfg.env else None
    print = builtins.print if dist_info.is_main else (lambda *a, **k: None)  # noqa: A001 (rank 0 speaks)

    t0 = time.perf_counter()
    resolved = resolve_dataset(cfg.dataset, cfg.env, cfg.d4rl_cache or default_cache_dir(), cfg.download)
    data = resolved.data
    print(f"[seqrl] dataset: {resolved.how}")
    print(f"[seqrl]          {data.summary()}  (loaded in {time.perf_counter() - t0:.1f}s)")
    if cfg.eval_env:  # the dataset's info stays the dataset's; the run (config, checkpoints) keeps the eval env
        print(f"[seqrl] evaluating in {cfg.eval_env} (--eval-env) instead of the dataset's env")
    check_data(cfg, task, data, print)
    targets, targets_how = resolve_targets(cfg, task, data)

    trainer = progress.trainer = Trainer(cfg, data, targets, device, run_dir, dist_info)
    if cfg.resume:
        _, payload = load_checkpoint(find_checkpoint(cfg.resume, "last"), device)
        check_checkpoint(payload, cfg, data, print)
        trainer.restore(payload)
        print(f"[seqrl] resuming {run_dir} at update {trainer.step}"
              + (f"; changed on resume: {'; '.join(resume_changes)}" if resume_changes else ""))
    elif trainer.critic_loaded:
        print(f"[seqrl] critic: {trainer.critic_loaded}")
    print(
        f"[seqrl] agent {cfg.label()}: {trainer.num_params:,} parameters on {device}; env {trainer.bundle().env_id}; "
        f"targets {', '.join(f'{t:g}' for t in targets) or '-'} ({targets_how}); {cfg.steps} updates; run dir {run_dir}"
    )
    machine = machine_summary(device)
    print(f"[seqrl] machine: {machine['cpu']} ({machine['cores']} cores; {machine['isa'] or 'ISA unknown'}), "
          f"{machine['threads']} torch thread(s), "
          f"device {machine['device']}, torch {machine['torch']}, python {machine['python']}, "
          f"mujoco {machine['mujoco']}, gymnasium {machine['gymnasium']}, numpy {machine['numpy']}")
    if claim is not None:  # every check of the new run passed: now the run it replaces goes
        claim.clear()
    history = trainer.train()
    wall = trainer.wall_s()  # every process of the run, up to the checkpoint each resumed from
    if dist_info.enabled:
        diff = max_param_difference(trainer.model)
        if diff != 0.0:
            raise SeqRLError(f"DDP ranks diverged: parameters differ by up to {diff:g} after training.")
        print(f"[seqrl] {dist_info.world_size} ranks: parameters identical after {trainer.step} updates")
        if not dist_info.is_main:
            return run_dir
    last, best = history[-1], max(history, key=lambda h: h.score)
    RunSummary(dataset=data.info.name, agent=cfg.label(), targets=targets, data=data.score_summary(),
               updates=trainer.step, wall_s=wall, params=trainer.num_params,
               # median over the run's log points, every process of it (a resumed run's events span all)
               updates_per_s=logged_median(run_dir, "charts/updates_per_s"),
               machine=machine,  # the last process's: a resumed run may have trained partly elsewhere
               fast_path=trainer.fast.summary(),
               last=last.to_dict(), best=best.to_dict()).write(run_dir)
    print(
        f"[seqrl] done in {wall / 60:.1f} min. last evaluation (step {last.step}): {eval_summary(last)}; "
        f"best (step {best.step}): {eval_summary(best)}. Evaluate again with: python evaluate.py {run_dir}"
    )
    return run_dir


def check_data(cfg: TrainConfig, task: Task | None, data: TrajectoryDataset, print: Callable[..., None]) -> None:
    """What the run says it trains on is what it loaded: --env names the data's own task (by the data's env, or by
    the task env's observation and action sizes where the data names no env), the env it is evaluated in takes the
    data's sizes, the data has reference scores and episodes as long as the window; actions outside the env's
    action space are said (a warning)."""
    if task is not None and data.info.task and data.info.task != task.name:
        raise SeqRLError(f"--env {cfg.env} does not match the dataset: {data.info.name!r} is {data.info.task} data "
                         f"(its env {data.info.env_id or 'unnamed'}). Pass --env {data.info.task}: the env names the "
                         "run and picks its evaluation and DT's targets.")
    if task is not None and not data.info.task:
        env = make_env(task.maker_env_id, dataset_name=data.info.name)
        check_dims(env, data.obs_dim, data.act_dim, data.info.name)
        env.close()
    data.info.require_reference()
    data.check_context(cfg.context_len)
    env = env_maker(data.info, cfg.eval_env)()
    check_dims(env, data.obs_dim, data.act_dim, data.info.name, "--eval-env" if cfg.eval_env else "--env")
    outside = actions_outside(env, data.actions, data.info.name)
    env.close()
    if outside:
        print(f"[seqrl] warning: {outside}")


def check_checkpoint(payload: dict[str, Any], cfg: TrainConfig, data: TrajectoryDataset,
                     print: Callable[..., None]) -> None:
    """On --resume: the run's last.pt is this run's (its agent kind and model) and was trained on the data loaded
    now (the same name, size and content fingerprint); else refused, naming both."""
    where = cfg.resume
    model = payload.get("model_config", {})
    model = model.get("model") if isinstance(model.get("model"), dict) else model  # a kind of several groups
    kind = payload.get("agent")
    theirs = kind, model.get("backbone") if kind in AGENTS and "model" in AGENTS[kind].groups else None
    ours = cfg.agent, cfg.architecture if cfg.architecture != cfg.agent else None
    if theirs != ours:
        raise SeqRLError(f"--resume {where}: its last.pt holds a {'/'.join(filter(None, theirs))} agent, but the run's "
                         f"config.yaml says {'/'.join(filter(None, ours))}: the checkpoint is another run's. Put this "
                         "run's own last.pt back, or start a new run (another --run-dir).")
    saved, now = payload.get("data"), data.identity()
    if saved is None:
        print(f"[seqrl] note: {where}/last.pt predates data fingerprints; the data could not be compared with the run's")
        return
    if {k: saved.get(k) for k in DATA_IDENTITY} != {k: now[k] for k in DATA_IDENTITY}:
        raise SeqRLError(
            f"--resume {where}: the data is not the run's. The run trained on {describe_data(saved)}; loaded now: "
            f"{describe_data(now)}. Point --dataset (or MINARI_DATASETS_PATH, SEQRL_D4RL_CACHE) at the run's data, or "
            "start a new run on this data (another --run-dir).")


def eval_summary(record: EvalRecord) -> str:
    """An evaluation's normalized score per (target, rollout), and their mean (what "best" ranks by) when there
    are several."""
    several_rollouts = len({r.rollout for r in record.results}) > 1
    parts = [f"{r.normalized_mean:.1f}" + ("" if r.target is None else f" at R={r.target:g}")
             + (f" {r.rollout}" if several_rollouts else "") for r in record.results]
    return ", ".join(parts) + (f" (mean {record.score:.1f})" if len(parts) > 1 else "") + " normalized"
