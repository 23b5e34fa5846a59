"""Temporary files and folders that a user recognises, and the cleaning of stale ones.

Everything volumedr writes goes first to a temporary beside the target, then is
renamed over it.  A temporary is named after its target and its writer::

    chest.h5.volumedr-incomplete.<host>.<pid>.<random>.tmp

so a user who finds one knows what it is (an unfinished ``chest.h5``), and a
later volumedr command that writes into the same folder removes those whose
process is gone on this host (killed, crashed, power cut).  A temporary of a
running process, of another host (a shared folder) or of another program is
never touched.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from pathlib import Path

MARK = "volumedr-incomplete"
_NAME = re.compile(r"^(?P<target>.+)\." + MARK + r"\.(?P<host>[A-Za-z0-9-]{1,32})\.(?P<pid>\d{1,10})\.[0-9a-f]{8}\.tmp$")


def _host() -> str:
    h = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0])[:32]
    return h or "localhost"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or a number we cannot ask about: keep its files
    return True


def temp_name(target: Path) -> str:
    return f"{target.name}.{MARK}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """volumedr temporaries in ``folder`` whose writing process on this host is gone."""
    folder = Path(folder)
    out = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return out
    host = _host()
    for p in entries:
        m = _NAME.match(p.name)
        if m and m.group("host") == host and not _alive(int(m.group("pid"))):
            out.append(p)
    return out


def remove_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove stale volumedr temporaries in ``folder``; returns what was removed."""
    removed = []
    for p in stale_temporaries(folder):
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass  # in use or not ours to delete after all: leave it
    return removed


def _new_temp(target: str | os.PathLike, make) -> Path:
    target = Path(target)
    remove_stale(target.parent)
    while True:
        p = target.parent / temp_name(target)
        try:
            make(p)
        except FileExistsError:
            continue
        return p


def _create_file(p: Path) -> None:
    os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def new_temp_file(target: str | os.PathLike) -> Path:
    """Create an empty temporary file beside ``target`` (after removing stale ones there)."""
    return _new_temp(target, _create_file)


def new_temp_dir(target: str | os.PathLike) -> Path:
    """Create an empty temporary folder beside ``target`` (after removing stale ones there)."""
    return _new_temp(target, Path.mkdir)
