"""Offline training of an agent (the Decision model, or BC): AdamW, linear warm-up, grad clipping,
optional weight EMA, periodic evaluation.

TensorBoard (CleanRL conventions): ``losses/action_mse`` (and for a kind with a critic ``losses/actor``,
``losses/total``, ``critic/td_loss``, ``critic/v_loss``, ``critic/q_data``, ``critic/v``, its guide's
``critic/q_actor_minus_data`` or ``critic/weight_mean``), ``charts/learning_rate``,
``charts/updates_per_s``, ``eval/normalized_score_<rollout>_<target>`` (``_state`` for BC), and
per evaluation ``eval/return_...``, ``eval/episode_length_...``, ``eval/x_displacement_...``,
``eval/fell_fraction_...``, ``eval/upside_down_fraction_...``; hyperparameters as a text table.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from seqrl.agents.checkpoint import AgentBundle, non_finite, save_checkpoint
from seqrl.agents.kinds import agent_kind
from seqrl.agents.model import masked_action_mse
from seqrl.agents.scoring import EvalResult, evaluate_agent, format_table
from seqrl.core.batch import WindowBatch
from seqrl.core.command import raise_pending_stop
from seqrl.core.errors import SeqRLError
from seqrl.core.files import append_jsonl, read_jsonl, write_atomic, write_jsonl
from seqrl.core.tasks import Task
from seqrl.datasets import TrajectoryDataset, WindowSampler
from seqrl.datasets.d4rl import is_d4rl_benchmark

from .config import TrainConfig
from .distributed import DistInfo
from .ema import EMA
from .critic_source import load_critic
from .fastpath import FastPath, UpdateMaker, compile_backend, prepare_compile, resolve_fast_path
from .gpt_init import gpt_init_
from .optim import make_optimizer
from .rundir import EVAL_KEYS, KEPT_DIR


class Diverged(SeqRLError):
    """Training went non-finite (its loss, gradients or weights): the run failed, and nothing non-finite was saved."""


Loss = Callable[[WindowBatch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def loss_under(model: torch.nn.Module, dtype: torch.dtype | None, device_type: str) -> Loss:
    """The training loss of ``model`` on a batch (its kind's ``training_loss``: the action MSE of the agents that
    imitate, the actor's and the critic's of those that learn a value) and its logs (TensorBoard tag -> value),
    its forward under autocast to ``dtype`` (None: float32)."""

    def loss(batch: WindowBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return model(batch)

    return loss


class TrainingLoss(torch.nn.Module):
    """The model's ``training_loss`` as a module's forward: what the update calls, and what DistributedDataParallel
    wraps (it synchronizes the gradients of what runs through its forward)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: WindowBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.model.training_loss(batch)


def hparams_markdown(cfg: dict) -> str:
    return "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in cfg.items())


def lr_lambda(warmup_steps: int, total_steps: int, schedule: str):
    """Linear warm-up from 0 over ``warmup_steps``, then constant or cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "cosine":
            progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor


PROBE_WINDOWS, PROBE_CHUNK = 1024, 256  # --val-fraction's fixed windows, and how many go through the model at once


@dataclass
class EvalRecord:
    step: int
    results: list[EvalResult]
    losses: dict[str, float] = field(default_factory=dict)  # --val-fraction: {"val": ..., "train_probe": ...}

    @property
    def score(self) -> float:
        """Mean normalized score over every (rollout, target) evaluated: what "best" ranks by."""
        return float(np.mean([r.normalized_mean for r in self.results]))

    def to_dict(self) -> dict:
        return {"step": self.step, "score": self.score, "results": [r.to_dict() for r in self.results],
                **({"losses": self.losses} if self.losses else {})}



class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        data: TrajectoryDataset,
        targets: list[float],
        device: torch.device,
        run_dir: Path,
        dist_info: DistInfo = DistInfo(),
    ) -> None:
        self.cfg, self.data, self.targets, self.device, self.run_dir = cfg, data, targets, device, run_dir
        self.dist = dist_info
        # --val-fraction: episodes held out of training, for a loss that tells over-fitting (probe_losses)
        self.train_data, self.val_data = data.split(cfg.val_fraction, cfg.seed) if cfg.val_fraction else (data, None)
        self.obs_mean, self.obs_std = self.train_data.state_stats()
        self.model = cfg.agent_config.create(data.obs_dim, data.act_dim)
        if cfg.init == "gpt":
            gpt_init_(self.model)
        self.critic_loaded = ""  # --critic-from: another run's critic, loaded (a resumed run has its own) and fixed
        if cfg.critic_from is not None:
            if not cfg.resume:
                self.critic_loaded = load_critic(self.model.critic, cfg.critic_from, data.info.name, cfg.seed,
                                                 data.identity(), self.obs_mean, self.obs_std)
            self.model.critic.fix()
        self.model.to(device)
        self.sampler = self.window_sampler(self.train_data, seed=cfg.seed + 1000 * dist_info.rank)  # per rank
        self.probes = {} if self.val_data is None else {  # fixed windows, the same at every evaluation
            name: self.window_sampler(d, seed=cfg.seed + 7919).sample(PROBE_WINDOWS)
            for name, d in (("train_probe", self.train_data), ("val", self.val_data))}
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.train_model: torch.nn.Module = TrainingLoss(self.model)  # what the update runs: DDP-wrapped under torchrun
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(self.train_model,
                                                       device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay, cfg.decay_groups, device)
        # the parameters --grad-clip bounds: all but those that say otherwise (a critic's: _optim clip False)
        self.clipped = [p for p in self.model.parameters() if getattr(p, "_optim", {}).get("clip", True)]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.warmup_steps, cfg.steps, cfg.lr_schedule)
        )
        self.fast = self.resolve_fast_path()
        # forward + loss, compiled by inductor when the fast path says so (the first call compiles)
        self.loss_fn = self.forward_loss
        if self.fast.compile:
            self.compile_cache = prepare_compile()
            self.loss_fn = torch.compile(self.forward_loss, dynamic=False, backend=compile_backend())
        self.step = 0
        self.saved_step: int | None = None  # the update of the last.pt on disk (None: none yet)
        self.history: list[EvalRecord] = []
        self.writer: SummaryWriter | None = None
        self.diag_batch = None
        # wall time of the run over all its processes: those before this one up to the checkpoint it resumed from
        # (restore), plus this one's since here
        self.wall_s_before, self._started = 0.0, self.clock()

    clock = staticmethod(time.perf_counter)  # seconds; a test may replace it

    def wall_s(self) -> float:
        """Seconds of training so far, over every process of the run."""
        return self.wall_s_before + self.clock() - self._started

    def window_sampler(self, data: TrajectoryDataset, seed: int) -> WindowSampler:
        """Training windows of ``data`` (BC, IQL: of one step), normalized with the training data's statistics;
        for a kind that learns a value, with the transitions, rewards scaled by ``reward_scale``."""
        scale = self.reward_scale if agent_kind(self.cfg.agent).learns_values else None
        return WindowSampler(data, self.cfg.context_len, self.obs_mean, self.obs_std, self.cfg.rtg_scale,
                             self.cfg.model.max_ep_len, seed=seed, reward_scale=scale)

    @property
    def reward_scale(self) -> float:
        """1000 / (the best - the worst episode return) of the data: IQL's reward normalization for locomotion
        (Kostrikov et al. 2021, appendix; CORL), so one critic recipe fits every task."""
        returns = self.data.episode_returns()
        return 1000.0 / max(float(returns.max() - returns.min()), 1e-6)

    @torch.no_grad()
    def probe_losses(self) -> dict[str, float]:
        """Action MSE of the acting weights (dropout off) on the fixed held-out and training windows."""
        model, out = self.bundle().model, {}
        was_training = model.training
        model.eval()
        try:
            for name, batch in self.probes.items():
                sq, n = 0.0, 0
                for i in range(0, PROBE_WINDOWS, PROBE_CHUNK):
                    b = batch.rows(i, i + PROBE_CHUNK).to(self.device)
                    n_i = int(b.mask.sum())
                    sq += float(masked_action_mse(model(*model.batch_inputs(b)).float(), b.actions, b.mask)) * n_i
                    n += n_i
                out[name] = sq / max(n, 1)
        finally:
            model.train(was_training)
        return out

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def bundle(self) -> AgentBundle:
        """The agent that acts: the EMA weights when ``ema_decay`` is on, else the trained ones."""
        return AgentBundle(
            model=self.model if self.ema is None else self.ema.model,
            obs_mean=self.obs_mean,
            obs_std=self.obs_std,
            rtg_scale=self.cfg.rtg_scale,
            targets=self.targets,
            dataset=self.data.info,
            step=self.step,
            config=self.cfg.to_dict(),
            eval_env=self.cfg.eval_env,
        )

    def forward_loss(self, batch: WindowBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of one batch (B, K, ...) and its logs, under bf16 autocast when the fast path says so."""
        return loss_under(self.train_model, self.fast.autocast_dtype, self.device.type)(batch)

    def resolve_fast_path(self) -> FastPath:
        """The update's precision and compile (``fastpath``): ``auto`` times this model's update on a copy, on a
        batch of its own, with every random stream of the run left as it was; under torchrun rank 0 decides."""
        cfg = self.cfg
        name = cfg.architecture
        key = {"agent": cfg.agent, "model": cfg.agent_config.to_dict(), "obs_dim": self.data.obs_dim,
               "act_dim": self.data.act_dim, "batch_size": cfg.batch_size,
               **({"fixed_critic": True} if cfg.critic_from else {})}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            fast = resolve_fast_path(cfg.precision, cfg.compile, self.device, name, self.update_maker(), key)
        if self.dist.enabled:
            import torch.distributed as dist

            box = [fast]
            dist.broadcast_object_list(box, src=0)
            fast = box[0]
        return fast

    def update_maker(self) -> UpdateMaker:
        """One update (forward + backward) of a copy of the model on one fixed batch, under a given autocast dtype,
        compiled or not: what ``auto`` times."""
        probe: dict[str, Any] = {}

        def make(dtype: torch.dtype | None, compiled: bool) -> Callable[[], None]:
            if not probe:
                probe["model"] = copy.deepcopy(self.model).train()
                batch = self.window_sampler(self.train_data, seed=self.cfg.seed + 4242).sample(self.cfg.batch_size)
                probe["batch"] = batch.to(self.device)
            model, batch = probe["model"], probe["batch"]
            loss = loss_under(TrainingLoss(model), dtype, self.device.type)
            if compiled:
                prepare_compile()
                loss = torch.compile(loss, dynamic=False, backend=compile_backend())
            def update() -> None:
                model.zero_grad(set_to_none=True)
                loss(batch)[0].backward()

            return update

        return make

    def update(self) -> dict[str, float]:
        """One gradient update; its logs (``losses/total`` and the kind's). A non-finite loss or gradient norm
        stops training (``Diverged``) before the optimizer steps, so the weights stay those of the update before."""
        batch = self.sampler.sample(self.cfg.batch_size).to(self.device)
        loss, logs = self.loss_fn(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item()
        if not math.isfinite(value):
            raise self.diverged(f"its loss is {value}")
        if self.cfg.grad_clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.clipped, self.cfg.grad_clip))
            if not math.isfinite(norm):
                raise self.diverged(f"its gradient norm is {norm}")
        self.optimizer.step()
        self.scheduler.step()
        after = getattr(self.model, "after_update", None)  # a critic's target network follows it
        if after is not None:
            after()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        out = {k: float(v) for k, v in logs.items()}
        if list(out) != ["losses/action_mse"]:  # a loss of several terms: its total beside them
            out["losses/total"] = value
        return out

    def diverged(self, what: str, update: int | None = None) -> Diverged:
        """The error for a run whose update ``update`` (default: the next) went non-finite: what and what to try."""
        cfg = self.cfg
        clip = f"a lower --grad-clip (now {cfg.grad_clip:g})" if cfg.grad_clip > 0 else "--grad-clip 0.25 (now off)"
        return Diverged(f"Training diverged at update {update or self.step + 1}: {what}. Try a lower --lr (now "
                        f"{cfg.lr:g}), {clip}, or a longer --warmup-steps (now {cfg.warmup_steps}).")

    def check_weights(self) -> None:
        """Stop (``Diverged``) rather than evaluate or save weights that are not finite (an update with a finite
        loss can still overflow them)."""
        bad = non_finite(self.model.state_dict()) + (non_finite(self.ema.model.state_dict()) if self.ema else [])
        if bad:
            raise self.diverged(f"weights became non-finite ({', '.join(bad[:3])})", self.step)

    def evaluate(self) -> EvalRecord:
        self.check_weights()
        results = evaluate_agent(
            self.bundle(), self.targets, self.cfg.rollout, self.cfg.eval_episodes, seed=0, device=self.device
        )
        rec = EvalRecord(self.step, results, self.probe_losses())
        self.history.append(rec)
        assert self.writer is not None
        for name, value in rec.losses.items():
            self.writer.add_scalar(f"losses/{name}_action_mse", value, self.step)
        for r in results:
            self.writer.add_scalar(f"eval/normalized_score_{r.label}", r.normalized_mean, self.step)
            self.writer.add_scalar(f"eval/return_{r.label}", float(np.mean(r.returns)), self.step)
            s = r.summary()
            self.writer.add_scalar(f"eval/episode_length_{r.label}", s["length_mean"], self.step)
            self.writer.add_scalar(f"eval/x_displacement_{r.label}", s["x_displacement_mean"], self.step)
            self.writer.add_scalar(f"eval/fell_fraction_{r.label}", s["fell_fraction"], self.step)
            self.writer.add_scalar(f"eval/upside_down_fraction_{r.label}", s["upside_down_fraction"], self.step)
            for i, share in enumerate(r.chosen):  # value-guided selection: candidate i (lowest target first)
                self.writer.add_scalar(f"eval/chosen_share_{r.label}/candidate{i}", share, self.step)
        self.writer.add_scalar("eval/normalized_score_mean", rec.score, self.step)
        self.log_gate_histograms()
        # the checkpoints first, each holding the evaluation, then the evaluation's line (atomic: never partial): so
        # evals.jsonl never records an evaluation whose checkpoint was not written (a full disk, a kill), and a resume
        # adds the evaluation its checkpoint holds when the file lacks it (restore)
        best = rec.score >= max(h.score for h in self.history)
        self.save("last.pt", rec)
        if best:
            self.save("best.pt", rec)
        if self.cfg.keep_checkpoints:  # the policy evaluated here, to evaluate again later (no training state)
            save_checkpoint(self.run_dir / KEPT_DIR / f"step_{self.step}.pt", self.bundle())
        append_jsonl(self.run_dir / "evals.jsonl", rec.to_dict())
        return rec

    @torch.no_grad()
    def log_gate_histograms(self) -> None:
        """Forget / effective gate activations on a fixed batch of windows (UR paper, fig. 4)."""
        assert self.writer is not None
        gate_fn = getattr(self.model, "gate_activations", None)  # the Decision model's (BC has no gates)
        if gate_fn is None:
            return
        if self.diag_batch is None:
            rng_state = self.sampler.rng.bit_generator.state
            self.diag_batch = self.sampler.sample(min(self.cfg.batch_size, 64))
            self.sampler.rng.bit_generator.state = rng_state  # diagnostics do not change the training stream
        was_training = self.model.training
        self.model.eval()
        for name, act in gate_fn(self.diag_batch.to(self.device)).items():
            self.writer.add_histogram(f"gates/{name}", act.float().cpu(), self.step)
        self.model.train(was_training)

    def training_state(self) -> dict:
        """Everything beyond the acting model that an exact resume needs: optimizer, schedule, every RNG, and
        with an EMA the trained weights (the checkpoint's ``model`` holds the average) and its count."""
        ema = {} if self.ema is None else {"raw_model": self.model.state_dict(), "ema_updates": self.ema.updates}
        return {
            **ema,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "sampler": self.sampler.rng.bit_generator.state,
            },
            "diag_batch": self.diag_batch,
            "wall_s": self.wall_s(),
            "data": self.data.identity(),  # what --resume compares with the data it loads
        }

    def save(self, name: str, evaluation: EvalRecord | None = None) -> None:
        """The run's checkpoint ``name`` (last.pt, best.pt): the acting agent, the training state and the evaluation
        made at this update, if any."""
        self.check_weights()
        if self.writer is not None:  # what was logged up to this checkpoint is on disk before it: a run killed
            self.writer.flush()      # after it and resumed from it has no gap in its TensorBoard curves
        extra = {**self.training_state(), **({"evaluation": evaluation.to_dict()} if evaluation else {})}
        save_checkpoint(self.run_dir / name, self.bundle(), extra)
        if name == "last.pt":
            self.saved_step = self.step

    def restore(self, payload: dict) -> None:
        """Continue from a checkpoint written by ``save``."""
        try:
            self.model.load_state_dict(payload.get("raw_model", payload["model"]))
        except RuntimeError as e:  # a checkpoint of another model of the same kind (another width, layers, ...)
            raise SeqRLError(f"--resume {self.run_dir}: its last.pt holds weights of another model than the run's "
                             f"config.yaml describes ({str(e).splitlines()[0][:160]}): the checkpoint is another "
                             "run's. Put this run's own last.pt back, or start a new run.") from None
        if self.ema is not None:  # a run that had no EMA so far starts one here
            self.ema.load_state_dict({"updates": payload.get("ema_updates", 0),
                                      "model": payload["model"] if "raw_model" in payload else self.model.state_dict()})
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.sampler.rng.bit_generator.state = rng["sampler"]
        self.diag_batch = payload.get("diag_batch")
        self.step = self.saved_step = int(payload["step"])
        self.wall_s_before = float(payload["wall_s"])  # the process that wrote it counted the ones before it
        self.restore_evaluations(payload.get("evaluation"))

    def restore_evaluations(self, own: dict | None) -> None:
        """evals.jsonl as of the restored checkpoint: the evaluations up to it (later ones dropped), and the one it
        holds (``own``) when the file lacks it (the run stopped between the two writes); best.pt follows it."""
        evals = self.run_dir / "evals.jsonl"
        kept = [d for d in (read_jsonl(evals, EVAL_KEYS) if evals.is_file() else []) if d["step"] <= self.step]
        added = own is not None and own["step"] == self.step and all(d["step"] != self.step for d in kept)
        if added:
            kept.append(own)
        write_jsonl(evals, kept)
        self.history = [EvalRecord(d["step"], [EvalResult.from_dict(r) for r in d["results"]], d.get("losses", {}))
                        for d in kept]
        if added and self.history[-1].score >= max(h.score for h in self.history):
            write_atomic(self.run_dir / "best.pt", (self.run_dir / "last.pt").read_bytes())

    def train(self) -> list[EvalRecord]:
        """The update loop. Under torchrun every rank updates; rank 0 alone logs, evaluates and checkpoints."""
        cfg, main = self.cfg, self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
            # purge_step: after a resume, TensorBoard hides what the interrupted run logged past the checkpoint
            self.writer = SummaryWriter(str(self.run_dir), purge_step=self.step + 1 if self.step else None)
            self.writer.add_text("hyperparameters", hparams_markdown(cfg.to_dict()))
            self.writer.add_text("fast_path", "```\n" + json.dumps(self.fast.summary(), indent=1) + "\n```")
        self.model.train()
        losses: list[dict[str, float]] = []
        busy = 0.0  # seconds spent in updates since the last log (evaluation excluded)
        bar = tqdm(  # redrawn at most every 30 s when stderr is not a terminal (log files)
            total=cfg.steps, initial=self.step, desc=f"train {cfg.label()}", unit="upd", dynamic_ncols=True,
            mininterval=0.1 if sys.stderr.isatty() else 30, disable=not main,
        )
        for note in self.fast.notes:
            bar.write(f"[seqrl] {note}")
        if self.val_data is not None:
            bar.write(f"[seqrl] --val-fraction {cfg.val_fraction:g}: {self.val_data.num_episodes} of "
                      f"{self.data.num_episodes} episodes ({self.val_data.num_transitions:,} transitions) held out of "
                      "training for losses/val_action_mse")
        compiling = self.fast.compile
        try:
            while self.step < cfg.steps:
                raise_pending_stop()
                t0 = time.perf_counter()
                losses.append(self.update())
                busy += time.perf_counter() - t0
                if compiling:  # the first update of this process compiled (or loaded) the graphs
                    bar.write(f"[seqrl] torch.compile: first update took {time.perf_counter() - t0:.1f} s "
                              f"(compile, counted in the wall time; inductor cache {self.compile_cache})")
                    compiling = False
                bar.update(1)
                if not main:
                    continue
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    ups = len(losses) / max(busy, 1e-9)
                    means = {k: float(np.mean([d[k] for d in losses])) for k in losses[-1]}
                    for tag, value in means.items():
                        self.writer.add_scalar(tag, value, self.step)
                    self.writer.add_scalar("charts/learning_rate", self.scheduler.get_last_lr()[0], self.step)
                    self.writer.add_scalar("charts/updates_per_s", ups, self.step)
                    shown = means.get("losses/total", means["losses/action_mse"])
                    bar.set_postfix(loss=f"{shown:.4f}", ups=f"{ups:.1f}")
                    losses.clear()
                    busy = 0.0
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    rec = self.evaluate()
                    losses_note = "".join(f", {k} action MSE {v:.4f}" for k, v in rec.losses.items())
                    bar.write(f"step {self.step}: normalized {rec.score:.1f}{losses_note}\n{format_table(rec.results)}")
                elif cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save("last.pt")
            if main:
                self.log_hparams()
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        return self.history

    def log_hparams(self) -> None:
        """Hyperparameters with the final metrics, for TensorBoard's HParams tab."""
        assert self.writer is not None
        hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in self.cfg.to_dict().items()}
        last, best = self.history[-1], max(self.history, key=lambda h: h.score)
        metrics = {"hparams/last_normalized_score": last.score, "hparams/best_normalized_score": best.score}
        self.writer.add_hparams(hp, metrics, run_name=".", global_step=self.step)


def resolve_targets(cfg: TrainConfig, task: Task | None, data: TrajectoryDataset) -> tuple[list[float], str]:
    """The target returns to evaluate at, and where they come from (one line).

    Rule: ``--eval-targets`` if given; else with ``--targets-from-data`` and a dataset that is not D4RL's
    own, the ``--data-target-quantiles`` of the dataset's episode returns (1.0: its best episode); else
    DT's constants for the task (hopper 3600 1800, ...). BC takes no target: none."""
    if not agent_kind(cfg.agent).conditioned:
        return [], f"--agent {cfg.agent} takes no target return"
    if cfg.eval_targets:
        return [float(t) for t in cfg.eval_targets], "--eval-targets"
    d4rl_own = is_d4rl_benchmark(data.info)
    if cfg.targets_from_data and not d4rl_own:
        qs = cfg.data_target_quantiles
        targets = [float(t) for t in data.return_quantiles(qs)]
        return targets, f"from the data: quantile(s) {', '.join(f'{q:g}' for q in qs)} of its episode returns"
    if not task:
        raise SeqRLError("No target returns to evaluate with: pass --eval-targets R [R ...], --targets-from-data, "
                         "or --env for DT's.")
    how = "DT's for " + task.name + (" (D4RL's own data: --targets-from-data keeps them)" if cfg.targets_from_data else "")
    return [float(t) for t in task.targets], how
