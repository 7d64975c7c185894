"""Which process holds a TCP connection, read from Linux's /proc: to tell the worker
processes of one ``auditql serve --workers N`` apart without asking the API."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx

PROC = Path("/proc")
_ESTABLISHED = "01"  # Ref: include/net/tcp_states.h, as /proc/net/tcp prints it


def client_port(response: httpx.Response) -> int:
    """The local port of the connection a response came over."""
    address = response.extensions["network_stream"].get_extra_info("client_addr")
    return int(address[1])


def parent_of(pid: int) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    return int((PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()[1])


def holder(server_port: int, peer_port: int) -> int:
    """The pid of the process holding the server's end of the established IPv4
    connection from ``peer_port`` (on this host) to ``server_port``."""
    inode = _server_side_inode(server_port, peer_port)
    for entry in PROC.iterdir():
        if entry.name.isdigit() and inode in _socket_inodes(entry):
            return int(entry.name)
    raise LookupError(f"no process holds the connection from port {peer_port}")


def _server_side_inode(server_port: int, peer_port: int) -> str:
    for line in (PROC / "net" / "tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if (
            state == _ESTABLISHED
            and int(local.rpartition(":")[2], 16) == server_port
            and int(remote.rpartition(":")[2], 16) == peer_port
        ):
            return inode
    raise LookupError(f"no connection from port {peer_port} to port {server_port}")


def _socket_inodes(process: Path) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):  # another user's process, or one that just ended
        for fd in (process / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    return inodes
