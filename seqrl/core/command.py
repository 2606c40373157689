"""How every command ends: with its own exit status, or with one line (what, where, what to do) and a status other
than 0, never a traceback.

- ``SeqRLError`` (a mistake in the input): ``error: <message>``, status 2.
- ``OSError`` (a path that is a file or a folder, read-only, missing; a full disk): ``error: <path>: <what>``,
  status 1. A command that knows more (what was kept, how to go on) turns it into a ``SeqRLError`` first.
- SIGINT (Ctrl-C) and SIGTERM (``kill``, a batch system's stop): both raise ``Stopped`` in the main thread,
  wherever it is; the command says where it stopped and what was kept, status 128 + the signal's number. While
  the command is still loading (``guard_loading``, from ``import seqrl`` on), one line says so.
"""

from __future__ import annotations

import errno
import os
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
    before = {s: _after_loading(s, signal.signal(s, _raise_stopped)) for s in STOP_SIGNALS}
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
    before = {s: _after_loading(s, signal.signal(s, signal.SIG_IGN)) for s in STOP_SIGNALS}
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


PROGRAMS = ("train_offline.py", "evaluate.py", "export.py")  # the checkout's scripts; the rest are seqrl-* or -m seqrl.*


def command_name(argv0: str, orig_argv: list[str]) -> str | None:
    """The seqrl command this process runs (``python -m seqrl.grid``, ``seqrl-grid``, ``train_offline.py``), read
    from its command line, or None for any other program (a notebook, pytest, a user's script importing seqrl)."""
    if "-m" in orig_argv[1:]:
        module = orig_argv[orig_argv.index("-m", 1) + 1 :][:1]
        return f"python -m {module[0]}" if module and module[0].split(".")[0] == "seqrl" else None
    name = argv0.replace("\\", "/").rsplit("/", 1)[-1]
    return name if name.startswith("seqrl-") or name in PROGRAMS else None


def _stop_while_loading(signum: int, frame: object) -> None:
    print(f"stopped by {signal.Signals(signum).name} while {_loading[0]} was loading; nothing was written.",
          file=sys.stderr, flush=True)
    os._exit(128 + signum)  # nothing is written yet; leaving at once, no C code in an import can swallow it


_loading: list[str] = []  # the command being loaded, while guard_loading's handlers are in place


def guard_loading() -> None:
    """From the moment ``seqrl`` is imported by one of its commands until the command's own handling starts
    (``stop_on_signals``): SIGINT and SIGTERM end it with one line and 128 + the signal's number, not with an
    import's traceback (SIGINT) or silently (SIGTERM). The loading (torch, MuJoCo) takes seconds. Any other
    program importing seqrl keeps its own handlers."""
    import threading

    name = command_name(sys.argv[0] if sys.argv else "", list(getattr(sys, "orig_argv", sys.argv)))
    if name is None or _loading or threading.current_thread() is not threading.main_thread():
        return
    _loading.append(name)
    for s in STOP_SIGNALS:
        if signal.getsignal(s) in (signal.default_int_handler, signal.SIG_DFL):  # a parent's SIG_IGN is kept
            signal.signal(s, _stop_while_loading)


def _after_loading(signum: int, handler: object) -> object:
    """The handler to restore for ``signum``: the default in place of the loading guard, which has ended."""
    if handler is not _stop_while_loading:
        return handler
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL


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

