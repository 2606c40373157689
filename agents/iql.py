"""IQL, implicit Q-learning (Kostrikov et al. 2021): the in-sample critic (``critic.py``) and a Gaussian actor
extracted from it by advantage-weighted regression,

    L_pi(phi) = E_(s,a)~D [ min( exp(beta (Q_target(s, a) - V(s))), w_max ) * -log pi_phi(a | s) ]   (eq. 7)

pi_phi(. | s) = N(tanh(mu_phi(s)), exp(log_sigma)) with a state-independent log_sigma, as CORL's locomotion
recipe (iql.py: beta 3, tau 0.7, gamma 0.99, alpha 0.005, 256-256 MLPs, Adam 3e-4, batch 256, the rewards
scaled by 1000 / (the data's best - worst episode return)). It acts with the mean, on the current state alone
(as BC: rollout ``state``, no target). Trained on single transitions drawn by the Decision model's window
sampler (windows of one step), so training, checkpoints, resume and evaluation are BC's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from seqrl.core.batch import WindowBatch
from seqrl.core.typed import config_from_dict, config_to_dict, setting

from .critic import Critic, CriticConfig, masked_mean, mlp


@dataclass(frozen=True)
class IQLConfig:
    """IQL's actor and its critic: everything that rebuilds the model but the data's sizes. Nested in the run
    config (``iql:``, its critic under ``iql: {critic: ...}``)."""

    hidden: tuple[int, ...] = setting((256, 256), rule=(lambda v: len(v) > 0 and min(v) >= 1,
                                                          "one positive width per hidden layer (e.g. 256 256)"))
    """Hidden layer widths of the actor's mean (ReLU; tanh output)."""
    beta: float = setting(3.0, rule=(lambda v: v >= 0, ">= 0"))
    """Inverse temperature of the advantage weights (IQL: 3 for locomotion)."""
    max_weight: float = setting(100.0, rule=(lambda v: v > 0, "> 0"))
    """Clip of the advantage weights (IQL, CORL: 100)."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """The in-sample critic."""

    @property
    def context_len(self) -> int:
        """IQL learns from single transitions: training windows of one step."""
        return 1

    def label(self) -> str:
        return "iql"

    def create(self, obs_dim: int, act_dim: int) -> IQLModel:
        return IQLModel(self, obs_dim, act_dim)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "IQL config") -> IQLConfig:
        return config_from_dict(cls, values, source)


class IQLModel(nn.Module):
    kind = "iql"

    def __init__(self, cfg: IQLConfig, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.actor = nn.Sequential(mlp(obs_dim, cfg.hidden, act_dim), nn.Tanh())
        self.log_std = nn.Parameter(torch.zeros(act_dim))
        self.critic = Critic(cfg.critic, obs_dim, act_dim)

    def forward(self, states: Tensor) -> Tensor:
        """states: (..., obs_dim) normalized -> the actor's mean action (..., act_dim) in (-1, 1)."""
        return self.actor(states)

    @staticmethod
    def batch_inputs(batch: WindowBatch) -> tuple[Tensor, ...]:
        """What ``forward`` takes from a training batch: the states (B, 1, obs_dim)."""
        return (batch.states,)

    def training_loss(self, batch: WindowBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """L_V + L_Q + L_pi on one batch of transitions (windows of one step), and what TensorBoard shows."""
        critic_loss, logs = self.critic.losses(batch)
        assert batch.td_mask is not None
        s, a, m = batch.states.float(), batch.actions.float(), batch.td_mask.float()
        weights = torch.exp(self.cfg.beta * self.critic.advantage(s, a)).clamp(max=self.cfg.max_weight)
        mean = self(s).float()
        log_prob = torch.distributions.Normal(mean, self.log_std.exp()).log_prob(a).sum(-1)
        actor_loss = masked_mean(-weights * log_prob, m)
        mse = masked_mean((mean - a).pow(2).mean(-1), batch.mask.float())
        logs = {"losses/action_mse": mse.detach(), "losses/actor": actor_loss.detach(),
                "critic/weight_mean": masked_mean(weights, m), **logs}
        return critic_loss + actor_loss, logs

    def after_update(self) -> None:
        self.critic.soft_update()
