#!/usr/bin/python3
"""Parses every message of a corpus file (one message per LF line, segments
CR-separated) with python-hl7's hl7.parse, the way lab-bridge's hl7_bench
does, and prints messages/s and MB/s. Run with Debian's /usr/bin/python3,
which sees the python3-hl7 package."""
import sys
import time

import hl7

def main():
    path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    with open(path, "r", encoding="utf-8", newline="") as f:
        messages = [line for line in f.read().split("\n") if line]
    total_bytes = sum(len(m.encode("utf-8")) for m in messages)
    count = 0
    parsed_bytes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for m in messages:
            parsed = hl7.parse(m)
            # Read every field, as the C++ benchmark reads every value.
            for segment in parsed:
                for field in segment:
                    str(field)
        count += len(messages)
        parsed_bytes += total_bytes
    elapsed = time.perf_counter() - start
    print(f"python-hl7 {hl7.__version__ if hasattr(hl7, '__version__') else ''}: "
          f"{count / elapsed:.0f} messages/s, {parsed_bytes / elapsed / 1e6:.2f} MB/s "
          f"({count} messages in {elapsed:.2f} s)")

if __name__ == "__main__":
    main()
