#!/usr/bin/python3
"""Start a DNS server and time it until it answers: used by bench/compare.sh.

  compare_probe.py --port P --name NAME --rcode RCODE --log FILE -- CMD...

Runs CMD (stdout and stderr to FILE), then asks 127.0.0.1:P for NAME/A
every 2 ms until an answer with RCODE comes back. Prints "PID SECONDS"
(the time from exec to that answer) and leaves the server running; on
timeout or if the server exits, prints "PID fail" and exits 1.
"""

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import time

RCODES = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}


def query(name, qid):
    wire = b"".join(bytes([len(lb)]) + lb.encode()
                    for lb in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + \
        struct.pack("!HH", 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--rcode", default="NOERROR", choices=RCODES)
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()

    log = open(a.log, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(a.cmd, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", a.port))
    s.settimeout(0.002)
    while time.monotonic() - t0 < a.timeout and proc.poll() is None:
        qid = random.getrandbits(16)
        try:
            s.send(query(a.name, qid))
            while True:
                r = s.recv(4096)
                if len(r) >= 12 and struct.unpack("!H", r[:2])[0] == qid:
                    break
        except (socket.timeout, ConnectionRefusedError):
            continue
        if r[3] & 0x0f == RCODES[a.rcode]:
            print(proc.pid, "%.3f" % (time.monotonic() - t0))
            sys.stdout.flush()
            os._exit(0)     # leave the server running
        print("probe: %s answered rcode %d, want %s" %
              (a.name, r[3] & 0x0f, a.rcode), file=sys.stderr)
        break
    print(proc.pid, "fail")
    sys.stdout.flush()
    os._exit(1)


if __name__ == "__main__":
    main()
