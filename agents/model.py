"""The Decision-Transformer-style trajectory model over any registered backbone.

Per timestep t three tokens, R^_t (return-to-go), s_t (state), a_t (action),
each embedded by its own linear layer plus a learned timestep embedding, then
LayerNorm (Chen et al. 2021). The causal backbone reads the interleaved
sequence R^_1, s_1, a_1, R^_2, ... and a_t is predicted from the output at the
s_t token through a tanh head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from seqrl.datasets import WindowBatch

from .backbones import BackboneConfig, State, build_backbone
from .backbones.stack import Dropout, ResidualStack

TOKENS_PER_STEP = 3  # R^, s, a


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (stored in every checkpoint)."""

    obs_dim: int
    act_dim: int
    backbone: str = "transformer"
    width: int = 128
    n_layers: int = 3
    n_heads: int = 1
    dropout: float = 0.1
    context_len: int = 20  # K timesteps per training window
    gate: str = "default"  # minGRU / minLSTM gate option
    d_state: int = 16  # SSM state size
    dt_min: float = 1e-3  # SSM step-size init range (s4d, mamba)
    dt_max: float = 1e-1
    scan: str = "auto"  # scan implementation (same function either way)
    max_ep_len: int = 1000  # size of the timestep embedding

    def backbone_config(self) -> BackboneConfig:
        # The s_t token of a K-step window sees at most 3K - 1 tokens (a_t comes after it).
        return BackboneConfig(
            d_model=self.width,
            n_layers=self.n_layers,
            dropout=self.dropout,
            n_heads=self.n_heads,
            max_tokens=TOKENS_PER_STEP * self.context_len - 1,
            gate=self.gate,
            d_state=self.d_state,
            dt_min=self.dt_min,
            dt_max=self.dt_max,
            scan=self.scan,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class DecisionModel(nn.Module):
    kind = "dt"
    # training forward: the backbone's last per-position layers (MLP, final norm) run at the s_t tokens only, the
    # only ones read (same values; False: at every token, as before, for benchmarks)
    read_tokens_only: bool = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.embed_return = nn.Linear(1, d)
        self.embed_state = nn.Linear(cfg.obs_dim, d)
        self.embed_action = nn.Linear(cfg.act_dim, d)
        self.embed_timestep = nn.Embedding(cfg.max_ep_len, d)
        self.embed_norm = nn.LayerNorm(d)
        self.embed_drop = Dropout(cfg.dropout)
        self.backbone = build_backbone(cfg.backbone, cfg.backbone_config())
        self.action_head = nn.Sequential(nn.Linear(d, cfg.act_dim), nn.Tanh())

    # ---- tokens -----------------------------------------------------------------------------
    def _finish(self, tok: Tensor, time_emb: Tensor) -> Tensor:
        return self.embed_drop(self.embed_norm(tok + time_emb))

    def time_embedding(self, timesteps: Tensor) -> Tensor:
        """timesteps: (B, T) episode steps -> (B, T, D)."""
        return self.embed_timestep(timesteps.clamp(0, self.cfg.max_ep_len - 1))

    def step_tokens(self, rtg: Tensor, states: Tensor, timesteps: Tensor, prev_actions: Tensor | None = None) -> Tensor:
        """The tokens one env step adds in the recurrent rollout: (a_{t-1},) R^_t, s_t -> (N, 2 or 3, D).

        rtg: (N, 1, 1) scaled; states: (N, 1, obs_dim) normalized; timesteps: (N, 1) the step t;
        prev_actions: (N, 1, act_dim), the action taken at t - 1 (None at t = 0)."""
        tok = [self.embed_return(rtg), self.embed_state(states)]
        ts = [timesteps, timesteps]
        if prev_actions is not None:
            tok.insert(0, self.embed_action(prev_actions))
            ts.insert(0, timesteps - 1)
        return self._finish(torch.cat(tok, dim=1), self.time_embedding(torch.cat(ts, dim=1)))

    def interleave(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """-> (B, 3T, D) in the order R^_1, s_1, a_1, R^_2, s_2, a_2, ..."""
        te = self.time_embedding(timesteps)  # shared by the three tokens of a step
        tok = torch.stack([self.embed_return(rtg), self.embed_state(states), self.embed_action(actions)], dim=2)
        b, t, _, d = tok.shape
        return self._finish(tok, te[:, :, None]).reshape(b, TOKENS_PER_STEP * t, d)

    # ---- training ---------------------------------------------------------------------------
    def forward(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """Predicted actions (B, T, act_dim) for windows that start from the initial state."""
        # The last token (a_T) predicts nothing and, the backbone being causal, changes no earlier output:
        # it is dropped, which also keeps the transformer's 3K - 1 tokens within its span (causal fast path).
        # Only the outputs at the s_t tokens are read: the backbone computes its last per-position layers there only.
        tokens = self.interleave(rtg, states, actions, timesteps)[:, :-1]  # (B, 3T - 1, D)
        at_states = slice(1, None, TOKENS_PER_STEP)
        if self.read_tokens_only and isinstance(self.backbone, ResidualStack):
            h, _ = self.backbone(tokens, keep=at_states)  # (B, T, D), outputs at the s_t tokens
        else:
            h = self.backbone(tokens)[0][:, at_states]
        return self.predict_action(h)

    @staticmethod
    def batch_inputs(batch: WindowBatch) -> tuple[Tensor, ...]:
        """What ``forward`` takes from a training batch."""
        return batch.rtg, batch.states, batch.actions, batch.timesteps

    def predict_action(self, h_state_token: Tensor) -> Tensor:
        return self.action_head(h_state_token)

    def initial_state(self, batch: int) -> State:
        return self.backbone.initial_state(batch)


def masked_action_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over non-padded timesteps. pred/target: (B, T, A); mask: (B, T) bool."""
    sq = (pred - target).pow(2).mean(dim=-1)  # (B, T)
    return (sq * mask).sum() / mask.sum().clamp_min(1)
