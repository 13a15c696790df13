#!/usr/bin/python3
"""A laboratory for the dashboard's end-to-end test: python-hl7's asyncio MLLP
server on 127.0.0.1, answering every message with MSA|AA (python-hl7's own
create_ack) and appending each one received to a file. A new order that
includes CBC is answered, RESULT_DELAY seconds later, by a final ORU^R01 sent
to lab-bridge's MLLP port (read from SERVER_PORTS, the `serve --port-file`)
whose OBR-2 echo the order's placer numbers, so the order becomes resulted.

    /usr/bin/python3 fake_lis.py PORT_FILE RECEIVED_FILE SECONDS [SERVER_PORTS]

Binds a free port, writes it to PORT_FILE once listening, and stops after
SECONDS (a bounded lifetime, so a failed test leaves nothing running).
"""
import asyncio
import itertools
import os
import sys

import hl7
from hl7.mllp import open_hl7_connection, start_hl7_server

RESULT_DELAY = 4.0  # long enough for the dashboard to show "sent" first
RESULTS = {  # OBR-4 code -> the OBX of its result
    "CBC": "NM|WBC^White Blood Cell Count||8.25|10*3/uL|4.5-11.0|N",
    "BMP": "NM|NA^Sodium||140|mmol/L|135-145|N",
}
oru_ids = itertools.count(1)


def mllp_port(server_ports):
    with open(server_ports, encoding="utf-8") as f:
        for line in f:
            if line.startswith("mllp="):
                return int(line.split("=", 1)[1])
    raise RuntimeError(f"no mllp= line in {server_ports}")


def result_for(order):
    control = f"E2EORU{next(oru_ids):04d}"
    pid = order.segment("PID")
    lines = [
        f"MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|20260227100000||ORU^R01|{control}|P|2.5.1",
        f"PID|1||{pid[3]}||{pid[5] if len(pid) > 5 else ''}",
    ]
    for i, obr in enumerate(order.segments("OBR")):
        code = str(obr[4]).split("^")[0]
        lines.append(f"OBR|{i + 1}|{obr[2]}|FIL-{control}-{i + 1}|{obr[4]}|||20260227093000"
                     "|||||||||Dr. Smith||||||||F")
        lines.append(f"OBX|1|{RESULTS.get(code, 'ST|RES^Result||done||||N')}|||F")
    return hl7.parse("\r".join(lines) + "\r")


async def send_result(server_ports, order):
    await asyncio.sleep(RESULT_DELAY)
    reader, writer = await open_hl7_connection("127.0.0.1", mllp_port(server_ports))
    try:
        writer.writemessage(result_for(order))
        await writer.drain()
        await asyncio.wait_for(reader.readmessage(), 15)
    finally:
        writer.close()


def main():
    port_file, received_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    server_ports = sys.argv[4] if len(sys.argv) > 4 else None
    background = set()

    async def handle(reader, writer):
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                with open(received_file, "a", encoding="utf-8") as out:
                    out.write(str(message).replace("\r", "\n") + "\n\n")
                writer.writemessage(message.create_ack())
                await writer.drain()
                codes = {str(obr[4]).split("^")[0] for obr in message.segments("OBR")}
                if (server_ports and str(message.segment("MSH")[9]).startswith("ORM")
                        and str(message.segment("ORC")[1]) == "NW" and "CBC" in codes):
                    task = asyncio.ensure_future(send_result(server_ports, message))
                    background.add(task)
                    task.add_done_callback(background.discard)
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    async def run():
        async with await start_hl7_server(handle, host="127.0.0.1", port=0) as server:
            port = server.sockets[0].getsockname()[1]
            tmp = port_file + ".tmp"
            with open(tmp, "w", encoding="utf-8") as out:
                out.write(f"{port}\n")
            os.rename(tmp, port_file)
            await asyncio.sleep(seconds)

    asyncio.run(run())


if __name__ == "__main__":
    main()
