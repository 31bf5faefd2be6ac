#!/bin/bash
# systemd_boot.sh: dnswarden's unit under a real systemd, booted in a
# container (systemd-nspawn --volatile=yes over this machine's /usr, so no
# image to build). It checks what the stub-notify e2e tests cannot: that
# the unit as shipped refuses to start while another server holds its
# port (Type=notify: "systemctl start" fails) and stops restarting after
# its start limit; then that it starts (the sandbox, the user made by
# sysusers, StateDirectory), answers, reloads, fails "systemctl reload" on
# a broken blocklist while the old list stays in force and StatusText says
# "reload failed", stops cleanly; and that "systemd-analyze security"
# rates it at most 2.4 (the exposure before Type=notify and ctl reload).
# About 25 s, most of it the four restarts (RestartSec=2s) before the
# start limit. scripts/test.sh runs it (step 2b) when run as root; by hand:
#
#   tests/systemd_boot.sh [BUILDDIR]        (default: build)
#
# Prints one "PASS name" or "FAIL name" per check, exits 1 on any FAIL.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
for tool in systemd-nspawn python3; do
	command -v "$tool" >/dev/null ||
	    { echo "systemd_boot.sh: needs $tool (apt-get install systemd-container)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "systemd_boot.sh: run as root" >&2; exit 2; }
[ -x "$B/resolver/dnswarden" ] && [ -f "$B/dist/dnswarden.service" ] ||
    { echo "systemd_boot.sh: build $B first" >&2; exit 2; }

T=$(mktemp -d /tmp/systemd_boot.XXXXXX)
trap 'rm -rf "$T"' EXIT
# A free port below the ephemeral range (as tests/e2e/harness.py's
# free_port): the container binds it seconds later, and a port the kernel
# hands to any socket bound to port 0 (the end-to-end tests' queries, which
# scripts/test.sh runs beside this) could be taken by then.
PORT=$(python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for port in random.sample(range(10000, max(low, 20000)), 200):
    try:
        for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, typ) as s:
                s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
PY
)

# The root is a tmpfs: /etc, /opt, /var are the container's own.
mkdir -p "$T/system/multi-user.target.wants" "$T/out" "$T/dw" "$T/sysusers" \
    "$T/preset"
# The container boots for the first time (an empty /etc), so systemd
# applies the presets, and Debian's enable every unit: dnswarden would start
# at boot, before the probe wrote its configuration. The probe starts it.
echo "disable dnswarden.service" >"$T/preset/00-dnswarden.preset"
cp "$B/resolver/dnswarden" "$T/dw/dnswarden"
cp dist/dnswarden.sysusers "$T/sysusers/dnswarden.conf"
sed -e "s|^ExecStartPre=.*dnswarden |ExecStartPre=/opt/dw/dnswarden |" \
    -e "s|^ExecStart=.*dnswarden |ExecStart=/opt/dw/dnswarden |" \
    -e "s|^ExecReload=.*dnswarden |ExecReload=/opt/dw/dnswarden |" \
    -e "s| -c [^ ]*dnswarden.yaml| -c /etc/dnswarden/dnswarden.yaml|" \
    "$B/dist/dnswarden.service" >"$T/system/dnswarden.service"
cat >"$T/dw/sites.yaml" <<YAML
categories:
  - name: commercial-sex
    sites:
      - name: Example Escorts
        domains: [escorts.test]
YAML
cat >"$T/dw/dnswarden.yaml" <<YAML
server:
  listen: ["127.0.0.1:$PORT"]
  allow_clients: ["127.0.0.0/8"]
upstreams: ["127.0.0.1:9"]
blocklist:
  files: ["/etc/dnswarden/sites.yaml"]
log:
  database: "/var/lib/dnswarden/attempts.db"
YAML
cat >"$T/dw/query.py" <<'PY'
import socket, struct, sys
# A query for sys.argv[2] A; prints the rcode of the answer.
name = sys.argv[2]
q = struct.pack(">HHHHHH", 4711, 0x0100, 1, 0, 0, 0) + b"".join(
    bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
print(s.recv(512)[3] & 0xF)
PY
cat >"$T/dw/hold.py" <<'PY'
import os, signal, socket, sys
# Another server on the port (UDP and TCP): binds, then leaves a child
# holding the sockets and exits, so that the port is taken once this
# returns. Prints the child's pid.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", int(sys.argv[1])))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.bind(("127.0.0.1", int(sys.argv[1])))
t.listen(8)
pid = os.fork()
if pid:
    print(pid)
    sys.exit(0)
os.setsid()
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
while True:
    signal.pause()
PY
cat >"$T/probe.sh" <<PROBE
#!/bin/sh
# Runs inside the container, once it has booted.
o=/out/result
check() { if eval "\$2"; then echo "PASS \$1"; else echo "FAIL \$1"; fi >>\$o; }
mkdir -p /etc/dnswarden
cp /opt/dw/dnswarden.yaml /opt/dw/sites.yaml /etc/dnswarden/
chown root:dnswarden /etc/dnswarden/dnswarden.yaml /etc/dnswarden/sites.yaml
chmod 640 /etc/dnswarden/dnswarden.yaml /etc/dnswarden/sites.yaml
check user-from-sysusers "getent passwd dnswarden >/dev/null"
# Another server holds the port: start fails and the journal says why;
# the restarts stop after five starts (StartLimitBurst=5 in 60 s), and
# within the minute even a start by hand is refused ("Start request
# repeated too quickly") until "systemctl reset-failed".
holder=\$(python3 /opt/dw/hold.py $PORT)
check start-fails-port-taken "! systemctl start dnswarden"
check port-taken-in-journal "journalctl -u dnswarden -o cat --no-pager | grep -q 'cannot listen on 127.0.0.1:$PORT (udp): address already in use'"
# Polls systemd for the unit's ActiveState, for up to 60 s.
state_is() {
	end=\$((\$(date +%s) + 60))
	while [ \$(date +%s) -lt \$end ]; do
		[ "\$(systemctl show -p ActiveState --value dnswarden)" = "\$1" ] && return 0
		sleep 0.2
	done
	return 1
}
check crash-loop-stops "state_is failed"
journalctl -u dnswarden -o cat --no-pager | grep -c 'cannot listen on' >/out/starts
check five-starts "[ \$(cat /out/starts) = 5 ]"
check start-limit-in-journal "journalctl -u dnswarden -o cat --no-pager | grep -q 'Start request repeated too quickly'"
kill \$holder
# The port is free now: only the limit stops this start.
check start-refused-at-limit "! systemctl start dnswarden"
systemctl reset-failed dnswarden
check start "systemctl start dnswarden"
check active "systemctl is-active -q dnswarden"
check ready-status "systemctl show -p StatusText dnswarden | grep -q serving"
check blocks "[ \\\$(python3 /opt/dw/query.py $PORT www.escorts.test) = 3 ]"
check runs-as-dnswarden "[ \\\$(ps -o user= -p \\\$(systemctl show -p MainPID --value dnswarden)) = dnswarden ]"
check database-made "[ -s /var/lib/dnswarden/attempts.db ]"
check reload-ok "systemctl reload dnswarden"
check reload-ok-status "systemctl show -p StatusText --value dnswarden | grep -q reloaded"
printf 'categories:\n  - name: [broken\n' >/etc/dnswarden/sites.yaml
check reload-broken-fails "! systemctl reload dnswarden"
check reload-failed-status "systemctl show -p StatusText --value dnswarden | grep -q '^reload failed, running the previous configuration: /etc/dnswarden/sites.yaml:'"
check still-active "systemctl is-active -q dnswarden"
check old-list-kept "[ \\\$(python3 /opt/dw/query.py $PORT www.escorts.test) = 3 ]"
check stop "systemctl stop dnswarden"
check stopped-clean "[ \\\$(systemctl show -p Result --value dnswarden) = success ]"
journalctl -u dnswarden -o cat --no-pager >/out/journal 2>&1
systemd-analyze security dnswarden.service 2>/dev/null | tail -1 >/out/security
ls -la /etc/dnswarden /var/lib/dnswarden >/out/files 2>&1
systemctl poweroff
PROBE
chmod +x "$T/probe.sh"
cat >"$T/system/probe.service" <<UNIT
[Unit]
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/opt/probe.sh
UNIT
ln -s ../probe.service "$T/system/multi-user.target.wants/probe.service"

start=$(date +%s)
timeout 300 systemd-nspawn --volatile=yes -D / -b --console=pipe -q \
    --register=no --keep-unit \
    --bind="$T/system:/etc/systemd/system" --bind="$T/out:/out" \
    --bind-ro="$T/dw:/opt/dw" --bind-ro="$T/probe.sh:/opt/probe.sh" \
    --bind-ro="$T/sysusers:/etc/sysusers.d" \
    --bind-ro="$T/preset:/etc/systemd/system-preset" </dev/null >"$T/boot.log" 2>&1
echo "booted, tested and stopped in $(( $(date +%s) - start )) s"
if [ ! -s "$T/out/result" ]; then
	echo "FAIL boot: no result"; tail -20 "$T/boot.log"; exit 1
fi
cat "$T/out/result"
echo "systemd-analyze security: $(cat "$T/out/security" 2>/dev/null)"
echo "starts before the start limit: $(cat "$T/out/starts" 2>/dev/null)"
# The exposure level, a number from 0 to 10: no worse than 2.4.
exposure=$(grep -o 'dnswarden.service: [0-9.]*' "$T/out/security" 2>/dev/null | cut -d' ' -f2)
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.4) }'; then
	echo "PASS security-exposure-at-most-2.4" >>"$T/out/result"
	echo "PASS security-exposure-at-most-2.4"
else
	echo "FAIL security-exposure-at-most-2.4: '${exposure}'" >>"$T/out/result"
	echo "FAIL security-exposure-at-most-2.4: '${exposure}'"
fi
if grep -q '^FAIL' "$T/out/result"; then
	echo "--- journal of dnswarden.service"; cat "$T/out/journal"
	exit 1
fi
