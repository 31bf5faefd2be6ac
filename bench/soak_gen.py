#!/usr/bin/python3
"""Generate the inputs of bench/soak.sh into OUTDIR (never the repository).

  domains.txt        COUNT unique blocked names, domains format
  soak-list.yaml     a blocklist importing domains.txt
  soak.test.zone     the upstream's zone: wildcard A, AAAA, MX and TXT; a
                     wildcard below big.soak.test whose TXT answer (3 kB)
                     NSD truncates over UDP, so dnswarden retries it over
                     TCP; CNAMEs into blocked names (CNAME inspection)
  q-udp.txt          QUERIES lines "name TYPE" for dnsperf over UDP
  q-tcp.txt          QUERIES / 10 lines for dnsperf over TCP (other miss
                     names, so the two runs do not merely merge)
  names.json         names for the probes and the abuse sender

The query mix, per line, drawn at random (the same seed gives the same
files):
  hit      40 %  HITS fixed names h<i>.soak.test, A/AAAA/MX/TXT: after
                 their first query they are answered from the cache
  miss     30 %  names never used before, A/AAAA/MX/TXT: each goes to NSD
                 and enters the cache, which is far smaller than the
                 number of them, so entries are evicted all the time
  nodata    3 %  new names with a type the wildcard lacks (SRV, CAA,
                 HTTPS): NOERROR without answers, negatively cached
  big       1 %  new names under big.soak.test (TXT): upstream retry over
                 TCP, and a truncated answer to a UDP client without EDNS
  blocked  25 %  names from the generated list (half exactly, half below
                 one), from the sample list and the built-in dns-bypass
                 names, any type
  cname     1 %  fixed names whose CNAME leads into a blocked name
"""

import argparse
import json
import os
import random

import yaml

from bench_names import FRONT, label, unique_names, write_import_list

ZONE = "soak.test"
BYPASS = ["use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"]
HIT_TYPES = ["A"] * 10 + ["AAAA"] * 5 + ["MX"] * 2 + ["TXT"] * 3
BLOCKED_TYPES = ["A"] * 6 + ["AAAA"] * 3 + ["HTTPS", "MX", "TXT"]
NODATA_TYPES = ["SRV", "CAA", "HTTPS"]
CNAMES = 20
MIX = [("hit", 40), ("miss", 30), ("nodata", 3), ("big", 1),
       ("blocked", 25), ("cname", 1)]


def sample_domains(path):
    """The domains of a blocklist file that no allow: entry lets through."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    allow = [a.lower() for a in doc.get("allow") or []]
    out = []
    for cat in doc.get("categories") or []:
        for site in cat.get("sites") or []:
            for d in site.get("domains") or []:
                d = str(d).lower()
                if not any(d == a or d.endswith("." + a) for a in allow):
                    out.append(d)
    return out


def zone_text(cname_targets):
    txt = " ".join('"%s"' % (("t%02d-" % i) + "x" * 96) for i in range(30))
    lines = [
        "$ORIGIN %s." % ZONE,
        "$TTL 86400",
        "@ IN SOA ns hostmaster 1 3600 900 604800 300",
        "@ IN NS ns",
        "ns IN A 192.0.2.53",
        "* IN A 192.0.2.1",
        "* IN AAAA 2001:db8::1",
        "* IN MX 10 mail.%s." % ZONE,
        '* IN TXT "soak test" "v=spf1 -all"',
        # 30 strings of 100 bytes: over NSD's 1232-byte EDNS limit.
        "*.big IN TXT " + txt,
    ]
    for i, t in enumerate(cname_targets):
        lines.append("c%02d IN CNAME %s." % (i, t))
    return "\n".join(lines) + "\n"


class Mixer:
    def __init__(self, rng, names, sample, hits, prefix):
        self.rng = rng
        self.names = names
        self.sample = sample
        self.hits = hits
        self.prefix = prefix
        self.seq = 0
        self.kinds = [k for k, _ in MIX]
        self.weights = [w for _, w in MIX]

    def fresh(self):
        self.seq += 1
        return "%s%d-%s" % (self.prefix, self.seq, label(self.rng, 3, 8))

    def blocked(self):
        rng = self.rng
        r = rng.random()
        if r < 0.80:
            n = rng.choice(self.names)
        elif r < 0.95:
            n = rng.choice(self.sample)
        else:
            n = rng.choice(BYPASS)
        if rng.random() < 0.5:
            n = rng.choice(FRONT + [label(rng, 1, 6)]) + "." + n
        return n, rng.choice(BLOCKED_TYPES)

    def line(self):
        rng = self.rng
        kind = rng.choices(self.kinds, self.weights)[0]
        if kind == "hit":
            q = ("h%d.%s" % (rng.randrange(self.hits), ZONE),
                 rng.choice(HIT_TYPES))
        elif kind == "miss":
            q = ("%s.%s" % (self.fresh(), ZONE), rng.choice(HIT_TYPES))
        elif kind == "nodata":
            q = ("%s.%s" % (self.fresh(), ZONE), rng.choice(NODATA_TYPES))
        elif kind == "big":
            q = ("%s.big.%s" % (self.fresh(), ZONE), "TXT")
        elif kind == "cname":
            q = ("c%02d.%s" % (rng.randrange(CNAMES), ZONE), "A")
        else:
            q = self.blocked()
        return "%s %s\n" % q


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=100000,
                    help="generated blocklist entries")
    ap.add_argument("--queries", type=int, default=1000000,
                    help="lines of q-udp.txt")
    ap.add_argument("--hits", type=int, default=2000,
                    help="names answered from the cache")
    ap.add_argument("--sample", required=True,
                    help="the sample blocklist, for its domains")
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = a.outdir

    names = unique_names(rng, a.count, ZONE)
    with open(os.path.join(out, "domains.txt"), "w") as f:
        f.write("# generated by bench/soak_gen.py\n")
        f.writelines(n + "\n" for n in names)
    write_import_list(os.path.join(out, "soak-list.yaml"), "soak", len(names))
    sample = sample_domains(a.sample)
    targets = [rng.choice(names) for _ in range(CNAMES)]
    with open(os.path.join(out, "soak.test.zone"), "w") as f:
        f.write(zone_text(targets))

    for fname, count, prefix in (("q-udp.txt", a.queries, "m"),
                                 ("q-tcp.txt", a.queries // 10, "t")):
        mix = Mixer(rng, names, sample, a.hits, prefix)
        with open(os.path.join(out, fname), "w") as f:
            f.writelines(mix.line() for _ in range(count))

    with open(os.path.join(out, "names.json"), "w") as f:
        json.dump({
            "zone": ZONE,
            "hit": "h0.%s" % ZONE,
            "hits": ["h%d.%s" % (i, ZONE) for i in range(min(a.hits, 50))],
            "blocked": names[:50] + sample[:5] + BYPASS[:1],
            "cname": "c00.%s" % ZONE,
        }, f, indent=1)


if __name__ == "__main__":
    main()
