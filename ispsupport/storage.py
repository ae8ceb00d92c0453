"""The default file storage, encrypted at rest (``STORAGES["default"]``).

Every file saved through Django's storage API (``default_storage.save``, ``FieldFile.save``)
is written in :mod:`ispsupport.filecrypt`'s format, and every ``open`` returns a read-only,
seekable file of the plaintext, so callers — the media download, the attachment upload, the
media view, the compliance export and its download — handle plaintext and never see a key.
``size()`` is the plaintext size. Files written before encryption was introduced (no marker)
are still read as they are; ``manage.py rotate_encryption_keys`` encrypts them.

Only the files of this project live here (customers' media and DSR exports), all personal, so
the whole storage is encrypted rather than chosen field by field.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from django.core.files import File
from django.core.files.storage import FileSystemStorage

from ispsupport import filecrypt


class _EncryptingContent(File):
    """What ``FileSystemStorage._save`` writes: the encrypted form of ``content``."""

    def __init__(self, content: Any) -> None:
        super().__init__(None, name=getattr(content, "name", None))
        self._content = content

    def chunks(self, chunk_size: int | None = None) -> Any:
        content = self._content
        if hasattr(content, "seek"):
            # A stream that cannot rewind is read from where it is.
            with contextlib.suppress(AttributeError, OSError, ValueError):
                content.seek(0)
        return filecrypt.encrypt_stream(content.read)

    def multiple_chunks(self, chunk_size: int | None = None) -> bool:
        return True


class _StoredFile(File):
    """A file opened from this storage; reopening goes through the storage again.

    (Django's ``File.open`` would reopen ``self.name`` directly, which here is the ciphertext.)
    """

    def __init__(self, file: Any, *, name: str, storage: EncryptedFileSystemStorage) -> None:
        super().__init__(file, name=name)
        self._storage = storage

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> _StoredFile:
        if not self.closed:
            self.seek(0)
        else:
            self.file = self._storage._open_plaintext(self.name)
        return self


class EncryptedFileSystemStorage(FileSystemStorage):
    """``FileSystemStorage`` whose files are encrypted (see the module docstring)."""

    def _save(self, name: str, content: Any) -> str:
        return super()._save(name, _EncryptingContent(content))

    def _open(self, name: str, mode: str = "rb") -> File:
        if any(flag in mode for flag in "wa+x"):
            raise ValueError("encrypted storage: files are written with save(), not open()")
        return _StoredFile(self._open_plaintext(name), name=name, storage=self)

    def _open_plaintext(self, name: str) -> Any:
        """A binary, seekable reader of the file's plaintext."""
        raw = open(self.path(name), "rb")  # noqa: SIM115 (closed with the returned reader)
        try:
            head = raw.read(len(filecrypt.MAGIC))
            if not filecrypt.is_encrypted(head):
                raw.seek(0)
                return raw  # stored before encryption: plaintext
            return filecrypt.DecryptingReader(raw, name=name)
        except BaseException:
            raw.close()
            raise

    def size(self, name: str) -> int:
        path = self.path(name)
        with open(path, "rb") as raw:
            head = raw.read(filecrypt.HEADER_SIZE)
        if not filecrypt.is_encrypted(head):
            return os.path.getsize(path)
        return filecrypt.plaintext_size(os.path.getsize(path), filecrypt.chunk_size_of(head))

    def rotate(self, name: str, *, dry_run: bool = False) -> str:
        """Re-encrypt one file under the newest key, in place (atomically: a temporary file in
        the same directory replaces it). Returns what was found:

        ``current`` (already under the newest key), ``rotated`` (was under an older key),
        ``encrypted`` (was plaintext, stored before encryption), ``missing``, or ``failed``
        (no configured key opens it, or it was altered).
        """
        path = self.path(name)
        try:
            with open(path, "rb") as raw:
                head = raw.read(filecrypt.HEADER_SIZE)
        except FileNotFoundError:
            return "missing"
        if filecrypt.is_encrypted(head):
            if filecrypt.header_key_id(head) == filecrypt.newest_key_id():
                return "current"
            outcome = "rotated"
        else:
            outcome = "encrypted"
        try:
            source = self._open(name)
        except filecrypt.FileDecryptionError:
            return "failed"
        with source:
            if dry_run:
                return outcome
            directory = os.path.dirname(path)
            fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".rotating-")
            try:
                with os.fdopen(fd, "wb") as out:
                    for piece in filecrypt.encrypt_stream(source.read):
                        out.write(piece)
                if self.file_permissions_mode is not None:
                    os.chmod(tmp_path, self.file_permissions_mode)
                os.replace(tmp_path, path)
            except filecrypt.FileDecryptionError:
                os.unlink(tmp_path)
                return "failed"
            except BaseException:
                os.unlink(tmp_path)
                raise
        return outcome
