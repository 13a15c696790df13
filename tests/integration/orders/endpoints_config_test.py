#!/usr/bin/python3
"""lis_endpoints.json in `lab-bridge serve`: with no file at the default path
(config/lis_endpoints.json) orders stay pending, saying why; once the file
exists, SIGHUP sends them (python-hl7's asyncio MLLP server as the LIS); a
bad file at reload is logged and the endpoints in force stay; the reloaded
laboratory's time zone and unit map are used for the results it sends; a bad
or missing file at start stops the start with the path and the problem.

  endpoints_config_test.py sqlite|postgres LAB_BRIDGE_BINARY
"""

import json
import os
import signal
import subprocess
import sys
import time

import orders_it
from orders_it import check, lbtest


def start_fails(server, overrides, *expected):
    process = subprocess.run([server.binary, "serve"], cwd=server.workdir,
                             env=server.environment(overrides), capture_output=True, text=True,
                             timeout=60)
    check(process.returncode == 1, f"serve with {overrides} exited {process.returncode}")
    for text in expected:
        check(text in process.stderr, f"serve with {overrides}: {process.stderr!r} lacks {text!r}")


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = orders_it.harness_database(h)
        server = h.server(db, env=orders_it.server_env(h))  # LIS_ENDPOINTS_FILE unset
        token = orders_it.create_token(server)

        # Bad files stop the start, naming the file and the problem.
        bad = h.path("bad.json")
        with open(bad, "w") as f:
            json.dump({"endpoints": [orders_it.endpoint(0)]}, f)
        start_fails(server, {"LIS_ENDPOINTS_FILE": bad},
                    "LIS_ENDPOINTS_FILE", bad, "endpoints[0].port: expected an integer 1-65535")
        with open(bad, "w") as f:
            f.write('{"endpoints": [')
        start_fails(server, {"LIS_ENDPOINTS_FILE": bad}, bad, "not valid JSON")
        start_fails(server, {"LIS_ENDPOINTS_FILE": h.path("missing.json")},
                    h.path("missing.json"), "no such file")
        start_fails(server, {"RETRY_MAX_ATTEMPTS": "0"}, "RETRY_MAX_ATTEMPTS")

        # No file at the default path: orders wait.
        server.start()
        api = orders_it.Api(server.ports["http"], token)
        order = api.place("4242", ["CBC", "BMP"])
        deadline = time.monotonic() + 20
        while "no LIS endpoint is configured" not in api.order(order["id"])["last_error"]:
            check(time.monotonic() < deadline, f"order: {api.order(order['id'])}")
            time.sleep(0.05)
        time.sleep(0.5)
        check(api.order(order["id"])["status"] == "pending", "the order did not wait")
        check(api.order(order["id"])["attempts"] == 0, "attempts without an endpoint")

        lis_port = lbtest.free_port()
        lis = orders_it.python_lis(h, lis_port)
        try:
            os.makedirs(h.path("config"), exist_ok=True)
            default_path = h.path(os.path.join("config", "lis_endpoints.json"))
            orders_it.write_endpoints(default_path, [orders_it.endpoint(
                lis_port, time_zone="America/Chicago", unit_map={"millimoles/litre": "mmol/L"})])
            server.process.send_signal(signal.SIGHUP)
            api.wait_status(order["id"], ("sent",))
            check(len(lis.wait_messages(1)) == 1, "the LIS got the order")

            # The reloaded file's laboratory also maps the results it sends:
            # its zone for a time without offset, its unit map; another
            # sender's identical result gets neither.
            for sender, value in (("LAB_LIS|REFERENCE_LAB", "140"), ("OTHER|ELSEWHERE", "141")):
                oru = (f"MSH|^~\\&|{sender}|PMS_LAB|MPS_PMS|20260115120000||ORU^R01|TZ-{value}"
                       "|P|2.5.1\rPID|1||4242^^^MPS_PMS^MR||Zone^Test||19700101|U\r"
                       f"OBR|1|ORD-TZ-{value}|FIL-TZ-{value}|BMP|||20260115093000\r"
                       f"OBX|1|NM|NA^Sodium||{value}|millimoles/litre|135-145|N|||F|||"
                       "20260115093000\r").encode()
                with lbtest.MllpConnection(server.mllp_port) as c:
                    ack = lbtest.read_msa(c.exchange(oru))
                check(ack[0] == "AA", f"ORU from {sender}: {ack}")
            rows = db.query("SELECT json FROM fhir_resources WHERE resource_type = 'Observation'")
            by_value = {v: [r[0] for r in rows if f'"value":{v},' in r[0]] for v in ("140", "141")}
            check(len(by_value["140"]) == 1 and '"2026-01-15T09:30:00-06:00"' in by_value["140"][0]
                  and '"code":"mmol/L"' in by_value["140"][0],
                  f"the laboratory's settings were not used: {by_value['140']}")
            check(len(by_value["141"]) == 1 and "-06:00" not in by_value["141"][0]
                  and '"code":"mmol/L"' not in by_value["141"][0],
                  f"another sender got the laboratory's settings: {by_value['141']}")

            # A bad file at reload: logged, and the endpoints in force stay.
            with open(default_path, "w") as f:
                f.write('{"endpoints": [{"id": "x"}]}')
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "event=lis_endpoints_reload_failed" not in server.log_text():
                check(time.monotonic() < deadline, "no reload failure logged")
                time.sleep(0.05)
            check("endpoints[0].host: required" in server.log_text(), "reload error text")
            check(server.alive(), "serve stopped on a bad reload")
            second = api.place("4242", ["CBC"])
            api.wait_status(second["id"], ("sent",))
            check(len(lis.wait_messages(2)) == 2, "the LIS got the second order")
            check(server.stop() == 0, "serve did not stop cleanly")
        finally:
            lis.stop()


orders_it.run(main)
