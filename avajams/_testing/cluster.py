"""A real multi-node Ray cluster on this machine, for tests and benchmarks.

Each node is its own ``ray start`` (the head, then ``ray start --address``), so each has its own
raylet, object store and worker processes, on its own loopback address (127.0.0.2, 127.0.0.3,
...: Ray never resolves those to the machine's network address, so nothing leaves loopback).
Ray's session files go under a short temporary directory (unix socket paths must stay under
107 bytes). :meth:`LocalCluster.stop` ends exactly the processes this cluster started — by
process group and by the temporary directory in their command line, never by name as
``ray stop`` does (it would also stop other Ray clusters on a shared machine) — and returns any
that survived. Needs ``ray`` and ``psutil`` (both in ``avajams[dev]``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["RAY_ENV", "LocalCluster"]

RAY = str(Path(sys.executable).with_name("ray"))

#: Keeps Ray off the network: no usage statistics, no dashboard.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@dataclass
class LocalCluster:
    """``ray start`` nodes on loopback addresses: ``nodes`` lists (CPUs, GPUs) per node."""

    nodes: list[tuple[int, int]]
    pythonpath: list[str] = field(default_factory=list)
    """Folders the nodes' workers (and drivers run with :meth:`env`) import from."""
    temp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="avr", dir="/tmp")))
    address: str = ""
    groups: list[int] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment of the nodes (and of drivers run as subprocesses)."""
        path = os.pathsep.join(p for p in (*self.pythonpath, os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, **RAY_ENV, "PYTHONPATH": path}

    def start(self) -> LocalCluster:
        port = _free_port("127.0.0.2")
        self.address = f"127.0.0.2:{port}"
        for i, (cpus, gpus) in enumerate(self.nodes):
            ip = f"127.0.0.{i + 2}"
            where = (
                ["--head", f"--port={port}", "--include-dashboard=false"]
                if i == 0
                else [f"--address={self.address}"]
            )
            log = open(self.temp / f"start-{i}.log", "wb")  # noqa: SIM115 - closed below
            with log:
                process = subprocess.Popen(
                    [
                        RAY, "start", *where, f"--node-ip-address={ip}", f"--num-cpus={cpus}",
                        f"--num-gpus={gpus}", f"--temp-dir={self.temp}", "--disable-usage-stats",
                    ],
                    env=self.env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its daemons stay in this group: stop() ends it
                )  # fmt: skip
                self.groups.append(process.pid)
                if process.wait(timeout=120) != 0:
                    text = (self.temp / f"start-{i}.log").read_text(errors="replace")
                    raise RuntimeError(f"ray start failed for node {i}:\n{text[-3000:]}")
        return self

    def processes(self) -> list[psutil.Process]:
        """Live processes of this cluster: its process groups, or naming its temp directory."""
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                mine = os.getpgid(p.pid) in self.groups or any(
                    str(self.temp) in part for part in (p.info["cmdline"] or [])
                )
            except (ProcessLookupError, psutil.Error):
                continue
            if mine and p.pid != os.getpid() and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        return found

    def stop(self) -> list[str]:
        """End every process of the cluster (TERM, then KILL); the ones still alive after."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in self.groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, sig)
            for p in self.processes():  # workers run in process groups of their own
                with contextlib.suppress(psutil.Error):
                    p.send_signal(sig)
            deadline = time.monotonic() + 5
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
        left = [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in self.processes()]
        shutil.rmtree(self.temp, ignore_errors=True)
        return left


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
