#!/usr/bin/python3
"""Order dispatch speed, end to end through `lab-bridge serve` (issue 7):

  1. drain: N orders are placed (POST /api/lab-orders) while the LIS is down,
     then an ACK-only LIS on loopback comes up; orders dispatched per second
     = messages the LIS received / time from its first to its last receipt.
  2. latency: with the LIS up, orders are POSTed at a fixed rate (open loop,
     default 100/s for 10 s); for each, the time from just before the POST to
     the LIS reading the ORM (p50/p99/max), and the POST's own answer time.

The LIS is a plain socket server in this process (reads a frame, answers
MSA|AA|<MSH-10>), so both times come from one clock.

  order_dispatch_bench.py BINARY sqlite|postgres [--orders N] [--rate R] [--seconds S]
(postgres uses BRIDGE_TEST_PG_DSN; tests/bench/run_order_bench.sh starts one.)
"""

import argparse
import os
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "orders"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import lbtest  # noqa: E402
import orders_it  # noqa: E402


class AckOnlyLis:
    def __init__(self, port):
        self.received = {}  # PID-3.1 -> monotonic time read
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buffer = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while True:
                start = buffer.find(b"\x0b")
                end = buffer.find(b"\x1c\r", start)
                if start < 0 or end < 0:
                    break
                message = buffer[start + 1:end]
                buffer = buffer[end + 2:]
                now = time.monotonic()
                segments = message.split(b"\r")
                control = segments[0].split(b"|")[9]
                patient = b""
                for s in segments:
                    if s.startswith(b"PID|"):
                        patient = s.split(b"|")[3].split(b"^")[0]
                with self.lock:
                    self.received.setdefault(patient.decode(), now)
                conn.sendall(b"\x0bMSH|^~\\&|LIS|LAB|PMS_LAB|MPS_PMS|20260101000000||ACK^O01|A"
                             + control + b"|P|2.5.1\rMSA|AA|" + control + b"\r\x1c\r")

    def count(self):
        with self.lock:
            return len(self.received)

    def close(self):
        self.sock.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("backend", choices=("sqlite", "postgres"))
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with lbtest.Harness(args.backend, args.binary) as h:
        db = orders_it.harness_database(h)
        lis_port = lbtest.stable_port()
        endpoints = orders_it.write_endpoints(h.path("lis_endpoints.json"),
                                              [orders_it.endpoint(lis_port)])
        server = h.server(db, env=orders_it.server_env(h, endpoints, LOG_LEVEL="warning"))
        token = orders_it.create_token(server)
        server.start()
        api = orders_it.Api(server.ports["http"], token)

        # 1. drain
        started = time.monotonic()
        for i in range(args.orders):
            api.place(f"D{i}", ["CBC"])
        placed_in = time.monotonic() - started
        lis = AckOnlyLis(lis_port)
        deadline = time.monotonic() + 600
        while lis.count() < args.orders:
            lbtest.check(time.monotonic() < deadline, f"drained {lis.count()} of {args.orders}")
            time.sleep(0.01)
        times = sorted(lis.received.values())
        drain_rate = (len(times) - 1) / (times[-1] - times[0])
        print(f"{args.backend}: placed {args.orders} orders in {placed_in:.1f} s "
              f"({args.orders / placed_in:.0f} POST/s, one keep-alive connection)")
        print(f"{args.backend}: drain: {drain_rate:.0f} orders dispatched/s to an ACK-only LIS")

        # 2. latency at a fixed rate
        total = int(args.rate * args.seconds)
        sent_at = {}
        post_times = []
        begin = time.monotonic() + 0.2
        for i in range(total):
            due = begin + i / args.rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            name = f"L{i}"
            sent_at[name] = time.monotonic()
            api.place(name, ["CBC"])
            post_times.append(time.monotonic() - sent_at[name])
        behind = time.monotonic() - (begin + total / args.rate)
        deadline = time.monotonic() + 60
        while lis.count() < args.orders + total:
            lbtest.check(time.monotonic() < deadline, "latency phase did not finish")
            time.sleep(0.01)
        latency = [(lis.received[n] - t) * 1000 for n, t in sent_at.items()]
        posts = [t * 1000 for t in post_times]
        print(f"{args.backend}: {args.rate:.0f} orders/s for {args.seconds:.0f} s "
              f"(schedule slipped {max(0.0, behind) * 1000:.0f} ms): POST -> LIS received "
              f"p50 {statistics.median(latency):.1f} ms, p99 {percentile(latency, 99):.1f} ms, "
              f"max {max(latency):.1f} ms; POST answered p50 {statistics.median(posts):.1f} ms, "
              f"p99 {percentile(posts, 99):.1f} ms")
        lis.close()


lbtest.run_main(main)
