"""Exits 0 when a Kafka broker at HOST PORT answers an ApiVersions (v0) request.

With a third argument CA (a PEM file) the connection is TLS, verified against that CA."""
import socket
import ssl
import struct
import sys

host, port = sys.argv[1], int(sys.argv[2])
client_id = b"streamsplit-ping"
body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
with socket.create_connection((host, port), timeout=2) as raw:
    sock = raw
    if len(sys.argv) > 3:
        sock = ssl.create_default_context(cafile=sys.argv[3]).wrap_socket(raw, server_hostname=host)
    sock.settimeout(2)
    sock.sendall(struct.pack(">i", len(body)) + body)
    header = sock.recv(8)
    if len(header) < 8 or struct.unpack(">i", header[4:8])[0] != 7:
        sys.exit(1)
