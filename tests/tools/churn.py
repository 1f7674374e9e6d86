"""Connection churn from the phone for bench/forwarding.rs: opens FLOWS
TCP connections to ADDR:PORT and keeps them open, then for SECONDS opens
one new connection every millisecond and closes the oldest, so FLOWS stay
open while ~1,000 new ones a second reach the router (each a new flow for
the daemon to judge). Prints the churn it reached (connections/s) and the
connects that failed.

    python3 churn.py ADDR PORT FLOWS SECONDS
"""
import collections
import resource
import socket
import sys
import time

addr, port, flows, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, flows + 256)), hard))


def connect():
    s = socket.create_connection((addr, port), timeout=3)
    # Closed with a reset: no TIME_WAIT pile-up in the phone.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return s


held = collections.deque(connect() for _ in range(flows))
done = failed = 0
start = time.perf_counter()
due = start
while time.perf_counter() - start < seconds:
    due += 0.001
    pause = due - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    try:
        held.append(connect())
        done += 1
    except OSError:
        failed += 1
        continue
    held.popleft().close()
print(done / (time.perf_counter() - start), failed)
