"""A loopback TCP proxy that limits the bytes it sends back to clients to RATE bits per second,
shared by all connections (one simulated link), for bench/delta.sh.

Usage: rate_proxy.py LISTEN_PORT UPSTREAM_HOST:PORT RATE_BITS_PER_SECOND
Prints "ready" once it listens.
"""
import socket
import sys
import threading
import time

listen_port, upstream, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 8
up_host, up_port = upstream.rsplit(":", 1)
lock = threading.Lock()
next_free = [time.monotonic()]


def pace(n):
    # Reserve n bytes of the link's time; sleep until they have "crossed" it.
    with lock:
        start = max(time.monotonic(), next_free[0])
        next_free[0] = start + n / rate
        done = next_free[0]
    delay = done - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def pipe(src, dst, limited):
    try:
        while True:
            data = src.recv(16384)
            if not data:
                break
            if limited:
                pace(len(data))
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client):
    upstream_sock = socket.create_connection((up_host, int(up_port)))
    threading.Thread(target=pipe, args=(client, upstream_sock, False), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream_sock, client, True), daemon=True).start()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
