"""Encrypted files: a streaming AES-256-GCM format keyed from ``FIELD_ENCRYPTION_KEYS``.

Why not Fernet, as for fields: a Fernet token is one base64 blob that must be held in memory
whole (a 100 MB video would become a 133 MB string) and cannot be read from the middle. Files
are cut into 64 KiB chunks instead, each sealed on its own, so they are encrypted and served as
a stream, seekable, with constant memory.

Format (all integers big-endian)::

    header  = b"ISPENC01" | key id (8) | salt (16) | chunk size (4)            36 bytes
    chunk i = AES-256-GCM(file key, nonce = i as 12 bytes, aad = header | last?) plaintext + 16

* Keys: every Fernet key of ``FIELD_ENCRYPTION_KEYS`` yields a file master key (HKDF-SHA256 of
  its 32 bytes); the key id (8 bytes of an HMAC of the master key) names it in the header, so
  decryption picks the right key at once and rotation sees which files are not under the newest
  one. Same rotation procedure as the fields: new key first, run ``rotate_encryption_keys``,
  drop the old key.
* Each file gets its own key (HKDF of the master key with the file's random salt), so the
  chunk counter is a safe nonce.
* The last chunk is flagged in the authenticated data: a file cut at a chunk boundary, chunks
  swapped, or a header edited fails authentication instead of decrypting to something shorter.
* Every chunk but the last holds exactly ``chunk size`` bytes, so the plaintext size and the
  position of any byte follow from the file size: nothing to read but the header.

This module imports no domain app (``ispsupport`` is infrastructure).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

MAGIC = b"ISPENC01"
_HEADER = struct.Struct(">8s8s16sI")
HEADER_SIZE = _HEADER.size  # 36
TAG_SIZE = 16
CHUNK_SIZE = 64 * 1024


class FileDecryptionError(OSError):
    """The file is not readable with the configured keys, or was altered or truncated.

    An ``OSError`` so callers that already treat an unreadable file as missing keep doing so.
    """


@functools.cache
def _keyring() -> tuple[tuple[bytes, bytes], ...]:
    """``(key id, master key)`` per configured key, newest first."""
    ring = []
    for key in settings.FIELD_ENCRYPTION_KEYS:
        if not key or not key.strip():
            continue
        raw = base64.urlsafe_b64decode(key.strip().encode())
        master = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"ispsupport-file-v1", info=b"file-master"
        ).derive(raw)
        key_id = hmac.new(master, b"key-id", hashlib.sha256).digest()[:8]
        ring.append((key_id, master))
    if not ring:
        raise ValueError("FIELD_ENCRYPTION_KEYS is empty")
    return tuple(ring)


@receiver(setting_changed)
def _reset_keyring(*, setting: str, **kwargs: Any) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _keyring.cache_clear()


def _file_cipher(master: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"file-chunks").derive(master)
    return AESGCM(key)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(header: bytes, last: bool) -> bytes:
    return header + (b"\x01" if last else b"\x00")


def newest_key_id() -> bytes:
    return _keyring()[0][0]


def is_encrypted(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts with this format's marker."""
    return head[: len(MAGIC)] == MAGIC


def header_key_id(head: bytes) -> bytes:
    return _HEADER.unpack(head[:HEADER_SIZE])[1]


def encrypt_stream(
    read: Callable[[int], bytes | str], *, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Yield the encrypted file, piece by piece, for the plaintext that ``read(n)`` returns.

    ``read`` may return ``str`` (text-mode files): it is encoded as UTF-8.
    """
    key_id, master = _keyring()[0]
    salt = os.urandom(16)
    header = _HEADER.pack(MAGIC, key_id, salt, chunk_size)
    cipher = _file_cipher(master, salt)
    yield header

    pending = bytearray()
    eof = False
    index = 0
    while True:
        # Read one byte past the chunk when possible: that is how the last chunk is known.
        while not eof and len(pending) <= chunk_size:
            piece = read(chunk_size)
            if not piece:
                eof = True
            else:
                pending += piece.encode("utf-8") if isinstance(piece, str) else piece
        current = bytes(pending[:chunk_size])
        del pending[:chunk_size]
        last = eof and not pending
        yield cipher.encrypt(_nonce(index), current, _aad(header, last))
        if last:
            return
        index += 1


class DecryptingReader(io.RawIOBase):
    """A seekable, read-only view of the plaintext of an encrypted file.

    ``raw`` is the encrypted file opened in binary mode and seekable; it is closed with the
    reader. Raises :class:`FileDecryptionError` when no configured key fits or a chunk does not
    authenticate.
    """

    def __init__(self, raw: BinaryIO, *, name: str = "") -> None:
        super().__init__()
        self._raw = raw
        self.name = name
        raw.seek(0)
        header = raw.read(HEADER_SIZE)
        if len(header) != HEADER_SIZE or not is_encrypted(header):
            raise FileDecryptionError("not an encrypted file")
        _magic, key_id, salt, chunk_size = _HEADER.unpack(header)
        master = next((m for k, m in _keyring() if hmac.compare_digest(k, key_id)), None)
        if master is None or chunk_size <= 0:
            raise FileDecryptionError("encrypted with a key that is not configured")
        self._header = header
        self.key_id = key_id
        self._cipher = _file_cipher(master, salt)
        self._chunk = chunk_size
        body = raw.seek(0, io.SEEK_END) - HEADER_SIZE
        stride = chunk_size + TAG_SIZE
        self._count = max(1, -(-body // stride))
        last_len = body - (self._count - 1) * stride
        if body < TAG_SIZE or last_len < TAG_SIZE:
            raise FileDecryptionError("encrypted file is truncated")
        self.size = body - TAG_SIZE * self._count
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def _plain_chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        stride = self._chunk + TAG_SIZE
        self._raw.seek(HEADER_SIZE + index * stride)
        sealed = self._raw.read(stride)
        last = index == self._count - 1
        try:
            plain = self._cipher.decrypt(_nonce(index), sealed, _aad(self._header, last))
        except InvalidTag as exc:
            raise FileDecryptionError("encrypted file was altered or is corrupt") from exc
        self._cached = (index, plain)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._pos < self.size:
            index, offset = divmod(self._pos, self._chunk)
            piece = self._plain_chunk(index)[offset : offset + len(view) - written]
            if not piece:
                break
            view[written : written + len(piece)] = piece
            written += len(piece)
            self._pos += len(piece)
        return written

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence: {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return target

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def plaintext_size(encrypted_size: int, chunk_size: int) -> int:
    """The plaintext length of an encrypted file of ``encrypted_size`` bytes."""
    body = encrypted_size - HEADER_SIZE
    count = max(1, -(-body // (chunk_size + TAG_SIZE)))
    return max(0, body - TAG_SIZE * count)


def chunk_size_of(head: bytes) -> int:
    return _HEADER.unpack(head[:HEADER_SIZE])[3]
