"""Evaluate a trained run: raw return and D4RL-normalized score, mean ± std, per target and rollout mode.

    python evaluate.py runs/<run> [--episodes 10] [--targets 3600 1800] [--json results.json]
    python evaluate.py --policy policy.onnx [--episodes 10] [--json results.json]

The model is rebuilt from the checkpoint alone (no dataset needed). A behaviour-cloning run (--agent bc)
takes no target and has one rollout: it is evaluated once, labelled rollout ``state``. ``--policy`` scores
a file written by export.py instead (ONNX or TorchScript, its own rollout mode), with the same table and JSON.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from seqrl.agents.checkpoint import find_checkpoint, load_checkpoint
from seqrl.agents.kinds import agent_kind
from seqrl.agents.scoring import evaluate_agent, format_table
from seqrl.agents.policy import Rollout
from seqrl.core.command import run_command
from seqrl.core.errors import RETURNS_RULE, SEED_RULE, SeqRLError, check_flags, returns_ok, seed_ok
from seqrl.core.files import write_json
from seqrl.core.runtime import resolve_device
from seqrl.training.config import TrainConfig


@dataclass
class EvalArgs:
    run: Annotated[Path | None, tyro.conf.Positional] = None
    """Run directory written by train_offline.py, or a checkpoint file (or give --policy)."""
    policy: Path | None = None
    """An exported policy file (export.py: ONNX or TorchScript) to evaluate instead of a run."""
    checkpoint: Literal["last", "best"] = "last"
    """Which checkpoint of the run: last or best."""
    episodes: int = 10
    """Episodes per target return and rollout mode."""
    targets: list[float] | None = None
    """Target returns R^_0 (default: the run's; not for a BC run, which takes none)."""
    rollout: list[Rollout] | None = None
    """Rollout modes: window and/or recurrent (default: window; with --policy: the file's; not for a BC run,
    which acts on the state alone)."""
    candidates: int | None = None
    """Value-guided runs (--agent vdt): return-to-go candidates per step, the critic choosing the action (default:
    the run's --value.candidates; 1: the target alone)."""
    seed: int = 0
    """Episode i is reset with seed + i."""
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda or cuda:N."""
    json: Path | None = None
    """Also write the results to this JSON file."""
    video: Path | None = None
    """Also record one episode per target and rollout into this folder (MuJoCo offscreen rendering)."""
    video_format: Literal["mp4", "gif"] = "mp4"
    """Video container: mp4 (needs imageio-ffmpeg; GIF if missing) or gif."""


def record_videos(agent, targets: list[float], rollouts: list[str], args: EvalArgs) -> None:
    """One rendered episode per (rollout, target); skipped with a message where nothing can render."""
    from seqrl.agents.kinds import evaluation_plan, make_policy
    from seqrl.agents.scoring import env_maker
    from seqrl.envs.video import record_episode, renderer_problem

    make = env_maker(agent.dataset, agent.eval_env, render_mode="rgb_array")
    problem = renderer_problem(make)
    if problem:
        print(f"[seqrl] video skipped: {problem}", file=sys.stderr)
        return
    device = next(agent.model.parameters()).device
    for rollout, target in evaluation_plan(agent.model, targets, rollouts):
        policy = make_policy(agent.model, agent.obs_mean, agent.obs_std, agent.rtg_scale, rollout, device)
        name = rollout + ("" if target is None else f"_R{target:g}")
        path, ret = record_episode(make, policy, target, args.seed, args.video / f"{name}_seed{args.seed}.{args.video_format}")
        print(f"[seqrl] video {path} (return {ret:.1f})")


def evaluate_exported(args: EvalArgs) -> tuple[list, dict, None]:
    """--policy FILE: the same episodes through the exported policy (seqrl.runner)."""
    from seqrl.agents.scoring import evaluate_policies
    from seqrl.core.data_info import DatasetInfo
    from seqrl.runner import load_policy

    policy = load_policy(args.policy)
    info = policy.info
    if args.rollout and args.rollout != [info.rollout]:
        raise SeqRLError(
            f"{str(args.policy)!r} was exported with the {info.rollout} rollout; it cannot act in "
            f"{' and '.join(args.rollout)} mode. Drop --rollout, or export the run again with --rollout."
        )
    if args.video:
        raise SeqRLError("--video records a run directory's policy; evaluate the run directory for videos.")
    targets = args.targets or info.default_targets
    dataset = DatasetInfo(**info.dataset)
    print(
        f"[seqrl] {args.policy} ({policy.format}, from {info.checkpoint or 'unknown'}, step {info.step}): "
        f"backbone {info.backbone}, {info.rollout} rollout, env {info.env_id}, {args.episodes} episodes per target"
    )
    plan = [(info.rollout, float(t), policy) for t in targets]
    eval_env = info.env_id if info.env_id != dataset.env_id else None  # the run's --eval-env (export.policy_info)
    results = evaluate_policies(dataset, info.obs_dim, info.act_dim, plan, args.episodes, args.seed, eval_env=eval_env)
    out = {"env": info.env_id, "dataset": dataset.name, "backbone": info.backbone, "checkpoint": info.checkpoint,
           "policy": str(args.policy), "step": info.step}
    return results, out, None


def evaluate_run(args: EvalArgs) -> tuple[list, dict, Any]:
    device = resolve_device(args.device)
    path = find_checkpoint(args.run, args.checkpoint)
    agent, _ = load_checkpoint(path, device)
    if not agent_kind(agent.model.kind).conditioned and (args.targets or args.rollout):
        raise SeqRLError(f"This is a run of the {agent_kind(agent.model.kind).title} agent (--agent {agent.model.kind}): "
                         "it takes no target return and acts on the current state alone (one evaluation, rollout "
                         "'state'). Drop --targets / --rollout.")
    if args.candidates is not None:
        if not hasattr(agent.model, "value_cfg"):
            raise SeqRLError(f"--candidates is for value-guided runs (--agent vdt); {str(path)!r} is a "
                             f"run of the {agent_kind(agent.model.kind).title} agent, which has no critic to choose with. Drop --candidates.")
        if args.candidates < 1:
            raise SeqRLError(f"--candidates must be >= 1 (1: the target alone), got {args.candidates}.")
        agent.model.value_cfg = dataclasses.replace(agent.model.value_cfg, candidates=args.candidates)
    label = TrainConfig.from_dict(agent.config, str(path)).label()
    print(
        f"[seqrl] {path} (step {agent.step}): agent {label}, dataset "
        f"{agent.dataset.name}, env {agent.env_id}, {args.episodes} episodes per target"
    )
    results = evaluate_agent(agent, *run_plan(args, agent), args.episodes, args.seed, device)
    out = {"env": agent.env_id, "dataset": agent.dataset.name, "agent": label,
           "backbone": getattr(agent.model.cfg, "backbone", None),  # None for BC
           "checkpoint": str(path), "step": agent.step}
    return results, out, agent


def run_plan(args: EvalArgs, agent: Any) -> tuple[list[float], list[str]]:
    """The targets and rollout modes to evaluate a run with: the flags', else the run's and window."""
    return list(args.targets or agent.targets), list(args.rollout or ["window"])


def is_evaluation_file(path: Path) -> bool:
    """Whether ``path`` holds an evaluation ``--json`` wrote (a JSON object with its results): what it may replace."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and isinstance(record.get("results"), list)


def check_outputs(args: EvalArgs) -> None:
    """--json and --video, before the work: writable, not a run's own file, and --json replaces only an earlier
    evaluation."""
    from seqrl.core.files import writable_file, writable_folder
    from seqrl.training.rundir import run_file_at

    if args.json is not None:
        clash = run_file_at(args.json)
        if clash:
            raise SeqRLError(f"--json {args.json}: {clash}; an evaluation never replaces one. Give another --json "
                             f"(e.g. {args.json.parent / 'final_eval.json'}).")
        writable_file(args.json, "--json", is_evaluation_file, "an evaluation evaluate.py wrote", "eval.json")
    if args.video is not None:
        writable_folder(args.video, "--video")


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(EvalArgs, args=argv, description=__doc__)
    if args.video:  # before any env imports mujoco: it reads the GL platform then
        from seqrl.envs.video import choose_offscreen_gl

        choose_offscreen_gl()

    def body() -> int:
        check_flags([
            ("episodes", args.episodes >= 1, ">= 1", args.episodes),
            ("targets", returns_ok(args.targets), RETURNS_RULE, args.targets),
            ("seed", seed_ok(args.seed), SEED_RULE, args.seed),
        ])
        if (args.run is None) == (args.policy is None):
            raise SeqRLError("Give a run directory (evaluate.py RUN_DIR) or an exported policy (--policy FILE), one of them.")
        check_outputs(args)
        results, out, agent = evaluate_exported(args) if args.policy else evaluate_run(args)
        print(format_table(results))
        if args.video and agent is not None:
            record_videos(agent, *run_plan(args, agent), args)
        if args.json:
            out["results"] = [r.to_dict() for r in results]
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_json(args.json, out, indent=2)
            print(f"[seqrl] wrote {args.json}")
        return 0

    return run_command(body, lambda stop: f"stopped by {stop.name} during the evaluation"
                                          + (f"; {args.json} was not written." if args.json else "."))

if __name__ == "__main__":
    sys.exit(main())
