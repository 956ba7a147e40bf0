"""Fixtures shared by several test files (tests are not a package: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on right now (for a server to start on, or to be refused by)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
