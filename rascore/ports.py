"""A free local TCP port, for the servers RAScore starts itself (a throw-away Orthanc, the app
under test, a torch process group)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nothing listens on now on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
