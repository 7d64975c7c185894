"""A throwaway PgBouncer in transaction pooling mode in front of a test cluster.

Its pools are small (``pool_size`` server connections per database), so the clients'
connections really take turns on shared server connections. Start-up parameters it
does not track are refused (no ``ignore_startup_parameters``), and nothing resets a
server connection between clients: whatever a client leaves in a session, the next one
finds. PgBouncer refuses to run as root, so as root it runs as ``nobody``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.postgres import PostgresCluster
from tests.support.server import free_port

_UNPRIVILEGED = "nobody"
_CONFIG = """\
[databases]
; every database of the cluster, by the name a client asks for
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
; no password, as the cluster's own (trust); the user must be listed all the same
auth_type = trust
auth_file = {root}/users.txt
admin_users = postgres
pool_mode = transaction
; at most this many server connections per database and user, and no reserve
default_pool_size = {pool_size}
reserve_pool_size = 0
max_client_conn = 500
; how long a client's query may wait for a server connection before PgBouncer refuses it
query_wait_timeout = {query_wait_timeout}
; after a failed login to the server (it was down), try again within a second, not 15
server_login_retry = 1
logfile = {root}/pgbouncer.log
"""


def find_pgbouncer() -> str | None:
    """The ``pgbouncer`` binary (Debian puts it in /usr/sbin), or None."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")


class PgBouncer:
    def __init__(
        self,
        binary: str,
        cluster: PostgresCluster,
        *,
        pool_size: int = 2,
        query_wait_timeout: int = 120,  # PgBouncer's default, in seconds
    ) -> None:
        self.binary = binary
        self.cluster = cluster
        self.pool_size = pool_size
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="auditql-pgbouncer-"))
        (self.root / "users.txt").write_text('"postgres" ""\n')
        config = _CONFIG.format(
            server_port=cluster.port, port=self.port, root=self.root, pool_size=pool_size,
            query_wait_timeout=query_wait_timeout,
        )  # fmt: skip
        (self.root / "pgbouncer.ini").write_text(config)
        self._user = pwd.getpwnam(_UNPRIVILEGED) if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self.root.chmod(0o755)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def start(self) -> PgBouncer:
        """Runs it (in the foreground, a child of this process) until it listens."""
        user = self._user
        self._process = subprocess.Popen(
            [self.binary, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root,
            # Straight to the user (no runuser in between): terminate() reaches pgbouncer.
            user=user and user.pw_uid, group=user and user.pw_gid,
            extra_groups=[] if user else None,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"pgbouncer did not start: {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, direct_url: str) -> str:
        """``direct_url`` (a database on the cluster) through this PgBouncer."""
        return make_url(direct_url).set(port=self.port).render_as_string(hide_password=False)

    def show(self, what: str) -> list[dict[str, str]]:
        """``SHOW <what>`` on the admin console (SERVERS, POOLS, CLIENTS...), as rows."""
        output = subprocess.run(
            [str(self.cluster.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", "pgbouncer", "--csv", "-c", f"SHOW {what}"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return list(csv.DictReader(io.StringIO(output)))


@contextlib.contextmanager
def running_pgbouncer(
    binary: str, cluster: PostgresCluster, *, query_wait_timeout: int = 120
) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(binary, cluster, query_wait_timeout=query_wait_timeout).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
