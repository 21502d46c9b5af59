#!/usr/bin/env python3
"""`valkey-cli [-h HOST] [-p PORT] COMMAND ARG...`: one command, its reply printed (the stand-in
image's answer to compose.yaml's healthcheck, which runs `valkey-cli ping`)."""

import argparse
import socket
import sys

parser = argparse.ArgumentParser(add_help=False)
parser.add_argument("-h", dest="host", default="127.0.0.1")
parser.add_argument("-p", dest="port", type=int, default=6379)
parser.add_argument("command", nargs="+")
args = parser.parse_args()

request = f"*{len(args.command)}\r\n".encode()
for word in args.command:
    data = word.encode()
    request += b"$%d\r\n%s\r\n" % (len(data), data)
with socket.create_connection((args.host, args.port), timeout=2) as conn:
    conn.sendall(request)
    reply = conn.makefile("rb").readline().decode().rstrip("\r\n")
print(reply[1:])
sys.exit(1 if reply.startswith("-") else 0)
