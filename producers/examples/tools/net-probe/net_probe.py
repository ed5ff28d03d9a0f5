"""Resolve a name and connect to host:port; say what happened; exit 1 if anything was refused."""

import socket
import sys

name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
refused = False
try:
    print(f"resolve {name}: {socket.getaddrinfo(name, 443)[0][4][0]}")
except OSError as exc:
    refused = True
    print(f"resolve {name}: refused ({exc})")
try:
    socket.create_connection((host, port), timeout=5).close()
    print(f"connect {host}:{port}: connected")
except OSError as exc:
    refused = True
    print(f"connect {host}:{port}: refused ({exc})")
sys.exit(1 if refused else 0)
