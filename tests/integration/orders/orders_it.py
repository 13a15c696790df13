"""Helpers of the order-dispatch end-to-end tests (issue 7), on top of
tests/integration/lbtest.py: a PostgreSQL database of the test's own, an API
token, JSON over HTTP, lis_endpoints.json files, and the laboratories
(python-hl7's asyncio MLLP server, node-hl7-server over mutual TLS) whose
received messages are read back from their JSON-lines record files.
Run with /usr/bin/python3 (Debian's python3-hl7 is needed by the LIS).
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import lbtest  # noqa: E402
from lbtest import check, fail  # noqa: E402,F401

PYTHON = "/usr/bin/python3"


class OwnDatabase(lbtest.Database):
    """PostgreSQL: a database of this test alone (CREATE DATABASE on the test
    cluster, dropped at the end); SQLite: a file, as lbtest.Database."""

    def __init__(self, backend, workdir, name="orders"):
        if backend == "sqlite":
            super().__init__(backend, workdir, name=name)
            return
        self.backend = backend
        self.schema = None
        self.server_dsn = lbtest.postgres_dsn_or_skip()
        self.dbname = f"orders_it_{os.getpid()}_{random.randrange(1 << 30)}"
        self._psql(self._on(self.server_dsn, "postgres"), f"CREATE DATABASE {self.dbname}")
        self.url = self._on(self.server_dsn, self.dbname)

    @staticmethod
    def _on(dsn, dbname):
        base, _, query = dsn.partition("?")
        base = re.sub(r"/[^/]*$", "/" + dbname, base)
        return base + ("?" + query if query else "")

    def drop(self):
        if self.backend == "postgres":
            try:
                self._psql(self._on(self.server_dsn, "postgres"),
                           f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            except lbtest.TestFailure:
                pass


def harness_database(h, name="orders"):
    db = OwnDatabase(h.backend, h.workdir, name=name)
    h.databases.append(db)
    return db


def create_token(server):
    """An API token with every role, made with `lab-bridge token create`."""
    result = server.run_command(
        ["token", "create", "--name", f"it-{random.randrange(1 << 30)}",
         "--roles", "results:read,orders:write,criticals:ack,audit:read"])
    check(result.returncode == 0, f"token create failed: {result.stderr!r}")
    return result.stdout.decode().strip().splitlines()[-1].strip()


def server_env(h, endpoints_path=None, **extra):
    env = {
        "API_TOKENS_FILE": h.path("tokens.json"),
        "ACCESS_AUDIT_FILE": h.path("access.jsonl"),
        "LOG_LEVEL": "info",
    }
    if endpoints_path:
        env["LIS_ENDPOINTS_FILE"] = endpoints_path
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Api:
    """JSON over HTTP/1.1 keep-alive with a bearer token."""

    def __init__(self, port, token):
        self.port = port
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, raw=False):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                headers = {"Authorization": f"Bearer {self.token}"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if raw:
                    return response.status, data.decode("utf-8", "replace")
                return response.status, (json.loads(data) if data else None)
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        return None

    def place(self, patient_id, test_codes, priority="R", provider="Dr. Smith"):
        status, body = self.request("POST", "/api/lab-orders", {
            "patient_id": patient_id, "test_codes": test_codes,
            "ordering_provider": provider, "priority": priority})
        check(status == 201, f"POST /api/lab-orders: {status} {body}")
        return body

    def order(self, order_id):
        status, body = self.request("GET", f"/api/lab-orders/{order_id}")
        check(status == 200, f"GET /api/lab-orders/{order_id}: {status} {body}")
        return body

    def wait_status(self, order_id, wanted, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.order(order_id)
            if last["status"] in wanted:
                return last
            time.sleep(0.05)
        fail(f"order {order_id} did not reach {wanted} in {timeout} s: {last}")


def write_endpoints(path, endpoints):
    with open(path, "w") as f:
        json.dump({"endpoints": endpoints}, f, indent=2)
    return path


def endpoint(port, **overrides):
    e = {
        "id": "reference-lab", "host": "127.0.0.1", "port": port, "default": True,
        "receiving_application": "LAB_LIS", "receiving_facility": "REFERENCE_LAB",
        "connect_timeout_seconds": 2, "ack_timeout_seconds": 5,
        "backoff_initial_ms": 100, "backoff_max_ms": 400,
    }
    e.update(overrides)
    return e


def wait_port(port, timeout=20.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            fail(f"LIS exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    fail(f"nothing listens on port {port}")


class Lis:
    """A laboratory process whose received messages are JSON lines in a file."""

    def __init__(self, args, record, port, cwd=None):
        self.record = record
        self.port = port
        self.log = open(record + ".log", "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
        wait_port(port, process=self.process)

    def messages(self):
        try:
            with open(self.record) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_messages(self, count, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        fail(f"the LIS received {len(self.messages())} messages, expected {count}:\n"
             + self.log_text())

    def log_text(self):
        try:
            with open(self.record + ".log", "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def python_lis(h, port, name="lis", results_to=None, results_for="", lifetime=600,
               final_gate=None):
    record = h.path(name + ".jsonl")
    args = [PYTHON, os.path.join(HERE, "python_hl7_lis.py"), "--port", str(port),
            "--record", record, "--lifetime", str(lifetime)]
    if results_to:
        args += ["--results-to", str(results_to), "--results-for", results_for]
    if final_gate:
        args += ["--final-gate", final_gate]
    return Lis(args, record, port)


def node_tls_lis(h, port, pki, name="node-lis"):
    record = h.path(name + ".jsonl")
    args = ["node", os.path.join(HERE, "node_hl7_server_lis.mjs"), str(port), record,
            pki["server.key"], pki["server.crt"], pki["ca.crt"]]
    return Lis(args, record, port, cwd=HERE)


def fields(raw, segment):
    """Every `segment` of an ER7 message as lists of fields (index = field number)."""
    out = []
    for line in re.split(r"\r\n|\r|\n", raw):
        parts = line.split("|")
        if parts[0] == segment:
            out.append(parts)
    return out


def run(main):
    lbtest.run_main(main)
