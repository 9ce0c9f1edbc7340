#!/usr/bin/env python3
"""Talk to a Shoal cluster from Python with nothing but the standard library.

Shoal's API is plain NATS request-reply with JSON bodies (PROTOCOL.md), so any NATS client in any
language works; this script speaks the NATS text protocol over a socket to show how little that
takes. With the official client (pip install nats-py) it is `await nc.request(subject, body)`.
It is a sketch (one request per connection, the body only as an argument): the example on a real
NATS client library is examples/go (shoal-go, on nats.go), which also reads bodies from files and
stdin and explains no responders and timeouts.

    python3 shoal_request.py nats://127.0.0.1:4222 shoal.v1.admin.collections.create '{"name": "docs", "dim": 3}'
    python3 shoal_request.py nats://127.0.0.1:4222 shoal.v1.docs.upsert '{"points": [{"id": "a", "vector": [1, 0, 0]}]}'
    python3 shoal_request.py nats://127.0.0.1:4222 shoal.v1.docs.search '{"vector": [1, 0, 0], "k": 3}'

Prints the reply body. A Shoal error comes back as {"error": {"code", "message"}} with the headers
Nats-Service-Error-Code and Nats-Service-Error; the script then prints it and exits with 1.
"""
import json
import socket
import sys
import uuid
from urllib.parse import urlparse


def read_line(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    return line.decode().rstrip("\r\n")


def request(url, subject, body, timeout=10.0):
    u = urlparse(url)
    sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=timeout)
    f = sock.makefile("rb")
    if not read_line(f).startswith("INFO "):
        raise ConnectionError("not a NATS server")
    connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "protocol": 1, "name": "shoal-python-example"}
    inbox = "_INBOX." + uuid.uuid4().hex
    payload = json.dumps(body).encode()
    sock.sendall(
        b"CONNECT " + json.dumps(connect).encode() + b"\r\n"
        + b"SUB " + inbox.encode() + b" 1\r\n"
        + b"PUB " + subject.encode() + b" " + inbox.encode() + b" " + str(len(payload)).encode() + b"\r\n" + payload + b"\r\n"
        + b"PING\r\n"
    )
    while True:
        line = read_line(f)
        if line == "PING":
            sock.sendall(b"PONG\r\n")
        elif line.startswith("-ERR"):
            raise ConnectionError(line)
        elif line.startswith("MSG "):
            size = int(line.split()[-1])
            data = f.read(size + 2)[:size]
            return {}, json.loads(data) if data else {}
        elif line.startswith("HMSG "):
            parts = line.split()
            hdr_len, total = int(parts[-2]), int(parts[-1])
            raw = f.read(total + 2)[:total]
            head, data = raw[:hdr_len].decode(), raw[hdr_len:]
            lines = head.split("\r\n")
            headers = dict(h.split(": ", 1) for h in lines[1:] if ": " in h)
            if " 503" in lines[0]:
                raise ConnectionError(f"no responders on {subject}: is a Shoal cluster running?")
            return headers, json.loads(data) if data else {}


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    headers, reply = request(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
    print(json.dumps(reply))
    if "error" in reply:
        print(f"status {headers.get('Nats-Service-Error-Code')}: {headers.get('Nats-Service-Error')}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
