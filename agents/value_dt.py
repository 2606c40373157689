"""The value-guided Decision agent: the Decision model over any backbone (``model.py``), with an in-sample critic
(``critic.py``: IQL's expectile V and twin Q, learned from the training windows' transitions) that tells it
better actions from the data's average. What DT lacks and QT (Hu et al. 2024) adds; here the critic is IQL's,
which never scores an action outside the data while it learns. Two ways the critic guides the actor
(``ValueConfig.guide``):

- ``q`` (QT, eq. 6 of Hu et al.): L = action MSE - eta * Q(s_t, a^_t) / mean|Q(s_t, a^_t)|, the Q of the
  model's own actions, the critic held fixed in that term (its gradient reaches the actions only);
- ``awr`` (advantage-weighted regression, IQL's extraction): L = mean_t min(exp(beta A(s_t, a_t)), w_max) *
  |a^_t - a_t|^2, the data's actions weighted by their advantage.

At inference, ``candidates`` > 1 decodes that many return-to-go targets per episode (the target times
1 + jitter * u, u evenly in [-1, 1]) as a batch and takes the action the critic values most (QT's selection);
each candidate keeps its own returns-to-go, and every one sees the action taken (``policy.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import torch
from torch import Tensor

from seqrl.core.batch import WindowBatch
from seqrl.core.typed import config_from_dict, config_to_dict, setting

from .critic import Critic, CriticConfig, masked_mean
from .model import DecisionModel, ModelConfig, masked_action_mse


@dataclass(frozen=True)
class ValueConfig:
    """How the critic guides the Decision model; nested in the run config (``value:``, the critic under
    ``value: {critic: ...}``)."""

    guide: Literal["q", "awr"] = setting("q", label=(5, lambda v, _: f"+value-{v}"))
    """q: the actor's loss adds -eta * Q(s, a^) / mean|Q| (QT); awr: the action MSE weighted by exp(beta * advantage)."""
    eta: float = setting(1.0, rule=(lambda v: v >= 0, ">= 0"), label=(6, lambda v, _: "" if v == 1.0 else f"-eta{v:g}"))
    """guide q: the weight of the normalized Q term (QT: 1-5 by task)."""
    beta: float = setting(3.0, rule=(lambda v: v >= 0, ">= 0"), label=(6, lambda v, _: "" if v == 3.0 else f"-beta{v:g}"))
    """guide awr: the inverse temperature of the advantage weights (IQL: 3)."""
    max_weight: float = setting(100.0, rule=(lambda v: v > 0, "> 0"))
    """guide awr: the clip of the advantage weights."""
    candidates: int = setting(1, rule=(lambda v: v >= 1, ">= 1 (1: no selection)"),
                              label=(7, lambda v, _: "" if v == 1 else f"+cand{v}"))
    """Return-to-go candidates decoded per step at inference, the critic choosing the action (1: the target alone)."""
    jitter: float = setting(0.1, rule=(lambda v: 0 <= v < 1, "in [0, 1)"))
    """The candidates' spread: targets from (1 - jitter) to (1 + jitter) times the target."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """The in-sample critic."""

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "value config") -> ValueConfig:
        return config_from_dict(cls, values, source)


@dataclass(frozen=True)
class ValueDecisionConfig:
    """The Decision model and its guidance: what a checkpoint of the value-guided agent stores."""

    model: ModelConfig
    value: ValueConfig

    @property
    def context_len(self) -> int:
        return self.model.context_len

    def label(self) -> str:
        return self.model.label()

    def create(self, obs_dim: int, act_dim: int) -> ValueDecisionModel:
        return ValueDecisionModel(self, obs_dim, act_dim)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "value": self.value.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "value-guided config") -> ValueDecisionConfig:
        return cls(ModelConfig.from_dict(values["model"], f"{source}: model"),
                   ValueConfig.from_dict(values["value"], f"{source}: value"))


class ValueDecisionModel(DecisionModel):
    kind = "vdt"

    def __init__(self, cfg: ValueDecisionConfig, obs_dim: int, act_dim: int) -> None:
        super().__init__(cfg.model, obs_dim, act_dim)
        self.agent_config, self.value_cfg = cfg, cfg.value  # what a checkpoint stores: the model's and the value's
        self.critic = Critic(cfg.value.critic, obs_dim, act_dim)

    def training_loss(self, batch: WindowBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The actor's loss as ``guide`` says, plus the critic's, on one batch of windows."""
        v = self.value_cfg
        if self.critic.learns:
            critic_loss, logs = self.critic.losses(batch)
        else:  # a critic learned elsewhere (--critic-from), held fixed
            critic_loss, logs = torch.zeros((), device=batch.states.device), self.critic.data_logs(batch)
        pred = self(*self.batch_inputs(batch)).float()
        mse = masked_action_mse(pred, batch.actions, batch.mask)
        m = batch.mask.float()
        q = self.critic.q_frozen(batch.states.float(), pred if v.guide == "q" else pred.detach())  # Q(s, a^)
        if v.guide == "q":
            actor = mse - v.eta * masked_mean(q, m) / masked_mean(q.abs(), m).detach().clamp_min(1e-6)
        else:
            weights = torch.exp(v.beta * self.critic.advantage(batch.states.float(), batch.actions)).clamp(max=v.max_weight)
            actor = masked_mean(weights * (pred - batch.actions).pow(2).mean(-1), m)
            logs["critic/weight_mean"] = masked_mean(weights, m)
        with torch.no_grad():  # > 0: the critic values the model's actions above the data's, at the same steps
            q_data = self.critic.q_values(batch.states.float(), batch.actions.float())
            logs["critic/q_actor_minus_data"] = masked_mean(q.detach() - q_data, m)
        return actor + critic_loss, {"losses/action_mse": mse.detach(), "losses/actor": actor.detach(), **logs}

    def after_update(self) -> None:
        if self.critic.learns:
            self.critic.soft_update()

    @property
    def candidates(self) -> int:
        """Return-to-go candidates per episode at inference (``policy.py`` acts for that many rows)."""
        return self.value_cfg.candidates

    @property
    def jitter(self) -> float:
        return self.value_cfg.jitter

    @torch.no_grad()
    def choose(self, states: Tensor, actions: Tensor) -> Tensor:
        """states (N, C, obs_dim) normalized, actions (N, C, act_dim) -> the candidate (N,) whose action the
        critic values most (min over the twin Q; QT's selection)."""
        dtype = self.critic.v[0].weight.dtype  # the critic's own (fp32 when trained; bf16 autocast leaves it so)
        return self.critic.q_values(states.to(dtype), actions.to(dtype)).argmax(dim=-1)
