"""How every command ends: with its own exit status, or with one line (what, where, what to do) and a status other
than 0, never a traceback.

- ``SeqRLError`` (a mistake in the input): ``error: <message>``, status 2.
- ``OSError`` (a path that is a file or a folder, read-only, missing; a full disk): ``error: <path>: <what>``,
  status 1. A command that knows more (what was kept, how to go on) turns it into a ``SeqRLError`` first.
- SIGINT (Ctrl-C) and SIGTERM (``kill``, a batch system's stop): both raise ``Stopped`` in the main thread,
  wherever it is; the command says where it stopped and what was kept, status 128 + the signal's number.
"""

from __future__ import annotations

import errno
import signal
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from .errors import SeqRLError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A SIGINT or SIGTERM arrived (``signum``). A ``KeyboardInterrupt``, so that ``except Exception`` never
    swallows it and every ``finally`` on the way out runs."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.said = ""  # where it stopped and what was kept, set by the code that knows (printed as the one line)

    @property
    def name(self) -> str:
        """``SIGINT`` or ``SIGTERM``."""
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it (130, 143)."""
        return 128 + self.signum


def stopped_by(e: KeyboardInterrupt) -> Stopped:
    """``e`` as a ``Stopped`` (a plain ``KeyboardInterrupt`` is a SIGINT)."""
    return e if isinstance(e, Stopped) else Stopped(signal.SIGINT)


_pending: list[Stopped] = []  # the stop a signal raised, until the command has ended (stop_on_signals)


def _raise_stopped(signum: int, frame: object) -> None:
    _pending[:] = [Stopped(signum)]
    raise _pending[0]


def raise_pending_stop() -> None:
    """Raise again a SIGINT or SIGTERM whose ``Stopped`` some C code swallowed (a C extension importing modules, a
    callback from MuJoCo): called where a command passes often (making an env, each env step, each update)."""
    if _pending:
        raise _pending[0]


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise ``Stopped`` in the main thread; the earlier handlers after. Outside
    the main thread (a test's, a worker's) it does nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        _pending.clear()


@contextmanager
def signals_ignored() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM are ignored: a command that stops on the first one finishes stopping (its
    children, its files) whatever comes after. Outside the main thread it does nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


OS_PROBLEMS = {  # errno -> what it means for a path, said to a user
    errno.ENOSPC: "no space left on the device (the disk is full); free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; give a path on a writable disk",
    errno.EACCES: "permission denied; give a path you may write to",
    errno.EPERM: "operation not permitted; give a path you may write to",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "is a folder, where a file is needed",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "exists already",
}


def is_disk_full(e: BaseException) -> bool:
    """Whether ``e`` says the disk (or the quota) is full."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def os_error_text(e: OSError) -> str:
    """One line for an ``OSError``: the path it concerns and what the problem means (``/runs/a: the file system is
    read-only; give a path on a writable disk``)."""
    what = OS_PROBLEMS.get(e.errno or -1) or (e.strerror or str(e))
    where = e.filename if e.filename is not None else ""
    if e.filename2 is not None:
        where = f"{where} -> {e.filename2}"
    return f"{where}: {what}" if where else what


@contextmanager
def loading(program: str) -> Iterator[None]:
    """While ``program`` loads its modules (torch, MuJoCo: seconds), SIGINT and SIGTERM end it with one line and
    the signal's exit status (nothing is written yet). For the scripts, around their import of the program."""
    try:
        with stop_on_signals():
            yield
    except KeyboardInterrupt as e:
        stop = stopped_by(e)
        print(f"stopped by {stop.name} while {program} was loading; nothing was written.", file=sys.stderr)
        sys.exit(stop.exit_status)


def run_command(body: Callable[[], int], stopped: Callable[[Stopped], str] | None = None) -> int:
    """Run a command's ``body`` with SIGINT and SIGTERM raising ``Stopped``, and end it as the module docstring
    says; ``stopped`` says in one line where it stopped and what was kept (default: that it stopped)."""
    try:
        with stop_on_signals():
            return body()
    except SeqRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {os_error_text(e)}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        stop = stopped_by(e)
        with signals_ignored():  # a second signal (a grid stopping its children) does not cut the line short
            print(stop.said or (stopped(stop) if stopped else f"stopped by {stop.name}."), file=sys.stderr, flush=True)
        return stop.exit_status


def exit_status_of(returncode: int) -> str:
    """A child's exit as a person reads it: ``exit 2``, or ``SIGTERM`` for a process ended by a signal."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"

