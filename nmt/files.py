"""Output files that never clobber: what every command writes goes through here.

- An output is checked before any work (:func:`check_output`): not a
  directory, its folder writable, and not the same file as any input of the
  command (a hard link or a symlink to an input counts as the input).
- A regular file (or a new one) is written to a temp file beside it and
  renamed over it at the end (:class:`AtomicOutput`), so that a failed run
  leaves the old file whole.  The new file gets the old one's mode, or for a
  new file the mode the umask allows (``0o666 & ~umask``), as ``open`` would.
- A symlink is written through: the file it points to is replaced, the link
  stays.
- An existing file that is not a regular file (a device such as /dev/null, a
  FIFO) is written in place, never replaced.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any


class OutputError(Exception):
    """An output that cannot or may not be written; the message names it."""


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` are one file (links followed, hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _is_special(path: Path) -> bool:
    """True for an existing path that is not a regular file or a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_output(path: str | Path, inputs: Iterable[str | Path] = (), what: str = "output") -> None:
    """Refuse, before any work, an output that cannot become a file (a
    directory, a path under a file, an unwritable folder) or that is one of
    the command's ``inputs`` (a device may be both: /dev/null in and out)."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{what} {path} is a directory")
    if _is_special(target):  # a device or a FIFO: written in place, never replaced
        if not os.access(target, os.W_OK):
            raise OutputError(f"{what} {path} is not writable")
        return
    for source in inputs:
        if same_file(target, source):
            raise OutputError(
                f"{what} {path} is also an input of this command ({source}); write to another file"
            )
    parent = Path(os.path.realpath(target)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {parent} is not writable")


def check_folder(path: str | Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot be made or written to."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what}={path} is not a directory")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what}={path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what}={path}: {parent} is not writable")


def new_file_mode(existing: Path) -> int:
    """The mode of the file that replaces ``existing``: its own, else what the umask allows."""
    try:
        return stat.S_IMODE(os.stat(existing).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


class AtomicOutput:
    """A file output (see the module's docstring): :meth:`commit` makes the
    written bytes the file's, :meth:`discard` (safe after commit) drops them."""

    def __init__(self, path: str | Path, *, binary: bool = False, what: str = "output") -> None:
        self.path, self.what, self.tmp = Path(path), what, ""
        real = Path(os.path.realpath(self.path))  # through symlinks
        self.real = real
        mode = "wb" if binary else "w"
        text: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": "\n"}
        try:
            self.in_place = _is_special(real)  # a device or a FIFO: not seekable
            if self.in_place:
                self.handle: IO[Any] = open(real, mode, **text)  # noqa: SIM115 - closed in commit
                return
            real.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
            os.fchmod(fd, new_file_mode(real))
        except OSError as exc:
            raise self.error(exc) from None
        self.handle = os.fdopen(fd, mode, **text)

    def error(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write {self.what} {self.path}: {exc.strerror or exc}")

    def write(self, data: Any) -> None:
        try:
            self.handle.write(data)
            self.handle.flush()
        except OSError as exc:
            raise self.error(exc) from None

    def commit(self, *, sync: bool = False) -> Path:
        """Close the file and (a temp file) rename it over the target; ``sync``:
        fsync first, so that a crash leaves the old file or the new one."""
        try:
            if sync and self.tmp:
                self.handle.flush()
                os.fsync(self.handle.fileno())
            self.handle.close()
            if self.tmp:
                os.replace(self.tmp, self.real)
                self.tmp = ""
        except OSError as exc:
            raise self.error(exc) from None
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        if not self.handle.closed:
            with contextlib.suppress(OSError):  # the error that got us here is reported
                self.handle.close()
        if self.tmp:
            Path(self.tmp).unlink(missing_ok=True)
            self.tmp = ""


def write_output(path: str | Path, data: str | bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` all at once, as :class:`AtomicOutput` does."""
    out = AtomicOutput(path, binary=isinstance(data, bytes), what=what)
    try:
        out.write(data)
        return out.commit()
    finally:
        out.discard()
