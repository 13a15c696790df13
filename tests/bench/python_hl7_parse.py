#!/usr/bin/python3
"""python-hl7 on the corpus that lab-bridge's hl7_bench writes (one message
per LF line, segments CR-separated). Prints two lines:
  parse: hl7.parse of every message (python-hl7 splits every field,
         repetition and component eagerly);
  parse+read: the same, then str() of every field, as the C++ benchmark
         reads every value.
Run with Debian's /usr/bin/python3, which sees the python3-hl7 package."""
import sys
import time

import hl7


def run(messages, total_bytes, seconds, read):
    count = 0
    parsed_bytes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for m in messages:
            parsed = hl7.parse(m)
            if read:
                for segment in parsed:
                    for field in segment:
                        str(field)
        count += len(messages)
        parsed_bytes += total_bytes
    elapsed = time.perf_counter() - start
    return count / elapsed, parsed_bytes / elapsed / 1e6


def main():
    path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    with open(path, "r", encoding="utf-8", newline="") as f:
        messages = [line for line in f.read().split("\n") if line]
    total_bytes = sum(len(m.encode("utf-8")) for m in messages)
    for label, read in (("parse", False), ("parse+read", True)):
        rate, mbps = run(messages, total_bytes, seconds, read)
        print(f"python-hl7 {label}: {rate:.0f} messages/s, {mbps:.2f} MB/s")


if __name__ == "__main__":
    main()
