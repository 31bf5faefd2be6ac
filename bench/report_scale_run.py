#!/usr/bin/python3
"""report_scale_run.py: run one command RUNS times, as a user runs it (a new
process each time, output to /dev/null), and print its wall time and CPU
time (user + system of the child, from wait4) as median and maximum in
milliseconds, on one line:

    median_wall_ms M max_wall_ms M median_cpu_ms M max_cpu_ms M

usage: report_scale_run.py RUNS COMMAND [ARG]...
Exit status 1 if a run failed (its stderr is shown).
"""
import os
import statistics
import subprocess
import sys
import time


def one(argv):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.monotonic() - t0) * 1000
    err = p.stderr.read()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        sys.exit(1)
    return wall, (ru.ru_utime + ru.ru_stime) * 1000


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    runs = int(sys.argv[1])
    walls, cpus = [], []
    for _ in range(runs):
        w, c = one(sys.argv[2:])
        walls.append(w)
        cpus.append(c)
    print("median_wall_ms %.1f max_wall_ms %.1f median_cpu_ms %.1f"
          " max_cpu_ms %.1f" % (statistics.median(walls), max(walls),
                                statistics.median(cpus), max(cpus)))


if __name__ == "__main__":
    main()
