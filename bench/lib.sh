# shellcheck shell=bash
# bench/lib.sh: what the bench scripts share, sourced by them (bash):
#
#   BENCH=$(cd "$(dirname "$0")" && pwd)
#   # shellcheck source=lib.sh
#   . "$BENCH/lib.sh"
#
# It only defines functions: nothing runs when it is sourced. Everything
# it starts listens on 127.0.0.1 only. Functions that start processes add
# their PIDs to the array PIDS, which bench_tmp's exit trap kills.

say() { printf '== [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# ---- the temporary directory and the processes in it ----

# bench_tmp PREFIX: make the temporary directory T (/tmp/PREFIX.XXXXXX,
# mode 755: a daemon started as root writes its log as nobody), start the
# array PIDS, and at exit kill those and remove T (kept, and said so, when
# KEEP is 1). Ctrl-C exits 130 through the same trap.
bench_tmp() {
	T=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$T"
	PIDS=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	# Children of this shell are waited for, so that none writes into T
	# while it is removed (the others are not ours to wait for).
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
}
# forget PID: a process waited for is gone: its PID must not be signalled
# again.
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# stop_pid PID: stop a server we started, and wait until it is gone (5 s,
# then SIGKILL).
stop_pid() {
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}

# free_port: a port free for both UDP and TCP on loopback, and not handed
# out before in this run (they are noted in T, when there is one: a $( )
# subshell cannot keep them in a variable).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if [ -n "${T:-}" ]; then
			grep -qx "$p" "$T/.ports" 2>/dev/null && continue
		fi
		[ -z "$(ss -Hantu "( sport = :$p )" 2>/dev/null)" ] || continue
		[ -n "${T:-}" ] && echo "$p" >>"$T/.ports"
		echo "$p"
		return
	done
}

# build_target DIR TARGET [MESON_ARGS...]: set up the build directory
# DIR (an absolute path) with MESON_ARGS if it is missing, build TARGET
# in it, and set BUILT to the program's path.
build_target() {
	local dir=$1 target=$2
	shift 2
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$ROOT" "$@" >/dev/null ||
		    die "meson setup $dir failed"
	fi
	ninja -C "$dir" "$target" >/dev/null ||
	    die "build failed (see ninja -C $dir)"
	BUILT=$dir/$target
}

# build_dnswarden DIR MESON-ARGS...: configure ROOT/DIR once with the
# arguments, build the daemon in it, and set DWBIN to it.
build_dnswarden() {
	local dir=$1
	shift
	build_target "$ROOT/$dir" resolver/dnswarden "$@"
	# shellcheck disable=SC2034  # for the script that sources this
	DWBIN=$BUILT
}

# ---- starting servers ----

# probe_start LOG PORT QNAME RCODE CPUS CMD...: run CMD pinned to CPUS
# (its output to LOG), timed by compare_probe.py (itself on CPU 1) until it
# answers QNAME/A with RCODE. Sets SPID and STARTUP_S (seconds from exec
# to that answer) and adds SPID to PIDS; on failure shows LOG's end and
# returns 1.
probe_start() {
	local log=$1 port=$2 qname=$3 rcode=$4 cpus=$5 line
	shift 5
	line=$(taskset -c 1 python3 "$BENCH/compare_probe.py" --port "$port" \
	    --name "$qname" --rcode "$rcode" --log "$log" -- \
	    taskset -c "$cpus" "$@") || true
	SPID=${line%% *}
	STARTUP_S=${line#* }
	[ -n "$SPID" ] && PIDS+=("$SPID")
	if [ "$STARTUP_S" = fail ] || [ -z "$SPID" ]; then
		tail -20 "$log" >&2
		return 1
	fi
}

# make_test_ca DIR: a CA made for the run (DIR/ca.pem, for the clients'
# tls_ca_file) and a key and certificate it signed for dot.bench.test
# (DIR/srv.key, DIR/srv.pem), P-256, valid two days.
make_test_ca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
	    -subj /CN=bench-ca 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/srv.key" -out "$d/srv.csr" \
	    -subj /CN=dot.bench.test 2>/dev/null
	printf 'subjectAltName=DNS:dot.bench.test\n' >"$d/ext"
	openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" \
	    -CAkey "$d/ca.key" -CAcreateserial -out "$d/srv.pem" -days 2 \
	    -extfile "$d/ext" 2>/dev/null
}

# nsd_conf DIR ZONE PORT [TLS_PORT [LINE...]]: write DIR/nsd.conf for an
# NSD that serves the zone ZONE from DIR/ZONE.zone on 127.0.0.1@PORT (UDP
# and TCP) and, with a TLS_PORT that is not "", over TLS on that port with
# the certificate make_test_ca made in DIR/tls. Its files stay in DIR (log
# DIR/nsd.log), it runs as the user that starts it, with no database and
# no response rate limiting (which would throttle a benchmark). Each LINE
# is one more setting under "server:".
nsd_conf() {
	local dir=$1 zone=$2 port=$3 tls=${4:-} line
	shift $(($# < 4 ? $# : 4))
	{
		echo "server:"
		echo "  ip-address: 127.0.0.1@$port"
		if [ -n "$tls" ]; then
			echo "  ip-address: 127.0.0.1@$tls"
			echo "  tls-port: $tls"
			echo "  tls-service-key: \"$dir/tls/srv.key\""
			echo "  tls-service-pem: \"$dir/tls/srv.pem\""
		fi
		cat <<EOF
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  # Not the system's /var/lib/nsd/nsd.db.
  database: ""
  zonesdir: "$dir"
  pidfile: "$dir/nsd.pid"
  zonelistfile: "$dir/nsd.zonelist"
  xfrdfile: "$dir/nsd.xfrd"
  xfrdir: "$dir"
  logfile: "$dir/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
EOF
		for line in "$@"; do
			echo "  $line"
		done
		cat <<EOF
remote-control:
  control-enable: no
zone:
  name: $zone
  zonefile: $zone.zone
EOF
	} >"$dir/nsd.conf"
}

# nsd_start DIR PORT QNAME: start NSD with DIR/nsd.conf in the background
# (its output appended to DIR/nsd.stderr) and wait until it answers QNAME
# on PORT; sets NSD_PID and adds it to PIDS.
nsd_start() {
	nsd -d -c "$1/nsd.conf" >>"$1/nsd.stderr" 2>&1 &
	NSD_PID=$!
	PIDS+=("$NSD_PID")
	/usr/bin/python3 "$BENCH/soak_client.py" wait --port "$2" --name "$3" \
	    --timeout 30 ||
	    { cat "$1/nsd.stderr" "$1/nsd.log" >&2; die "NSD did not start"; }
}

# dw_stats LOG PID: SIGUSR1 to the dnswarden PID, whose standard error
# goes to LOG, and print what it wrote there since, once its counters are
# all out (the last is log_rows_pending; 10 s at most).
dw_stats() {
	local off
	off=$(stat -c %s "$1")
	kill -USR1 "$2"
	for _ in $(seq 100); do
		# grep reads all (no -q): tail must not die of SIGPIPE.
		tail -c +$((off + 1)) "$1" |
		    grep 'stats: log_rows_pending' >/dev/null && break
		sleep 0.1
	done
	tail -c +$((off + 1)) "$1"
}

# ---- what a process and the machine used ----

# cpu_ticks PID: utime + stime of the whole process (all its threads, live
# and exited), in clock ticks: fields 14 and 15 of /proc/PID/stat, counted
# after the parenthesised command name, which may hold spaces.
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# thread_ticks PID: per-thread ticks as "TID:ticks TID:ticks ...", to see
# which threads did the work (the main thread's TID is the PID).
thread_ticks() {
	local f
	for f in /proc/"$1"/task/*; do
		sed 's/^.*) //' "$f/stat" 2>/dev/null |
		    awk -v t="${f##*/}" '{ printf "%s:%d ", t, $12 + $13 }'
	done
}

# times_ticks FILE: the CPU time (user + system) of a shell's reaped
# children, from the output of "times" in FILE, in clock ticks. "times"
# must run in the shell itself: a $( ) subshell has children of its own.
times_ticks() {
	awk -v hz="$(getconf CLK_TCK)" 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) {
			split($i, p, /[ms]/)
			t += p[1] * 60 + p[2]
		}
		printf "%d\n", t * hz
	}' "$1"
}

# udp_errors COUNTER...: the named counters of the whole UDP stack from
# /proc/net/snmp (RcvbufErrors: datagrams dropped for want of receive
# buffer space; SndbufErrors), on one line.
udp_errors() {
	awk -v want="$*" 'BEGIN { n = split(want, w, " ") }
	    /^Udp:/ && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
	    /^Udp:/ { for (i = 1; i <= n; i++)
		printf "%s%s", $c[w[i]], i < n ? " " : "\n" }' /proc/net/snmp
}

# port_drops PORT: datagrams the kernel dropped on the UDP sockets bound to
# PORT (a server's listeners) because a receive buffer was full: the last
# column of /proc/net/udp.
port_drops() {
	awk -v p="$(printf ':%04X' "$1")" 'substr($2, length($2) - 4) == p {
	    d += $NF } END { print d + 0 }' /proc/net/udp
}
