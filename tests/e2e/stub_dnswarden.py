#!/usr/bin/python3
"""A stand-in for `dnswarden serve -c FILE`, used only by test_harness.py to
check the harness's process handling: it listens on server.listen (UDP and
TCP) and relays each query to the first upstream.

STUB_STDERR=text   print text to stderr at start (sanitizer report tests)
STUB_CRASH_ON_TERM=1   die of SIGSEGV on SIGTERM
"""

import os
import signal
import socket
import struct
import sys
import threading

import yaml


def parse_addr(s):
    if s.startswith("["):
        host, port = s[1:].split("]:")
        return socket.AF_INET6, host, int(port)
    host, port = s.rsplit(":", 1)
    return socket.AF_INET, host, int(port)


def relay(wire, upstream):
    fam, host, port = parse_addr(upstream)
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.sendto(wire, (host, port))
        try:
            return s.recv(65535)
        except OSError:
            return None


def serve_udp(sock, upstream):
    while True:
        wire, src = sock.recvfrom(65535)
        threading.Thread(target=lambda w=wire, a=src: (
            (lambda r: r and sock.sendto(r, a))(relay(w, upstream))), daemon=True).start()


def serve_tcp_conn(conn, upstream):
    with conn:
        while True:
            hdr = conn.recv(2, socket.MSG_WAITALL)
            if len(hdr) < 2:
                return
            wire = conn.recv(struct.unpack("!H", hdr)[0], socket.MSG_WAITALL)
            r = relay(wire, upstream)
            if r:
                conn.sendall(struct.pack("!H", len(r)) + r)


def serve_tcp(sock, upstream):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn, upstream), daemon=True).start()


def main():
    if sys.argv[1:2] != ["serve"] or "-c" not in sys.argv:
        sys.exit(2)
    cfg = yaml.safe_load(open(sys.argv[sys.argv.index("-c") + 1]))
    upstream = cfg["upstreams"][0]
    if os.environ.get("STUB_STDERR"):
        print(os.environ["STUB_STDERR"], file=sys.stderr, flush=True)

    def term(signum, frame):
        if os.environ.get("STUB_CRASH_ON_TERM"):
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGSEGV)
        os._exit(0)
    # The kernel hands a signal to any thread that does not block it: one
    # caught by a serving thread left signal.pause() in the main thread
    # asleep, and the stub past the harness's 10 s. So the threads are
    # made with SIGTERM and SIGINT blocked, and the main thread waits for
    # them with sigwait().
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    for a in cfg["server"]["listen"]:
        fam, host, port = parse_addr(a)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        t = socket.socket(fam, socket.SOCK_STREAM)
        for s in (u, t):
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        t.listen(16)
        threading.Thread(target=serve_udp, args=(u, upstream), daemon=True).start()
        threading.Thread(target=serve_tcp, args=(t, upstream), daemon=True).start()
    # The control socket comes after the DNS ports, as dnswarden makes it;
    # the harness waits for it to exist.
    ctl = cfg["server"].get("control_socket")
    if ctl not in (None, "off"):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.bind(ctl)
        c.listen(1)
    # As dnswarden does once ready; the harness waits for it.
    print("dnswarden: stub serving, 0 blocklist entries", file=sys.stderr, flush=True)
    term(signal.sigwait(stop), None)


if __name__ == "__main__":
    main()
