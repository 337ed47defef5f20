"""The data dir of one server: private modes, the lock that keeps a second server out, and `server.json`,
which tells `neira say` / `neira chat` where the server listens."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import msgspec

from neira.errors import DataDirLocked
from neira.structs import Base

LOCK_FILE = "server.lock"
SERVER_FILE = "server.json"
DIR_MODE, FILE_MODE = 0o700, 0o600


class ServerInfo(Base):
    """`<data-dir>/server.json`: where the server that holds the data dir listens."""

    url: str
    pid: int


def make_private(path: Path) -> None:
    """Create the data dir if needed; the dir and everything in it readable by its owner only (0700 / 0600).
    Files made later inherit that through the process umask, which `neira serve` sets to 077."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for root, dirs, files in os.walk(path):
        os.chmod(root, DIR_MODE)
        for name in files:
            file = os.path.join(root, name)
            if not os.path.islink(file):
                os.chmod(file, FILE_MODE)


class DataDirLock:
    """An advisory lock (`flock`) on `<data-dir>/server.lock`, held for the life of the process. The kernel
    drops it when the process ends, however it ends, so a SIGKILLed server never blocks the next start;
    the holder's PID is written in the file for the message a second server prints."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DataDirLocked naming the data dir and the holder's PID."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirLocked(
                f"another neira server (pid {holder}) holds the data dir {self.data_dir.resolve()}; "
                "stop it or start this one with another --data-dir", pid=holder, data_dir=str(self.data_dir.resolve()),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the process ending drops it too)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_server_info(data_dir: Path, url: str) -> None:
    """Write `server.json` (0600, replaced atomically) for this process."""
    tmp = data_dir / f".{SERVER_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.encode(ServerInfo(url=url, pid=os.getpid())))
    os.replace(tmp, data_dir / SERVER_FILE)


def remove_server_info(data_dir: Path) -> None:
    """Remove `server.json` if this process wrote it (orderly stop)."""
    info = read_server_info(data_dir)
    if info is not None and info.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (data_dir / SERVER_FILE).unlink()


def read_server_info(data_dir: Path) -> ServerInfo | None:
    """The `server.json` of the data dir, or None when it is missing or unreadable."""
    try:
        return msgspec.json.decode((data_dir / SERVER_FILE).read_bytes(), type=ServerInfo)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def running_server_url(data_dir: Path) -> str | None:
    """The URL of the server that runs on this data dir now: None when there is no `server.json`, or when
    the process that wrote it is gone (a killed server leaves its file behind)."""
    info = read_server_info(data_dir)
    if info is None:
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, someone else's
        pass
    return info.url
