#!/usr/bin/env bash
# Install the Debian packages named on the command line when they are missing.
# As root on Debian it installs them (an index that fails to refresh is not fatal: the
# packages are usually still reachable); otherwise it prints what is missing and goes on,
# and the tests that need them skip with that reason.
set -u
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "system-deps: missing ${missing[*]} (run as root on Debian to install them)" >&2
    exit 0
fi
for pkg in "${missing[@]}"; do
    case "$pkg" in *:i386) dpkg --print-foreign-architectures | grep -q i386 || dpkg --add-architecture i386 ;; esac
done
# Another apt (unattended-upgrades, a colleague's install) may hold the dpkg lock: wait for it,
# at most LOCK_WAIT seconds, instead of failing at once, and say so while waiting. Progress is
# shown (apt's own, one line per package fetched, unpacked and set up) and the whole transcript
# kept in APT_LOG; Wine alone takes minutes to download and unpack.
LOCK_WAIT=${LOCK_WAIT:-600}
APT_LOG=${APT_LOG:-/tmp/cf-apt.log}
APT=(apt-get -o "DPkg::Lock::Timeout=$LOCK_WAIT" -o Dpkg::Progress-Fancy=0)
SHOWN='^(Get:|Unpacking|Setting up|E:|W: Failed|Waiting for cache lock)'
# apt repeats "Waiting for cache lock: ... held by process N" every second: show it once.
# (A read loop, not awk: mawk buffers a pipe's input and would show the wait only once it ended.)
show() {
    local line last=""
    grep -E --line-buffered "$SHOWN" | while IFS= read -r line; do
        [ "$line" = "$last" ] || echo "  $line" >&2
        last=$line
    done
}
echo "system-deps: installing ${missing[*]} (a few minutes; waits up to ${LOCK_WAIT}s for a held dpkg lock)" >&2
echo "system-deps: refreshing the package index (apt-get update)" >&2
"${APT[@]}" update -q 2>&1 | tee "$APT_LOG" | show
[ "${PIPESTATUS[0]}" = 0 ] || echo "system-deps: apt-get update reported errors; trying anyway" >&2
echo "system-deps: downloading and unpacking" >&2
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y --no-install-recommends "${missing[@]}" 2>&1 \
    | tee -a "$APT_LOG" | show
[ "${PIPESTATUS[0]}" = 0 ] \
    || { echo "system-deps: apt-get install failed, see $APT_LOG" >&2; tail -5 "$APT_LOG" >&2; exit 1; }
echo "system-deps: installed ${missing[*]}" >&2
