"""The one exception type that the command-line tools report without a traceback."""


class SeqRLError(Exception):
    """A problem with the user's input (a path, a name, a shape, a config key).

    The message says what is wrong and what to do about it; the command-line
    tools print it as one paragraph and exit with status 2.
    """


def flag(name: str) -> str:
    """The command-line flag of a config field: ``context_len`` -> ``--context-len``, ``mingru.d_state`` ->
    ``--mingru.d-state``."""
    return "--" + name.replace("_", "-")


def check_flags(checks: "list[tuple[str, bool, str, object]]") -> None:
    """Refuse bad flag values before any work: ``checks`` are (field name, ok, what it must be, value
    given); every failed one is listed in one SeqRLError (``--field-name must be ... (got ...)``)."""
    bad = [f"{flag(name)} must be {want} (got {value!r})" for name, ok, want, value in checks if not ok]
    if bad:
        raise SeqRLError("; ".join(bad) + ". See --help for what each flag means.")


SEED_RULE = "in [0, 2**32)"  # what numpy's and torch's seeding take
RETURNS_RULE = "one or more finite returns"


def seed_ok(seed: int) -> bool:
    return 0 <= seed < 2**32


def returns_ok(returns: "list[float] | None") -> bool:
    """None (the default) or a non-empty list of finite target returns."""
    import math

    return returns is None or (len(returns) > 0 and all(map(math.isfinite, returns)))
