"""Build the image and run it for real, on a machine with no Docker daemon.

Run as root through ``bash container/check`` (which installs buildah and podman). It:

1. makes stand-ins for the Dockerfile's base images, once: a minimal Debian 12 made by
   debootstrap with Debian's Python 3.11 (for ``python:3.11-slim-bookworm``), and the
   same plus this machine's Node.js and npm (for ``node``, the playground's build
   stage). Official images cannot be pulled here; the Dockerfile takes its bases as
   ARGs, so the stand-ins go in their place and everything after ``FROM`` is the real
   build: the same locks, the same installs from PyPI and npm;
2. builds the Dockerfile with buildah (``--pull=never``: no image comes from a
   registry), keeping the layer cache of this build only;
3. starts a throwaway PostgreSQL cluster, runs ``auditql migrate`` in a one-shot
   container, then the image's own command, and checks what an operator relies on: a
   numeric non-root user, ``/health``, ``/ready``, a GraphQL answer, the HEALTHCHECK
   command, JSON logs, the playground assets, compiled bytecode, no build tools; then
   ``podman stop`` (SIGTERM) must end it with status 0 within the shutdown grace period.

It prints the image size, the build time and the time from start to ready. Containers
and the cluster are removed on the way out; images and the layer cache stay in
``STATE`` so that the next run is warm, and ``--clean`` removes them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from tests.support.postgres import PostgresCluster, find_bindir

ROOT = Path(__file__).resolve().parents[1]
# Image storage of its own, so the check neither sees nor touches the machine's other
# images, and --clean is one directory.
STATE = Path(os.environ.get("AUDITQL_CHECK_STATE", "/var/tmp/auditql-container-check"))
RUNROOT = Path("/run/auditql-container-check")
STORAGE = ["--root", str(STATE / "storage"), "--runroot", str(RUNROOT)]
# No systemd or journald here: cgroupfs, and a file for podman's events.
PODMAN = [
    "podman", *STORAGE, "--runtime", "runc", "--cgroup-manager", "cgroupfs",
    "--events-backend", "file",
]  # fmt: skip
BUILDAH = ["buildah", *STORAGE]

IMAGE = "localhost/auditql:check"
PYTHON_STANDIN = "localhost/auditql-standin/python:3.11-slim-bookworm"
NODE_STANDIN = "localhost/auditql-standin/node:bookworm-slim"
CONTAINER = "auditql-check-api"
SUITE = "bookworm"
# Debian 12's python3 is 3.11, as in python:3.11-slim-bookworm; libstdc++6 is for the
# Node.js binary of the node stand-in.
STANDIN_PACKAGES = "python3,python3-venv,ca-certificates,libstdc++6"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
EXPECTED_USER = "10001"
GRACE_SECONDS = 10


class CheckError(Exception):
    """A check failed; the message says what was expected and what was found."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckError(message)


def log(message: str) -> None:
    print(f"[container/check] {message}", flush=True)


def run(args: Sequence[str], *, quiet: bool = False) -> None:
    """Run a command; its output streams through unless ``quiet``; raise on failure."""
    if not quiet:
        if subprocess.run(list(args), check=False).returncode != 0:
            raise CheckError(f"{' '.join(args)} failed (its output is above)")
        return
    done = subprocess.run(list(args), check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def output(args: Sequence[str]) -> str:
    done = subprocess.run(list(args), check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def image_exists(name: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", name], check=False).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (the only one it may reach)."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.exists():
            text = path.read_text()
            found = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE) or re.search(
                r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE
            )
            if found:
                return found.group(1)
    raise CheckError("no Debian mirror in /etc/apt/sources.list(.d)")


def make_standins() -> None:
    """The stand-in base images, made once and kept in STATE.

    They carry this machine's CA bundle and point pip, uv and npm at it: registry
    traffic here may pass a TLS-inspecting proxy whose CA only that bundle holds. The
    real base images need none of this, and the Dockerfile knows nothing of it."""
    if image_exists(PYTHON_STANDIN) and image_exists(NODE_STANDIN):
        log("stand-in base images: already made")
        return
    started = time.monotonic()
    for leftover in STATE.glob("standin-*"):  # from an interrupted run
        remove_tree(leftover)
    work = Path(tempfile.mkdtemp(prefix="standin-", dir=STATE))
    rootfs = work / "rootfs"
    try:
        log(f"debootstrap {SUITE}, minbase + {STANDIN_PACKAGES}")
        run(["debootstrap", "--variant=minbase", f"--include={STANDIN_PACKAGES}",
             SUITE, str(rootfs), debian_mirror()], quiet=True)  # fmt: skip
        # Slim like the official image: no package lists, no downloaded packages.
        for directory in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for entry in (rootfs / directory).glob("*"):
                if entry.is_file():
                    entry.unlink()
        shutil.copy2(CA_BUNDLE, rootfs / CA_BUNDLE.lstrip("/"))
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            f"ENV SSL_CERT_FILE={CA_BUNDLE}",
            f"ENV PIP_CERT={CA_BUNDLE}",
            f"ENV NODE_EXTRA_CA_CERTS={CA_BUNDLE}",
            'CMD ["python3"]',
        ]
        tarball = work / "rootfs.tar"
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."])
        change_args = [arg for change in changes for arg in ("--change", change)]
        run([*PODMAN, "import", *change_args, str(tarball), PYTHON_STANDIN], quiet=True)
        make_node_standin()
    finally:
        remove_tree(work)
    log(f"stand-in base images made in {time.monotonic() - started:.0f} s")


def remove_tree(path: Path) -> None:
    """rm -rf, after unmounting what an interrupted debootstrap may have left mounted
    inside (its /proc, /sys): never delete through a mount into the host."""
    prefix = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    if any(m.startswith(prefix) for m in Path("/proc/mounts").read_text().split()):
        raise CheckError(f"{path} still has mounts inside; not removing it")
    shutil.rmtree(path, ignore_errors=True)


def make_node_standin() -> None:
    """The python stand-in plus this machine's node and npm, laid out as in the
    official node image (/usr/local/bin/node, /usr/local/lib/node_modules/npm)."""
    node = shutil.which("node")
    npm = Path(output(["npm", "root", "--global"])) / "npm"
    expect(node and (npm / "bin/npm-cli.js").exists(), "node and npm are needed")
    assert node is not None
    container = output([*BUILDAH, "from", "--pull=never", PYTHON_STANDIN])
    try:
        run([*BUILDAH, "copy", container, str(Path(node).resolve()), "/usr/local/bin/node"],
            quiet=True)  # fmt: skip
        run([*BUILDAH, "copy", container, str(npm), "/usr/local/lib/node_modules/npm"],
            quiet=True)  # fmt: skip
        run([*BUILDAH, "run", "--isolation", "chroot", container, "--", "ln", "-s",
             "../lib/node_modules/npm/bin/npm-cli.js", "/usr/local/bin/npm"])  # fmt: skip
        run([*BUILDAH, "config", "--cmd", '["node"]', container])
        run([*BUILDAH, "commit", container, NODE_STANDIN], quiet=True)
    finally:
        run([*BUILDAH, "rm", container], quiet=True)


def build() -> float:
    """Build IMAGE; return the seconds it took. The full output goes to STATE/build.log."""
    log(f"building {IMAGE}: buildah bud, chroot isolation, no pulls (log: {STATE}/build.log)")
    started = time.monotonic()
    with (STATE / "build.log").open("w+") as build_log:
        done = subprocess.run([
            *BUILDAH, "bud", "--isolation", "chroot", "--pull=never", "--layers",
            # Docker's image format: OCI image configs have no HEALTHCHECK.
            "--format", "docker",
            "--build-arg", f"PYTHON_IMAGE={PYTHON_STANDIN}",
            "--build-arg", f"NODE_IMAGE={NODE_STANDIN}",
            "--tag", IMAGE, str(ROOT),
        ], check=False, stdout=build_log, stderr=subprocess.STDOUT)  # fmt: skip
        build_log.seek(0)
        text = build_log.read()
    if done.returncode != 0:
        raise CheckError("the build failed:\n" + "\n".join(text.splitlines()[-60:]))
    seconds = time.monotonic() - started
    steps = text.count("STEP ")
    cached = text.count("Using cache")
    log(f"built in {seconds:.1f} s ({steps} steps, {cached} from the layer cache)")
    forget_older_builds(set(re.findall(r"^--> (?:Using cache )?([0-9a-f]{11,64})", text, re.M)))
    return seconds


def forget_older_builds(this_build: set[str]) -> None:
    """Remove untagged images that this build did not produce or reuse: the layer cache
    keeps the last build only, instead of growing with every run."""
    listing = output([*PODMAN, "images", "--all", "--no-trunc", "--format",
                      "{{.ID}} {{.Repository}}"])  # fmt: skip
    stale = [
        image_id.removeprefix("sha256:")
        for image_id, repository in (line.split() for line in listing.splitlines())
        if repository == "<none>"
        and not any(image_id.removeprefix("sha256:").startswith(step) for step in this_build)
    ]
    # Children before parents: repeat while a pass removes something.
    while stale:
        removed = [
            image_id for image_id in stale
            if subprocess.run([*PODMAN, "rmi", image_id], check=False,
                              capture_output=True).returncode == 0
        ]  # fmt: skip
        if not removed:
            break
        stale = [image_id for image_id in stale if image_id not in removed]


def podman_run(*args: str, env: dict[str, str]) -> list[str]:
    """``podman run`` on the host's network (PostgreSQL listens on loopback).

    --no-healthcheck: podman schedules a HEALTHCHECK with systemd timers, and there is
    no systemd here; check_running() runs the image's command itself. --ulimit: by
    default podman asks runc for higher limits than this machine lets a process raise
    (no CAP_SYS_RESOURCE here), so ask for modest ones; the service needs few."""
    env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    return [
        *PODMAN, "run", "--network", "host", "--no-healthcheck",
        "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", *env_args, *args,
    ]  # fmt: skip


def http(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remove_container() -> None:
    subprocess.run([*PODMAN, "rm", "--force", "--ignore", CONTAINER],
                   check=False, capture_output=True)  # fmt: skip


def exec_in(*command: str) -> str:
    return output([*PODMAN, "exec", CONTAINER, *command])


def inspect_image() -> dict[str, object]:
    found: list[dict[str, object]] = json.loads(output([*PODMAN, "image", "inspect", IMAGE]))
    return found[0]


@contextlib.contextmanager
def postgres() -> Iterator[PostgresCluster]:
    bindir = find_bindir()
    expect(bindir, "PostgreSQL server binaries are needed (apt-get install postgresql-15)")
    assert bindir is not None
    cluster = PostgresCluster(bindir).init().start()
    try:
        # The database's owner is not a superuser, as in a managed production database.
        cluster.psql("CREATE ROLE auditql LOGIN")
        cluster.psql("CREATE DATABASE auditql OWNER auditql")
        yield cluster
    finally:
        cluster.destroy()


def check_image_config() -> None:
    image = inspect_image()
    config = image["Config"]
    assert isinstance(config, dict)
    expect(config["User"] == f"{EXPECTED_USER}:{EXPECTED_USER}", f"user {config['User']}")
    expect(config["Cmd"] == ["auditql", "serve", "--no-migrate"], f"cmd {config['Cmd']}")
    for setting in ("AUDITQL_ENVIRONMENT=production", "AUDITQL_HOST=0.0.0.0"):
        expect(setting in config["Env"], f"{setting} not in {config['Env']}")
    healthcheck = image.get("Healthcheck")
    expect(isinstance(healthcheck, dict) and healthcheck["Test"][0] == "CMD",
           f"healthcheck {healthcheck}")  # fmt: skip
    log(f"image: user {config['User']}, cmd {config['Cmd']}, production env, healthcheck")


def migrate(cluster: PostgresCluster, env: dict[str, str]) -> None:
    log("auditql migrate, in a one-shot container")
    run(podman_run("--rm", IMAGE, "auditql", "migrate", env=env))
    tables = cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "auditql")
    expect(int(tables) >= 9, f"migrate made {tables.strip()} tables")
    # The release step is repeatable: a second run finds nothing to do and succeeds.
    run(podman_run("--rm", IMAGE, "auditql", "migrate", env=env), quiet=True)


def wait_ready(base: str, started: float) -> float:
    deadline = started + 60
    while time.monotonic() < deadline:
        state = output([*PODMAN, "inspect", "--format", "{{.State.Status}}", CONTAINER])
        expect(state == "running", f"the container is {state}:\n{container_logs()}")
        with contextlib.suppress(OSError):
            if http(f"{base}/ready")[0] == 200:
                return time.monotonic() - started
        time.sleep(0.05)
    raise CheckError(f"not ready within 60 s:\n{container_logs()}")


def check_running(base: str) -> None:
    uid = exec_in("id", "-u")
    expect(uid == EXPECTED_USER, f"runs as uid {uid}")
    # The server process itself (pid 1), real and effective ids.
    status = exec_in("cat", "/proc/1/status")
    ids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    expect(ids and ids.group(1) == ids.group(2) == EXPECTED_USER, f"pid 1 ids: {ids}")
    command = exec_in("cat", "/proc/1/cmdline").replace("\0", " ").strip()
    expect(command.endswith("auditql serve --no-migrate"), f"pid 1 is {command}")
    for path in ("/health", "/ready"):
        code, body = http(base + path)
        expect(code == 200, f"{path}: {code} {body!r}")
    code, body = http(f"{base}/graphql", b'{"query": "{ __typename }"}')
    expect(code == 200, f"/graphql: {code} {body!r}")
    expect(json.loads(body) == {"data": {"__typename": "Query"}}, f"/graphql: {body!r}")
    healthcheck = inspect_image()["Healthcheck"]
    assert isinstance(healthcheck, dict)
    exec_in(*healthcheck["Test"][1:])  # as Docker runs it: exit 0 is healthy
    log(f"running: pid 1 '{command}' as uid {uid}; /health, /ready, /graphql and the "
        "HEALTHCHECK command answer")  # fmt: skip


def check_contents() -> None:
    """What the image holds: the playground assets, bytecode, no build tools or caches."""
    exec_in(
        "python3", "-c", "from gql.http import playground; assert playground.assets_available()"
    )
    # Under -v, Python names each .pyc it uses ("code object from") and each it rejects.
    verbose = subprocess.run(
        [*PODMAN, "exec", CONTAINER, "python3", "-v", "-c", "import gql.http.app, gql.cli.main"],
        check=True, capture_output=True, text=True,
    ).stderr  # fmt: skip
    used = verbose.count("# code object from '")
    stale = [line for line in verbose.splitlines() if "bytecode is stale" in line]
    expect(used > 100, f"only {used} modules loaded from bytecode")
    expect(not stale, "stale bytecode:\n" + "\n".join(stale[:10]))
    leftovers = exec_in("sh", "-c", (
        "for tool in uv gcc cc make node npm git; do command -v $tool; done; "
        "ls -d /opt/build-tools /build /root/.cache /root/.npm 2>/dev/null; true"
    ))  # fmt: skip
    expect(leftovers == "", f"build tools or caches in the image:\n{leftovers}")
    writable = exec_in("sh", "-c", "for d in /app /app/gql /opt/venv; do test -w $d && echo $d; "
                       "done; true")  # fmt: skip
    expect(writable == "", f"writable by the service's user: {writable}")
    log(f"contents: playground assets; {used} modules from bytecode, none stale; "
        "no build tools or caches; code read-only")  # fmt: skip


def stop() -> tuple[float, float, int]:
    """``podman stop``: SIGTERM, then SIGKILL after the grace period. Returns the seconds
    until the process exited, until podman returned, and the exit status."""
    called = time.time()
    started = time.monotonic()
    run([*PODMAN, "stop", "--time", str(GRACE_SECONDS), CONTAINER], quiet=True)
    returned = time.monotonic() - started
    state = json.loads(output([*PODMAN, "inspect", "--format", "{{json .State}}", CONTAINER]))
    # FinishedAt has nanoseconds; datetime takes microseconds.
    finished = re.sub(r"(\.\d{6})\d*", r"\1", state["FinishedAt"])
    exited = datetime.fromisoformat(finished).timestamp() - called
    return exited, returned, int(state["ExitCode"])


def container_logs() -> str:
    done = subprocess.run([*PODMAN, "logs", CONTAINER], check=False, capture_output=True,
                          text=True)  # fmt: skip
    return done.stdout + done.stderr


def check_logs(text: str) -> None:
    """Production logs are JSON, one object a line (AUDITQL_LOG_FORMAT=json)."""
    lines = [line for line in text.splitlines() if line.strip()]
    expect(lines, "the service logged nothing")
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        expect(isinstance(record, dict), f"not a JSON log line: {line!r}")
    log(f"logs: {len(lines)} lines, each a JSON object")


def check() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    total = time.monotonic()
    make_standins()
    build_seconds = build()
    size = int(output([*PODMAN, "image", "inspect", "--format", "{{.Size}}", IMAGE]))
    check_image_config()
    remove_container()
    with postgres() as cluster:
        url = f"postgresql+asyncpg://auditql@127.0.0.1:{cluster.port}/auditql"
        # Production refuses to start without the keys personal audit values are sealed
        # under and audit checkpoints signed with; throwaway ones for the throwaway database.
        kek, seed = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
        env = {
            "AUDITQL_DATABASE_URL": url,
            "AUDITQL_AUDIT_KEKS": f"check:{kek}",
            "AUDITQL_AUDIT_SIGNING_KEY": f"ed25519:check:{seed}",
        }
        migrate(cluster, env)
        port = free_port()
        env |= {"AUDITQL_PORT": str(port), "AUDITQL_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
        started = time.monotonic()
        run(podman_run("--detach", "--name", CONTAINER, IMAGE, env=env), quiet=True)
        try:
            base = f"http://127.0.0.1:{port}"
            ready = wait_ready(base, started)
            log(f"ready {ready:.2f} s after podman run")
            check_running(base)
            check_contents()
            exited, returned, status = stop()
            logs = container_logs()
        finally:
            remove_container()
    expect(status == 0, f"exit status {status} after SIGTERM:\n{logs}")
    expect(exited < GRACE_SECONDS, f"the process took {exited:.1f} s to stop")
    log(f"podman stop: SIGTERM, exit status 0, {exited:.2f} s to exit, podman returned "
        f"after {returned:.2f} s")  # fmt: skip
    check_logs(logs)

    print(f"""
image size:             {size / 1e6:.1f} MB ({size} bytes, on the stand-in base)
build time:             {build_seconds:.1f} s
podman run to /ready:   {ready:.2f} s
SIGTERM to exit 0:      {exited:.2f} s (grace period {GRACE_SECONDS} s)
whole check:            {time.monotonic() - total:.0f} s
container check: passed""")


def clean() -> None:
    remove_container()
    subprocess.run([*BUILDAH, "rm", "--all"], check=False, capture_output=True)
    subprocess.run([*PODMAN, "rmi", "--all", "--force"], check=False, capture_output=True)
    for path in (STATE, RUNROOT):
        if path.exists():
            remove_tree(path)
    log(f"removed {STATE} and {RUNROOT}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="container/check", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--clean", action="store_true",
                        help="remove the images, the layer cache and the stand-ins")  # fmt: skip
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        log("needs root (debootstrap, buildah, podman)")
        return 1
    try:
        if args.clean:
            clean()
        else:
            check()
    except CheckError as failure:
        log(f"FAILED: {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
