#!/usr/bin/python3
"""Two replicas: two `lab-bridge serve` processes on one PostgreSQL database
dispatch 1,000 orders (placed through both) to one LIS (python-hl7's asyncio
MLLP server); every order arrives exactly once, every order is "sent", and
both replicas took part in placing them.

  replicas_test.py postgres LAB_BRIDGE_BINARY
"""

import sys
import threading
import time

import orders_it
from orders_it import check, lbtest

ORDERS = 1000


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    if backend != "postgres":
        raise lbtest.TestSkipped("replicas share a PostgreSQL database")
    with lbtest.Harness(backend, binary) as h:
        db = orders_it.harness_database(h)
        lis_port = lbtest.free_port()
        lis = orders_it.python_lis(h, lis_port)
        try:
            endpoints = orders_it.write_endpoints(h.path("lis_endpoints.json"),
                                                  [orders_it.endpoint(lis_port)])
            env = orders_it.server_env(h, endpoints)
            replicas = [h.server(db, env=env, name=f"replica{i}") for i in range(2)]
            token = orders_it.create_token(replicas[0])
            for r in replicas:
                r.start()
            placed = []
            lock = threading.Lock()

            def place(replica, start):
                api = orders_it.Api(replica.ports["http"], token)
                for i in range(start, ORDERS, 4):
                    order = api.place(f"R{i:04d}", ["CBC"])
                    with lock:
                        placed.append(order["id"])

            threads = [threading.Thread(target=place, args=(replicas[i % 2], i)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            check(len(placed) == ORDERS, f"placed {len(placed)} orders")

            lis.wait_messages(ORDERS, timeout=120)
            deadline = time.monotonic() + 60
            while db.scalar("SELECT COUNT(*) FROM lab_orders WHERE status = 'sent'") != str(ORDERS):
                check(time.monotonic() < deadline,
                      "not every order is sent: " + str(db.query(
                          "SELECT status, COUNT(*) FROM lab_orders GROUP BY status")))
                time.sleep(0.1)
            time.sleep(1.0)
            got = lis.messages()
            control_ids = [m["control_id"] for m in got]
            duplicates = len(control_ids) - len(set(control_ids))
            check(duplicates == 0, f"{duplicates} orders arrived more than once")
            check(len(got) == ORDERS, f"the LIS received {len(got)} messages for {ORDERS} orders")
            per_replica = [r.log_text().count("event=order_sent") for r in replicas]
            check(sum(per_replica) == ORDERS, f"sends logged per replica: {per_replica}")
            print(f"sent per replica: {per_replica}")
        finally:
            lis.stop()


orders_it.run(main)
