#!/usr/bin/env python3
"""A tracker's own DNS server, for the E2E tests: it answers every name
with the addresses it is given, and chooses how the answer travels.

  --mode tc      UDP answers come truncated (TC bit, no records), so stub
                 resolvers retry over TCP, where the full answer waits
  --mode whole   each TCP answer in one send
  --mode bytes   each TCP answer one byte per segment, 20 ms apart
  --mode https   HTTPS (type 65) queries get a record with ipv4hint,
                 ipv6hint and an ECH config; other types as 'whole'
  --records N    A/AAAA records per answer (the same address N times)
"""
import argparse
import socket
import struct
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--listen", required=True)
p.add_argument("--mode", default="whole")
p.add_argument("--records", type=int, default=1)
p.add_argument("--a", required=True)
p.add_argument("--aaaa", required=True)
args = p.parse_args()
family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET


def answer(query, truncated):
    i = 12
    while query[i]:
        i += 1 + query[i]
    qend = i + 5
    qtype = struct.unpack(">H", query[i + 1:i + 3])[0]
    records = []
    if not truncated:
        if qtype == 1:
            rdata = socket.inet_pton(socket.AF_INET, args.a)
            records = [(1, rdata)] * args.records
        elif qtype == 28:
            rdata = socket.inet_pton(socket.AF_INET6, args.aaaa)
            records = [(28, rdata)] * args.records
        elif qtype == 65:
            params = struct.pack(">HH", 1, 3) + b"\x02h2"
            params += struct.pack(">HH", 4, 4) + socket.inet_pton(socket.AF_INET, args.a)
            params += struct.pack(">HH", 5, 8) + b"ECHCONFG"
            params += struct.pack(">HH", 6, 16) + socket.inet_pton(socket.AF_INET6, args.aaaa)
            records = [(65, struct.pack(">H", 1) + b"\x00" + params)]
    flags = 0x8180 | (0x0200 if truncated else 0)
    out = query[:2] + struct.pack(">HHHHH", flags, 1, len(records), 0, 0) + query[12:qend]
    for rtype, rdata in records:
        out += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(rdata)) + rdata
    return out


def serve_udp():
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((args.listen, 53))
    while True:
        query, peer = s.recvfrom(4096)
        try:
            s.sendto(answer(query, args.mode == "tc"), peer)
        except (IndexError, struct.error):
            pass


def serve_tcp_client(c):
    with c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(10)
        try:
            n = struct.unpack(">H", c.recv(2))[0]
            query = b""
            while len(query) < n:
                query += c.recv(n - len(query))
            msg = answer(query, False)
            framed = struct.pack(">H", len(msg)) + msg
            if args.mode == "bytes":
                for b in framed:
                    c.send(bytes([b]))
                    time.sleep(0.02)
            else:
                c.sendall(framed)
            c.recv(1)
        except (OSError, IndexError, struct.error):
            pass


def serve_tcp():
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.listen, 53))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_tcp_client, args=(c,), daemon=True).start()


threading.Thread(target=serve_udp, daemon=True).start()
serve_tcp()
