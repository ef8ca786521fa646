"""`vigil demo` on a port that is taken: a clear error before any password is printed or the
demo database replaced."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.core import ValidationError
from vigil.demo.server import listen

VIGIL = Path(sys.executable).parent / "vigil"
DEADLINE = 180.0  # generous: a slow start, never a hang


def test_a_port_in_use_is_refused_before_any_password_is_printed(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    database.write_text("the previous demo's data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(VIGIL), "demo", "--port", str(port), "--database", str(database)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: port: 127.0.0.1:{port} is already in use: stop what uses it, "
        "or choose another with --port"
    )
    assert "sign in" not in done.stdout and "password" not in done.stdout.lower()
    assert database.read_text() == "the previous demo's data"  # not replaced


def test_listen_opens_the_port_or_names_the_host() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
        with pytest.raises(ValidationError) as caught:
            listen("127.0.0.1", sock.getsockname()[1])
        assert caught.value.field == "port"
    finally:
        sock.close()
    with pytest.raises(ValidationError) as bad:
        listen("no-such-host.invalid", 0)
    assert bad.value.field == "host"
