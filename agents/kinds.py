"""The kinds of agent (``--agent``), found by name: which model config builds the model, how it acts, and what
one evaluation runs. A new kind is one entry here and its own module.

- ``dt``: the Decision model over a sequence backbone (``model.py``), acting through ``SequencePolicy`` in a
  rollout mode (window or recurrent), conditioned on a target return.
- ``bc``: behaviour cloning (``bc.py``), an MLP on the current state; one evaluation per round, labelled
  rollout ``state`` with no target.
- ``iql``: implicit Q-learning (``iql.py``): an in-sample critic and an advantage-weighted actor on the current
  state; acts as BC does.
- ``vdt``: the value-guided Decision model (``value_dt.py``): the Decision model and an in-sample critic that
  guides it; acts as ``dt`` does (with the critic choosing among return-to-go candidates when asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

import numpy as np
import torch

from seqrl.core.errors import SeqRLError

from .bc import BC_ROLLOUT, BCConfig, BCModel, BCPolicy
from .iql import IQLConfig, IQLModel
from .model import DecisionModel, ModelConfig
from .policy import SequencePolicy
from .value_dt import ValueDecisionConfig

Model = Union[DecisionModel, BCModel, IQLModel]
Policy = Union[BCPolicy, SequencePolicy]


@dataclass(frozen=True)
class AgentKind:
    """One kind of agent: the config class that rebuilds its model (``Config.from_dict(...).create(obs, act)``),
    the run config's groups it is made of (one: that group's config; several: ``config_class(**groups)``),
    whether it is conditioned on a target return (else it acts on the current state alone), and whether it
    learns a value (its batches then carry the transitions: rewards, next states, terminals)."""

    config_class: type
    title: str  # what messages call it: "a run of the <title> agent"
    groups: tuple[str, ...]
    conditioned: bool
    learns_values: bool = False

    def config(self, values: Mapping[str, Any]) -> Any:
        return self.config_class.from_dict(values)

    def assemble(self, groups: Mapping[str, Any]) -> Any:
        """The model's config from the run config's groups (``groups[name]``)."""
        if len(self.groups) == 1:
            return groups[self.groups[0]]
        return self.config_class(**{name: groups[name] for name in self.groups})


AGENTS: dict[str, AgentKind] = {
    "dt": AgentKind(ModelConfig, "Decision", groups=("model",), conditioned=True),
    "bc": AgentKind(BCConfig, "behaviour-cloning", groups=("bc",), conditioned=False),
    "iql": AgentKind(IQLConfig, "IQL", groups=("iql",), conditioned=False, learns_values=True),
    "vdt": AgentKind(ValueDecisionConfig, "value-guided Decision", groups=("model", "value"), conditioned=True,
                     learns_values=True),
}


def agent_kind(kind: str) -> AgentKind:
    """The kind called ``kind``; a clear error naming the known ones."""
    if kind not in AGENTS:
        raise SeqRLError(f"Unknown agent kind {kind!r}: known kinds are {', '.join(AGENTS)}.")
    return AGENTS[kind]


def build_model(kind: str, config: Mapping[str, Any], obs_dim: int, act_dim: int) -> Model:
    """The model of agent ``kind`` from its config as a mapping (as stored in a checkpoint)."""
    return agent_kind(kind).config(config).create(obs_dim, act_dim)


def make_policy(model: Model, obs_mean: np.ndarray, obs_std: np.ndarray, rtg_scale: float, rollout: str,
                device: torch.device | str) -> Policy:
    """The policy that acts with ``model``: on the current state for a kind not conditioned on a target (rollout
    ``state``), else ``SequencePolicy``."""
    if not agent_kind(model.kind).conditioned:
        if rollout != BC_ROLLOUT:
            raise SeqRLError(f"A {model.kind.upper()} agent acts on the current state alone (rollout {BC_ROLLOUT!r}), not {rollout!r}.")
        return BCPolicy(model, obs_mean, obs_std, device)
    return SequencePolicy(model, obs_mean, obs_std, rtg_scale, rollout, device)  # type: ignore[arg-type]


def evaluation_plan(model: Model, targets: list[float], rollouts: list[str]) -> list[tuple[str, float | None]]:
    """The (rollout, target) pairs one evaluation runs: each rollout x each target for the Decision model,
    a single (``state``, no target) for BC, whose actions depend on neither."""
    if not agent_kind(model.kind).conditioned:
        return [(BC_ROLLOUT, None)]
    return [(r, float(t)) for r in rollouts for t in targets]
