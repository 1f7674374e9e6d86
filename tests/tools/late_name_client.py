#!/usr/bin/env python3
"""A client that puts its name late: a real curl ClientHello (the test
fixture) with a padding extension of --pad bytes before its SNI, or an
HTTP request with --headers junk headers before Host; sent in --pieces
segments --delay ms apart. Prints 'refused' when the connection is reset
or times out before any answer, 'open' when the server answered.
"""
import argparse
import os
import socket
import struct
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--addr", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--kind", choices=["tls", "http"], required=True)
p.add_argument("--name", default="tracking.miui.com")
p.add_argument("--pad", type=int, default=4000)
p.add_argument("--headers", type=int, default=300)
p.add_argument("--pieces", type=int, default=1)
p.add_argument("--delay", type=float, default=50)
args = p.parse_args()


def padded_hello(pad):
    here = os.path.dirname(os.path.abspath(__file__))
    h = bytearray(open(os.path.join(here, "../fixtures/tls_client_hello_curl.bin"), "rb").read())
    at = 9 + 2 + 32
    at += 1 + h[at]
    at += 2 + struct.unpack(">H", h[at:at + 2])[0]
    at += 1 + h[at]
    ext_len_at = at
    end = at + 2 + struct.unpack(">H", h[at:at + 2])[0]
    at += 2
    while at < end and struct.unpack(">H", h[at:at + 2])[0] != 0:
        at += 4 + struct.unpack(">H", h[at + 2:at + 4])[0]
    grow = pad + 4
    out = h[:at] + struct.pack(">HH", 21, pad) + bytes(pad) + h[at:]
    out[3:5] = struct.pack(">H", struct.unpack(">H", out[3:5])[0] + grow)
    hs = int.from_bytes(out[6:9], "big") + grow
    out[6:9] = hs.to_bytes(3, "big")
    out[ext_len_at:ext_len_at + 2] = struct.pack(">H", struct.unpack(">H", out[ext_len_at:ext_len_at + 2])[0] + grow)
    return bytes(out)


if args.kind == "tls":
    data = padded_hello(args.pad)
else:
    data = b"GET / HTTP/1.1\r\n" + b"".join(b"X-Pad-%d: y\r\n" % i for i in range(args.headers))
    data += b"Host: " + args.name.encode() + b"\r\nConnection: close\r\n\r\n"

family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(3)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
try:
    s.connect((args.addr, args.port))
    step = -(-len(data) // args.pieces)
    for i in range(0, len(data), step):
        s.send(data[i:i + step])
        time.sleep(args.delay / 1000)
    print("open" if s.recv(1) else "refused")
except OSError as e:
    print("refused", type(e).__name__)
sys.stdout.flush()
