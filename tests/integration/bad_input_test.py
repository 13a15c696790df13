#!/usr/bin/python3
"""Hostile and broken input against one running `lab-bridge serve`.

    bad_input_test.py BACKEND LAB_BRIDGE      (BACKEND: sqlite | postgres)

What each case must get (issue 5, ARCHITECTURE.md "Inbound" step 1-2):
- junk bytes (NUL, LF, text) outside frames: skipped; the frames around them
  are answered in order; junk alone stores nothing.
- a truncated frame (the sender closes mid-frame, or starts a new frame
  before ending one): dropped, nothing stored; a frame missing only its
  final <CR> at the end of the stream is still answered and stored.
- a frame over MAX_MESSAGE_SIZE: a NAK (AE, MSA-2 = its MSH-10 read from the
  first bytes), then the connection is closed; nothing stored.
- a frame that never ends, and 200 senders trickling one byte per second:
  each connection is closed at MLLP_FRAME_TIMEOUT_SECONDS (bytes do not
  extend it), while a normal sender meanwhile gets every ACK within 2 s.
- invalid UTF-8 under MSH-18 UNICODE UTF-8, a message without MSH, binary
  garbage in a complete frame: a NAK (AE with ERR; MSA-2 the control id
  when readable), and the raw bytes stored exactly as received.
- afterwards the server still serves, and the audit chain verifies.
"""

import socket
import sys
import threading
import time
import urllib.request

import lbtest
from lbtest import check

FRAME_TIMEOUT_SECONDS = 8
SLOW_SENDERS = 200
NORMAL_MESSAGES = 20


def metric(server, name):
    """A counter of serve's /metrics (on its HTTP port)."""
    check("http" in server.ports, "serve did not report its HTTP port")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['http']}/metrics",
                                timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    lbtest.fail(f"/metrics has no {name}")


def rows(db):
    return int(db.scalar("SELECT COUNT(*) FROM hl7_messages"))


def expect_ack(payload, code, control_id, what):
    check(payload is not None, f"{what}: the connection closed without a reply")
    summary = lbtest.read_msa(payload)
    check(summary is not None and summary[:2] == (code, control_id),
          f"{what}: expected MSA|{code}|{control_id}, got {payload!r}")
    return summary


def check_junk(server, db):
    port = server.mllp_port
    before = rows(db)
    with lbtest.MllpConnection(port) as c:
        c.send_raw(b"\x00\x00\n\nGET / HTTP/1.0\r\n\r\n\xff\xfe junk \x1c\r")
        expect_ack(c.exchange(lbtest.synthetic_oru("IT-G1", "P-G1")), "AA", "IT-G1",
                   "a frame after junk")
        # Two frames and junk between them in one write: both answered, in order.
        c.send_raw(lbtest.frame(lbtest.synthetic_oru("IT-G2", "P-G2")) + b"\n\x00 noise \n" +
                   lbtest.frame(lbtest.synthetic_oru("IT-G3", "P-G3")))
        expect_ack(c.read_frame(), "AA", "IT-G2", "first of two frames")
        expect_ack(c.read_frame(), "AA", "IT-G3", "second of two frames")
    with lbtest.MllpConnection(port) as c:
        c.send_raw(b"just some bytes with no frame at all\r\n" * 100)
        c.sock.shutdown(socket.SHUT_WR)
        check(c.read_frame(timeout=10) is None, "junk alone got a reply")
    check(rows(db) == before + 3, "junk was stored, or a frame around it was not")


def check_truncated(server, db):
    port = server.mllp_port
    message = lbtest.synthetic_oru("IT-T1", "P-T1")
    before = rows(db)
    with lbtest.MllpConnection(port) as c:
        c.send_raw(b"\x0b" + message[: len(message) // 2])
        c.sock.shutdown(socket.SHUT_WR)
        check(c.read_frame(timeout=10) is None, "a truncated frame got a reply")
    with lbtest.MllpConnection(port) as c:
        # A new start block before the end: the partial frame is dropped.
        c.send_raw(b"\x0b" + lbtest.synthetic_oru("IT-T2", "P-T2")[:60])
        expect_ack(c.exchange(lbtest.synthetic_oru("IT-T3", "P-T3")), "AA", "IT-T3",
                   "a frame after an unfinished one")
    with lbtest.MllpConnection(port) as c:
        # <FS> without the final <CR>, then end of stream: tolerated.
        c.send_raw(b"\x0b" + lbtest.synthetic_oru("IT-T4", "P-T4") + b"\x1c")
        c.sock.shutdown(socket.SHUT_WR)
        expect_ack(c.read_frame(), "AA", "IT-T4", "a last frame without its final CR")
    stored = [r[0] for r in db.query(
        "SELECT message_control_id FROM hl7_messages WHERE message_control_id LIKE 'IT-T%' "
        "ORDER BY id")]
    check(stored == ["IT-T3", "IT-T4"], f"truncated frames stored, or whole ones lost: {stored}")
    check(rows(db) == before + 2, "unexpected rows from truncated frames")


def check_oversize(server, db):
    port = server.mllp_port
    oversize_before = metric(server, "labbridge_mllp_oversize_frames_total")
    head = lbtest.synthetic_oru("IT-BIG", "P-BIG", results=1)
    filler = b"".join(b"OBX|%d|TX|NOTE^Note||%s||||||F\r" % (i, b"x" * 200)
                      for i in range(2, 6000))
    payload = head + filler
    check(len(payload) > 1024 * 1024, "the oversize frame is not over 1 MiB")
    c = lbtest.MllpConnection(port)
    writer_error = []

    def write_all():
        try:
            c.send(payload)
        except OSError as e:  # the server may close before it read everything
            writer_error.append(e)

    writer = threading.Thread(target=write_all)
    writer.start()
    nak = c.read_frame(timeout=20)
    summary = expect_ack(nak, "AE", "IT-BIG", "a frame over MAX_MESSAGE_SIZE")
    check("MAX_MESSAGE_SIZE" in summary[2], f"the NAK does not say why: {summary[2]!r}")
    check(c.wait_closed(20), "the connection stayed open after the oversize NAK")
    writer.join(30)
    c.close()
    check(db.query("SELECT id FROM hl7_messages WHERE message_control_id = 'IT-BIG'") == [],
          "an oversize frame was stored")
    check(metric(server, "labbridge_mllp_oversize_frames_total") == oversize_before + 1,
          "the oversize frame was not counted in /metrics")


def check_never_ending_and_slowloris(server, db):
    port = server.mllp_port
    timeouts_before = metric(server, "labbridge_mllp_timeouts_total")
    before = rows(db)
    never = lbtest.MllpConnection(port)
    never.send_raw(b"\x0b" + lbtest.synthetic_oru("IT-NEVER", "P-NEVER")[:80])
    never_started = time.monotonic()

    # 200 senders from 200 loopback addresses (the per-peer limit is 32), each
    # sending a real message one byte per second.
    message = lbtest.frame(lbtest.synthetic_oru("IT-SLOW", "P-SLOW"))
    slow = []
    for i in range(SLOW_SENDERS):
        s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                     source_address=(f"127.0.{1 + i // 250}.{1 + i % 250}", 0))
        s.setblocking(False)
        slow.append({"sock": s, "sent": 0, "closed_at": None})
    started = time.monotonic()
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            now = time.monotonic()
            for entry in slow:
                if entry["closed_at"] is not None:
                    continue
                s = entry["sock"]
                try:
                    data = s.recv(4096)
                    if data == b"":
                        entry["closed_at"] = now
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    entry["closed_at"] = now
                    continue
                try:
                    s.send(message[entry["sent"]:entry["sent"] + 1])
                    entry["sent"] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    entry["closed_at"] = now
            stop.wait(1.0)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    time.sleep(1.0)
    open_now = sum(1 for e in slow if e["closed_at"] is None)
    check(open_now == SLOW_SENDERS, f"only {open_now} of {SLOW_SENDERS} slow senders connected")

    # Meanwhile a normal sender: every ACK within 2 s, while all slow senders
    # still hold their connections.
    latencies = []
    with lbtest.MllpConnection(port) as c:
        for i in range(NORMAL_MESSAGES):
            t = time.monotonic()
            ack = c.exchange(lbtest.synthetic_oru(f"IT-N{i}", f"P-N{i}"), timeout=2.0)
            latencies.append(time.monotonic() - t)
            expect_ack(ack, "AA", f"IT-N{i}", f"normal sender message {i} among slow senders")
    still_open = sum(1 for e in slow if e["closed_at"] is None)
    check(time.monotonic() - started < FRAME_TIMEOUT_SECONDS and still_open == SLOW_SENDERS,
          "the normal sender finished only after the slow senders were cut; test inconclusive "
          f"({still_open} still open)")
    print(f"normal sender among {SLOW_SENDERS} slow senders: {NORMAL_MESSAGES} ACKs, slowest "
          f"{max(latencies) * 1000:.0f} ms")

    # Every slow sender is cut at the frame deadline (bytes do not extend it).
    deadline = started + FRAME_TIMEOUT_SECONDS + 10
    while time.monotonic() < deadline and any(e["closed_at"] is None for e in slow):
        time.sleep(0.2)
    stop.set()
    trickler.join(5)
    open_left = [e for e in slow if e["closed_at"] is None]
    check(not open_left, f"{len(open_left)} slow senders were never cut off")
    earliest = min(e["closed_at"] for e in slow) - started
    check(earliest >= FRAME_TIMEOUT_SECONDS - 2,
          f"slow senders were cut after {earliest:.1f} s, before the frame deadline")
    check(max(e["sent"] for e in slow) < len(message), "a slow sender finished its frame")
    for e in slow:
        e["sock"].close()
    check(never.wait_closed(max(1.0, never_started + FRAME_TIMEOUT_SECONDS + 10 -
                                time.monotonic())),
          "a frame that never ends was not cut off")
    never.close()
    check(rows(db) == before + NORMAL_MESSAGES, "partial frames were stored, or normal messages lost")
    timeouts = metric(server, "labbridge_mllp_timeouts_total") - timeouts_before
    check(timeouts >= SLOW_SENDERS + 1, f"only {timeouts} deadline closes counted in /metrics")


def check_complete_bad_frames(server, db):
    port = server.mllp_port
    cases = [
        ("invalid UTF-8 under MSH-18 UNICODE UTF-8",
         b"MSH|^~\\&|IT_LIS|IT_LAB|PMS_LAB|MPS_PMS|20260301120000||ORU^R01|IT-U1|P|2.5.1"
         b"|||||USA|UNICODE UTF-8\rPID|1||P-U1^^^MPS_PMS^MR||Bad\xff\xfeName^Alex||19700101|U\r"
         b"OBR|1|PL-U1|FL-U1|CBC|||20260301110000\rOBX|1|NM|K^Potassium||4.1|mmol/L|3.5-5.0|N"
         b"|||F\r", "IT-U1"),
        ("a message without MSH",
         b"PID|1||P-X1^^^MPS_PMS^MR||Nomsh^Alex\rOBX|1|NM|K^Potassium||4.1|mmol/L|||||F\r", ""),
        ("binary garbage in a complete frame", bytes(b for b in range(256) if b not in (0x0b, 0x1c)) * 4, ""),
        ("an MSH that breaks off after MSH-9", b"MSH|^~\\&|IT_LIS|IT_LAB|||2026||ORU^R01", ""),
    ]
    for what, payload, cid in cases:
        with lbtest.MllpConnection(port) as c:
            summary = expect_ack(c.exchange(payload), "AE", cid, what)
            check(summary[2] != "", f"{what}: the NAK carries no error text")
        hex_sql = db.hex_of("raw_message")
        stored = db.query(f"SELECT {hex_sql}, ack_status, error_detail FROM hl7_messages "
                          f"ORDER BY id DESC LIMIT 1")
        check(stored and stored[0][0] == payload.hex(),
              f"{what}: the raw bytes were not stored exactly")
        check(stored[0][1] == "AE" and stored[0][2] != "",
              f"{what}: the audit row lacks the NAK or the error: {stored[0][1:]}")
        # ... and the connection still works for the next message.
        with lbtest.MllpConnection(port) as c:
            c.send(payload)
            check(c.read_frame() is not None, f"{what}: no NAK on resend")
            expect_ack(c.exchange(lbtest.synthetic_oru(f"IT-AFTER-{len(cid)}-{len(payload)}",
                                                       "P-AFTER")), "AA",
                       f"IT-AFTER-{len(cid)}-{len(payload)}", f"a good message after {what}")


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = h.database()
        server = h.server(db, env={"MLLP_FRAME_TIMEOUT_SECONDS": str(FRAME_TIMEOUT_SECONDS)})
        server.start()
        check_junk(server, db)
        check_truncated(server, db)
        check_oversize(server, db)
        check_complete_bad_frames(server, db)
        check_never_ending_and_slowloris(server, db)
        check(server.alive(), "lab-bridge serve died")
        with lbtest.MllpConnection(server.mllp_port) as c:
            expect_ack(c.exchange(lbtest.guide_sample_oru()), "AA", "MSG001",
                       "the guide's ORU after all the bad input")
        check(server.stop() == 0, "serve did not stop cleanly")
        code, out = server.audit_verify()
        check(code == 0, f"audit verify after bad input: {out}")


if __name__ == "__main__":
    lbtest.run_main(main)
