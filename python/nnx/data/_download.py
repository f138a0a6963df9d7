"""Fetching dataset files: verified against SHA-256, installed atomically, progress on stderr."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from urllib.request import urlopen

CHUNK = 1 << 20


class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, a few lines in a log."""

    def __init__(self, label: str, total: int | None):
        self.label, self.total, self.done = label, total, 0
        self.tty = sys.stderr.isatty()
        self.last = time.monotonic()
        self._write()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= (0.2 if self.tty else 10.0):
            self.last = now
            self._write()

    def close(self) -> None:
        self._write()
        if self.tty:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def _write(self) -> None:
        text = f"{self.label}: {self.done / 1e6:.1f}"
        if self.total:
            text += f"/{self.total / 1e6:.1f} MB ({100 * self.done // self.total}%)"
        else:
            text += " MB"
        sys.stderr.write("\r" + text if self.tty else text + "\n")
        sys.stderr.flush()


def _fetch(url: str, folder: str, filename: str, sha256: str, timeout: float) -> str:
    """Downloads ``url`` to a temporary file in ``folder``; returns its path once verified."""
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            headers = getattr(response, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            progress = _Progress(f"downloading {url}", int(length) if length else None)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                h.update(chunk)
                progress.update(len(chunk))
            progress.close()
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != sha256:
            raise ValueError(f"{url}: SHA-256 mismatch (expected {sha256}, got {digest}); the "
                             f"download was discarded")
        return tmp
    except BaseException:
        os.unlink(tmp)
        raise


def download(urls: list[str], folder: str | os.PathLike, filename: str, sha256: str,
             timeout: float = 60.0) -> str:
    """Fetches ``filename`` from the first of ``urls`` (base URLs) that serves the right bytes.

    The file is written to a temporary name in ``folder``, hashed while streaming, and renamed
    into place with ``os.replace`` only when its SHA-256 matches, so an interrupted or corrupt
    download never leaves a file that a later run would trust. Returns the final path; raises
    ``OSError`` listing every mirror's failure when none succeeds.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, filename)
    failures = []
    for base in urls:
        url = base.rstrip("/") + "/" + filename
        try:
            tmp = _fetch(url, folder, filename, sha256, timeout)
        except (OSError, ValueError) as exc:
            failures.append(f"  {url}: {exc}")
            continue
        os.replace(tmp, target)
        return target
    raise OSError(f"could not download {filename} into {folder}:\n" + "\n".join(failures))
