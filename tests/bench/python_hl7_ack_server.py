#!/usr/bin/python3
"""python-hl7's asyncio MLLP server (hl7.mllp, Debian python3-hl7) as the
baseline of run_mllp_bench.sh: it parses each message and answers
`msg.create_ack()` (MSA|AA|<MSH-10>), storing nothing.

    /usr/bin/python3 python_hl7_ack_server.py PORT_FILE SECONDS

Listens on 127.0.0.1 on a free port, writes "mllp=PORT" to PORT_FILE once
listening, and exits after SECONDS.
"""
import asyncio
import os
import sys

import hl7
from hl7.mllp import start_hl7_server


async def handle(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main(port_file, seconds):
    async with await start_hl7_server(handle, host="127.0.0.1", port=0) as server:
        port = server.sockets[0].getsockname()[1]
        with open(port_file + ".tmp", "w") as f:
            f.write(f"mllp={port}\n")
        os.rename(port_file + ".tmp", port_file)
        await asyncio.sleep(seconds)


if __name__ == "__main__":
    assert hl7.__version__
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
