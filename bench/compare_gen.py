#!/usr/bin/python3
"""Generate the inputs of bench/compare.sh into OUTDIR (never the repository).

  domains.txt           COUNT unique blocked names, domains format
  blocklist.yaml        a dnswarden blocklist importing domains.txt
  dnsmasq-block.conf    the same names as dnsmasq "address=/name/" lines
  unbound-block.conf    the same names as Unbound local-zone always_nxdomain
  bench.test.zone       the upstream's zone: a wildcard A with a long TTL
  q-hit.txt             HITS names under bench.test (replayed: cache hits)
  q-blocked.txt         BLOCKED queries: half listed names, half names below
                        a listed one (www.NAME, x7.NAME, ...)
  probe-names.txt       a blocked name and a hit name for start-up probes

Cache-miss and burst query files are made per server by compare.sh, so
each server sees names it was never asked before.

The blocked names are random but shaped like those of public lists: one
to three labels in front of a common top-level domain, never under
bench.test. The same seed gives the same files.
"""

import argparse
import os
import random

from bench_names import FRONT, label, unique_names, write_import_list

ZONE = "bench.test"


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--hits", type=int, default=10000)
    ap.add_argument("--blocked", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=6)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = a.outdir

    # Every list must hold exactly COUNT distinct entries.
    names = unique_names(rng, a.count, ZONE)
    write_lines(os.path.join(out, "domains.txt"), names)
    write_lines(os.path.join(out, "dnsmasq-block.conf"),
                ("address=/%s/" % n for n in names))
    write_lines(os.path.join(out, "unbound-block.conf"),
                ('local-zone: "%s." always_nxdomain' % n for n in names))
    write_import_list(os.path.join(out, "blocklist.yaml"), "bench", len(names))
    with open(os.path.join(out, "bench.test.zone"), "w") as f:
        f.write("$ORIGIN %s.\n$TTL 86400\n"
                "@ IN SOA ns hostmaster 1 3600 900 604800 86400\n"
                "@ IN NS ns\nns IN A 192.0.2.53\n"
                "* IN A 192.0.2.1\n" % ZONE)

    write_lines(os.path.join(out, "q-hit.txt"),
                ("w%05d.%s A" % (i, ZONE) for i in range(a.hits)))
    queries = []
    for i in range(a.blocked):
        n = rng.choice(names)
        if i % 2:
            n = rng.choice(FRONT + [label(rng, 1, 6)]) + "." + n
        queries.append(n + " A")
    write_lines(os.path.join(out, "q-blocked.txt"), queries)
    write_lines(os.path.join(out, "probe-names.txt"),
                ["www." + names[0], "w00000." + ZONE])


if __name__ == "__main__":
    main()
