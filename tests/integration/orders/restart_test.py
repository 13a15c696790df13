#!/usr/bin/python3
"""Restart: 100 orders are placed while the LIS is down (they wait, pending,
never attempted); lab-bridge is killed with SIGKILL and started again; the
LIS (python-hl7's asyncio MLLP server) comes up; all 100 arrive exactly once
each, in the order they were placed, and each order is "sent".

  restart_test.py sqlite|postgres LAB_BRIDGE_BINARY
"""

import sys
import time

import orders_it
from orders_it import check, fields, lbtest

ORDERS = 100


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = orders_it.harness_database(h)
        lis_port = lbtest.stable_port()  # nothing listens there yet
        endpoints = orders_it.write_endpoints(h.path("lis_endpoints.json"), [
            orders_it.endpoint(lis_port, retry_max_attempts=2)])
        server = h.server(db, env=orders_it.server_env(h, endpoints))
        token = orders_it.create_token(server)
        server.start()
        api = orders_it.Api(server.ports["http"], token)
        placed = [api.place(f"P{i:03d}", ["CBC"])["id"] for i in range(ORDERS)]

        # The LIS is down: the oldest order is tried, nothing is used up.
        deadline = time.monotonic() + 20
        while "LIS reference-lab unreachable" not in api.order(placed[0])["last_error"]:
            check(time.monotonic() < deadline, "no connection attempt was recorded")
            time.sleep(0.05)
        server.kill()
        rows = db.query("SELECT status, attempts, COUNT(*) FROM lab_orders GROUP BY status, attempts")
        check(rows == [("pending", "0", str(ORDERS))], f"orders after the crash: {rows}")

        server.start()
        api = orders_it.Api(server.ports["http"], token)
        lis = orders_it.python_lis(h, lis_port)
        try:
            got = lis.wait_messages(ORDERS, timeout=60)
            api.wait_status(placed[-1], ("sent",), timeout=30)
            time.sleep(1.0)  # anything sent twice would show up now
            got = lis.messages()
            control_ids = [m["control_id"] for m in got]
            check(len(got) == ORDERS, f"the LIS received {len(got)} messages for {ORDERS} orders")
            check(len(set(control_ids)) == ORDERS, "a message arrived twice")
            patients = [fields(m["raw"], "PID")[0][3].split("^")[0] for m in got]
            check(patients == [f"P{i:03d}" for i in range(ORDERS)],
                  f"not in placement order: {patients[:10]}...")
            rows = db.query("SELECT status, COUNT(*) FROM lab_orders GROUP BY status")
            check(rows == [("sent", str(ORDERS))], f"order statuses: {rows}")
            outbound = db.scalar("SELECT COUNT(*) FROM hl7_messages WHERE direction = 'outbound' "
                                 "AND ack_status = 'AA'")
            check(outbound == str(ORDERS), f"{outbound} outbound audit rows")
        finally:
            lis.stop()


orders_it.run(main)
