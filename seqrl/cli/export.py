"""Export a trained run's policy as one self-contained ONNX or TorchScript file.

    python export.py runs/<run> --format onnx --out policy.onnx
    python export.py runs/<run> --format torchscript --rollout window --checkpoint best --out policy.pt

The file holds the policy step (state normalization, return-to-go scaling, the model, the
tanh head) for N envs, in plain tensor ops, float32, and its metadata (env id, dimensions,
reference scores, default targets, return-to-go scale, backbone, rollout mode, versions).
Run it without PyTorch with ``seqrl.runner.load_policy`` (numpy + onnxruntime), or score it
with ``python evaluate.py --policy FILE``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from seqrl.agents.policy import Rollout
from seqrl.core.command import run_command
from seqrl.core.errors import SeqRLError


@dataclass
class ExportArgs:
    run: Annotated[Path, tyro.conf.Positional]
    """Run directory written by train_offline.py, or a checkpoint file."""
    out: Path
    """The file to write (e.g. policy.onnx)."""
    format: Literal["onnx", "torchscript"] = "onnx"
    """onnx (runs with numpy + onnxruntime, no PyTorch) or torchscript (runs with torch.jit.load, no seqrl)."""
    rollout: Rollout | None = None
    """recurrent (the O(1) step; state = the backbone's) or window (DT's: re-run the last K steps; state = them).
    Default: recurrent, window for the transformer (its state grows with the window)."""
    checkpoint: Literal["last", "best"] = "last"
    """Which checkpoint of the run."""


def check_out(out: Path) -> None:
    """--out, before the work: not a run's own file, a file (not a folder) in a folder that can be written, and
    if it exists, a policy file (an export replaces an earlier export, nothing else)."""
    from seqrl.core.files import writable_file
    from seqrl.runner import is_policy_file
    from seqrl.training.rundir import run_file_at

    clash = run_file_at(out)
    if clash:
        raise SeqRLError(f"--out {out}: {clash}; an export never replaces one. Give another --out (e.g. "
                         f"{out.parent / 'policy.onnx'}).")
    writable_file(out, "--out", is_policy_file, "a policy file export.py wrote", "policy.onnx")


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(ExportArgs, args=argv, description=__doc__)

    def body() -> int:
        from seqrl.agents.checkpoint import find_checkpoint, load_checkpoint
        from seqrl.agents.deploy import export_policy
        from seqrl.agents.kinds import agent_kind

        path = find_checkpoint(args.run, args.checkpoint)
        check_out(args.out)
        agent, _ = load_checkpoint(path, "cpu")
        if not agent_kind(agent.model.kind).conditioned:
            raise SeqRLError(f"{str(path)!r} is a run of the {agent_kind(agent.model.kind).title} agent (--agent {agent.model.kind}); export.py "
                             "exports the Decision model's policies only, for now. Evaluate it with evaluate.py RUN_DIR.")
        if getattr(agent.model, "candidates", 1) > 1:
            raise SeqRLError(f"{str(path)!r} selects among {agent.model.candidates} return-to-go candidates with its "
                             "critic at each step, which the exported step does not carry (it would act on the target "
                             "alone, another policy than the one evaluated). Export a run trained with "
                             "--value.candidates 1, or evaluate this one with evaluate.py RUN_DIR.")
        info = export_policy(agent, args.out, args.format, args.rollout, checkpoint=str(path))
        states = ", ".join(f"{s['name']} {tuple(s['shape'])}" for s in info.state)
        print(
            f"[seqrl] wrote {args.out} ({args.format}, {args.out.stat().st_size / 1e6:.1f} MB): {info.backbone}, "
            f"{info.rollout} rollout, from {path} (step {info.step}); env {info.env_id}, obs {info.obs_dim}, "
            f"act {info.act_dim}; state per env: {states}"
        )
        return 0

    return run_command(body, lambda stop: f"stopped by {stop.name}; {args.out} was not written (a file that was "
                                          "there is as it was).")

if __name__ == "__main__":
    sys.exit(main())
