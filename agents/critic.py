"""An in-sample critic: IQL's expectile value and twin Q (Kostrikov et al. 2021), learned from the data's own
transitions alone, so it never evaluates an action the data does not hold while it learns.

    L_V(psi)   = E_(s,a)~D [ L2^tau( min_i Q_target_i(s, a) - V_psi(s) ) ],   L2^tau(u) = |tau - 1(u < 0)| u^2   (eq. 5)
    L_Q(theta) = E_(s,a,r,s')~D [ ( r + gamma (1 - d) V_psi(s') - Q_theta_i(s, a) )^2 ],  i = 1, 2          (eq. 6)

with the target Q an exponential average of Q (theta' <- (1 - alpha) theta' + alpha theta, ``soft_update``).
The expectile tau -> 1 makes V approach the best in-data action's value, so the advantage Q - V tells better
actions from the data's average. IQL's actor (``iql.py``) and the value-guided Decision agent (``value_dt.py``)
use it; it learns at its own rate (``_optim`` on each parameter, as s4 marks optimizer facts) and outside the
actor's gradient clipping.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from seqrl.core.batch import WindowBatch
from seqrl.core.typed import config_from_dict, config_to_dict, setting


def _unit(v: float) -> bool:
    return 0 < v < 1


@dataclass(frozen=True)
class CriticConfig:
    """IQL's critic (the paper's and CORL's locomotion values); nested in the configs of the kinds that learn one."""

    hidden: tuple[int, ...] = setting((256, 256), rule=(lambda v: len(v) > 0 and min(v) >= 1,
                                                          "one positive width per hidden layer (e.g. 256 256)"))
    """Hidden layer widths of each Q and of V (ReLU MLPs)."""
    expectile: float = setting(0.7, rule=(_unit, "in (0, 1)"))
    """tau of V's expectile loss (IQL: 0.7 for locomotion)."""
    discount: float = setting(0.99, rule=(_unit, "in (0, 1)"))
    """gamma."""
    target_rate: float = setting(0.005, rule=(lambda v: 0 < v <= 1, "in (0, 1]"))
    """alpha of the target Q's soft update after each update."""
    lr: float = setting(3e-4, rule=(lambda v: v > 0, "> 0"))
    """The critic's learning rate (the run's schedule applies to it as to the rest)."""

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "critic config") -> CriticConfig:
        return config_from_dict(cls, values, source)


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    """ReLU MLP ``inputs`` -> hidden -> ``outputs`` (linear output)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(inputs, h), nn.ReLU()]
        inputs = h
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


def expectile_loss(diff: Tensor, tau: float) -> Tensor:
    """L2^tau(u) = |tau - 1(u < 0)| u^2 (IQL eq. 5), elementwise."""
    return torch.where(diff < 0, 1 - tau, tau) * diff.pow(2)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` where ``mask`` (same shape) holds."""
    return (x * mask).sum() / mask.sum().clamp_min(1)


class Critic(nn.Module):
    """Twin Q(s, a), V(s) and the target Q, on normalized states and actions in [-1, 1]."""

    def __init__(self, cfg: CriticConfig, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.q = nn.ModuleList([mlp(obs_dim + act_dim, cfg.hidden, 1) for _ in range(2)])
        self.v = mlp(obs_dim, cfg.hidden, 1)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        for p in [*self.q.parameters(), *self.v.parameters()]:
            p._optim = {"lr": cfg.lr, "weight_decay": 0.0, "clip": False}  # type: ignore[attr-defined]

    def q_values(self, states: Tensor, actions: Tensor, nets: nn.ModuleList | None = None) -> Tensor:
        """min_i Q_i(s, a) over the twins (``nets``: the target's), (...,)."""
        sa = torch.cat([states, actions], dim=-1)
        nets = self.q if nets is None else nets
        return torch.minimum(nets[0](sa), nets[1](sa)).squeeze(-1)

    def value(self, states: Tensor) -> Tensor:
        return self.v(states).squeeze(-1)

    def q_frozen(self, states: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) with the gradient reaching ``actions`` only: what an actor is scored by, which must not
        train the critic."""
        params = {k: v.detach() for k, v in self.q.named_parameters()}
        sa = torch.cat([states, actions], dim=-1)
        q1, q2 = (torch.func.functional_call(self.q[i], {k[2:]: v for k, v in params.items() if k.startswith(f"{i}.")},
                                             (sa,)) for i in range(2))
        return torch.minimum(q1, q2).squeeze(-1)

    @torch.no_grad()
    def advantage(self, states: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_target_i(s, a) - V(s): how much better the data's action is than its average here."""
        return self.q_values(states, actions, self.q_target) - self.value(states)

    def losses(self, batch: WindowBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """L_V + L_Q on the batch's transitions (in float32, whatever autocast the actor runs under), and what
        TensorBoard shows of them."""
        assert batch.rewards is not None and batch.next_states is not None and batch.terminals is not None
        assert batch.td_mask is not None
        s, a, s2 = batch.states.float(), batch.actions.float(), batch.next_states.float()
        m = batch.td_mask.float()
        with torch.autocast(s.device.type, enabled=False):
            with torch.no_grad():
                q_t = self.q_values(s, a, self.q_target)
                target = batch.rewards + self.cfg.discount * (~batch.terminals).float() * self.value(s2)
            v = self.value(s)
            v_loss = masked_mean(expectile_loss(q_t - v, self.cfg.expectile), m)
            sa = torch.cat([s, a], dim=-1)
            qs = [net(sa).squeeze(-1) for net in self.q]
            q_loss = sum(masked_mean((q - target).pow(2), m) for q in qs) / 2
        logs = {"critic/td_loss": q_loss.detach(), "critic/v_loss": v_loss.detach(),
                "critic/q_data": masked_mean(torch.minimum(*qs), m).detach(), "critic/v": masked_mean(v, m).detach()}
        return q_loss + v_loss, logs

    @property
    def learns(self) -> bool:
        """Whether the critic is trained (its parameters require gradients); ``fix`` holds it fixed."""
        return any(p.requires_grad for p in self.q.parameters())

    def fix(self) -> Critic:
        """Hold the critic fixed: no gradient, so no optimizer group, and no soft update (a critic learned
        elsewhere, e.g. by an IQL run, guiding an actor)."""
        self.requires_grad_(False)
        return self

    @torch.no_grad()
    def data_logs(self, batch: WindowBatch) -> dict[str, Tensor]:
        """What TensorBoard shows of a fixed critic on the batch: Q of the data's actions and V."""
        assert batch.td_mask is not None
        s, m = batch.states.float(), batch.td_mask.float()
        with torch.autocast(s.device.type, enabled=False):
            return {"critic/q_data": masked_mean(self.q_values(s, batch.actions.float()), m),
                    "critic/v": masked_mean(self.value(s), m)}

    @torch.no_grad()
    def soft_update(self) -> None:
        """theta' <- (1 - alpha) theta' + alpha theta."""
        for t, p in zip(self.q_target.parameters(), self.q.parameters()):
            t.lerp_(p, self.cfg.target_rate)
