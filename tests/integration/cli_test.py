#!/usr/bin/python3
"""`lab-bridge send`, `lab-bridge audit verify` and the start-up checks of
`lab-bridge serve`, end to end against a running server.

    cli_test.py BACKEND LAB_BRIDGE      (BACKEND: sqlite | postgres)

- send: one output line per message (control id, ACK code, error text),
  single messages, FHS/BHS batches, LF and CRLF files, several files in one
  call; what else a LIS sends (an ACK to our order, ORM/OML status updates,
  an ORU with MSH-15 NE, an ORL^O22) is stored and answered too; a type or
  event we do not take (ADT^A01, ORU^R30) is answered AR (ERR-3 201 for the
  event) and still stored; exit 0 only when every message got AA/CA, 1
  otherwise (an AR, no server, no ACK in time, text that is not a message, a
  message without MSH-10), 2 for an unreadable file.
- audit verify: passes after ingest (and counts the rows), fails after one
  audit row is edited or deleted, naming it, passes again once the edit is
  undone.
- migrate: creates the schema, is idempotent, names a bad DATABASE_URL.
- serve: a bad value stops the start with a message naming the variable, no
  listener is opened; the one start-up line masks the database password; the
  first start without tokens prints one admin token, which works, and a
  restart prints none.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import lbtest
from lbtest import check


def write(h, name, data):
    path = h.path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def send(server, port, files, extra=(), env=None):
    result = server.run_command(["send", "--host", "127.0.0.1", "--port", str(port), *extra,
                                 *files], overrides=env, timeout=60)
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    return result.returncode, [line for line in out.split("\n") if line], err


def expect_lines(lines, expected, what):
    """`expected`: list of (control id, code) the lines must start with, in order."""
    got = [tuple(line.split(" ", 2)[:2]) for line in lines]
    check(got == expected, f"{what}: expected {expected}, got lines {lines}")


def check_send(h, server, db):
    port = server.mllp_port
    guide = lbtest.guide_sample_oru()
    single = write(h, "guide.hl7", guide)
    batch = write(h, "batch.hl7", (
        b"FHS|^~\\&|IT_LIS|IT_LAB\nBHS|^~\\&|IT_LIS|IT_LAB\n" +
        lbtest.synthetic_oru("IT-B1", "P-B1").replace(b"\r", b"\n") +
        lbtest.synthetic_oru("IT-B2", "P-B2").replace(b"\r", b"\n") + b"BTS|2\nFTS|1\n"))
    crlf = write(h, "crlf.hl7", lbtest.synthetic_oru("IT-C1", "P-C1").replace(b"\r", b"\r\n"))

    code, lines, err = send(server, port, [single, batch, crlf])
    expect_lines(lines, [("MSG001", "AA"), ("IT-B1", "AA"), ("IT-B2", "AA"), ("IT-C1", "AA")],
                 "send of a message, a batch and a CRLF file")
    check(code == 0, f"send exits 0 when every message got AA, got {code} ({err})")
    check(db.scalar("SELECT COUNT(*) FROM hl7_messages") == "4", "four audit rows after send")
    check(db.scalar("SELECT COUNT(*) FROM lab_results") == str(5 + 3 * 3),
          "5 + 3 x 3 results stored")

    # A resend gets the original ACK: AA again, nothing stored twice.
    code, lines, err = send(server, port, [single])
    expect_lines(lines, [("MSG001", "AA")], "resend")
    check(code == 0, f"a resend answered AA exits 0, got {code}")
    check(db.scalar("SELECT COUNT(*) FROM hl7_messages WHERE message_control_id = 'MSG001' "
                    "AND duplicate_of IS NULL") == "1", "MSG001 stored once")
    check(db.scalar("SELECT COUNT(*) FROM lab_results") == "14", "no results added by a resend")

    # What else a LIS sends on the inbound port: an ACK to one of our orders,
    # an order status update (ORM, OML), an ORU asking for no accept ACK
    # (MSH-15 NE). Each is stored and answered (an MLLP sender waits for a
    # reply to every frame), with its own MSH-10.
    hdr = b"MSH|^~\\&|IT_LIS|IT_LAB|PMS_LAB|MPS_PMS|20260301120000||"
    others = write(h, "others.hl7", (
        hdr + b"ACK^O01|IT-ACK1|P|2.5.1\rMSA|AA|LB0000000001\r" +
        hdr + b"ORM^O01|IT-ORM1|P|2.5.1\rPID|1||P-O1^^^MPS_PMS^MR\rORC|SC|PL-1|FL-1||IP\r"
        b"OBR|1|PL-1|FL-1|CBC\r" +
        hdr + b"OML^O21|IT-OML1|P|2.5.1\rPID|1||P-O2^^^MPS_PMS^MR\rORC|SC|PL-2|FL-2||CM\r"
        b"OBR|1|PL-2|FL-2|CBC\r" +
        lbtest.synthetic_oru("IT-NE1", "P-NE1").replace(b"|P|2.5.1\r", b"|P|2.5.1|||NE|NE\r", 1)))
    code, lines, err = send(server, port, [others])
    expect_lines(lines, [("IT-ACK1", "AA"), ("IT-ORM1", "AA"), ("IT-OML1", "AA"), ("IT-NE1", "CA")],
                 "ACK, ORM, OML and an ORU with MSH-15 NE")
    check(code == 0, f"send exits 0 when every message got AA/CA, got {code}")
    stored = db.query("SELECT message_control_id, message_type, ack_status FROM hl7_messages "
                      "WHERE message_control_id IN ('IT-ACK1', 'IT-ORM1', 'IT-OML1', 'IT-NE1') "
                      "ORDER BY id")
    check(stored == [("IT-ACK1", "ACK", "AA"), ("IT-ORM1", "ORM", "AA"), ("IT-OML1", "OML", "AA"),
                     ("IT-NE1", "ORU", "CA")], f"not stored as answered: {stored}")

    # An unsupported message type: AR with its error text; exit 1; the good
    # message in the same call is still sent and reported.
    adt = (b"MSH|^~\\&|IT_LIS|IT_LAB|PMS_LAB|MPS_PMS|20260301120000||ADT^A01|IT-ADT1|P|2.5.1\r"
           b"EVN|A01|20260301120000\rPID|1||P-ADT^^^MPS_PMS^MR||Testpatient^Alex\r")
    mixed = write(h, "mixed.hl7", adt + lbtest.synthetic_oru("IT-M2", "P-M2"))
    code, lines, err = send(server, port, [mixed])
    expect_lines(lines, [("IT-ADT1", "AR"), ("IT-M2", "AA")], "send of ADT + ORU")
    check(len(lines[0].split(" ", 2)) == 3, f"an AR line carries the error text: {lines[0]!r}")
    check(code == 1, f"send exits 1 when a message was not accepted, got {code}")
    # Refused, but still kept in the audit trail with the AR it got.
    check(db.query("SELECT message_type, trigger_event, ack_status FROM hl7_messages "
                   "WHERE message_control_id = 'IT-ADT1'") == [("ADT", "A01", "AR")],
          "the refused ADT^A01 is not stored with ack_status AR")

    # An order response (ORL^O22) is accepted; an ORU with a trigger event we
    # do not take (R30) is refused AR with ERR-3 201 (unsupported event code)
    # and still stored.
    orl_r30 = write(h, "orl_r30.hl7", (
        hdr + b"ORL^O22^ORL_O22|IT-ORL1|P|2.5.1\rMSA|AA|LB0000000002\r"
        b"ORC|OK|PL-3|FL-3||IP\r" +
        hdr + b"ORU^R30^ORU_R30|IT-R30|P|2.5.1\rPID|1||P-R30^^^MPS_PMS^MR\r"
        b"OBR|1|PL-4|FL-4|CBC\rOBX|1|NM|WBC||7.1|10*3/uL|4.5-11.0|N|||F\r"))
    code, lines, err = send(server, port, [orl_r30])
    expect_lines(lines, [("IT-ORL1", "AA"), ("IT-R30", "AR")], "ORL^O22 and ORU^R30")
    check(code == 1, f"send exits 1 when the R30 was refused, got {code}")
    with lbtest.MllpConnection(port) as c:
        reply = c.exchange(hdr + b"ORU^R30^ORU_R30|IT-R30B|P|2.5.1\rPID|1||P-R30^^^MPS_PMS^MR\r")
    check(reply is not None and b"\rERR|" in reply, f"the R30 NAK has no ERR segment: {reply!r}")
    err_segment = [seg for seg in lbtest.segments(reply) if seg.startswith(b"ERR|")][0]
    check(err_segment.split(b"|")[3].split(b"^")[0] == b"201",
          f"ERR-3 is not 201 (unsupported event code): {err_segment!r}")
    stored = db.query("SELECT message_control_id, message_type, ack_status FROM hl7_messages "
                      "WHERE message_control_id IN ('IT-ORL1', 'IT-R30', 'IT-R30B') ORDER BY id")
    check(stored == [("IT-ORL1", "ORL", "AA"), ("IT-R30", "ORU", "AR"), ("IT-R30B", "ORU", "AR")],
          f"ORL / ORU^R30 not stored as answered: {stored}")

    # Text before the first MSH and a message without MSH-10: reported, not sent.
    junk = write(h, "junk.hl7", b"hello, this is not HL7\r" +
                 b"MSH|^~\\&|IT_LIS|IT_LAB|PMS_LAB|MPS_PMS|20260301120000||ORU^R01||P|2.5.1\r"
                 b"PID|1||P-J^^^MPS_PMS^MR\r")
    code, lines, err = send(server, port, [junk])
    check(len(lines) == 2 and lines[0].startswith("- - not a message") and
          lines[1].startswith("- - no MSH-10"), f"stray text and no MSH-10 reported: {lines}")
    check(code == 1, f"send exits 1 for input that is not a message, got {code}")

    # Unreadable file: exit 2, the file named.
    code, lines, err = send(server, port, [h.path("missing.hl7")])
    check(code == 2 and "missing.hl7" in err, f"unreadable file: exit 2 naming it, got {code} {err!r}")

    # Nobody listening: one line per message with "-" and the reason; exit 1.
    closed_port = lbtest.free_port()
    code, lines, err = send(server, closed_port, [single, crlf])
    check(len(lines) == 2 and lines[0].startswith("MSG001 - ") and lines[1].startswith("IT-C1 - "),
          f"connection refused reported per message: {lines}")
    check(code == 1, f"send exits 1 without a server, got {code}")

    # A peer that reads but never answers: no ACK within --timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    held = []

    def accept_and_hold():
        try:
            while True:
                conn, _ = silent.accept()
                held.append(conn)
        except OSError:
            pass

    threading.Thread(target=accept_and_hold, daemon=True).start()
    started = time.monotonic()
    code, lines, err = send(server, silent.getsockname()[1], [single], extra=("--timeout", "1"))
    elapsed = time.monotonic() - started
    # Without --timeout, ACK_TIMEOUT_SECONDS (default 30) decides.
    started = time.monotonic()
    env_code, env_lines, _ = send(server, silent.getsockname()[1], [single],
                                  env={"ACK_TIMEOUT_SECONDS": "1"})
    env_elapsed = time.monotonic() - started
    check(env_code == 1 and len(env_lines) == 1 and env_lines[0].startswith("MSG001 - ")
          and env_elapsed < 20,
          f"ACK_TIMEOUT_SECONDS=1: exit {env_code} after {env_elapsed:.1f} s: {env_lines}")
    bad_code, _, bad_err = send(server, silent.getsockname()[1], [single],
                                env={"ACK_TIMEOUT_SECONDS": "soon"})
    check(bad_code == 2 and "ACK_TIMEOUT_SECONDS" in bad_err,
          f"ACK_TIMEOUT_SECONDS=soon: exit {bad_code}, {bad_err!r}")
    silent.close()
    for conn in held:
        conn.close()
    check(len(lines) == 1 and lines[0].startswith("MSG001 - "), f"ACK timeout reported: {lines}")
    check(code == 1, f"send exits 1 when no ACK came, got {code}")
    check(elapsed < 20, f"--timeout 1 gave up after {elapsed:.1f} s")


def check_audit_verify(server, db):
    rows = int(db.scalar("SELECT COUNT(*) FROM hl7_messages"))
    check(rows >= 10, f"expected the rows of the send checks, got {rows}")
    code, out = server.audit_verify()
    check(code == 0 and f"verified: {rows} rows" in out,
          f"audit verify after ingest: exit 0 and {rows} rows, got {code}: {out}")

    victim = db.scalar("SELECT id FROM hl7_messages WHERE message_control_id = 'IT-B1'")
    db.execute(f"UPDATE hl7_messages SET ack_status = 'AE' WHERE id = {victim}")
    code, out = server.audit_verify()
    check(code == 1 and "BROKEN" in out, f"audit verify after an edit: exit 1, got {code}: {out}")
    check(re.search(rf"(?<![0-9]){victim}(?![0-9])", out) is not None,
          f"audit verify does not name the edited row {victim}: {out}")
    db.execute(f"UPDATE hl7_messages SET ack_status = 'AA' WHERE id = {victim}")
    code, out = server.audit_verify()
    check(code == 0, f"audit verify once the edit is undone: exit 0, got {code}: {out}")

    db.execute(f"UPDATE hl7_messages SET message_control_id = 'IT-B9' WHERE id = {victim}")
    code, out = server.audit_verify()
    check(code == 1 and "BROKEN" in out, f"audit verify after a control id edit: exit 1, got {out}")
    db.execute(f"UPDATE hl7_messages SET message_control_id = 'IT-B1' WHERE id = {victim}")

    db.execute(f"DELETE FROM hl7_messages WHERE id = {victim}")
    code, out = server.audit_verify()
    check(code == 1 and "BROKEN" in out, f"audit verify after a deletion: exit 1, got {code}: {out}")


BAD_CONFIG = [
    ("MLLP_LISTEN_PORT", "abc"),
    ("MLLP_LISTEN_PORT", "70000"),
    ("MAX_MESSAGE_SIZE", "12"),
    ("MLLP_MAX_CONNECTIONS", "0"),
    ("MLLP_FRAME_TIMEOUT_SECONDS", "soon"),
    ("MLLP_IDLE_TIMEOUT_SECONDS", "-1"),
    ("HTTP_LISTEN_PORT", "99999"),
    ("GRPC_LISTEN_PORT", "x"),
    ("WORKER_THREADS", "0"),
    ("API_WORKER_THREADS", "0"),
    ("DATABASE_READ_CONNECTIONS", "x"),
    ("LOG_LEVEL", "loud"),
    ("AUDIT_LOG_ENABLED", "maybe"),
    ("SENDING_FACILITY", "A|B"),
    ("ACK_TIMEOUT_SECONDS", "0"),
    ("DATABASE_URL", "mysql://db.example/lab"),
    ("MLLP_TLS_CLIENT_CA", "ca.pem"),  # client certificates without TLS
]


def check_bad_config(h, server):
    for name, value in BAD_CONFIG:
        port_file = h.path("bad.ports")
        if os.path.exists(port_file):
            os.unlink(port_file)
        result = subprocess.run([server.binary, "serve", "--port-file", port_file],
                                cwd=h.workdir, env=server.environment({name: value}),
                                capture_output=True, timeout=30)
        err = (result.stdout + result.stderr).decode("utf-8", "replace")
        check(result.returncode != 0, f"{name}={value}: serve must refuse to start, exit "
              f"{result.returncode}: {err}")
        check(name in err, f"{name}={value}: the message must name {name}: {err!r}")
        check(not os.path.exists(port_file), f"{name}={value}: serve must not listen")
    # Both TLS files named when only one is set.
    result = subprocess.run([server.binary, "serve"], cwd=h.workdir, capture_output=True,
                            env=server.environment({"MLLP_TLS_CERT": h.path("server.crt")}),
                            timeout=30)
    err = result.stderr.decode("utf-8", "replace")
    check(result.returncode != 0 and "MLLP_TLS_KEY" in err,
          f"a certificate without a key names MLLP_TLS_KEY: {err!r}")


def check_masked_start_line(h):
    """PostgreSQL only: a password in DATABASE_URL never reaches the log."""
    dsn = os.environ["BRIDGE_TEST_PG_DSN"]
    db = h.database()
    secret = "Pw-s3cret-4242"
    # The test cluster trusts loopback, so any password connects.
    db.url = db.url.replace("postgresql://bridge@", f"postgresql://bridge:{secret}@", 1)
    check(secret in db.url, f"cannot put a password into {dsn}")
    server = h.server(db, name="masked")
    server.start()
    with lbtest.MllpConnection(server.mllp_port) as c:
        check(lbtest.read_msa(c.exchange(lbtest.guide_sample_oru()))[0] == "AA",
              "AA with a password in DATABASE_URL")
    server.stop()
    log = server.log_text()
    starts = [line for line in log.splitlines() if "event=start" in line]
    check(len(starts) == 1, f"one start-up line, got {len(starts)}")
    check("database=postgresql://" in starts[0], f"the start line shows the database: {starts[0]}")
    check(secret not in log, "the database password appears in the log")


def check_migrate(h):
    """`lab-bridge migrate` creates the schema of an empty database, is a no-op
    the second time, and names DATABASE_URL when it is wrong."""
    db = h.database(name="migrate")
    server = h.server(db, name="migrate")
    for attempt in (1, 2):
        result = server.run_command(["migrate"])
        out = (result.stdout + result.stderr).decode("utf-8", "replace")
        check(result.returncode == 0, f"migrate (run {attempt}): exit {result.returncode}: {out}")
    for table in ("hl7_messages", "patients", "lab_orders", "lab_results", "outbox",
                  "fhir_resources"):
        check(db.scalar(f"SELECT COUNT(*) FROM {table}") == "0", f"migrate made no {table}")
    result = server.run_command(["migrate"], overrides={"DATABASE_URL": "mysql://db.example/x"})
    err = (result.stdout + result.stderr).decode("utf-8", "replace")
    check(result.returncode != 0 and "DATABASE_URL" in err and len(err.strip().splitlines()) == 1,
          f"migrate with a bad DATABASE_URL: one line naming it, got {result.returncode}: {err!r}")


def check_first_start_token(h):
    """With no token at all, the first `serve` creates an admin token and
    prints it once; a restart prints none; the token works."""
    db = h.database(name="firsttoken")
    tokens = h.path("first_start_tokens.json")
    server = h.server(db, env={"API_TOKENS_FILE": tokens}, name="firsttoken")
    server.start()
    log = server.log_text()
    lines = log.splitlines()
    at = [i for i, line in enumerate(lines) if 'created token "admin"' in line]
    check(len(at) == 1 and at[0] + 1 < len(lines), f"first start: one admin token printed:\n{log}")
    token = lines[at[0] + 1].strip()
    check(len(token) >= 20, f"the printed token looks wrong: {token!r}")
    with open(tokens, encoding="utf-8") as f:
        check(token not in f.read(), "the tokens file holds the token itself, not its hash")
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.ports['http']}/api/lab-orders?limit=1",
        headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        check(response.status == 200, f"the printed token is refused: {response.status}")
    server.stop()
    server.start()
    server.stop()
    check(server.log_text().count('created token "admin"') == 1,
          "a restart printed another admin token")


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = h.database()
        server = h.server(db)
        server.start()
        check_send(h, server, db)
        server.stop()
        check_audit_verify(server, db)
        check_bad_config(h, server)
        check_migrate(h)
        check_first_start_token(h)
        if backend == "postgres":
            check_masked_start_line(h)


if __name__ == "__main__":
    lbtest.run_main(main)
