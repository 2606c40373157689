"""The Decision-style agent: model, backbones, policies (rollout modes), training, evaluation."""

from .checkpoint import AgentBundle, load_checkpoint, save_checkpoint
from .model import DecisionModel, ModelConfig, masked_action_mse
from .policy import ROLLOUTS, SequencePolicy

__all__ = [
    "ROLLOUTS",
    "AgentBundle",
    "DecisionModel",
    "ModelConfig",
    "SequencePolicy",
    "load_checkpoint",
    "masked_action_mse",
    "save_checkpoint",
]
