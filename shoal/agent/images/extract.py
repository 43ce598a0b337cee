"""Safe extraction of one (hostile) OCI layer tar into its own directory.

Sits under the image store: the store verifies the blob, opens it with ``open_layer`` and calls
``extract_layer`` into a fresh temp dir that it renames into place only on success. Every entry is
resolved openat-style from the layer root: each parent component is opened with ``O_NOFOLLOW``,
so an entry can never be written through a symlink, and ``..`` components, absolute paths,
symlinks or hard links that climb out, and device nodes are rejected. OCI whiteouts become
overlayfs whiteouts (a 0:0 char device; ``trusted.overlay.opaque=y`` on opaque dirs), so the layer
dirs stack directly as overlay lowerdirs. Each entry is counted against the layer's
``UnpackLimits`` before it is written (see ``limits``); the zeros of a file are seeked over, not
written, so a sparse file stays sparse on disk.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import zstandard

from shoal.agent.images.errors import ImageError
from shoal.agent.images.limits import Budget, Deadline, LimitedStream, LimitExceeded, UnpackLimits, stream_cap

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX = "SCHILY.xattr."
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)


class UnsafeEntry(Exception):
    """An entry that must not be extracted; the reason is its message."""


def split_name(name: str) -> list[str]:
    """The path components of an archive name, rejecting absolute paths and ``..``."""
    if name.startswith("/"):
        raise UnsafeEntry("absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeEntry("'..' path component")
    return parts


def climbs_out(parent: list[str], target: str) -> bool:
    """Whether a symlink in ``parent`` pointing at ``target`` climbs above the layer root."""
    stack = [] if target.startswith("/") else list(parent)
    for part in target.split("/"):
        if part == "..":
            if not stack:
                return True
            stack.pop()
        elif part not in ("", "."):
            stack.append(part)
    return False


@contextlib.contextmanager
def open_layer(path: Path, compression: str) -> Iterator[IO[bytes]]:
    """The uncompressed tar stream of a layer blob (``none``, ``gzip`` or ``zstd``)."""
    with path.open("rb") as raw:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        elif compression == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as unzstd:
                yield unzstd
        else:
            yield raw


def extract_layer(stream: IO[bytes], root: Path, what: str, budget: Budget | None = None) -> None:
    """Extract a layer tar stream into the empty dir ``root``; ``ImageError`` on a bad entry
    or (with a ``budget``) on an entry past the layer's limits."""
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        extractor = _Extractor(root_fd, budget)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                extractor.guarded(member, tar, what)
        extractor.finish()
    except LimitExceeded as exc:
        raise ImageError(f"{what}: refused: {exc}") from None
    except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError) as exc:
        raise ImageError(f"{what}: cannot read layer: {exc}") from exc
    finally:
        os.close(root_fd)


class _Extractor:
    """Writes entries below one root fd, never following a symlink on the way."""

    def __init__(self, root_fd: int, budget: Budget | None = None) -> None:
        self.root_fd = root_fd
        self.budget = budget
        self.as_root = os.geteuid() == 0
        self.dir_times: list[tuple[list[str], int]] = []

    def guarded(self, member: tarfile.TarInfo, tar: tarfile.TarFile, what: str) -> None:
        """Extract one entry; an unsafe one becomes an ``ImageError`` naming it."""
        if self.budget is not None:
            self.budget.add(member.size if member.isreg() else 0)  # a sparse file: its apparent size
        try:
            self.add(member, tar)
        except UnsafeEntry as exc:
            raise ImageError(f"{what}: entry {member.name!r}: {exc}") from None
        except OSError as exc:
            raise ImageError(f"{what}: entry {member.name!r}: {exc.strerror or exc}") from None

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        """Dispatch one entry by kind after checking its name."""
        parts = split_name(member.name)
        if not parts:
            if not member.isdir():
                raise UnsafeEntry("non-directory entry for the layer root")
            self.metadata(self.root_fd, member)
            return
        if member.ischr() or member.isblk():
            raise UnsafeEntry("device node")
        with self.parent(parts[:-1], create=True) as pfd:
            self.add_in(pfd, parts, member, tar)

    def add_in(self, pfd: int, parts: list[str], member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        """Create the leaf ``parts[-1]`` of ``member`` in the open parent dir ``pfd``."""
        leaf = parts[-1]
        if leaf.startswith(WHITEOUT):
            self.whiteout(pfd, leaf)
        elif member.isdir():
            self.directory(pfd, parts, member)
        elif member.isreg():
            self.regular(pfd, leaf, member, tar)
        elif member.issym():
            self.symlink(pfd, parts, member)
        elif member.islnk():
            self.hardlink(pfd, leaf, member)
        elif member.isfifo():
            remove(pfd, leaf)
            os.mkfifo(leaf, 0o600, dir_fd=pfd)
            self.path_metadata(pfd, leaf, member)
        else:
            raise UnsafeEntry(f"unsupported entry type {member.type!r}")

    @contextlib.contextmanager
    def parent(self, parts: list[str], create: bool) -> Iterator[int]:
        """An fd of the dir ``parts`` below the root, opened component by component."""
        fd = os.dup(self.root_fd)
        try:
            for index, part in enumerate(parts):
                next_fd = open_dir(fd, part, create, "/".join(parts[: index + 1]))
                os.close(fd)
                fd = next_fd
            yield fd
        finally:
            os.close(fd)

    def whiteout(self, pfd: int, leaf: str) -> None:
        """``.wh..wh..opq`` marks the dir opaque; ``.wh.NAME`` becomes a 0:0 char device."""
        if leaf == OPAQUE:
            os.setxattr(pfd, OPAQUE_XATTR, b"y")
            return
        if leaf.startswith(WHITEOUT + WHITEOUT):
            return  # other AUFS metadata (.wh..wh.plnk …) means nothing to overlayfs
        name = leaf[len(WHITEOUT) :]
        if name in ("", ".", ".."):
            raise UnsafeEntry("whiteout of an invalid name")
        remove(pfd, name)
        os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)

    def directory(self, pfd: int, parts: list[str], member: tarfile.TarInfo) -> None:
        """Make (or keep) a dir and apply its metadata; its mtime is set at the end."""
        leaf = parts[-1]
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISDIR(os.lstat(leaf, dir_fd=pfd).st_mode):
                remove(pfd, leaf)
        with contextlib.suppress(FileExistsError):
            os.mkdir(leaf, 0o700, dir_fd=pfd)
        fd = os.open(leaf, _DIR_FLAGS, dir_fd=pfd)
        try:
            self.metadata(fd, member)
        finally:
            os.close(fd)
        self.dir_times.append((parts, int(member.mtime * 1e9)))

    def regular(self, pfd: int, leaf: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        """Write a regular file's data, then its owner, mode, xattrs and mtime."""
        remove(pfd, leaf)
        fd = os.open(leaf, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            source = tar.extractfile(member)
            if source is not None:
                write_sparse(source, fd, member.size)
            self.metadata(fd, member)
            os.utime(fd, ns=(int(member.mtime * 1e9),) * 2)
        finally:
            os.close(fd)

    def symlink(self, pfd: int, parts: list[str], member: tarfile.TarInfo) -> None:
        """Create a symlink whose target stays inside the root."""
        if climbs_out(parts[:-1], member.linkname):
            raise UnsafeEntry(f"symlink target {member.linkname!r} climbs out of the root")
        remove(pfd, parts[-1])
        os.symlink(member.linkname, parts[-1], dir_fd=pfd)
        self.path_metadata(pfd, parts[-1], member)

    def hardlink(self, pfd: int, leaf: str, member: tarfile.TarInfo) -> None:
        """Link to an entry extracted earlier in this layer (resolved without symlinks)."""
        target = split_name(member.linkname)
        if not target:
            raise UnsafeEntry("hard link to the layer root")
        with self.parent(target[:-1], create=False) as tfd:
            try:
                info = os.lstat(target[-1], dir_fd=tfd)
            except FileNotFoundError:
                raise UnsafeEntry(f"hard link target {member.linkname!r} is not in this layer") from None
            if stat.S_ISDIR(info.st_mode):
                raise UnsafeEntry("hard link to a directory")
            remove(pfd, leaf)
            os.link(target[-1], leaf, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def metadata(self, fd: int, member: tarfile.TarInfo) -> None:
        """Owner (as root), mode and xattrs of an open file or dir."""
        if self.as_root:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for name, value in xattrs(member).items():
            if self.as_root or name.startswith("user."):
                os.setxattr(fd, name, value)

    def path_metadata(self, pfd: int, leaf: str, member: tarfile.TarInfo) -> None:
        """Owner, mode (not for symlinks) and mtime of a leaf without following it."""
        if self.as_root:
            os.chown(leaf, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
        if not member.issym():
            os.chmod(leaf, member.mode & 0o7777, dir_fd=pfd)
        os.utime(leaf, ns=(int(member.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Set directory mtimes last (adding entries changed them), deepest first."""
        for parts, mtime_ns in sorted(self.dir_times, key=lambda item: -len(item[0])):
            with self.parent(parts[:-1], create=False) as pfd:
                os.utime(parts[-1], ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)


def open_dir(fd: int, part: str, create: bool, shown: str) -> int:
    """Open the subdir ``part`` of ``fd`` without following a symlink (making it if asked)."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise UnsafeEntry(f"parent {shown!r} does not exist") from None
        os.mkdir(part, 0o755, dir_fd=fd)
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        kind = "a symlink" if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode) else "not a directory"
        raise UnsafeEntry(f"parent {shown!r} is {kind}") from None


def write_sparse(source: IO[bytes], fd: int, size: int) -> None:
    """Copy ``source`` into ``fd``, seeking over all-zero chunks so holes stay holes."""
    while chunk := source.read(_CHUNK):
        if chunk == _ZEROS[: len(chunk)]:
            os.lseek(fd, len(chunk), os.SEEK_CUR)
        else:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    os.ftruncate(fd, size)


def remove(pfd: int, name: str) -> None:
    """Remove whatever ``name`` is in ``pfd`` (a dir recursively), if anything."""
    try:
        info = os.lstat(name, dir_fd=pfd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=pfd)
    else:
        os.unlink(name, dir_fd=pfd)


def xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    """The entry's xattrs from PAX headers, minus overlayfs's own (only we set those)."""
    found = {}
    for key, value in member.pax_headers.items():
        name = key[len(XATTR_PAX) :]
        if key.startswith(XATTR_PAX) and not name.startswith(("trusted.overlay.", "user.overlay.")):
            found[name] = value.encode("utf-8", "surrogateescape")
    return found


def unpack_blob(
    blob: Path,
    compression: str,
    root: Path,
    what: str,
    limits: UnpackLimits | None = None,
    *,
    deadline: Deadline | None = None,
) -> None:
    """Open a verified layer blob and extract it into ``root`` within ``limits``."""
    limits = limits or UnpackLimits()
    compressed = blob.stat().st_size
    with open_layer(blob, compression) as stream:
        limited = LimitedStream(stream, stream_cap(limits, compressed), deadline)
        extract_layer(cast(IO[bytes], limited), root, what, Budget(limits, compressed))
