"""services.antivirus against a fake clamd that speaks the real protocol (tests/fakes/clamd.py)."""
from __future__ import annotations

import os
import socket
import tempfile

import pytest

from services.antivirus import (CHUNK_SIZE, ClamdScanner, ScannerUnavailable, ScanResult,
                                StreamTooLarge)
from tests.fakes.clamd import EICAR, VERSION, FakeClamd


@pytest.fixture
def clamd():
    with FakeClamd() as fake:
        yield fake


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raw(fake: FakeClamd, payload: bytes) -> bytes:
    """Sends bytes straight to the fake and returns everything it answers."""
    with socket.create_connection(("127.0.0.1", fake.port), timeout=2) as sock:
        sock.sendall(payload)
        answer = b""
        while piece := sock.recv(1024):
            answer += piece
    return answer


# ----------------------------------------------------------------------------- verdicts

def test_clean_file(clamd):
    data = os.urandom(200_000)  # several chunks
    assert ClamdScanner(clamd.address).scan(data) == ScanResult(clean=True, signature=None)
    assert clamd.scans == 1 and clamd.bytes_received == len(data)
    assert clamd.commands == ["INSTREAM"]


def test_empty_file_is_scanned(clamd):
    assert ClamdScanner(clamd.address).scan(b"").clean
    assert clamd.scans == 1 and clamd.bytes_received == 0


def test_eicar_is_found(clamd):
    result = ClamdScanner(clamd.address).scan(EICAR)
    assert result == ScanResult(clean=False, signature="Eicar-Test-Signature")


def test_eicar_across_a_chunk_boundary_is_found(clamd):
    data = b"\0" * (CHUNK_SIZE - 10) + EICAR + b"\0" * 100
    assert ClamdScanner(clamd.address).scan(data).signature == "Eicar-Test-Signature"


def test_address_forms(clamd):
    for address in (clamd.address, f"127.0.0.1:{clamd.port}", f"localhost:{clamd.port}"):
        assert ClamdScanner(address).scan(b"hola").clean
    assert clamd.scans == 3


@pytest.mark.parametrize("address", ["clamd", "http://clamd:3310", "unix://", "tcp://:3310"])
def test_bad_addresses_are_refused_up_front(address):
    with pytest.raises(ValueError):
        ClamdScanner(address)


def test_unix_socket():
    directory = tempfile.mkdtemp(prefix="clamd-")  # short: socket paths are limited to ~100 bytes
    path = os.path.join(directory, "clamd.sock")
    try:
        with FakeClamd(unix_path=path) as fake:
            scanner = ClamdScanner(fake.address)
            assert fake.address == f"unix://{path}"
            assert scanner.ping()
            assert scanner.scan(EICAR).signature == "Eicar-Test-Signature"
            assert scanner.scan(b"ok").clean
        with pytest.raises(ScannerUnavailable):  # the socket file is gone
            ClamdScanner(f"unix://{path}", timeout=0.5).scan(b"ok")
    finally:
        os.rmdir(directory)


# ----------------------------------------------------------------------------- outages

def test_stream_over_the_size_limit_is_not_clean():
    with FakeClamd(max_stream=100_000) as fake:
        with pytest.raises(ScannerUnavailable):
            ClamdScanner(fake.address, timeout=2).scan(b"x" * 300_000)
        assert fake.scans == 0


def test_stream_just_over_the_size_limit_is_not_clean():
    # Small enough to be sent whole before clamd answers, so its reason can be read.
    with FakeClamd(max_stream=1000) as fake:
        assert issubclass(StreamTooLarge, ScannerUnavailable)
        with pytest.raises(StreamTooLarge):
            ClamdScanner(fake.address, timeout=2).scan(b"x" * 1001)
        assert ClamdScanner(fake.address, timeout=2).scan(b"x" * 1000).clean


def test_error_reply_is_not_clean():
    with FakeClamd(reply="Can't allocate memory ERROR") as fake:
        with pytest.raises(ScannerUnavailable, match="ERROR"):
            ClamdScanner(fake.address, timeout=2).scan(b"hola")


@pytest.mark.parametrize("reply", ["", "stream: ", "stream: FOUND", "PONG", "stream: OK extra"])
def test_unexpected_reply_is_not_clean(reply):
    with FakeClamd(reply=reply) as fake:
        with pytest.raises(ScannerUnavailable):
            ClamdScanner(fake.address, timeout=2).scan(b"hola")


def test_hang_is_not_clean():
    with FakeClamd(hang=True) as fake:
        scanner = ClamdScanner(fake.address, timeout=0.5)
        with pytest.raises(ScannerUnavailable):
            scanner.scan(b"hola")
        with pytest.raises(ScannerUnavailable):
            scanner.scan(os.urandom(3_000_000))  # blocks while sending, not just reading
        assert scanner.ping() is False


def test_dropped_connection_is_not_clean():
    with FakeClamd(drop=True) as fake:
        scanner = ClamdScanner(fake.address, timeout=2)
        for data in (b"", b"hola", os.urandom(500_000)):
            with pytest.raises(ScannerUnavailable):
                scanner.scan(data)
        assert scanner.ping() is False
        assert fake.scans == 0


def test_nothing_listening_is_not_clean():
    scanner = ClamdScanner(f"tcp://127.0.0.1:{_closed_port()}", timeout=0.5)
    with pytest.raises(ScannerUnavailable):
        scanner.scan(b"hola")
    assert scanner.ping() is False


def test_recovery_after_an_outage():
    with FakeClamd(hang=True) as fake:
        scanner = ClamdScanner(fake.address, timeout=0.5)
        with pytest.raises(ScannerUnavailable):
            scanner.scan(b"hola")
        fake.hang = False
        assert scanner.scan(b"hola").clean


# ----------------------------------------------------------------------------- ping & the fake

def test_ping(clamd):
    assert ClamdScanner(clamd.address).ping() is True
    assert clamd.commands == ["PING"]


def test_fake_speaks_the_other_command_forms(clamd):
    assert _raw(clamd, b"zPING\0") == b"PONG\0"
    assert _raw(clamd, b"nPING\n") == b"PONG\n"
    assert _raw(clamd, b"PING\n") == b"PONG\n"
    assert _raw(clamd, b"zVERSION\0") == VERSION.encode() + b"\0"
    assert _raw(clamd, b"nVERSION\n") == VERSION.encode() + b"\n"
    stream = len(EICAR).to_bytes(4, "big") + EICAR + b"\0\0\0\0"
    assert _raw(clamd, b"nINSTREAM\n" + stream) == b"stream: Eicar-Test-Signature FOUND\n"
    assert _raw(clamd, b"zINSTREAM\0" + b"\0\0\0\x02ok\0\0\0\0") == b"stream: OK\0"
    assert clamd.scans == 2 and clamd.found == ["Eicar-Test-Signature"]


def test_fake_answers_the_size_limit_like_clamd():
    with FakeClamd(max_stream=10) as fake:
        assert _raw(fake, b"zINSTREAM\0\0\0\0\x0bhello world\0\0\0\0") == \
            b"INSTREAM size limit exceeded. ERROR\0"
