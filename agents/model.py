"""The Decision-Transformer-style trajectory model over any registered backbone, and how it acts.

Two token layouts (``ModelConfig.tokens``):

- ``interleaved`` (DT, Chen et al. 2021): per timestep t three tokens, R^_t (return-to-go), s_t (state),
  a_t (action), each embedded by its own linear layer plus a learned timestep embedding, then LayerNorm.
  The causal backbone reads R^_1, s_1, a_1, R^_2, ... and a_t is predicted from the output at the s_t token
  through a tanh head.
- ``fused``: one token per timestep, the sum of R^_t's and s_t's embeddings (one linear layer over the
  pair) plus the timestep embedding, then LayerNorm; a_t is predicted from that token's output. Actions are
  not inputs. The return-to-go reaches the prediction inside the token, not only through what the backbone
  carries from an earlier token, and the sequence is 3x shorter.

``time_embedding=False`` drops the timestep embedding (the model then sees no episode time, only the order
of its tokens).

This module is the one place that knows that layout. Training: ``forward`` over windows.
Acting, one env step for N envs with the state passed in and returned (as Mamba's ``step`` with its
inference cache), in one of two rollout modes:

- ``step``: recurrent; the backbone state carried from the episode's first step, each env step
  feeding a_{t-1}, R^_t, s_t (no a_{t-1} at t = 0; fused: the one token of R^_t, s_t);
- ``window_step``: DT's evaluation; the state is the last K steps' inputs, re-run from a fresh
  backbone state.

``SequencePolicy`` (PyTorch, policy.py) and ``PolicyStep`` (the exported graph, acting.py) both call them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import torch
from torch import Tensor, nn

from seqrl.core.batch import WindowBatch
from seqrl.core.errors import SeqRLError
from seqrl.core.typed import from_mapping, setting

from .backbones import BackboneConfig, BackboneOptions, State, build_backbone
from .backbones import state as state_tree
from .backbones.options import options_from_mapping
from .backbones.stack import Dropout, ResidualStack

# per layout: (tokens per timestep, the offset in a step's tokens of the one a_t is predicted from)
LAYOUTS = {"interleaved": (3, 1), "fused": (1, 0)}  # R^, s, a / (R^, s)

# The window state: the last K steps' inputs, right-aligned (step t in the last slot), oldest first:
# rtg (N, K) scaled, obs (N, K, obs_dim) normalized, action (N, K, act_dim), timestep (N, K) int64.
WindowState = tuple[Tensor, Tensor, Tensor, Tensor]


def _at_least_1(v: int) -> bool:
    return v >= 1


@dataclass(frozen=True)
class ModelConfig:
    """The Decision model (Chen et al. 2021) over a sequence backbone: everything that rebuilds it but the data's
    sizes, which ``create`` takes. Stored in every checkpoint; nested in the run config (``model:``)."""

    backbone: str = "transformer"
    """Sequence backbone, by registry name (transformer, mingru, ...; an unknown name lists them all). Its own
    options are the flags of its group (--mingru.gate, --s4d.d-state, ...)."""
    width: int = setting(128, rule=(_at_least_1, ">= 1"))
    """Embedding / model width D."""
    n_layers: int = setting(3, rule=(_at_least_1, ">= 1"))
    """Blocks in the backbone."""
    dropout: float = setting(0.1, rule=(lambda v: 0 <= v < 1, "in [0, 1)"))
    """Dropout on embeddings, residual branches and attention."""
    context_len: int = setting(20, rule=(_at_least_1, ">= 1"))
    """K: timesteps per training window (3K tokens)."""
    max_ep_len: int = setting(1000, rule=(_at_least_1, ">= 1"))
    """Size of the timestep embedding (longest episode)."""
    time_embedding: bool = setting(True, label=(50, lambda v, _: "" if v else "+no-time"))
    """Add DT's learned timestep embedding to every token. Off (--no-time-embedding): the model sees no episode
    time, so a target return above the data's is asked of it at states, not at (state, time) pairs the data
    never reached (docs/recipe.md)."""
    tokens: Literal["interleaved", "fused"] = setting("interleaved", label=(60, lambda v, _: "" if v == "interleaved" else f"+{v}"))
    """Token layout: interleaved (DT: a return-to-go, a state and an action token per timestep, a_t read
    at the state's) or fused (one token per timestep made of the return-to-go and the state, actions not
    fed in; the target reaches each prediction directly, and the sequence is 3x shorter)."""
    options: BackboneOptions | None = None
    """The backbone's own options (an instance of its registered options class; None: its defaults)."""

    def __post_init__(self) -> None:
        if self.tokens not in LAYOUTS:
            raise SeqRLError(f"tokens must be one of {', '.join(LAYOUTS)}; got {self.tokens!r}.")
        object.__setattr__(self, "options", options_from_mapping(self.backbone, self.options, "model config"))

    @property
    def tokens_per_step(self) -> int:
        return LAYOUTS[self.tokens][0]

    @property
    def read_token(self) -> int:
        """The offset, in a step's tokens, of the token whose output predicts a_t (s_t's, or the fused one)."""
        return LAYOUTS[self.tokens][1]

    def label(self) -> str:
        """What the run's agent label says of the model: the backbone and its options' tags (``mingru+ur``)."""
        return self.backbone + self.options.label()

    def backbone_config(self) -> BackboneConfig:
        # The read token of a K-step window sees at most 3K - 1 tokens (a_t comes after it); fused: K.
        return BackboneConfig(width=self.width, n_layers=self.n_layers, dropout=self.dropout,
                              max_tokens=self.tokens_per_step * (self.context_len - 1) + self.read_token + 1,
                              options=self.options)

    def create(self, obs_dim: int, act_dim: int) -> DecisionModel:
        """The model for data with these observation and action sizes."""
        return DecisionModel(self, obs_dim, act_dim)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # options as a mapping of its fields

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "model config") -> ModelConfig:
        """From ``to_dict`` (a config file's ``model:``, a checkpoint): keys and value kinds checked."""
        values = dict(values)
        backbone = values.get("backbone", cls.backbone)
        options = options_from_mapping(backbone, values.pop("options", None), source)
        return from_mapping(cls, {**values, "options": options}, source)


class DecisionModel(nn.Module):
    kind = "dt"
    # training forward: the backbone's last per-position layers (MLP, final norm) run at the s_t tokens only, the
    # only ones read (same values; False: at every token, as before, for benchmarks)
    read_tokens_only: bool = True

    def __init__(self, cfg: ModelConfig, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        d = cfg.width
        self.embed_return = nn.Linear(1, d)
        self.embed_state = nn.Linear(obs_dim, d)
        # fused: actions are not inputs (no parameters that never train)
        self.fused = cfg.tokens == "fused"
        self.embed_action = None if self.fused else nn.Linear(act_dim, d)
        self.embed_timestep = nn.Embedding(cfg.max_ep_len, d) if cfg.time_embedding else None
        self.embed_norm = nn.LayerNorm(d)
        self.embed_drop = Dropout(cfg.dropout)
        self.backbone = build_backbone(cfg.backbone, cfg.backbone_config())
        self.action_head = nn.Sequential(nn.Linear(d, act_dim), nn.Tanh())

    # ---- tokens -----------------------------------------------------------------------------
    def _finish(self, tok: Tensor, timesteps: Tensor) -> Tensor:
        """tok: (..., D) embedded inputs; timesteps: their episode steps, broadcastable to tok's (...)."""
        if self.embed_timestep is not None:
            tok = tok + self.embed_timestep(timesteps.clamp(0, self.cfg.max_ep_len - 1))
        return self.embed_drop(self.embed_norm(tok))

    def interleave(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """-> (B, 3T, D) in the order R^_1, s_1, a_1, R^_2, s_2, a_2, ...; fused: (B, T, D), one per step.
        rtg (B, T, 1) scaled, states (B, T, obs_dim), actions (B, T, act_dim) (fused: unused), timesteps (B, T)."""
        if self.fused:
            return self._finish(self.embed_return(rtg) + self.embed_state(states), timesteps)
        tok = torch.stack([self.embed_return(rtg), self.embed_state(states), self.embed_action(actions)], dim=2)
        b, t, _, d = tok.shape
        # one timestep embedding shared by the three tokens of a step: (B, T, 1)
        return self._finish(tok, timesteps[:, :, None]).reshape(b, 3 * t, d)

    def sequence(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """The tokens of T steps up to the last one read: ``interleave`` without the trailing a_T, which
        predicts nothing and, the backbone being causal, changes no earlier output. (B, 3T - 1, D); fused (B, T, D)."""
        tokens = self.interleave(rtg, states, actions, timesteps)
        return tokens if self.fused else tokens[:, :-1]

    def step_tokens(self, rtg: Tensor, obs: Tensor, prev_action: Tensor, timestep: Tensor) -> Tensor:
        """The tokens one env step adds in the recurrent rollout: a_{t-1}, R^_t, s_t -> (N, 3, D); fused (N, 1, D).

        rtg: (N,) scaled; obs: (N, obs_dim) normalized; prev_action: (N, act_dim), the action taken at
        t - 1 (embedded at step t - 1; meaningless at t = 0, where ``step`` skips it; fused: unused); timestep: (N,) t."""
        if self.fused:
            return self._finish(self.embed_return(rtg[:, None]) + self.embed_state(obs), timestep)[:, None]
        tok = torch.stack([self.embed_action(prev_action), self.embed_return(rtg[:, None]), self.embed_state(obs)], dim=1)
        ts = torch.stack([timestep - 1, timestep, timestep], dim=1)  # (N, 3)
        return self._finish(tok, ts)

    # ---- training ---------------------------------------------------------------------------
    def forward(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """Predicted actions (B, T, act_dim) for windows that start from the initial state."""
        # Dropping a_T (``sequence``) also keeps the transformer's 3K - 1 tokens within its span (causal fast
        # path). Only the outputs at the read tokens are used: the backbone computes its last per-position
        # layers there only.
        tokens = self.sequence(rtg, states, actions, timesteps)  # (B, 3T - 1, D); fused (B, T, D)
        at_states = slice(self.cfg.read_token, None, self.cfg.tokens_per_step)
        if self.read_tokens_only and isinstance(self.backbone, ResidualStack):
            h, _ = self.backbone(tokens, keep=at_states)  # (B, T, D), outputs at the read tokens
        else:
            h = self.backbone(tokens)[0][:, at_states]
        return self.predict_action(h)

    @staticmethod
    def batch_inputs(batch: WindowBatch) -> tuple[Tensor, ...]:
        """What ``forward`` takes from a training batch."""
        return batch.rtg, batch.states, batch.actions, batch.timesteps

    def training_loss(self, batch: WindowBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The action MSE on one batch (DT's loss), and what TensorBoard shows of it."""
        return imitation_loss(self, batch)

    def predict_action(self, h_state_token: Tensor) -> Tensor:
        """The backbone's output at s_t tokens (..., D) -> a_t (..., act_dim) in (-1, 1)."""
        return self.action_head(h_state_token)

    @torch.no_grad()
    def gate_activations(self, batch: WindowBatch) -> dict[str, Tensor]:
        """Gate activations per layer (``layer0/forget``, ...) at the batch's real tokens, each flattened to 1-D,
        for backbones whose mixers expose them (UR paper, fig. 4); empty for the others."""
        fn = getattr(self.backbone, "gate_activations", None)
        if fn is None:
            return {}
        tokens = self.interleave(batch.rtg, batch.states, batch.actions, batch.timesteps)  # (B, 3K, D)
        real = batch.mask.repeat_interleave(self.cfg.tokens_per_step, dim=1)  # (B, 3K) (fused: (B, K)): not padding
        return {name: act[real] for name, act in fn(tokens).items()}

    # ---- acting -----------------------------------------------------------------------------
    @property
    def has_recurrent_step(self) -> bool:
        """Whether the recurrent state is O(1) per env step (every backbone but the transformer, whose grows)."""
        return self.backbone.constant_state

    def initial_state(self, batch: int) -> State:
        """The recurrent state (``step``) before the first step of ``batch`` envs: the backbone's."""
        return self.backbone.initial_state(batch)

    def initial_window(self, batch: int) -> WindowState:
        """The window state (``window_step``) before the first step of ``batch`` envs: zeros."""
        p, k = next(self.parameters()), self.cfg.context_len
        return (p.new_zeros(batch, k), p.new_zeros(batch, k, self.obs_dim), p.new_zeros(batch, k, self.act_dim),
                torch.zeros(batch, k, dtype=torch.long, device=p.device))

    def step(self, rtg: Tensor, obs: Tensor, prev_action: Tensor, timestep: Tensor, state: State,
             started: bool | None = None) -> tuple[Tensor, State]:
        """One env step of the recurrent rollout -> (action (N, act_dim), next state).

        rtg (N,) scaled R^_t; obs (N, obs_dim) normalized s_t; prev_action (N, act_dim) a_{t-1}; timestep (N,) t.
        Tokens a_{t-1}, R^_t, s_t go through the backbone with the carried state; at t = 0 there is no a_{t-1},
        per env (envs need not be in lockstep): a pass over a_{t-1} first, whose state is kept only where t > 0,
        then one over R^_t, s_t. ``started``: whether every env is past t = 0 (one pass over the three tokens);
        None: found from ``timestep`` (give it when tracing a graph, which cannot branch on data).
        Fused: the one token of R^_t, s_t through the backbone with the carried state."""
        tokens = self.step_tokens(rtg, obs, prev_action, timestep)  # (N, 3, D); fused (N, 1, D)
        if self.fused:  # no a_{t-1} token to skip at t = 0: one pass, as for envs that have all started
            started = True
        if started is None:
            past = timestep > 0
            started = bool(past.all())
            if not started and not bool(past.any()):  # every env at t = 0: no a_{t-1} anywhere
                tokens, started = tokens[:, 1:], True
        if not started:
            _, after_a = self.backbone(tokens[:, :1], state)
            dims = state_tree.batch_dims(self.backbone.initial_state(1), self.backbone.initial_state(2))
            state = state_tree.where(timestep > 0, after_a, state, dims)
            tokens = tokens[:, 1:]
        h, state = self.backbone(tokens, state)  # (N, 2 or 3, D): the last is s_t's
        return self.predict_action(h[:, -1]), state

    def window_step(self, rtg: Tensor, obs: Tensor, prev_action: Tensor, timestep: Tensor, window: WindowState,
                    lockstep: bool | None = None) -> tuple[Tensor, WindowState]:
        """One env step of the window rollout -> (action (N, act_dim), next window); inputs as ``step``'s.

        The last slot holds step t - 1: its action becomes the one taken, then step t shifts in (its action
        unknown: 0). The last n = min(t + 1, K) slots are this episode's; they run from a fresh backbone state
        and a_t is read at s_t's output. ``lockstep``: whether every env is at the same step, so that the last
        n slots alone are run (None: found from ``timestep``; a traced graph, which cannot branch on data, takes
        False). Otherwise each env's n slots are rotated to the front of its window (the causal backbone never
        lets the stale slots behind them reach their outputs) and each env's s_t output is read."""
        h_rtg, h_obs, h_act, h_ts = window
        k = self.cfg.context_len
        h_act = torch.cat([h_act[:, :-1], prev_action[:, None]], dim=1)
        h_rtg = torch.cat([h_rtg[:, 1:], rtg[:, None]], dim=1)  # (N, K)
        h_obs = torch.cat([h_obs[:, 1:], obs[:, None]], dim=1)  # (N, K, obs_dim)
        h_act = torch.cat([h_act[:, 1:], torch.zeros_like(prev_action[:, None])], dim=1)  # (N, K, act_dim)
        h_ts = torch.cat([h_ts[:, 1:], timestep[:, None]], dim=1)  # (N, K)
        window = (h_rtg, h_obs, h_act, h_ts)
        n = (timestep + 1).clamp(max=k)  # (N,)
        if lockstep is None:
            lockstep = bool((n == n[0]).all())
        if lockstep:  # the last n slots of every env: (N, 3n - 1, D) (fused: (N, n, D)), s_t's output last
            m = int(n[0])
            tokens = self.sequence(h_rtg[:, k - m :, None], h_obs[:, k - m :], h_act[:, k - m :], h_ts[:, k - m :])
            h, _ = self.backbone(tokens)
            return self.predict_action(h[:, -1]), window
        idx = (torch.arange(k, device=timestep.device)[None] + (k - n)[:, None]) % k  # (N, K)
        tokens = self.sequence(
            h_rtg.gather(1, idx)[..., None],
            h_obs.gather(1, idx[..., None].expand_as(h_obs)),
            h_act.gather(1, idx[..., None].expand_as(h_act)),
            h_ts.gather(1, idx),
        )  # (N, 3K - 1, D): a_t is unknown; fused (N, K, D)
        h, _ = self.backbone(tokens)
        at = (self.cfg.tokens_per_step * (n - 1) + self.cfg.read_token)[:, None, None].expand(-1, 1, h.shape[-1])
        return self.predict_action(h.gather(1, at)[:, 0]), window


def imitation_loss(model: nn.Module, batch: WindowBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """The masked action MSE of ``model``'s actions for the batch (``batch_inputs``): the loss of the agents that
    imitate (the Decision model, BC), with its log."""
    loss = masked_action_mse(model(*model.batch_inputs(batch)).float(), batch.actions, batch.mask)
    return loss, {"losses/action_mse": loss.detach()}


def masked_action_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over non-padded timesteps. pred/target: (B, T, A); mask: (B, T) bool."""
    sq = (pred - target).pow(2).mean(dim=-1)  # (B, T)
    return (sq * mask).sum() / mask.sum().clamp_min(1)
