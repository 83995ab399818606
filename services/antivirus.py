"""Virus scanning with ClamAV, spoken to directly over clamd's INSTREAM protocol.

The bytes go to clamd in length-prefixed chunks (4-byte big-endian length, a zero length ends
the stream) and clamd answers "stream: OK" or "stream: <signature> FOUND". Anything else —
no connection, a timeout, a closed socket, "... ERROR" — raises ScannerUnavailable: an outage
must never be read as a clean file. A stream over clamd's StreamMaxLength (25 MB by default)
raises its subclass StreamTooLarge when clamd's reason could be read, so a retry queue can tell
a file that will never pass from a scanner that is down.
"""
from __future__ import annotations

import re
import socket
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK_SIZE = 64 * 1024
_MAX_REPLY = 4096
_FOUND = re.compile(r"stream: (.+) FOUND")


class ScannerUnavailable(Exception):
    """clamd could not give a verdict; the file is neither clean nor infected."""


class StreamTooLarge(ScannerUnavailable):
    """clamd refused the stream as longer than its StreamMaxLength; retrying will not help.

    Raised when clamd's reason could be read; a reset connection may hide it, and then the
    plain ScannerUnavailable is raised.
    """


@dataclass(frozen=True)
class ScanResult:
    clean: bool
    signature: str | None


class ClamdScanner:
    """A clamd client for "tcp://host:port", "host:port" or "unix:///path/to/clamd.sock"."""

    def __init__(self, address: str, timeout: float = 30.0):
        # `timeout` bounds the whole exchange (connect, send, clamd's scan, reply), not each step.
        self.address = address
        self.timeout = timeout
        self._family, self._target = _parse_address(address)

    def ping(self) -> bool:
        """True when clamd answers PING with PONG."""
        try:
            return self._command(b"zPING\0", b"") == "PONG"
        except ScannerUnavailable:
            return False

    def scan(self, data: bytes) -> ScanResult:
        """clamd's verdict on the bytes; raises ScannerUnavailable when there is none."""
        reply = self._command(b"zINSTREAM\0", data)
        if reply == "stream: OK":
            return ScanResult(clean=True, signature=None)
        found = _FOUND.fullmatch(reply)
        if found:
            return ScanResult(clean=False, signature=found.group(1))
        # "<reason> ERROR" or something unexpected.
        raise ScannerUnavailable(f"clamd answered: {reply[:200]}")

    def _command(self, command: bytes, stream: bytes) -> str:
        """Sends one z-command (with `stream` as INSTREAM chunks if given) and reads the reply."""
        deadline = time.monotonic() + self.timeout
        try:
            with self._connect(deadline) as sock:
                try:
                    _send(sock, command, deadline)
                    if command == b"zINSTREAM\0":
                        view = memoryview(stream)  # chunks without copying the file
                        for start in range(0, len(view), CHUNK_SIZE):
                            chunk = view[start:start + CHUNK_SIZE]
                            _send(sock, struct.pack(">I", len(chunk)), deadline)
                            _send(sock, chunk, deadline)
                        _send(sock, b"\0\0\0\0", deadline)
                except (BrokenPipeError, ConnectionResetError) as exc:
                    # clamd stops reading and hangs up once the stream is over its limit; its
                    # reason may still be waiting in our receive buffer.
                    reply = _read_reply(sock, deadline, quiet=True)
                    _raise_if_too_large(reply)
                    raise ScannerUnavailable(
                        f"clamd closed the connection: {reply or type(exc).__name__}") from exc
                reply = _read_reply(sock, deadline)
                _raise_if_too_large(reply)
        except ScannerUnavailable:
            raise
        except OSError as exc:  # refused, unreachable, timed out, no such socket
            raise ScannerUnavailable(f"no answer from clamd at {self.address}: "
                                     f"{type(exc).__name__}") from exc
        if reply is None:
            raise ScannerUnavailable("clamd closed the connection without answering")
        return reply

    def _connect(self, deadline: float) -> socket.socket:
        if self._family == socket.AF_UNIX:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(deadline))
                sock.connect(self._target)
            except BaseException:
                sock.close()
                raise
            return sock
        return socket.create_connection(self._target, timeout=_remaining(deadline))


def _parse_address(address: str) -> tuple[int, object]:
    if address.startswith("unix://"):
        path = address[len("unix://"):]
        if not path:
            raise ValueError("clamd unix address needs a socket path")
        return socket.AF_UNIX, path
    parts = urlsplit(address if "://" in address else "tcp://" + address)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ValueError("clamd address must be tcp://host:port, host:port or unix:///path")
    return socket.AF_INET, (parts.hostname, parts.port)  # create_connection picks v4 or v6


def _raise_if_too_large(reply: str | None) -> None:
    if reply and "size limit exceeded" in reply:
        raise StreamTooLarge(f"clamd answered: {reply[:200]}")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("clamd deadline passed")
    return left


def _send(sock: socket.socket, payload: bytes | memoryview, deadline: float) -> None:
    sock.settimeout(_remaining(deadline))
    sock.sendall(payload)


def _read_reply(sock: socket.socket, deadline: float, quiet: bool = False) -> str | None:
    """The reply up to its NUL terminator; None if clamd hung up first."""
    received = b""
    try:
        while b"\0" not in received:
            if len(received) > _MAX_REPLY:
                raise ScannerUnavailable("clamd reply too long")
            sock.settimeout(_remaining(deadline))
            piece = sock.recv(1024)
            if not piece:
                return None
            received += piece
    except OSError:
        if quiet:
            return None
        raise
    return received.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
