# Sourced by the scripts: install the Debian packages they need, once.
# Usage: deps_install PACKAGE...   (only missing ones are installed)

DEPS_BUILD="meson ninja-build pkg-config gcc libc6-dev libldns-dev libevent-dev
libyaml-dev libsqlite3-dev libssl-dev libcrypt-dev libjansson-dev libjs-chart.js libidn2-dev
libcurl4-openssl-dev libsystemd-dev libpq-dev"
# autoconf automake libtool: scripts/genreport.sh builds ISC's genreport.
# python3-cryptography: the tests' certificate authority; unbound: a DoT server.
# systemd-container: tests/systemd_boot.sh boots systemd with the unit.
# postgresql-15: the central log's tests start a real server (initdb, pg_ctl).
# groff-base mandoc: tests/manpages.sh renders and lints the man pages.
# python3-pytest-xdist: scripts/test.sh runs the e2e tests in 2 processes.
DEPS_TEST="sqlite3 nsd python3 python3-pytest python3-pytest-xdist python3-dnspython clang
libclang-rt-14-dev ldnsutils autoconf automake libtool python3-cryptography
unbound chromium chromium-driver python3-selenium python3-prometheus-client
systemd-container postgresql-15 groff-base mandoc"
DEPS_BENCH="dnsperf dnsmasq-base unbound linux-perf valgrind"

deps_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	# Package lists may be absent on a fresh machine.
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
	$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
	    >/dev/null || { echo "apt-get install failed" >&2; return 1; }
	# Debian starts a packaged server when it is installed; the tests and
	# benchmarks start their own on loopback, so stop the one this install
	# just started, and never a server that was already running here.
	for p in "${missing[@]}"; do
		case "$p" in
		nsd|unbound) pkill -x "$p" 2>/dev/null || true ;;
		esac
	done
}
