#!/usr/bin/env python3
"""A phone flooding its resolver, for the E2E tests: sends COUNT queries
for one name from one UDP socket (distinct ids), writes 'sent' to READY,
then reads answers until none came for IDLE seconds and prints what they
held as JSON: {"zeroed": n, "real": n, "other": n, "answers": n}.

  dns_flood.py SERVER NAME A|AAAA COUNT READY [IDLE]
"""
import json
import socket
import struct
import sys

server, name, rtype, count, ready = sys.argv[1:6]
idle = float(sys.argv[6]) if len(sys.argv) > 6 else 4.0
count = int(count)
qtype = {"A": 1, "AAAA": 28}[rtype]
family = socket.AF_INET6 if ":" in server else socket.AF_INET
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"

s = socket.socket(family, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.connect((server, 53))
for i in range(count):
    query = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)
    while True:
        try:
            s.send(query)
            break
        except BlockingIOError:
            pass
with open(ready, "w") as f:
    f.write("sent\n")

zero = bytes(4 if qtype == 1 else 16)
tally = {"zeroed": 0, "real": 0, "other": 0, "answers": 0}
s.settimeout(idle)
while True:
    try:
        msg = s.recv(4096)
    except socket.timeout:
        break
    tally["answers"] += 1
    try:
        ancount = struct.unpack(">H", msg[6:8])[0]
        i = 12
        while msg[i]:
            i += 1 + msg[i]
        i += 5
        kinds = set()
        for _ in range(ancount):
            i += 2  # a compression pointer to the question
            t, _, _, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
            rdata = msg[i + 10:i + 10 + rdlen]
            i += 10 + rdlen
            if t == qtype:
                kinds.add("zeroed" if rdata == zero else "real")
        if "real" in kinds:
            tally["real"] += 1
        elif "zeroed" in kinds:
            tally["zeroed"] += 1
        else:
            tally["other"] += 1
    except (IndexError, struct.error):
        tally["other"] += 1
print(json.dumps(tally))
