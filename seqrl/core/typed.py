"""Typed dataclasses from plain mappings (YAML, saved configs): keys and value kinds checked, clear errors.

Below every config in the import graph (it needs only ``seqrl.core.errors``), so the run config
(``seqrl.training.config``) and each backbone's options (``seqrl.agents.backbones.options``) read their
mappings the same way without importing each other.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, TypeVar

from seqrl.core.errors import SeqRLError

T = TypeVar("T")


def check_types(cls: type, values: dict[str, Any], source: str) -> None:
    """Refuse a value of the wrong kind or outside a field's choices (YAML values bypass tyro's checks)."""
    hints = typing.get_type_hints(cls)
    problems = []
    for key, value in values.items():
        tp = hints.get(key)
        if tp is None or value is None:
            continue
        ok, want = _fits(tp, value)
        if not ok:
            problems.append(f"{key}: {value!r} is not {want}")
    if problems:
        raise SeqRLError(f"{source}: {'; '.join(problems)}.")


def _fits(tp: Any, value: Any) -> tuple[bool, str]:
    """Whether ``value`` fits the annotation ``tp`` (int, float, bool, str, Path, Literal, list, Optional)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return value in args, "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        results = [_fits(a, value) for a in args if a is not type(None)]
        return any(ok for ok, _ in results), " or ".join(w for _, w in results)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, "a list"
        inner = [_fits(args[0], v) for v in value]
        return all(ok for ok, _ in inner), f"a list of {_fits(args[0], None)[1] if not inner else inner[0][1]}"
    if tp is bool:
        return isinstance(value, bool), "true or false"
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), "an integer"
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if tp in (str, Path):
        return isinstance(value, (str, Path)), "a string"
    return True, ""


def from_mapping(cls: type[T], values: dict[str, Any], source: str, paths: Sequence[str] = ()) -> T:
    """Build the dataclass ``cls`` from ``values``, refusing keys that are not fields (with a suggestion) and
    values of the wrong kind; string values of the fields named in ``paths`` become ``Path``."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in values if k not in names]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, names, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SeqRLError(
            f"{source}: unknown config key(s) {', '.join(hints)}. Valid keys: {', '.join(names)}."
        )
    check_types(cls, values, source)
    kwargs = {k: (Path(v) if isinstance(v, str) and k in paths else v) for k, v in values.items()}
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A flat config dataclass as YAML/JSON takes it: tuples as lists, nested configs as their ``to_dict``."""
    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v.to_dict() if dataclasses.is_dataclass(v) else v
    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_from_dict(cls: type[T], values: Mapping[str, Any], source: str) -> T:
    """``config_to_dict``'s inverse through ``from_mapping``: a list for a field whose default is a tuple becomes a
    tuple, a mapping for a nested config (a field whose default is a dataclass) that config's ``from_dict``."""
    values = dict(values)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        v = values.get(f.name)
        if isinstance(v, list) and isinstance(default, tuple):
            values[f.name] = tuple(v)
        elif isinstance(v, Mapping) and dataclasses.is_dataclass(default):
            values[f.name] = type(default).from_dict(v, f"{source}: {f.name}")
    return from_mapping(cls, values, source)


# ---- facts on fields ----------------------------------------------------------------------------------------
Rule = tuple[Callable[[Any], bool], str]  # (ok(value), what the value must be)
LabelTag = tuple[int, Callable[[Any, Any], str]]  # (rank in the label, tag(value, the config holding it))


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the rest of seqrl needs to know about a config field, kept on the field (``setting``)."""

    rule: Rule | None = None
    """The range its value must be in, checked before any work."""
    label: LabelTag | None = None
    """Its tag in the run's agent label (``+ema0.999``): rank among the tags, and the tag ("" at the default)."""
    on_resume: bool = False
    """May differ on ``--resume`` (an evaluation or machine setting); every other field must equal the run's."""
    agents: tuple[str, ...] | None = None
    """The agent kinds that read it (None: every kind); another kind refuses it set away from its default."""


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, rule: Rule | None = None,
            label: LabelTag | None = None, on_resume: bool = False, agents: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with its ``Facts``: ``width: int = setting(128, rule=(lambda v: v >= 1, ">= 1"))``."""
    facts = Facts(rule, label, on_resume, agents)
    return dataclasses.field(default=default, default_factory=factory, metadata={"facts": facts})


def facts(f: dataclasses.Field) -> Facts:
    """The facts of a field (none given: the defaults, i.e. no rule, no label, fixed on resume, every kind)."""
    return f.metadata.get("facts", Facts())


def rule_problems(obj: Any, prefix: str = "") -> list[tuple[str, bool, str, Any]]:
    """(field, ok, what it must be, value) for every field of the dataclass ``obj`` that has a rule
    (``errors.check_flags``'s input)."""
    out = []
    for f in dataclasses.fields(obj):
        rule = facts(f).rule
        if rule is not None:
            value = getattr(obj, f.name)
            out.append((prefix + f.name, bool(rule[0](value)), rule[1], value))
    return out
