"""A throwaway PostgreSQL server built from the local server binaries, for tests and bench.

`find_bindir()` locates `initdb` and `pg_ctl` (`pg_config --bindir`, then the Debian layout).
`PostgresServer.create()` runs `initdb` into a fresh temporary directory, picks a free port and
keeps the Unix socket in that directory too. PostgreSQL refuses to run as root, so when the
process is root the server runs as the `postgres` system user (created if missing) through
`runuser`. `stop()`/`start()` simulate an outage; `destroy()` stops it and removes the files.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "crossbook"


def find_bindir() -> Path | None:
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, check=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             "postgres"],
            check=True,
        )  # fmt: skip
    return "postgres"


class PostgresServer:
    def __init__(self, bindir: Path, root: Path, user: str | None, options: dict[str, str]):
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.user = user
        self.port = _free_port()
        self.options = options

    @classmethod
    def create(cls, bindir: Path, options: dict[str, str] | None = None) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="crossbook-pg-"))
        user = _service_user()
        if user is not None:
            shutil.chown(root, user=user)
        server = cls(bindir, root, user, options or {})
        server._run(
            "initdb", "-D", str(server.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        return server

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> None:
        settings = {"listen_addresses": "127.0.0.1", **self.options}
        opts = f"-p {self.port} -k {self.root}" + "".join(
            f" -c {key}={value}" for key, value in settings.items()
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
            "-o", opts, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """User and system CPU the server has used so far: the postmaster, its live processes
        and those it has reaped (Linux `/proc`; ended backends count once reaped)."""
        tick = os.sysconf("SC_CLK_TCK")
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])

        def fields(pid: int | str) -> list[str]:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

        own = fields(postmaster)
        ticks = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    child = fields(entry)
                    if int(child[1]) == postmaster:
                        ticks += int(child[11]) + int(child[12])
        return ticks / tick

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.dsn(name)
