"""A fake clamd speaking the real socket protocol, on 127.0.0.1 (ephemeral port) or a unix socket.

Commands come as clamd takes them: "z" prefix + NUL terminator (answers end in NUL), "n" prefix
+ newline (answers end in newline), or bare and newline-terminated. Supported: PING (PONG),
VERSION and INSTREAM — 4-byte big-endian length-prefixed chunks ended by a zero length, answered
"stream: OK" or "stream: Eicar-Test-Signature FOUND" when the bytes hold the EICAR test string.
A stream longer than `max_stream` (clamd's StreamMaxLength) gets
"INSTREAM size limit exceeded. ERROR" and the connection is closed, as clamd does.

    with FakeClamd(max_stream=1000) as clamd:
        ClamdScanner(clamd.address).scan(b"...")
        clamd.scans, clamd.bytes_received, clamd.commands

Outages: `hang=True` accepts and reads but never answers; `drop=True` hangs up after the
command and at most one chunk, without answering; `reply="Can't allocate memory ERROR"` answers
every complete INSTREAM with that text instead of a verdict. All can be changed while running.
"""
from __future__ import annotations

import os
import socket
import socketserver
import struct
import threading
from typing import Optional

# The standard EICAR test string, assembled at import so that a virus scanner on a developer's
# machine or CI runner does not quarantine this source file.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-" + b"ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Eicar-Test-Signature"
VERSION = "ClamAV 1.4.1/27431/Tue Oct 15 08:35:21 2024"
DEFAULT_MAX_STREAM = 25 * 1024 * 1024


class _Hangup(Exception):
    """The client went away (or the fake is stopping)."""


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        fake: FakeClamd = self.server.fake
        self.request.settimeout(0.05)  # short waits, so a stopping fake is noticed
        try:
            fake._serve(self)
        except (_Hangup, OSError):
            pass

    def read(self, n: int) -> bytes:
        """Exactly n bytes (fewer only at end of stream)."""
        buf = b""
        while len(buf) < n:
            piece = self._recv(n - len(buf))
            if not piece:
                break
            buf += piece
        return buf

    def read_until(self, terminator: bytes, limit: int = 1024) -> bytes:
        buf = b""
        while not buf.endswith(terminator):
            if len(buf) > limit:
                raise _Hangup
            piece = self._recv(1)
            if not piece:
                raise _Hangup
            buf += piece
        return buf[:-1]

    def _recv(self, n: int) -> bytes:
        fake: FakeClamd = self.server.fake
        while True:
            if fake._stopping.is_set():
                raise _Hangup
            try:
                return self.request.recv(n)
            except socket.timeout:
                continue


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class FakeClamd:
    """A fake clamd; see the module docstring. `address` is what ClamdScanner takes."""

    def __init__(self, *, max_stream: int = DEFAULT_MAX_STREAM, hang: bool = False,
                 drop: bool = False, reply: Optional[str] = None,
                 unix_path: Optional[str] = None):
        self.max_stream = max_stream
        self.hang = hang
        self.drop = drop
        self.reply = reply
        self.unix_path = unix_path

        self.scans = 0            # INSTREAM commands answered with a verdict
        self.bytes_received = 0   # stream bytes, over all INSTREAM commands
        self.commands: list[str] = []
        self.found: list[str] = []  # signatures reported

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Optional[socketserver.BaseServer] = None
        self._thread: Optional[threading.Thread] = None
        self.port: Optional[int] = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeClamd is not started")
        if self.unix_path:
            return f"unix://{self.unix_path}"
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> "FakeClamd":
        if self._server is not None:
            return self
        self._stopping.clear()
        if self.unix_path:
            self._server = _UnixServer(self.unix_path, _Handler)
        else:
            self._server = _TCPServer(("127.0.0.1", 0), _Handler)
            self.port = self._server.server_address[1]
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"FakeClamd:{self.port or self.unix_path}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # releases handlers stuck in `hang`
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None
        if self.unix_path and os.path.exists(self.unix_path):
            os.unlink(self.unix_path)

    def __enter__(self) -> "FakeClamd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- protocol
    def _serve(self, h: _Handler) -> None:
        first = h.read(1)
        if not first:
            return
        if first == b"z":
            name, end = h.read_until(b"\0").decode("ascii", "replace"), b"\0"
        elif first == b"n":
            name, end = h.read_until(b"\n").decode("ascii", "replace"), b"\n"
        else:
            name, end = (first + h.read_until(b"\n")).decode("ascii", "replace").strip(), b"\n"
        with self._lock:
            self.commands.append(name)

        if self.hang:
            while h._recv(65536):  # swallow everything, answer nothing
                pass
            while not self._stopping.wait(0.05):
                pass
            return
        if name == "INSTREAM":
            reply = self._instream(h)
        elif self.drop:
            reply = None
        elif name == "PING":
            reply = "PONG"
        elif name == "VERSION":
            reply = VERSION
        else:
            reply = "UNKNOWN COMMAND"
        if reply is None:
            h.request.shutdown(socket.SHUT_RDWR)
            return
        h.request.sendall(reply.encode() + end)

    def _instream(self, h: _Handler) -> Optional[str]:
        received = bytearray()
        while True:
            header = h.read(4)
            if len(header) < 4:
                raise _Hangup
            (length,) = struct.unpack(">I", header)
            if length == 0:
                break
            if len(received) + length > self.max_stream:
                return "INSTREAM size limit exceeded. ERROR"
            chunk = h.read(length)
            received += chunk
            with self._lock:
                self.bytes_received += len(chunk)
            if len(chunk) < length:
                raise _Hangup
            if self.drop:
                return None
        if self.drop:
            return None
        if self.reply is not None:
            return self.reply
        with self._lock:
            self.scans += 1
            if EICAR in received:
                self.found.append(EICAR_SIGNATURE)
                return f"stream: {EICAR_SIGNATURE} FOUND"
        return "stream: OK"
