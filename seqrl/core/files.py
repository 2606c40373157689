"""Files a crash cannot damage: every file seqrl writes goes through a temporary file, fsync and a rename, so an
interrupted write (a signal, a full disk) leaves the previous file whole; JSON-lines records are read back with
damaged lines reported, never raised on; JSON never holds NaN or infinity (they are refused when written). An
output path is checked before the work that fills it (``writable_folder``, ``writable_file``), so that a
command never fails at its end for a path it could have refused at its start. (Logs that grow while a program
runs, a grid's ``train.log``, are appended as streams.)"""

from __future__ import annotations

import functools
import json
import math
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .command import os_error_text, raise_pending_stop
from .errors import SeqRLError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is synced and renamed to ``path`` (a file that
    exists keeps its permission bits, a new one gets those a plain ``open`` gives: 0o666 less the umask), on
    failure removed. For writers that take a path (``torch.save``)."""
    raise_pending_stop()  # a SIGINT/SIGTERM that C code swallowed stops the command before it writes, not after
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file: the one it was for
            e.filename = str(path)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """``text`` as UTF-8, atomically."""
    write_atomic(path, text.encode())


def non_finite_fields(record: Any, prefix: str = "") -> list[str]:
    """The dotted paths of the numbers in ``record`` (mappings and lists, any depth) that are NaN or infinite."""
    if isinstance(record, float):
        return [] if math.isfinite(record) else [prefix or "the value"]
    if isinstance(record, dict):
        return [p for k, v in record.items() for p in non_finite_fields(v, f"{prefix}{k}.")]
    if isinstance(record, (list, tuple)):
        return [p for i, v in enumerate(record) for p in non_finite_fields(v, f"{prefix}{i}.")]
    return []


def json_text(record: Any, path: Path, **kwargs: Any) -> str:
    """``record`` as JSON for the file ``path``. JSON has no NaN or infinity (``json`` would write the non-standard
    ``NaN``): a record holding one is refused, naming the file and the fields."""
    bad = [p.rstrip(".") for p in non_finite_fields(record)]
    if bad:
        raise SeqRLError(f"{path} not written: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} "
                         f"{'is' if len(bad) == 1 else 'are'} not a finite number (NaN or infinity).")
    return json.dumps(record, allow_nan=False, **kwargs)


def write_json(path: Path, record: Any, indent: int = 1) -> None:
    """``record`` as indented JSON, atomically."""
    write_atomic(path, json_text(record, path, indent=indent).encode())


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Add one JSON line to ``path`` atomically: a crash leaves the old file or the new, never a partial line."""
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_atomic(path, old + (json_text(record, path) + "\n").encode())


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with these records, atomically."""
    write_atomic(path, "".join(json_text(r, path) + "\n" for r in records).encode())


def read_yaml(path: Path, what: str = "Config file") -> Any:
    """The YAML document in ``path``; a ``SeqRLError`` naming ``what`` and the file for one that is missing,
    unreadable, not UTF-8, not valid YAML, or gives a key twice in one mapping (YAML would keep the last silently)."""
    import yaml

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as e:
        raise SeqRLError(f"{what} {str(path)!r}: {os_error_text(e)}.") from None
    except UnicodeDecodeError as e:
        raise SeqRLError(f"{what} {str(path)!r} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                         f"{e.start}); save it as UTF-8.") from None
    try:
        return yaml.load(text, Loader=_unique_key_loader())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SeqRLError(f"{what} {str(path)!r} is not valid YAML ({where}{getattr(e, 'problem', None) or e}).") from None


@functools.lru_cache(maxsize=1)
def _unique_key_loader() -> type:
    """yaml's safe loader, refusing a key given twice in one mapping."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, (str, int, float, bool)):
                    continue  # a complex key: yaml itself refuses it or keeps it
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice (lines {seen[key]} and {line}); keep one",
                        key_node.start_mark)
                seen[key] = line
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The records of a JSON-lines file. A damaged line (not JSON, not an object, or without a
    ``required`` key) is reported on stderr with the file and line number, and skipped."""
    records = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            problem = "" if isinstance(rec, dict) else "not a JSON object"
            problem = problem or ", ".join(f"no {k!r}" for k in required if k not in rec)
        except ValueError as e:
            problem = f"not valid JSON ({e})"
        if problem:
            print(f"[seqrl] warning: {path}:{i}: damaged line skipped, {problem}: {line[:80]!r}", file=sys.stderr)
            continue
        records.append(rec)
    return records


def writable_folder(folder: Path, what: str, shown: Path | None = None) -> None:
    """Refuse now, before any work, a ``folder`` (made later where missing) that cannot be written: one of its
    existing parts a file, or the nearest existing folder read-only or not the user's. The message names it as
    ``what shown`` (``--run-dir runs/a``; ``shown`` defaults to ``folder``)."""
    folder = Path(folder)
    shown = folder if shown is None else shown
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == shown else f" ({existing} is a file)"
        raise SeqRLError(f"{what} {shown}: a file stands where a folder is needed{where}. Give another path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".seqrl-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        e.filename = str(existing)  # the folder, not the probe's name
        raise SeqRLError(f"{what} {shown}: cannot write there ({os_error_text(e)}).") from None


def writable_file(path: Path, what: str, replaceable: Callable[[Path], bool] | None = None, kind: str = "",
                  example: str = "out") -> None:
    """Refuse now, before any work, an output file that cannot be written (``writable_folder`` for its folder; a
    folder at its place: ``example`` is a file name to suggest in it), or that exists and is not one this
    command may replace: ``replaceable`` (a file of the ``kind`` it writes), None: any file."""
    path = Path(path)
    if path.is_dir():
        raise SeqRLError(f"{what} {path}: a folder; give the path of a file (e.g. {path / example}).")
    writable_folder(path.parent, what, shown=path)
    if path.exists() and replaceable is not None and not replaceable(path):
        raise SeqRLError(f"{what} {path}: exists and is not {kind}; it is left as it is. Give another path (or move "
                         "that file away first).")
