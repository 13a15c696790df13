#!/usr/bin/python3
"""No patient data in the logs of `lab-bridge serve`, even at LOG_LEVEL=debug,
nor in the NAKs it answers.

    phi_log_test.py BACKEND LAB_BRIDGE      (BACKEND: sqlite | postgres)

Sends every message of ../shared/corpus (all types, batches split) and our
fixtures, plus messages built to make errors quote patient data (a name in
the birth-date field, a name in MSH-7, invalid UTF-8 in a name, a result for
a second patient, a frame over MAX_MESSAGE_SIZE), then reads the whole log
(stdout and stderr) and asserts that no PID-5 name part, PID-3 identifier
or PID-7 birth date of any input appears in it. Control ids (MSH-10) are
allowed in logs by design, so log fields naming a control id are blanked
before the search (a PID-3 equal to some message's control id is still
searched everywhere else); values short enough to occur by chance (names under 3
characters, identifiers under 4) are not searched, and the test says how
many values it checked.
"""

import os
import re
import sys

import lbtest
from lbtest import check


def delimiters(message):
    seg = lbtest.segments(message)[0]
    field = seg[3:4]
    enc = seg[4:8] + b"\\&~^"[len(seg[4:8]):]
    return field, enc[0:1], enc[1:2], enc[3:4]


def phi_values(message):
    """{(kind, value)} of PID-3 ids, PID-5 name parts and PID-7 birth dates."""
    if not message.startswith(b"MSH") or len(message) < 8:
        return set()
    field, comp, rep, sub = delimiters(message)
    out = set()
    for seg in lbtest.segments(message):
        if not seg.startswith(b"PID" + field):
            continue
        fields = seg.split(field)

        def get(n):
            return fields[n] if n < len(fields) else b""

        for r in get(3).split(rep):
            out.add(("PID-3", r.split(comp)[0].split(sub)[0]))
        for r in get(5).split(rep):
            parts = r.split(comp)
            for part in parts[:3]:
                for piece in part.split(sub)[:1]:
                    out.add(("PID-5", piece))
        for r in get(7).split(rep):
            value = r.split(comp)[0]
            out.add(("PID-7", value))
            if len(value) >= 8 and value[:8].isdigit():
                out.add(("PID-7", value[:8]))
    cleaned = set()
    for kind, v in out:
        text = v.decode("utf-8", "replace").strip()
        if not text or "\\" in text or text in ('""',):
            continue
        minimum = 3 if kind == "PID-5" else 4
        if len(text) >= minimum:
            cleaned.add((kind, text))
    return cleaned


def adversarial_messages():
    """Messages whose errors would quote patient data if an error text did."""
    base = (b"MSH|^~\\&|IT_LIS|IT_LAB|PMS_LAB|MPS_PMS|%s||ORU^R01|%s|P|2.5.1%s\r"
            b"PID|1||%s^^^MPS_PMS^MR||%s||%s|F\r"
            b"OBR|1|PL-1|FL-1|CBC^Complete Blood Count|||20260301110000\r"
            b"OBX|1|NM|K^Potassium||%s|mmol/L|3.5-5.0|N|||F\r")
    return [
        base % (b"20260301120000", b"IT-PHI-1", b"", b"MRN-Quokka-771", b"Zanzibarova^Ottoline",
                b"Zanzibarova-1985", b"4.1"),
        base % (b"Yellowhammer-2026", b"IT-PHI-2", b"", b"MRN-Wombat-772", b"Yellowhammer^Cuthbert",
                b"19850230", b"4.1"),
        base % (b"20260301120000", b"IT-PHI-3", b"|||||USA|UNICODE UTF-8", b"MRN-Numbat-773",
                b"Xanthopoulou\xff^Perpetua", b"19700101", b"4.1"),
        base % (b"20260301120000", b"IT-PHI-4", b"", b"MRN-Bilby-774", b"Vandersloot^Euphemia",
                b"19700101", b"Vandersloot") +
        b"PID|2||MRN-Dugong-775^^^MPS_PMS^MR||Umbridgeson^Tertius||19650505|M\r"
        b"OBR|2|PL-2|FL-2|CBC|||20260301110000\rOBX|1|NM|K^Potassium||4.2|mmol/L|||||F\r",
        base % (b"20260301120000", b"IT-PHI-5", b"", b"MRN-Quoll-776", b"Trelawneyx^Hepzibah",
                b"19700101", b"4.1") + b"NTE|1||" + b"y" * (1100 * 1024) + b"\r",
    ]


def all_inputs():
    inputs = []
    corpus = lbtest.corpus_dir()
    if corpus is None:
        print("note: ../shared/corpus absent; fixtures and built messages only")
    else:
        for root, _, files in sorted(os.walk(corpus)):
            for name in sorted(files):
                if name.endswith(".hl7") or name.endswith(".hl7.orig"):
                    with open(os.path.join(root, name), "rb") as f:
                        data = f.read()
                    messages = lbtest.split_messages(data.lstrip(b"\xef\xbb\xbf"))
                    inputs.extend(messages if messages else [data])
    for name in sorted(os.listdir(lbtest.fixtures_dir())):
        if name.endswith(".hl7"):
            with open(os.path.join(lbtest.fixtures_dir(), name), "rb") as f:
                inputs.extend(lbtest.split_messages(f.read()))
    inputs.extend(adversarial_messages())
    return inputs


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = h.database()
        server = h.server(db, env={"LOG_LEVEL": "debug"})
        server.start()
        inputs = all_inputs()
        replies = 0
        answered = []  # (message, reply)
        conn = None
        for m in inputs:
            if conn is None:
                conn = lbtest.MllpConnection(server.mllp_port)
            try:
                reply = conn.exchange(m, timeout=20)
            except OSError:
                reply = None
            if reply is None:
                conn.close()
                conn = None
            else:
                replies += 1
                answered.append((m, reply))
        if conn is not None:
            conn.close()
        check(server.stop() == 0, "serve did not stop cleanly")
        log = server.log_text()
        check("log_level=debug" in log, "LOG_LEVEL=debug was not in effect")
        check("event=ingest" in log, "the log has no ingest lines; nothing to check")

        # Control ids may be logged: blank every logged control id field.
        blanked = re.sub(r"control_id=\S*", "control_id=_", log)
        values = set()
        for m in inputs:
            values |= phi_values(m)
        leaks = []
        for kind, value in sorted(values):
            pattern = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(value) + r"(?![A-Za-z0-9_])")
            for line in blanked.splitlines():
                if pattern.search(line):
                    leaks.append(f"{kind} {value!r} in: {line[:300]}")
                    break
        print(f"{len(inputs)} messages sent, {replies} answered, {len(log.splitlines())} log "
              f"lines, {len(values)} patient values searched")
        check(len(values) >= 20, f"only {len(values)} patient values to search; test too weak")
        check(not leaks, "patient data in the log:\n" + "\n".join(leaks[:20]))

        # Nor in the NAKs: the MSA and ERR text answering a refused message
        # never quotes the patient data of that message (its own control id,
        # echoed in MSA-2, is blanked first).
        naks = 0
        nak_leaks = []
        for m, reply in answered:
            summary = lbtest.read_msa(reply)
            if summary is None or summary[0] in ("AA", "CA"):
                continue
            naks += 1
            text = "\r".join(seg.decode("utf-8", "replace") for seg in lbtest.segments(reply)
                             if not seg.startswith(b"MSH"))
            if summary[1]:
                text = text.replace(summary[1], "_")
            for kind, value in sorted(phi_values(m)):
                if re.search(r"(?<![A-Za-z0-9_])" + re.escape(value) + r"(?![A-Za-z0-9_])", text):
                    nak_leaks.append(f"{kind} {value!r} in the answer to "
                                     f"{lbtest.control_id(m)}: {text[:300]!r}")
        print(f"{naks} NAKs searched for the patient data of the message they answer")
        check(naks >= 3, f"only {naks} NAKs to search; test too weak")
        check(not nak_leaks, "patient data in a NAK:\n" + "\n".join(nak_leaks[:20]))


if __name__ == "__main__":
    lbtest.run_main(main)
