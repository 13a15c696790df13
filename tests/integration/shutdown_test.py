#!/usr/bin/python3
"""Graceful shutdown of `lab-bridge serve`: SIGTERM (and SIGINT) while a
message is being stored. The message in hand is stored and acknowledged AA
before the connection closes; an idle connection is closed; the process
exits 0; nothing is accepted afterwards; the audit chain verifies.

    shutdown_test.py BACKEND LAB_BRIDGE      (BACKEND: sqlite | postgres)

The message in hand is an ORU with 3,000 results, so storing it takes far
longer than the moment between its last byte and the signal.
"""

import signal
import socket
import sys
import time

import lbtest
from lbtest import check

RESULTS = 3000


def big_oru(control_id):
    lines = [
        f"MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|20260301120000||ORU^R01|{control_id}"
        "|P|2.5.1",
        "PID|1||55501^^^MPS_PMS^MR||Shutdown^Test||19700101|U",
        f"OBR|1|ORD-{control_id}|FIL-{control_id}|CMP^Comprehensive Metabolic Panel|||"
        "20260301110000|||||||||Dr. Smith||||||||F",
    ]
    for i in range(1, RESULTS + 1):
        lines.append(f"OBX|{i}|NM|T{i}^Test {i}||{i % 97}.5|mg/dL|1-100|N|||F")
    return ("\r".join(lines) + "\r").encode()


def run(h, db, sig):
    server = h.server(db, name=f"serve_{sig.name}").start()
    control_id = f"SHUT-{sig.name}"
    with lbtest.MllpConnection(server.mllp_port, timeout=30) as busy, \
            lbtest.MllpConnection(server.mllp_port, timeout=30) as idle:
        # The idle connection is known to the server before the signal.
        reply = idle.exchange(lbtest.guide_sample_oru())
        check(reply is not None and lbtest.read_msa(reply)[0] == "AA", f"warm-up: {reply!r}")
        busy.send(big_oru(control_id))
        time.sleep(0.05)  # the frame is read; storing 3,000 results is under way
        server.process.send_signal(sig)
        ack = busy.read_frame(timeout=30)
        check(ack is not None, f"{sig.name}: the message in hand got no ACK (connection closed)")
        code, acked, detail = lbtest.read_msa(ack)
        check(code == "AA" and acked == control_id, f"{sig.name}: ACK {code} {acked} {detail}")
        check(busy.wait_closed(10), f"{sig.name}: the busy connection stayed open")
        check(idle.wait_closed(10), f"{sig.name}: the idle connection stayed open")
    try:
        server.process.wait(30)
    except Exception:  # noqa: BLE001 - reported as a failure below
        pass
    check(server.process.poll() == 0,
          f"{sig.name}: serve exited with {server.process.poll()}:\n{server.log_tail()}")
    stored = db.scalar(
        "SELECT COUNT(*) FROM lab_results r JOIN hl7_messages m ON m.id = r.hl7_message_id "
        f"WHERE m.message_control_id = '{control_id}'")
    check(int(stored) == RESULTS, f"{sig.name}: {stored} of {RESULTS} results stored")
    check(db.scalar(f"SELECT ack_status FROM hl7_messages WHERE message_control_id = "
                    f"'{control_id}'") == "AA", f"{sig.name}: audit row not AA")
    # Nothing listens any more.
    try:
        socket.create_connection(("127.0.0.1", server.mllp_port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check(refused, f"{sig.name}: the MLLP port still accepts connections after the stop")
    rc, out = server.audit_verify()
    check(rc == 0, f"{sig.name}: audit verify: {out}")
    print(f"{sig.name}: the message in hand was stored ({RESULTS} results) and acknowledged AA")


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = h.database()
        run(h, db, signal.SIGTERM)
        run(h, db, signal.SIGINT)


if __name__ == "__main__":
    lbtest.run_main(main)
