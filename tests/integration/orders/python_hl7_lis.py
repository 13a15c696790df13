#!/usr/bin/python3
"""A laboratory system for the order tests, built on python-hl7's asyncio
MLLP server (Debian python3-hl7; run with /usr/bin/python3) bound to
127.0.0.1. It acknowledges every message with python-hl7's own create_ack
(MSA|AA|<MSH-10>), appends each message it read to a JSON-lines record file
({"control_id", "raw", "connection", "time"}), and with --results-to PORT
answers each new order (ORC-1 NW) like a laboratory would: an ORU^R01 sent
to lab-bridge's MLLP port whose OBR-2 echo the order's placer numbers, first
preliminary (OBR-25 and OBX-11 P), then final (F); the ACKs lab-bridge gave
are recorded as {"result_ack": ...}.

  python_hl7_lis.py --port P --record FILE [--results-to PORT [--results-for CODES]]
                    [--lifetime S]
"""

import argparse
import asyncio
import itertools
import json
import os
import time

import hl7
from hl7.mllp import open_hl7_connection, start_hl7_server

connections = itertools.count()
oru_ids = itertools.count(1)


def record(path, entry):
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


def result_message(order, status):
    pid3 = str(order.segment("PID")[3])
    control = f"LISORU{next(oru_ids):05d}"
    lines = [
        f"MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|20260301120000||ORU^R01|{control}|P|2.5.1",
        f"PID|1||{pid3}||Testpatient^Alex||19700101|U",
    ]
    for i, obr in enumerate(order.segments("OBR")):
        placer = str(obr[2])
        test = str(obr[4])
        lines.append(f"OBR|{i + 1}|{placer}|FIL-{control}-{i + 1}|{test}|||20260301110000"
                     f"||||||||||||||||{status}")
        lines.append(f"OBX|1|NM|WBC^White Blood Cell Count||{7 + i}.5|10*3/uL|4.5-11.0|N|||"
                     f"{status}")
    return hl7.parse("\r".join(lines) + "\r")


async def send_results(port, order, path, final_gate=None):
    for status in ("P", "F"):
        if status == "F" and final_gate:
            # The test looks at the order between the two ORUs, then lets
            # the final one go by creating the gate file.
            deadline = time.monotonic() + 60
            while not os.path.exists(final_gate) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        reader, writer = await open_hl7_connection("127.0.0.1", port)
        try:
            writer.writemessage(result_message(order, status))
            await writer.drain()
            ack = await asyncio.wait_for(reader.readmessage(), 15)
            record(path, {"result_ack": str(ack), "status": status})
        finally:
            writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--results-to", type=int)
    parser.add_argument("--results-for", default="",
                        help="comma-separated test codes (OBR-4.1) to send results for; all if empty")
    parser.add_argument("--final-gate",
                        help="send the final ORU only once this file exists")
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    background = set()

    async def handle(reader, writer):
        connection = next(connections)
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                record(args.record, {"control_id": str(message.segment("MSH")[10]),
                                     "raw": str(message), "connection": connection,
                                     "time": time.time()})
                writer.writemessage(message.create_ack())
                await writer.drain()
                codes = {str(obr[4]).split("^")[0] for obr in message.segments("OBR")}
                wanted = set(filter(None, args.results_for.split(",")))
                if (args.results_to and str(message.segment("ORC")[1]) == "NW"
                        and (not wanted or codes & wanted)):
                    task = asyncio.ensure_future(send_results(args.results_to, message,
                                                              args.record, args.final_gate))
                    background.add(task)
                    task.add_done_callback(background.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with await start_hl7_server(handle, host="127.0.0.1", port=args.port):
        await asyncio.sleep(args.lifetime)


asyncio.run(main())
