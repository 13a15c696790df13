#!/usr/bin/python3
"""The loop, over REST, gRPC and FHIR: an order for CBC and BMP goes to the
LIS (python-hl7's asyncio MLLP server), which acknowledges it and sends ORUs
back to lab-bridge whose OBR-2 echo the placer numbers (first preliminary,
then final); the order becomes "resulted" with its results linked, its
result_status "preliminary" (FHIR ServiceRequest "active") until the final
ORU makes it "final" (GET /api/lab-orders/{id}, gRPC GetOrder, FHIR
ServiceRequest "completed").
Also over REST: cancelling a sent order sends ORC-1 CA to the LIS, an order
without result past ORDER_OVERDUE_SECONDS is listed by ?status=overdue, and
/metrics counts what went out.

  loop_test.py sqlite|postgres LAB_BRIDGE_BINARY
"""

import json
import os
import subprocess
import sys
import time

import orders_it
from orders_it import check, fields, lbtest


def main():
    backend, binary = sys.argv[1], sys.argv[2]
    with lbtest.Harness(backend, binary) as h:
        db = orders_it.harness_database(h)
        lis_port = lbtest.free_port()
        mllp_port = lbtest.free_port()
        final_gate = h.path("send_final")
        lis = orders_it.python_lis(h, lis_port, results_to=mllp_port, results_for="CBC",
                                   final_gate=final_gate)
        try:
            endpoints = orders_it.write_endpoints(h.path("lis_endpoints.json"), [
                orders_it.endpoint(lis_port, default=False, test_codes=["CBC", "BMP"]),
                # Nothing listens here: TSH orders wait, and go overdue.
                orders_it.endpoint(lbtest.free_port(), id="thyroid-lab", default=False,
                                   test_codes=["TSH"])])
            server = h.server(db, env=orders_it.server_env(
                h, endpoints, MLLP_LISTEN_PORT=mllp_port, ORDER_OVERDUE_SECONDS=2))
            token = orders_it.create_token(server)
            server.start()
            api = orders_it.Api(server.ports["http"], token)

            order = api.place("12345", ["CBC", "BMP"], priority="S")
            waiting = api.place("777", ["TSH"])
            placer = order["placer_order_number"]

            # The preliminary ORU: the order is resulted, but only preliminarily,
            # and FHIR keeps its ServiceRequest active.
            got = lis.wait_messages(2)
            rest = api.wait_status(order["id"], ("resulted",))
            check(rest["result_status"] == "preliminary" and
                  sorted(r["result_status"] for r in rest["results"]) == ["P", "P"],
                  f"after the preliminary ORU: {rest}")
            status, fhir = api.request("GET", f"/fhir/ServiceRequest/order-{order['id']}")
            check(status == 200 and fhir["status"] == "active",
                  f"FHIR ServiceRequest after the preliminary ORU: {status} {fhir}")
            open(final_gate, "w").close()

            # The LIS got the order; its two ORUs (P, then F) were acknowledged AA.
            got = lis.wait_messages(3)
            orm = [m for m in got if "raw" in m]
            check(len(orm) == 1, f"the LIS got {len(orm)} order messages")
            check([f[2].split("^")[0] for f in fields(orm[0]["raw"], "OBR")]
                  == [f"{placer}-1", f"{placer}-2"], "OBR-2 placer numbers")
            acks = [m for m in lis.wait_messages(3) if "result_ack" in m]
            deadline = time.monotonic() + 30
            while len(acks) < 2:
                check(time.monotonic() < deadline, f"result ACKs: {acks}")
                time.sleep(0.05)
                acks = [m for m in lis.messages() if "result_ack" in m]
            for a in acks:
                code, _, detail = lbtest.read_msa(a["result_ack"])
                check(code == "AA", f"lab-bridge answered the {a['status']} ORU {code} {detail}")

            # REST: resulted and final, with the results of both tests linked.
            rest = api.wait_status(order["id"], ("resulted",))
            check(rest["result_status"] == "final", f"after the final ORU: {rest}")
            statuses = sorted(r["result_status"] for r in rest["results"])
            check(len(rest["results"]) == 4 and statuses == ["F", "F", "P", "P"],
                  f"linked results: {rest['results']}")
            check(all(r["placer_order_number"] == placer for r in rest["results"]),
                  "results not linked by the order's placer number")

            # gRPC and FHIR see the same order.
            result = subprocess.run(
                ["node", os.path.join(orders_it.HERE, "order_clients.mjs"),
                 str(server.ports["grpc"]), str(server.ports["http"]), token, str(order["id"]),
                 os.path.join(lbtest.source_dir(), "proto")],
                capture_output=True, text=True, timeout=60, cwd=orders_it.HERE)
            check(result.returncode == 0, f"order_clients.mjs: {result.stderr}")
            seen = json.loads(result.stdout)
            check(seen["grpc"]["status"] == "resulted", f"gRPC GetOrder: {seen['grpc']}")
            check(len(seen["grpc"]["results"]) == 4 and all(
                r["lab_order_id"] == str(order["id"]) for r in seen["grpc"]["results"]),
                f"gRPC results: {seen['grpc']['results']}")
            check(seen["grpc"]["attempts"] == 1 and seen["grpc"]["lis_endpoint"] == "reference-lab"
                  and seen["grpc"]["result_status"] == "final",
                  f"gRPC order: {seen['grpc']}")
            check(seen["fhir"] == {"resourceType": "ServiceRequest", "status": "completed"},
                  f"FHIR ServiceRequest: {seen['fhir']}")

            # Cancel: a sent order gets an ORC-1 CA; a resulted one cannot be cancelled.
            second = api.place("12345", ["BMP"])  # the LIS sends no results for BMP alone
            api.wait_status(second["id"], ("sent",))
            status, body = api.request("POST", f"/api/lab-orders/{second['id']}/cancel")
            check(status == 200 and body["status"] == "cancelled", f"cancel: {status} {body}")
            deadline = time.monotonic() + 20
            while True:
                cancels = [m for m in lis.messages() if "raw" in m and
                           fields(m["raw"], "ORC")[0][1] == "CA"]
                if cancels:
                    break
                check(time.monotonic() < deadline, "no ORC-1 CA reached the LIS")
                time.sleep(0.05)
            check(fields(cancels[0]["raw"], "ORC")[0][2].split("^")[0]
                  == second["placer_order_number"], f"the CA names {cancels[0]['raw']!r}")
            status, body = api.request("POST", f"/api/lab-orders/{order['id']}/cancel")
            check(status == 409, f"cancelling a resulted order: {status} {body}")

            # Overdue: the TSH order has had no result for more than 2 s.
            time.sleep(2.2)
            status, overdue = api.request("GET", "/api/lab-orders?status=overdue")
            check(status == 200, f"?status=overdue: {status} {overdue}")
            check([o["id"] for o in overdue] == [waiting["id"]], f"overdue: {overdue}")
            check(overdue[0]["status"] == "pending" and "unreachable" in overdue[0]["last_error"],
                  f"the waiting order: {overdue[0]}")
            status, body = api.request("GET", "/api/lab-orders?status=late")
            check(status == 422 and "overdue" in json.dumps(body), f"?status=late: {status}")

            status, metrics = api.request("GET", "/metrics", raw=True)
            check(status == 200, f"/metrics: {status}")
            check('labbridge_order_messages_total{endpoint="reference-lab",outcome="accepted"} 3'
                  in metrics, "accepted count in /metrics:\n" + metrics[-1500:])
            check('labbridge_lis_up{endpoint="thyroid-lab"} 0' in metrics, "thyroid-lab up?")
        finally:
            lis.stop()


orders_it.run(main)
