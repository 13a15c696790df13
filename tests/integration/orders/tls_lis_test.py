#!/usr/bin/python3
"""node-hl7-server (npm) as the LIS, over mutual TLS on 127.0.0.1: with the
CA, a client certificate and the server name in lis_endpoints.json the order
reaches "sent" and the LIS got it; an endpoint without the client
certificate (the LIS refuses the handshake) or expecting another server
name (we refuse it) leaves its order pending, never attempted, with the
reason in last_error; fixing the file and SIGHUP sends it.

  tls_lis_test.py sqlite|postgres LAB_BRIDGE_BINARY
"""

import signal
import sys
import time

import orders_it
from orders_it import check, fields, lbtest


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        pki = lbtest.make_pki(h.path("pki"))
        db = orders_it.harness_database(h)
        lis_port = lbtest.free_port()
        lis = orders_it.node_tls_lis(h, lis_port, pki)
        try:
            good_tls = {"ca_file": pki["ca.crt"], "cert_file": pki["client.crt"],
                        "key_file": pki["client.key"], "server_name": "localhost"}
            endpoints_path = h.path("lis_endpoints.json")
            orders_it.write_endpoints(endpoints_path, [
                orders_it.endpoint(lis_port, tls=good_tls, test_codes=["CBC"], default=False),
                orders_it.endpoint(lis_port, id="no-client-cert", test_codes=["BMP"],
                                   default=False, tls={"ca_file": pki["ca.crt"]}),
                orders_it.endpoint(lis_port, id="wrong-name", test_codes=["TSH"], default=False,
                                   tls=dict(good_tls, server_name="lis.other.example")),
            ])
            server = h.server(db, env=orders_it.server_env(h, endpoints_path))
            token = orders_it.create_token(server)
            server.start()
            api = orders_it.Api(server.ports["http"], token)

            sent = api.place("12345", ["CBC"], priority="S")
            no_cert = api.place("12345", ["BMP"])
            wrong_name = api.place("12345", ["TSH"])
            api.wait_status(sent["id"], ("sent",))
            got = lis.wait_messages(1)
            check(got[0]["control_id"] and fields(got[0]["raw"], "OBR")[0][4].startswith("CBC^"),
                  f"the TLS LIS got {got[0]}")

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                orders = [api.order(no_cert["id"]), api.order(wrong_name["id"])]
                if all("unreachable" in o["last_error"] for o in orders):
                    break
                time.sleep(0.1)
            rows = db.query(f"SELECT id, status, attempts, last_error FROM lab_orders "
                            f"WHERE id IN ({no_cert['id']}, {wrong_name['id']}) ORDER BY id")
            for order_id, status, attempts, last_error in rows:
                check(status == "pending" and attempts == "0",
                      f"order {order_id}: {status}, {attempts} attempts")
                check("unreachable" in last_error, f"order {order_id} last_error: {last_error}")
            check("certificate" in rows[1][3] or "handshake" in rows[1][3],
                  f"wrong server name error: {rows[1][3]}")
            check(len(lis.messages()) == 1, "the refused endpoints delivered something")

            # Fix the two endpoints and reload.
            orders_it.write_endpoints(endpoints_path, [
                orders_it.endpoint(lis_port, tls=good_tls, test_codes=["CBC"], default=False),
                orders_it.endpoint(lis_port, id="no-client-cert", test_codes=["BMP"],
                                   default=False, tls=good_tls),
                orders_it.endpoint(lis_port, id="wrong-name", test_codes=["TSH"], default=False,
                                   tls=good_tls),
            ])
            server.process.send_signal(signal.SIGHUP)
            api.wait_status(no_cert["id"], ("sent",))
            api.wait_status(wrong_name["id"], ("sent",))
            check(len(lis.wait_messages(3)) == 3, "after the reload")
            check("event=lis_endpoints_reloaded" in server.log_text(), "no reload log line")
            # Nothing leaked into the logs but ids (no PHI): the patient id is not there.
            check("12345" not in server.log_text(), "a patient id in the log")
        finally:
            lis.stop()


orders_it.run(main)
