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
echo "system-deps: installing ${missing[*]}" >&2
for pkg in "${missing[@]}"; do
    case "$pkg" in *:i386) dpkg --print-foreign-architectures | grep -q i386 || dpkg --add-architecture i386 ;; esac
done
# Another apt (unattended-upgrades, a colleague's install) may hold the dpkg lock: wait for it,
# at most LOCK_WAIT seconds, instead of failing at once. Progress is shown (apt's own, one line
# per package) and kept in /tmp/cf-apt.log; Wine alone takes minutes to download and unpack.
LOCK_WAIT=${LOCK_WAIT:-600}
APT=(apt-get -o "DPkg::Lock::Timeout=$LOCK_WAIT" -o Dpkg::Progress-Fancy=0)
echo "system-deps: installing ${missing[*]} (a few minutes; waits up to ${LOCK_WAIT}s for a held dpkg lock)" >&2
"${APT[@]}" update -q >/tmp/cf-apt.log 2>&1 || echo "system-deps: apt-get update reported errors; trying anyway" >&2
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y --no-install-recommends "${missing[@]}" 2>&1 \
    | tee -a /tmp/cf-apt.log | grep -E --line-buffered "^(Get:|Unpacking|Setting up|E:)" | sed -u 's/^/  /' >&2
[ "${PIPESTATUS[0]}" = 0 ] \
    || { echo "system-deps: apt-get install failed, see /tmp/cf-apt.log" >&2; tail -5 /tmp/cf-apt.log >&2; exit 1; }
