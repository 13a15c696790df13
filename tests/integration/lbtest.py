"""Shared helpers for the end-to-end tests of `lab-bridge serve`.

Each test script drives the real binary: it starts `lab-bridge serve` in a
temporary folder on a fresh database (a SQLite file, or a new schema in the
PostgreSQL named by BRIDGE_TEST_PG_DSN), talks MLLP to it over real sockets
and reads the store back with the backend's own tools (Python's sqlite3
module, or psql). Only the standard library is used here (run with
/usr/bin/python3, which also has Debian's python3-hl7).

    with lbtest.Harness("sqlite", binary) as h:
        db = h.database()
        server = h.server(db)
        server.start()
        with lbtest.MllpConnection(server.mllp_port) as c:
            code, control_id, _ = lbtest.read_msa(c.exchange(message))

A test prints "SKIP: reason" as its first line and exits 0 to be counted as
skipped by CTest (SKIP_REGULAR_EXPRESSION), and fails with a non-zero exit
and a "FAIL: ..." line.
"""

import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

VT = b"\x0b"
FS = b"\x1c"
CR = b"\r"

# Configuration variables a developer's shell (or CI) might carry into the
# server; each test sets exactly what it means to.
CONFIG_VARIABLES = (
    "MLLP_LISTEN_HOST MLLP_LISTEN_PORT MAX_MESSAGE_SIZE MLLP_TLS_CERT MLLP_TLS_KEY "
    "MLLP_TLS_CLIENT_CA MLLP_TLS_ALLOWED_PEERS MLLP_IO_THREADS MLLP_MAX_CONNECTIONS "
    "MLLP_MAX_CONNECTIONS_PER_PEER MLLP_IDLE_TIMEOUT_SECONDS MLLP_FRAME_TIMEOUT_SECONDS "
    "MLLP_WRITE_TIMEOUT_SECONDS DATABASE_URL SENDING_APPLICATION SENDING_FACILITY "
    "AUDIT_LOG_ENABLED AUDIT_RETENTION_DAYS ACK_TIMEOUT_SECONDS RETRY_MAX_ATTEMPTS "
    "HTTP_LISTEN_HOST HTTP_LISTEN_PORT GRPC_LISTEN_PORT LIS_ENDPOINTS_FILE CRITICAL_FLAGS "
    "WORKER_THREADS LOG_LEVEL API_TOKENS_FILE METRICS_REQUIRE_TOKEN ACCESS_AUDIT_FILE "
    "HTTP_MAX_BODY_BYTES HTTP_REQUEST_TIMEOUT_SECONDS DATABASE_READ_CONNECTIONS API_WORKER_THREADS"
).split()


class TestFailure(Exception):
    pass


class TestSkipped(Exception):
    pass


def fail(message):
    raise TestFailure(message)


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def run_main(main):
    """Runs main(); maps TestSkipped/TestFailure to the CTest conventions."""
    try:
        main()
    except TestSkipped as e:
        print(f"SKIP: {e}", flush=True)
        sys.exit(0)
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    print("PASS", flush=True)


def source_dir():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fixtures_dir():
    return os.path.join(source_dir(), "tests", "fixtures", "hl7")


def corpus_dir():
    """../shared/corpus beside the repository, or $BRIDGE_CORPUS_DIR; None when absent."""
    path = os.environ.get("BRIDGE_CORPUS_DIR") or os.path.join(
        os.path.dirname(source_dir()), "shared", "corpus")
    return path if os.path.isdir(path) else None


def postgres_required():
    return bool(os.environ.get("CI") or os.environ.get("BRIDGE_REQUIRE_PG"))


def postgres_dsn_or_skip():
    dsn = os.environ.get("BRIDGE_TEST_PG_DSN")
    if dsn:
        return dsn
    if postgres_required():
        fail("BRIDGE_TEST_PG_DSN is not set but PostgreSQL tests are required")
    raise TestSkipped("BRIDGE_TEST_PG_DSN not set")


def with_query_parameters(dsn, **params):
    sep = "&" if "?" in dsn else "?"
    return dsn + sep + "&".join(f"{k}={v}" for k, v in params.items())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stable_port():
    """A free port below the kernel's ephemeral range, for a server that is
    restarted on the same port: an ephemeral port could meanwhile become the
    source port of some outgoing connection."""
    for _ in range(200):
        port = random.randrange(15000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    fail("no free port between 15000 and 32000")


# --- HL7 and MLLP ---------------------------------------------------------


def frame(payload):
    return VT + payload + FS + CR


def segments(message):
    return [s for s in re.split(rb"\r\n|\r|\n", message) if s]


def header_field(message, n):
    """MSH-n of an ER7 message (bytes), as bytes; None when absent."""
    for seg in segments(message):
        if seg.startswith(b"MSH") and len(seg) > 3:
            sep = seg[3:4]
            fields = seg.split(sep)
            # MSH-1 is the separator itself: MSH-n is fields[n - 1].
            return fields[n - 1] if n - 1 < len(fields) else None
    return None


def control_id(message):
    value = header_field(message, 10)
    return value.decode("utf-8", "replace") if value is not None else None


def message_type(message):
    value = header_field(message, 9)
    if value is None:
        return None
    parts = value.decode("utf-8", "replace").split("^")
    return "^".join(parts[:2])


def read_msa(ack):
    """(MSA-1, MSA-2, ERR/MSA-3 text) of an ACK (bytes or str); None without MSA."""
    if isinstance(ack, str):
        ack = ack.encode()
    sep = b"|"
    for seg in segments(ack):
        if seg.startswith(b"MSH") and len(seg) > 3:
            sep = seg[3:4]
    msa = None
    err = ""
    for seg in segments(ack):
        if seg.startswith(b"MSA" + sep):
            msa = seg.split(sep)
        elif seg.startswith(b"ERR" + sep) and not err:
            err = seg.decode("utf-8", "replace")
    if msa is None:
        return None
    code = msa[1].decode() if len(msa) > 1 else ""
    acked = msa[2].decode("utf-8", "replace") if len(msa) > 2 else ""
    text = msa[3].decode("utf-8", "replace") if len(msa) > 3 else ""
    return code, acked, err or text


def split_messages(data):
    """Messages of a file: one, a batch (FHS/BHS), or several; LF/CR/CRLF."""
    data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    out = []
    for seg in segments(data):
        if seg.startswith(b"MSH"):
            out.append(seg + b"\r")
        elif seg[:3] in (b"FHS", b"BHS", b"BTS", b"FTS"):
            continue
        elif out:
            out[-1] += seg + b"\r"
    return out


class MllpConnection:
    """A plain MLLP client socket with a frame reader."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source_address=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=source_address)
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, payload):
        self.sock.sendall(frame(payload))

    def read_frame(self, timeout=10.0):
        """The next frame's payload; None when the peer closed first.
        Raises socket.timeout when nothing complete arrives in time."""
        deadline = time.monotonic() + timeout
        while True:
            start = self.buffer.find(VT)
            if start >= 0:
                end = self.buffer.find(FS, start)
                if end >= 0:
                    payload = self.buffer[start + 1:end]
                    self.buffer = self.buffer[end + 1:]
                    if self.buffer.startswith(CR):
                        self.buffer = self.buffer[1:]
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no complete frame in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def exchange(self, payload, timeout=10.0):
        self.send(payload)
        return self.read_frame(timeout)

    def wait_closed(self, timeout):
        """True when the peer closes within `timeout` (data is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False


# --- databases --------------------------------------------------------------


class Database:
    """One isolated store for one test: a SQLite file in the work folder, or
    a fresh schema in the test PostgreSQL (search_path set through the URL)."""

    def __init__(self, backend, workdir, dsn=None, name="lab-bridge"):
        self.backend = backend
        self.schema = None
        if backend == "sqlite":
            self.path = os.path.join(workdir, f"{name}.db")
            self.url = f"sqlite://{self.path}"
        else:
            self.dsn = dsn or postgres_dsn_or_skip()
            self.schema = f"it_{os.getpid()}_{random.randrange(1 << 30)}"
            self._psql(self.dsn, f"CREATE SCHEMA {self.schema}")
            self.url = with_query_parameters(
                self.dsn, options=f"-csearch_path%3D{self.schema}")

    @staticmethod
    def _psql(url, sql):
        result = subprocess.run(
            ["psql", "-X", "-q", "-t", "-A", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            fail(f"psql failed ({sql}): {result.stderr.strip()}")
        return result.stdout

    def query(self, sql):
        """Rows as tuples of strings ('' for NULL)."""
        if self.backend == "sqlite":
            con = sqlite3.connect(self.path, timeout=30)
            try:
                rows = con.execute(sql).fetchall()
            finally:
                con.close()
            return [tuple("" if v is None else (v.hex() if isinstance(v, bytes) else str(v))
                          for v in row) for row in rows]
        out = self._psql(self.url, sql)
        rows = []
        for line in out.split("\n"):
            if line == "":
                continue
            rows.append(tuple(v[2:] if v.startswith("\\x") else v for v in line.split("\x1f")))
        return rows

    def scalar(self, sql):
        rows = self.query(sql)
        check(len(rows) == 1 and len(rows[0]) == 1, f"expected one value from {sql}, got {rows}")
        return rows[0][0]

    def execute(self, sql):
        if self.backend == "sqlite":
            con = sqlite3.connect(self.path, timeout=30)
            try:
                con.execute(sql)
                con.commit()
            finally:
                con.close()
        else:
            self._psql(self.url, sql)

    def hex_of(self, column_sql):
        """SQL giving a bytes column as lowercase hex on this backend."""
        if self.backend == "sqlite":
            return f"lower(hex({column_sql}))"
        return f"encode({column_sql}, 'hex')"

    def drop(self):
        if self.schema:
            try:
                self._psql(self.dsn, f"DROP SCHEMA {self.schema} CASCADE")
            except TestFailure:
                pass


# --- the server -------------------------------------------------------------


class Server:
    """`lab-bridge serve` as a child process, its log in the work folder."""

    def __init__(self, binary, workdir, database, env=None, name="serve"):
        self.binary = binary
        self.workdir = workdir
        self.database = database
        self.extra_env = dict(env or {})
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.port_file = os.path.join(workdir, f"{name}.ports")
        self.process = None
        self.ports = {}

    def environment(self, overrides=None):
        env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
        env.update({
            "DATABASE_URL": self.database.url if self.database else "",
            "MLLP_LISTEN_HOST": "127.0.0.1",
            "MLLP_LISTEN_PORT": "0",
            "HTTP_LISTEN_HOST": "127.0.0.1",
            "HTTP_LISTEN_PORT": "0",
            "GRPC_LISTEN_PORT": "0",
        })
        env.update(self.extra_env)
        env.update(overrides or {})
        return {k: v for k, v in env.items() if v is not None}

    def start(self, overrides=None, wait=True, timeout=30.0):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--port-file", self.port_file], cwd=self.workdir,
            env=self.environment(overrides), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                self.ports = parse_port_file(self.port_file)
                return
            if self.process.poll() is not None:
                fail(f"lab-bridge serve exited with {self.process.returncode} before listening:\n"
                     + self.log_tail())
            time.sleep(0.02)
        fail("lab-bridge serve did not write its port file in time:\n" + self.log_tail())

    @property
    def mllp_port(self):
        return self.ports["mllp"]

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM (graceful) and wait; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                fail("lab-bridge serve did not stop within %.0f s of SIGTERM" % timeout)
        return self.process.returncode

    def kill(self):
        """SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def run_command(self, args, overrides=None, timeout=120, input_bytes=None):
        """Runs another lab-bridge command with this server's configuration."""
        return subprocess.run([self.binary] + args, cwd=self.workdir,
                              env=self.environment(overrides), input=input_bytes,
                              capture_output=True, timeout=timeout)

    def audit_verify(self):
        result = self.run_command(["audit", "verify"])
        return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")


def parse_port_file(path):
    with open(path) as f:
        text = f.read()
    ports = {}
    for line in text.split():
        if "=" in line:
            key, value = line.split("=", 1)
            ports[key] = int(value)
        elif line.strip().isdigit():
            ports.setdefault("mllp", int(line))
    check("mllp" in ports, f"no MLLP port in {path}: {text!r}")
    return ports


class OwnPostgres:
    """A throwaway PostgreSQL cluster of this test alone (tests/support/
    pg_throwaway.sh), for tests that stop it: the shared test cluster must
    stay up for the tests running beside them."""

    def __init__(self):
        script = os.path.join(source_dir(), "tests", "support", "pg_throwaway.sh")
        result = subprocess.run(
            ["bash", "-c", f"source {script} && pg_start >/dev/null && env | grep '^BRIDGE_TEST_PG_'"],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            fail(f"cannot start a throwaway PostgreSQL: {result.stderr}")
        env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        self.dsn = env["BRIDGE_TEST_PG_DSN"]
        self.data = env["BRIDGE_TEST_PG_DATA"]
        self.directory = os.path.dirname(self.data)
        self.ctl = env["BRIDGE_TEST_PG_CTL"].split()

    def stop_immediate(self):
        """`pg_ctl stop -m immediate`: a crash, no checkpoint."""
        subprocess.run(self.ctl + ["stop", "-m", "immediate"], capture_output=True, timeout=60,
                       check=True)

    def start(self):
        subprocess.run(self.ctl + ["start"], capture_output=True, timeout=120, check=True)
        for _ in range(300):
            if subprocess.run(["psql", "-X", "-q", self.dsn, "-c", "SELECT 1"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        fail("PostgreSQL did not come back")

    def destroy(self):
        subprocess.run(self.ctl + ["stop", "-m", "immediate"], capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


class Harness:
    """A work folder, the databases and servers of one test; cleans up all."""

    def __init__(self, backend, binary):
        check(backend in ("sqlite", "postgres"), f"unknown backend {backend}")
        self.backend = backend
        self.binary = os.path.abspath(binary)
        if backend == "postgres":
            postgres_dsn_or_skip()
        self.workdir = tempfile.mkdtemp(prefix="lab-bridge-it-")
        self.databases = []
        self.servers = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for s in self.servers:
            s.kill()
        for d in self.databases:
            d.drop()
        if exc_type is not None and exc_type is not TestSkipped:
            for s in self.servers:
                print(f"--- {s.name} log (last lines) ---\n{s.log_tail(40)}", flush=True)
        if os.environ.get("BRIDGE_KEEP_TEST_DIR"):
            print(f"work folder kept: {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return False

    def path(self, name):
        return os.path.join(self.workdir, name)

    def database(self, dsn=None, name="lab-bridge"):
        db = Database(self.backend, self.workdir, dsn=dsn, name=name)
        self.databases.append(db)
        return db

    def server(self, database, env=None, name="serve"):
        s = Server(self.binary, self.workdir, database, env=env, name=name)
        self.servers.append(s)
        return s


def make_pki(directory):
    """A throwaway PKI made with the openssl CLI: a CA, a server certificate for
    localhost/127.0.0.1, a client certificate from the same CA, and a client
    certificate from a foreign CA. Returns a dict of file paths."""
    os.makedirs(directory, exist_ok=True)
    p = {name: os.path.join(directory, name) for name in (
        "ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key",
        "rogue_ca.crt", "rogue_ca.key", "rogue.crt", "rogue.key")}

    def openssl(*args):
        result = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=directory)
        if result.returncode != 0:
            fail("openssl " + " ".join(args) + ": " + result.stderr)

    def ca(crt, key, cn):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={cn}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(crt, key, cn, ca_crt, ca_key, ext):
        csr = crt + ".csr"
        extfile = crt + ".ext"
        with open(extfile, "w") as f:
            f.write(ext)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "2", "-extfile", extfile)

    ca(p["ca.crt"], p["ca.key"], "lab-bridge test CA")
    ca(p["rogue_ca.crt"], p["rogue_ca.key"], "rogue CA")
    leaf(p["server.crt"], p["server.key"], "localhost", p["ca.crt"], p["ca.key"],
         "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    leaf(p["client.crt"], p["client.key"], "lis-a", p["ca.crt"], p["ca.key"],
         "subjectAltName=DNS:lis-a.example\nextendedKeyUsage=clientAuth\n")
    leaf(p["rogue.crt"], p["rogue.key"], "lis-a", p["rogue_ca.crt"], p["rogue_ca.key"],
         "subjectAltName=DNS:lis-a.example\nextendedKeyUsage=clientAuth\n")
    return p


def guide_sample_oru():
    with open(os.path.join(fixtures_dir(), "guide_sample_oru.hl7"), "rb") as f:
        return f.read()


def synthetic_oru(control_id_value, patient_id="P0001", results=3, sender=b"IT_LIS"):
    """A small valid ORU^R01 with `results` OBX rows; no real patient data."""
    cid = control_id_value.encode() if isinstance(control_id_value, str) else control_id_value
    pid = patient_id.encode() if isinstance(patient_id, str) else patient_id
    m = (b"MSH|^~\\&|" + sender + b"|IT_LAB|PMS_LAB|MPS_PMS|20260301120000||ORU^R01|" + cid +
         b"|P|2.5.1\rPID|1||" + pid + b"^^^MPS_PMS^MR||Testpatient^Alex||19700101|U\r"
         b"OBR|1|PL-" + cid + b"|FL-" + cid + b"|CBC^Complete Blood Count|||20260301110000"
         b"|||||||||||||||F\r")
    for i in range(results):
        m += (b"OBX|%d|NM|T%d^Test %d||%d|mg/dL|1-20|N|||F\r" % (i + 1, i, i, 10 + i))
    return m
