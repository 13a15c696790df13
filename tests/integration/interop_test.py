#!/usr/bin/python3
"""Third-party MLLP clients against `lab-bridge serve`.

    interop_test.py BACKEND LAB_BRIDGE      (BACKEND: sqlite | postgres)

The messages: every ORU^R01 in ../shared/corpus (batches split into their
messages; the corpus is read in place and the test notes when it is absent)
and every fixture in tests/fixtures/hl7.

- python-hl7's `mllp_send` (Debian python3-hl7), plain TCP: every valid
  message gets AA (CA when it asks for enhanced mode) with its own MSH-10 in
  MSA-2; a message whose header lacks a required field (MSH-11) gets AE with
  its MSH-10. The store then holds each message exactly once. The same file
  sent again gets the very same ACKs, byte for byte, and changes nothing.
- node-hl7-client (npm, tests/node_modules), plain TCP and over TLS: the
  same, each on a fresh store.
- Mutual TLS with `openssl s_client` and node-hl7-client: a client
  certificate from the configured CA gets AA; a TLS 1.1 client, a client
  without a certificate and a client with a certificate from another CA are
  refused in the handshake, get no ACK, and nothing of theirs is stored.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import lbtest
from lbtest import check


def collect_messages():
    """[(name, bytes)] of the corpus ORU^R01 messages and our fixtures."""
    found = []
    corpus = lbtest.corpus_dir()
    if corpus is None:
        print("note: ../shared/corpus absent; fixtures only")
    else:
        for root, _, files in sorted(os.walk(corpus)):
            for name in sorted(files):
                if not name.endswith(".hl7"):
                    continue
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                for i, m in enumerate(lbtest.split_messages(data)):
                    if lbtest.message_type(m) == "ORU^R01":
                        found.append((f"{os.path.relpath(os.path.join(root, name), corpus)}#{i}", m))
    fixtures = lbtest.fixtures_dir()
    for name in sorted(os.listdir(fixtures)):
        if name.endswith(".hl7"):
            with open(os.path.join(fixtures, name), "rb") as f:
                for i, m in enumerate(lbtest.split_messages(f.read())):
                    found.append((f"fixtures/{name}#{i}", m))
    check(len(found) >= 2, "no messages found")
    return found


def expected_code(message):
    """AA for a valid message, AE when MSH-11 (a required field) is empty;
    CA/CE when MSH-15 or MSH-16 ask for enhanced mode."""
    enhanced = any((lbtest.header_field(message, n) or b"").strip() for n in (15, 16))
    valid = bool((lbtest.header_field(message, 11) or b"").strip())
    return ("C" if enhanced else "A") + ("A" if valid else "E")


def check_acks(messages, acks, client):
    """acks: list of (code, acked control id) in message order."""
    check(len(acks) == len(messages),
          f"{client}: {len(acks)} ACKs for {len(messages)} messages")
    for (name, m), (code, acked) in zip(messages, acks):
        want = lbtest.control_id(m)
        check(acked == want, f"{client}: {name}: MSA-2 {acked!r}, expected its MSH-10 {want!r}")
        check(code == expected_code(m),
              f"{client}: {name}: ACK {code}, expected {expected_code(m)}")


def check_store(db, messages, client):
    """Each message exactly once: one first-receipt audit row per message
    (control ids reused with other content are separate messages)."""
    expected = {}
    for _, m in messages:
        key = lbtest.control_id(m)
        expected.setdefault(key, set()).add(m.rstrip(b"\r"))
    rows = db.query("SELECT message_control_id, COUNT(*) FROM hl7_messages "
                    "WHERE duplicate_of IS NULL GROUP BY message_control_id")
    stored = {cid: int(n) for cid, n in rows}
    for cid, contents in expected.items():
        check(stored.get(cid) == len(contents),
              f"{client}: control id {cid!r} stored {stored.get(cid, 0)} times, "
              f"expected {len(contents)}")
    check(set(stored) == set(expected),
          f"{client}: unexpected rows for {sorted(set(stored) - set(expected))}")
    accepted = sum(1 for _, m in messages if expected_code(m)[1] == "A")
    check(db.scalar("SELECT COUNT(*) FROM hl7_messages WHERE duplicate_of IS NULL AND "
                    "ack_status IN ('AA', 'CA')") == str(accepted),
          f"{client}: {accepted} accepted audit rows expected")


def unique_messages(messages):
    """Drops exact repeats (the same bytes twice would be a resend)."""
    seen = set()
    out = []
    for name, m in messages:
        if m.rstrip(b"\r") not in seen:
            seen.add(m.rstrip(b"\r"))
            out.append((name, m))
    return out


def parse_frames(data):
    return re.findall(rb"\x0b(.*?)\x1c", data, re.S)


def run_mllp_send(h, port, messages, name):
    path = h.path(f"{name}.mllp")
    with open(path, "wb") as f:
        for _, m in messages:
            f.write(lbtest.frame(m))
    result = subprocess.run(["mllp_send", "-p", str(port), "-f", path, "127.0.0.1"],
                            capture_output=True, timeout=120)
    check(result.returncode == 0, f"mllp_send failed: {result.stderr.decode(errors='replace')}")
    return parse_frames(result.stdout)


def python_hl7_run(h, messages):
    if shutil.which("mllp_send") is None:
        lbtest.fail("mllp_send (Debian python3-hl7) is not installed")
    db = h.database(name="python")
    server = h.server(db, name="python")
    server.start()
    acks = run_mllp_send(h, server.mllp_port, messages, "python")
    summaries = [lbtest.read_msa(a) for a in acks]
    check(all(s is not None for s in summaries), "mllp_send got a reply without MSA")
    check_acks(messages, [s[:2] for s in summaries], "python-hl7 mllp_send")
    check_store(db, messages, "python-hl7 mllp_send")
    results = db.scalar("SELECT COUNT(*) FROM lab_results")
    check(int(results) > 0, "python-hl7: no lab_results stored")
    # The same file again: resends, answered with the original ACK bytes.
    again = run_mllp_send(h, server.mllp_port, messages, "python-again")
    check(again == acks, "python-hl7: a resend did not get the original ACK byte for byte")
    check_store(db, messages, "python-hl7 mllp_send (after resend)")
    check(db.scalar("SELECT COUNT(*) FROM lab_results") == results,
          "python-hl7: a resend changed lab_results")
    server.stop()
    code, out = server.audit_verify()
    check(code == 0, f"audit verify after the python-hl7 run: {out}")
    print(f"python-hl7 mllp_send: {len(messages)} messages, {results} results: OK")


def node_run(h, messages, name, tls=None, expect_ok=True, port=None):
    """Sends with node-hl7-client; returns [(code, acked)] (or the error)."""
    path = h.path(f"{name}.json")
    with open(path, "w") as f:
        json.dump([m.decode("utf-8", "surrogateescape").rstrip("\r") for _, m in messages], f)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_hl7_send.mjs")
    args = ["node", script, str(port), path] + (tls or [])
    result = subprocess.run(args, capture_output=True, timeout=120)
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()
             if line.startswith("{")]
    if expect_ok:
        check(result.returncode == 0 and all("error" not in x for x in lines),
              f"node-hl7-client {name}: exit {result.returncode}: {lines[-1:]} "
              f"{result.stderr.decode(errors='replace')[-2000:]}")
    return [(x["code"], x["acked"]) for x in lines if "error" not in x], result


def node_available():
    here = os.path.dirname(os.path.abspath(__file__))
    return shutil.which("node") and os.path.isdir(
        os.path.join(here, "..", "node_modules", "node-hl7-client"))


def node_plain_and_tls_runs(h, messages, pki):
    # node-hl7-client parses each message itself; what it cannot parse it
    # cannot send, so those are left to the other clients.
    for name, tls_env, tls_args in (
            ("node", {}, []),
            ("node-tls", {"MLLP_TLS_CERT": pki["server.crt"], "MLLP_TLS_KEY": pki["server.key"]},
             [pki["ca.crt"]])):
        db = h.database(name=name)
        server = h.server(db, env=tls_env, name=name)
        server.start()
        acks, _ = node_run(h, messages, name, tls=tls_args, port=server.mllp_port)
        check_acks(messages, acks, f"node-hl7-client ({name})")
        check_store(db, messages, f"node-hl7-client ({name})")
        server.stop()
        code, out = server.audit_verify()
        check(code == 0, f"audit verify after the {name} run: {out}")
        print(f"node-hl7-client {name}: {len(messages)} messages: OK")


def s_client(port, pki, payload, extra, cert=True, rogue=False, timeout=5.0):
    """Sends one framed message with `openssl s_client`; returns (stdout, stderr)."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["ca.crt"],
            "-verify_return_error", "-quiet", *extra]
    if cert:
        key = "rogue" if rogue else "client"
        args += ["-cert", pki[f"{key}.crt"], "-key", pki[f"{key}.key"]]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(lbtest.frame(payload))
        p.stdin.flush()
    except BrokenPipeError:
        pass
    deadline = time.monotonic() + timeout
    out = b""
    os.set_blocking(p.stdout.fileno(), False)
    while time.monotonic() < deadline and p.poll() is None:
        chunk = p.stdout.read()
        if chunk:
            out += chunk
            if b"\x1c" in out:
                break
        time.sleep(0.05)
    p.kill()
    rest, err = p.communicate()
    return out + (rest or b""), err.decode("utf-8", "replace")


def handshake_failures(server):
    return server.log_text().count("TLS handshake failed")


def mtls_run(h, pki):
    db = h.database(name="mtls")
    server = h.server(db, env={"MLLP_TLS_CERT": pki["server.crt"],
                               "MLLP_TLS_KEY": pki["server.key"],
                               "MLLP_TLS_CLIENT_CA": pki["ca.crt"]}, name="mtls")
    server.start()
    port = server.mllp_port

    # Accepted: a certificate from the configured CA (s_client, TLS 1.2 and 1.3).
    for i, version in enumerate(("-tls1_3", "-tls1_2")):
        out, err = s_client(port, pki, lbtest.synthetic_oru(f"IT-SSL-{i}", f"P-SSL-{i}"),
                            [version])
        summary = lbtest.read_msa(out.strip(b"\x0b\x1c\r"))
        check(summary is not None and summary[:2] == ("AA", f"IT-SSL-{i}"),
              f"s_client {version} with a client certificate: expected AA, got {out!r} {err}")
    if node_available():
        acks, _ = node_run(h, [("guide", lbtest.guide_sample_oru())], "node-mtls",
                           tls=[pki["ca.crt"], pki["client.crt"], pki["client.key"]], port=port)
        check(acks == [("AA", "MSG001")], f"node-hl7-client with a client certificate: {acks}")

    # lab-bridge's own `send` over mutual TLS, verifying the server's name:
    # AA with a client certificate; without one, or trusting another CA, the
    # message is not delivered and send exits 1.
    message = h.path("send_tls.hl7")
    with open(message, "wb") as f:
        f.write(lbtest.synthetic_oru("IT-SEND-TLS", "P-SEND-TLS"))
    base = ["send", "--host", "localhost", "--port", str(port), "--tls"]
    sent = server.run_command(base + ["--ca", pki["ca.crt"], "--cert", pki["client.crt"],
                                      "--key", pki["client.key"], message])
    out = sent.stdout.decode()
    check(sent.returncode == 0 and out.split()[:2] == ["IT-SEND-TLS", "AA"],
          f"send --tls with a client certificate: exit {sent.returncode}, {out!r} "
          f"{sent.stderr.decode()!r}")
    for what, args in (("without a client certificate", ["--ca", pki["ca.crt"]]),
                       ("trusting another CA", ["--ca", pki["rogue_ca.crt"], "--cert",
                                                pki["client.crt"], "--key", pki["client.key"]])):
        refused = server.run_command(base + args + [message])
        out = refused.stdout.decode()
        check(refused.returncode == 1 and " AA" not in out,
              f"send --tls {what}: exit {refused.returncode}, {out!r}")
    print("send --tls: AA with a client certificate, refused without one or with another CA")

    # Refused in the handshake: TLS 1.1 (offered for real: security level 0 lets
    # OpenSSL 3 propose it), no client certificate, a foreign CA's certificate.
    refused = [
        ("TLS 1.1", "IT-REFUSED-1", dict(extra=["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])),
        ("no client certificate", "IT-REFUSED-2", dict(extra=[], cert=False)),
        ("a certificate from another CA", "IT-REFUSED-3", dict(extra=[], rogue=True)),
    ]
    for what, cid, kwargs in refused:
        before = handshake_failures(server)
        out, err = s_client(port, pki, lbtest.synthetic_oru(cid, "P-REFUSED"), **kwargs)
        check(b"MSA" not in out, f"{what}: got an ACK: {out!r}")
        deadline = time.monotonic() + 5
        while handshake_failures(server) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        check(handshake_failures(server) == before + 1,
              f"{what}: the server did not refuse the handshake (client said: {err.strip()[-300:]})")
        print(f"mTLS refused {what}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    stored = db.query("SELECT message_control_id FROM hl7_messages "
                      "WHERE message_control_id LIKE 'IT-REFUSED-%'")
    check(stored == [], f"refused clients' messages were stored: {stored}")
    # Still serving after the refusals.
    out, err = s_client(port, pki, lbtest.synthetic_oru("IT-SSL-9", "P-SSL-9"), [])
    check(lbtest.read_msa(out.strip(b"\x0b\x1c\r"))[:2] == ("AA", "IT-SSL-9"),
          f"the server stopped serving after refused handshakes: {out!r}")
    server.stop()
    print("mTLS with openssl s_client: OK")

    # The allow-list (MLLP_TLS_ALLOWED_PEERS): a certificate from the trusted
    # CA whose names are not on it is refused, and its message not stored;
    # listed by a subjectAltName, the same certificate is served.
    for allowed, accepted in (("lis-b.example,lis-c", False), ("lis-c,lis-a.example", True)):
        listed = h.server(db, env={"MLLP_TLS_CERT": pki["server.crt"],
                                   "MLLP_TLS_KEY": pki["server.key"],
                                   "MLLP_TLS_CLIENT_CA": pki["ca.crt"],
                                   "MLLP_TLS_ALLOWED_PEERS": allowed}, name=f"allow{int(accepted)}")
        listed.start()
        cid = f"IT-ALLOW-{int(accepted)}"
        out, err = s_client(listed.mllp_port, pki, lbtest.synthetic_oru(cid, "P-ALLOW"), [])
        summary = lbtest.read_msa(out.strip(b"\x0b\x1c\r")) if b"MSA" in out else None
        if accepted:
            check(summary is not None and summary[:2] == ("AA", cid),
                  f"allow-list {allowed}: the listed peer got {out!r} {err[-300:]}")
        else:
            check(summary is None, f"allow-list {allowed}: an unlisted peer got an ACK: {out!r}")
        listed.stop()
        stored = db.query(f"SELECT COUNT(*) FROM hl7_messages WHERE message_control_id = '{cid}'")
        check(stored == [("1" if accepted else "0",)],
              f"allow-list {allowed}: stored {stored} rows for {cid}")
    print("MLLP_TLS_ALLOWED_PEERS: unlisted peer refused, listed peer served")

    # Per laboratory (lis_endpoints.json client_certificate_names): lis-a's
    # certificate may send as its laboratory (MSH-3/4 LIS_A/IT_LAB) and as no
    # one else; the refused message is answered AR and still stored.
    endpoints = h.path("bound_endpoints.json")
    with open(endpoints, "w") as f:
        json.dump({"endpoints": [{
            "id": "lab-a", "host": "127.0.0.1", "port": lbtest.free_port(), "default": True,
            "receiving_application": "LIS_A", "receiving_facility": "IT_LAB",
            "client_certificate_names": ["lis-a.example"]}]}, f)
    bound = h.server(db, env={"MLLP_TLS_CERT": pki["server.crt"], "MLLP_TLS_KEY": pki["server.key"],
                              "MLLP_TLS_CLIENT_CA": pki["ca.crt"],
                              "LIS_ENDPOINTS_FILE": endpoints}, name="bound")
    bound.start()
    for sender, cid, expected in ((b"LIS_A", "IT-BOUND-OWN", "AA"),
                                  (b"IT_LIS", "IT-BOUND-OTHER", "AR")):
        out, err = s_client(bound.mllp_port, pki, lbtest.synthetic_oru(cid, "P-BOUND",
                                                                      sender=sender), [])
        summary = lbtest.read_msa(out.strip(b"\x0b\x1c\r")) if b"MSA" in out else None
        check(summary is not None and summary[:2] == (expected, cid),
              f"lis-a's certificate sending as {sender!r}: expected {expected}, got {out!r}")
    bound.stop()
    stored = db.query("SELECT message_control_id, ack_status FROM hl7_messages WHERE "
                      "message_control_id LIKE 'IT-BOUND-%' ORDER BY id")
    check(stored == [("IT-BOUND-OWN", "AA"), ("IT-BOUND-OTHER", "AR")],
          f"bound senders not stored as answered: {stored}")
    results = db.scalar("SELECT COUNT(*) FROM lab_results r JOIN hl7_messages m ON "
                        "m.id = r.hl7_message_id WHERE m.message_control_id = 'IT-BOUND-OTHER'")
    check(results == "0", f"the refused message's results were stored: {results}")
    print("client_certificate_names: a certificate sends as its laboratory only")


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        messages = unique_messages(collect_messages())
        print(f"{len(messages)} ORU^R01 messages")
        pki = lbtest.make_pki(h.path("pki"))
        python_hl7_run(h, messages)
        if not node_available():
            lbtest.fail("node-hl7-client is not installed (npm ci in tests/)")
        node_plain_and_tls_runs(h, messages, pki)
        mtls_run(h, pki)


if __name__ == "__main__":
    lbtest.run_main(main)
