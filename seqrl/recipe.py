"""Which config fields each agent kind reads, and the label a run's agent and recipe get.

``check_config`` refuses a setting the run would silently ignore: a Decision-model field (or a
backbone option) with ``--agent bc`` (BC is an MLP on the current state: no backbone, window,
returns-to-go or target), ``--bc-hidden`` with ``--agent dt``, contradictory target options. (Options
of a backbone other than the one trained are refused where they are read: ``seqrl.config``.)

``agent_label`` names what a run trained: ``bc`` or the backbone and what its options' ``label`` says
(``+ur`` for the gate, ``+dt0.01-1`` for an SSM step-size range), then one ``+tag`` per recipe option
that differs from its default (``+data-targets``, ``+ema0.999``, ``+decay-groups``, ``+init-gpt``, ``+no-time``, ``+fused``, ``+val0.1``),
then ``+<--tag>`` if set. Run names
(``env__dataset__<label>__seed__time``), the grid's resume check and the results tables
use it, so the arms of an A/B never mix.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from seqrl.config import TrainConfig, changed_options, check_values
from seqrl.errors import SeqRLError

DT_ONLY = ("backbone", "context_len", "n_layers", "width", "dropout", "max_ep_len", "time_embedding", "tokens", "rtg_scale",
           "eval_targets", "rollout", "targets_from_data", "data_target_quantiles")  # and the backbone's options
BC_ONLY = ("bc_hidden",)


def _defaults() -> dict[str, Any]:
    return {f.name: getattr(TrainConfig(), f.name) for f in dataclasses.fields(TrainConfig)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_config(cfg: TrainConfig) -> None:
    """Refuse out-of-range values, and settings this run would ignore or that contradict each other."""
    check_values(cfg)  # also resolves the backbone: an unknown name is refused here, with the list
    default = _defaults()
    changed = [k for k in default if k not in ("config", "resume", "run_dir", "backbone_options")
               and getattr(cfg, k) != default[k]]
    ignored = [_flag(k) for k in changed if k in (DT_ONLY if cfg.agent == "bc" else BC_ONLY)]
    if cfg.agent == "bc":
        ignored += [f"--{cfg.backbone}.{k.replace('_', '-')}" for k in changed_options(cfg.options)]
    if ignored:
        what = ("the Decision model's settings (BC is an MLP on the current state: no backbone, window, "
                "returns-to-go or target)" if cfg.agent == "bc" else "behaviour cloning's (--agent bc) settings")
        raise SeqRLError(f"--agent {cfg.agent} does not use {', '.join(ignored)}, among {what}. "
                         "Drop them (from the flags or the --config file; BC's recipe: configs/cpu/bc-<task>.yaml).")
    if not re.fullmatch(r"[A-Za-z0-9._-]*", cfg.tag):
        raise SeqRLError(f"--tag {cfg.tag!r} goes into run directory names: use letters, digits, '.', '_' and '-'.")
    if not 0 <= cfg.ema_decay < 1:
        raise SeqRLError(f"--ema-decay must be in [0, 1) (0: off, e.g. 0.999); got {cfg.ema_decay:g}.")
    if not 0 <= cfg.val_fraction < 1:
        raise SeqRLError(f"--val-fraction is the share of episodes held out, in [0, 1) (0: off, e.g. 0.1); "
                         f"got {cfg.val_fraction:g}.")
    if cfg.grad_clip < 0:
        raise SeqRLError(f"--grad-clip must be >= 0 (0: no clipping); got {cfg.grad_clip:g}.")
    if not cfg.bc_hidden or min(cfg.bc_hidden) < 1:
        raise SeqRLError(f"--bc-hidden takes one positive width per hidden layer (e.g. 256 256); got {cfg.bc_hidden}.")
    if cfg.targets_from_data and cfg.eval_targets:
        raise SeqRLError("--targets-from-data derives the targets from the dataset; --eval-targets gives them: "
                         "use one of the two.")
    if "data_target_quantiles" in changed and not cfg.targets_from_data:
        raise SeqRLError("--data-target-quantiles only applies with --targets-from-data.")
    if not cfg.data_target_quantiles or not all(0 <= q <= 1 for q in cfg.data_target_quantiles):
        raise SeqRLError(f"--data-target-quantiles takes quantiles in [0, 1] (1: the best episode); "
                         f"got {cfg.data_target_quantiles}.")


def agent_label(values: Mapping[str, Any]) -> str:
    """``bc`` or the backbone with its options' label, then ``+tag`` per non-default recipe option (see the
    module docstring).

    ``values``: a run's config as a mapping (a saved config.yaml, also one with the flat options of older
    configs; missing keys take today's defaults)."""
    from seqrl.agents.backbones.options import FLAT_NAMES, read_options

    d = _defaults()
    v = {k: values.get(k, d[k]) for k in d}
    if v["agent"] == "bc":
        label = "bc"
    else:
        flat = {k: values[k] for k in FLAT_NAMES if k in values}
        options, _ = read_options(v["backbone"], values.get(v["backbone"]), flat, "run config")
        label = v["backbone"] + options.label()
        if v["targets_from_data"]:
            q = v["data_target_quantiles"]
            label += "+data-targets" + ("" if q == d["data_target_quantiles"] else "-q" + "_".join(f"{x:g}" for x in q))
    if v["ema_decay"]:
        label += f"+ema{v['ema_decay']:g}"
    if v["decay_groups"]:
        label += "+decay-groups"
    if v["init"] != d["init"]:
        label += f"+init-{v['init']}"
    if not v["time_embedding"]:
        label += "+no-time"
    if v["tokens"] != d["tokens"]:
        label += f"+{v['tokens']}"
    if v["val_fraction"]:
        label += f"+val{v['val_fraction']:g}"
    return label + (f"+{v['tag']}" if v["tag"] else "")


def label_backbone(label: str) -> str:
    """The backbone (or ``bc``) an ``agent_label`` names: its first part, before the options' and recipe's ``+`` tags."""
    return label.split("+", 1)[0]
