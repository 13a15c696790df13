#!/usr/bin/python3
"""A laboratory for the dashboard's end-to-end test: python-hl7's asyncio MLLP
server on 127.0.0.1, answering every message with MSA|AA (python-hl7's own
create_ack) and appending each one received to a file.

    /usr/bin/python3 fake_lis.py PORT_FILE RECEIVED_FILE SECONDS

Binds a free port, writes it to PORT_FILE once listening, and stops after
SECONDS (a bounded lifetime, so a failed test leaves nothing running).
"""
import asyncio
import os
import sys

import hl7
from hl7.mllp import start_hl7_server


def main():
    port_file, received_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])

    async def handle(reader, writer):
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                with open(received_file, "a", encoding="utf-8") as out:
                    out.write(str(message).replace("\r", "\n") + "\n\n")
                writer.writemessage(message.create_ack())
                await writer.drain()
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
