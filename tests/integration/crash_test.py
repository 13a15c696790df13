#!/usr/bin/python3
"""Nothing lost, nothing doubled: lab-bridge killed and its database crashed
under load.

    crash_test.py BACKEND LAB_BRIDGE MLLP_LOAD     (BACKEND: sqlite | postgres)

The load generator (tests/bench/mllp_load --until-aa) sends thousands of
ORU^R01 (five results, a patient each) on 20 connections, resending each
message, byte for byte, until it gets AA/CA, and lists the control ids that
got it. The crashes are timed by progress (rows stored so far), not by the
clock, so they land mid-load however fast or loaded the machine is.

- Both backends: `lab-bridge serve` is killed with SIGKILL several times
  mid-load and restarted on the same port and database.
- PostgreSQL: the database server itself (this test's own throwaway cluster,
  never the shared one) is stopped with `pg_ctl stop -m immediate` twice
  mid-load and started again, lab-bridge staying up. Meanwhile every answer
  must be AR (asking for a resend): no connection may be closed without an
  answer and no ACK may time out; after the restart the resends are stored.

Afterwards: every message got AA/CA exactly as the generator reports; every
control id that got AA is stored exactly once as a first receipt, with one
lab_results row per OBX; no other message of the run is stored; the audit
chain verifies (and SQLite's integrity check passes).
"""

import json
import random
import subprocess
import sys
import time

import lbtest
from lbtest import check

CONNECTIONS = 20
# Five results; {i} (the message index) makes a patient per message.
TEMPLATE = (
    "MSH|^~\\&|CRASH_LIS|CRASH_LAB|PMS_LAB|MPS_PMS|20260301120000||ORU^R01|X|P|2.5.1\r"
    "PID|1||CR{i}^^^MPS_PMS^MR||Crashtest^Pat{i}||19800101|U\r"
    "OBR|1|PL{i}|FL{i}|CBC^Complete Blood Count|||20260301110000|||||||||||||||F\r"
    "OBX|1|NM|WBC^White Blood Cell Count||7.5|10*3/uL|4.5-11.0|N|||F\r"
    "OBX|2|NM|RBC^Red Blood Cell Count||4.8|10*6/uL|4.0-5.5|N|||F\r"
    "OBX|3|NM|HGB^Hemoglobin||14.2|g/dL|12.0-16.0|N|||F\r"
    "OBX|4|NM|PLT^Platelet Count||250|10*3/uL|150-400|N|||F\r"
    "OBX|5|NM|K^Potassium||6.8|mEq/L|3.5-5.0|HH|||F\r")


def start_load(h, load_binary, port, prefix, messages, first_index):
    template = h.path("template.hl7")
    with open(template, "w") as f:
        f.write(TEMPLATE)
    acked = h.path(f"{prefix}acked.txt")
    summary = h.path(f"{prefix}summary.json")
    out = open(h.path(f"{prefix}load.log"), "wb")
    process = subprocess.Popen(
        [load_binary, "--port", str(port), "--connections", str(CONNECTIONS), "--messages",
         str(messages), "--first-index", str(first_index), "--prefix", prefix, "--until-aa",
         "--message-file", template, "--retry-delay-ms", "50", "--timeout", "20",
         "--max-seconds", "150", "--acked-file",
         acked, "--json", summary], stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return {"process": process, "acked": acked, "summary": summary, "prefix": prefix,
            "messages": messages, "log": h.path(f"{prefix}load.log")}


def finish_load(load):
    try:
        load["process"].wait(200)
    except subprocess.TimeoutExpired:
        load["process"].kill()
        lbtest.fail(f"the load generator ({load['prefix']}) did not finish")
    with open(load["log"]) as f:
        print(f.read().strip())
    check(load["process"].returncode == 0,
          f"the load generator ({load['prefix']}) did not get AA for every message")
    with open(load["summary"]) as f:
        summary = json.load(f)
    acked = {}
    with open(load["acked"]) as f:
        for line in f:
            cid, obx = line.split()
            acked[cid] = int(obx)
    check(len(acked) == load["messages"],
          f"{len(acked)} of {load['messages']} messages got AA ({load['prefix']})")
    return summary, acked


def restart(server, port):
    for attempt in range(20):
        server.start({"MLLP_LISTEN_PORT": str(port)}, wait=False)
        try:
            server.wait_ready(30)
            return
        except lbtest.TestFailure:
            if "cannot listen" not in server.log_tail(5) or attempt == 19:
                raise
            time.sleep(0.25)


def wait_progress(db, load, fraction):
    """Waits until `fraction` of the run's messages are stored (or the load
    ended); True when the load is still running."""
    target = int(load["messages"] * fraction)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and load["process"].poll() is None:
        try:
            stored = int(db.scalar(
                "SELECT COUNT(*) FROM hl7_messages WHERE duplicate_of IS NULL AND "
                f"message_control_id LIKE '{load['prefix']}%'"))
        except lbtest.TestFailure:  # the database is restarting
            stored = 0
        if stored >= target:
            break
        time.sleep(0.05)
    return load["process"].poll() is None


def kill_during_load(db, server, port, load, kills):
    """SIGKILLs the server `kills` times, spread over the load; returns how
    many kills happened while the generator was still sending."""
    effective = 0
    for k in range(kills):
        if wait_progress(db, load, (k + 1) / (kills + 1) * random.uniform(0.8, 1.0)):
            effective += 1
        server.kill()
        time.sleep(random.uniform(0.05, 0.3))
        restart(server, port)
    return effective


def check_stored(db, acked_sets):
    """acked_sets: [(prefix, {control id: OBX count})]."""
    first = db.query("SELECT message_control_id, COUNT(*) FROM hl7_messages "
                     "WHERE duplicate_of IS NULL GROUP BY message_control_id")
    counts = {cid: int(n) for cid, n in first}
    results = {cid: int(n) for cid, n in db.query(
        "SELECT m.message_control_id, COUNT(r.id) FROM hl7_messages m "
        "LEFT JOIN lab_results r ON r.hl7_message_id = m.id "
        "WHERE m.duplicate_of IS NULL GROUP BY m.message_control_id")}
    expected = {}
    for _, acked in acked_sets:
        expected.update(acked)
    missing = [cid for cid in expected if counts.get(cid, 0) == 0]
    doubled = [cid for cid in expected if counts.get(cid, 0) > 1]
    extra = [cid for cid in counts if cid not in expected]
    wrong_results = [cid for cid, obx in expected.items()
                     if counts.get(cid) == 1 and results.get(cid) != obx]
    check(not missing, f"{len(missing)} acknowledged messages are not stored: {missing[:10]}")
    check(not doubled, f"{len(doubled)} messages stored more than once: {doubled[:10]}")
    check(not extra, f"{len(extra)} stored messages were never sent: {extra[:10]}")
    check(not wrong_results, f"{len(wrong_results)} messages have the wrong number of results: "
          f"{[(c, results.get(c), expected[c]) for c in wrong_results[:5]]}")
    resends = int(db.scalar("SELECT COUNT(*) FROM hl7_messages WHERE duplicate_of IS NOT NULL"))
    total = int(db.scalar("SELECT COUNT(*) FROM lab_results"))
    check(total == sum(expected.values()), f"{total} lab_results rows, expected "
          f"{sum(expected.values())}")
    print(f"stored: {len(expected)} messages once each, {total} results, {resends} resend "
          f"receipts")


def sqlite_run(h, load_binary):
    db = h.database()
    port = lbtest.stable_port()
    server = h.server(db)
    restart(server, port)
    load = start_load(h, load_binary, port, "CRASH-", 4000, 0)
    kills = kill_during_load(db, server, port, load, 4)
    summary, acked = finish_load(load)
    check(kills >= 3, f"only {kills} kills happened during the load; test inconclusive")
    check(summary["mismatched"] == 0, "an ACK named the wrong message")
    check(server.stop() == 0, "serve did not stop cleanly")
    check_stored(db, [("CRASH-", acked)])
    check(db.scalar("PRAGMA integrity_check") == "ok", "SQLite integrity check failed")
    code, out = server.audit_verify()
    check(code == 0, f"audit verify after the crashes: {out}")
    print(f"SQLite: {kills} SIGKILLs during the load; {out.strip()}")


def postgres_run(h, load_binary):
    lbtest.postgres_dsn_or_skip()
    cluster = lbtest.OwnPostgres()
    try:
        db = h.database(dsn=cluster.dsn)
        port = lbtest.stable_port()
        server = h.server(db)
        restart(server, port)

        # Database crashes: lab-bridge stays up and must answer AR meanwhile.
        load = start_load(h, load_binary, port, "PGDOWN-", 2000, 0)
        outages = 0
        for k in range(2):
            if wait_progress(db, load, (k + 1) / 3):
                outages += 1
            cluster.stop_immediate()
            time.sleep(2.0)
            cluster.start()
        summary, acked_down = finish_load(load)
        check(outages == 2, f"only {outages} database crashes during the load; inconclusive")
        check(server.alive(), "lab-bridge died while its database was down")
        check(summary["refused"] > 0, "no AR while the database was down: outage not observed")
        check(summary["closed_before_ack"] == 0,
              f"{summary['closed_before_ack']} connections closed without an answer while the "
              f"database was down")
        check(summary["timeouts"] == 0, f"{summary['timeouts']} ACKs timed out meanwhile")
        check(summary["mismatched"] == 0, "an ACK named the wrong message")
        print(f"PostgreSQL down twice: {summary['refused']} AR answers, no silent close")

        # lab-bridge crashes on PostgreSQL.
        load = start_load(h, load_binary, port, "PGKILL-", 2000, 0)
        kills = kill_during_load(db, server, port, load, 3)
        summary, acked_kill = finish_load(load)
        check(kills >= 2, f"only {kills} kills happened during the load; test inconclusive")
        check(summary["mismatched"] == 0, "an ACK named the wrong message")
        check(server.stop() == 0, "serve did not stop cleanly")
        check_stored(db, [("PGDOWN-", acked_down), ("PGKILL-", acked_kill)])
        code, out = server.audit_verify()
        check(code == 0, f"audit verify after the crashes: {out}")
        print(f"PostgreSQL: 2 database crashes, {kills} SIGKILLs; {out.strip()}")
    finally:
        for d in h.databases:
            d.drop()
        h.databases.clear()
        cluster.destroy()


def main():
    backend, binary, load_binary = sys.argv[1], sys.argv[2], sys.argv[3]
    with lbtest.Harness(backend, binary) as h:
        if backend == "sqlite":
            sqlite_run(h, load_binary)
        else:
            postgres_run(h, load_binary)


if __name__ == "__main__":
    lbtest.run_main(main)
