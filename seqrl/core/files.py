"""Files a crash cannot damage: every file seqrl writes goes through a temporary file, fsync and a rename, so an
interrupted write leaves the previous file whole; JSON-lines records are read back with damaged lines reported,
never raised on."""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is synced and renamed to ``path`` (a file that
    exists keeps its permission bits), on failure removed. For writers that take a path (``torch.save``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, record: Any) -> None:
    """``record`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(record, indent=1).encode())


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Add one JSON line to ``path`` atomically: a crash leaves the old file or the new, never a partial line."""
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_atomic(path, old + (json.dumps(record) + "\n").encode())


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with these records, atomically."""
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in records).encode())


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
