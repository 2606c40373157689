"""A backbone state as a tree of tensors (a tensor, or tuples of them: one entry per layer): its leaves in
order, rebuilt from leaves, the env (batch) dim of each leaf, and a per-env choice between two states."""

from __future__ import annotations

from torch import Tensor

from seqrl.core.errors import SeqRLError

from .base import State


def leaves(tree: State, name: str = "state") -> list[tuple[str, Tensor]]:
    """The tensors of ``tree`` in order, each with a dotted name (``name.0.1``)."""
    if isinstance(tree, Tensor):
        return [(name, tree)]
    if isinstance(tree, (tuple, list)):
        return [item for i, sub in enumerate(tree) for item in leaves(sub, f"{name}.{i}")]
    raise SeqRLError(f"A backbone state holds tensors and tuples of them, not {type(tree).__name__}.")


def rebuild(template: State, flat: list[Tensor]) -> State:
    """The tree of ``template`` with its leaves taken, in order, from ``flat`` (consumed)."""
    if isinstance(template, Tensor):
        return flat.pop(0)
    return tuple(rebuild(sub, flat) for sub in template)


def batch_dims(one: State, two: State) -> list[int]:
    """The env dim of each leaf, from the states of 1 and of 2 envs (the one dim where their shapes differ)."""
    dims = []
    for (_, a), (_, b) in zip(leaves(one), leaves(two)):
        diff = [d for d, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y]
        if len(diff) != 1:
            raise SeqRLError(f"Cannot tell the env dim of a state tensor of shape {tuple(a.shape)}.")
        dims.append(diff[0])
    return dims


def where(mask: Tensor, if_true: State, if_false: State, dims: list[int]) -> State:
    """Per env: ``if_true``'s state where ``mask`` (N,) holds, else ``if_false``'s. ``dims``: each leaf's env dim."""
    chosen = []
    for d, (_, a), (_, b) in zip(dims, leaves(if_true), leaves(if_false)):
        chosen.append(a.where(mask.view([-1 if i == d else 1 for i in range(a.dim())]), b))
    return rebuild(if_true, chosen)
