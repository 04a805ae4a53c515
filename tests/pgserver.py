"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, start on a free
port of 127.0.0.1 with password authentication, stop and start it again on demand.

PostgreSQL refuses to run as root, so as root every server command runs as the `postgres`
user (`runuser -u postgres --`). Nothing here assumes a running service.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER, PASSWORD = "aepo", "aepo-test-pw"


def available() -> str | None:
    """Why a server cannot start here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "psql"):
        if shutil.which(tool) is None:
            return f"{tool} is not on the PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="aepo-pg-"))
        self.data, self.sock, self.port = self.root / "data", self.root / "sock", free_port()
        self.sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
            self.root.chmod(0o755)

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> "PgServer":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--no-sync")
        self.start()
        self.sql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}' CREATEDB")
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def sql(self, query: str) -> str:
        return self._run("psql", "-h", str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                         "-tAc", query).stdout

    def database(self, name: str) -> str:
        """A fresh database owned by the test role; its URL (plain postgresql://, as a user writes it)."""
        self.sql(f"CREATE DATABASE {name} OWNER {USER}")
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
