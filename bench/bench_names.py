"""Random blocked names for the bench generators (compare_gen.py,
soak_gen.py): shaped like the names of public blocklists, one to three
labels in front of a common top-level domain. The same random.Random
state gives the same names.
"""

TLDS = (["com"] * 10 + ["net"] * 3 + ["org"] * 2 +
        ["info", "ru", "de", "co.uk", "xyz", "top", "io", "com.br", "fr"])
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
FRONT = ["www", "ads", "cdn", "m", "mail", "api", "img", "static", "track"]


def label(rng, lo, hi):
    """A random label of lo to hi letters and digits."""
    return "".join(rng.choices(ALNUM, k=rng.randint(lo, hi)))


def blocked_name(rng):
    """A name to block: 60 % NAME.TLD, 30 % one of FRONT in front of it,
    10 % two random labels in front of it."""
    base = label(rng, 5, 14) + "." + rng.choice(TLDS)
    r = rng.random()
    if r < 0.6:
        return base
    if r < 0.9:
        return rng.choice(FRONT) + "." + base
    return label(rng, 2, 8) + "." + label(rng, 2, 10) + "." + base


def unique_names(rng, count, zone):
    """count distinct blocked names, none of them under zone (the upstream's
    zone, which must resolve)."""
    names, seen = [], set()
    while len(names) < count:
        n = blocked_name(rng)
        if n not in seen and not n.endswith(zone):
            seen.add(n)
            names.append(n)
    return names


def write_import_list(path, category, count):
    """A dnswarden blocklist at path: one category importing domains.txt
    (count names) from the same directory."""
    with open(path, "w") as f:
        f.write("categories:\n"
                "  - name: %s\n"
                "    description: generated list of %d names\n"
                "    import:\n"
                "      - { file: domains.txt, format: domains }\n"
                % (category, count))
