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
apt-get update -q >/dev/null 2>&1 || echo "system-deps: apt-get update reported errors; trying anyway" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/cf-apt.log 2>&1 \
    || { echo "system-deps: apt-get install failed, see /tmp/cf-apt.log" >&2; tail -5 /tmp/cf-apt.log >&2; exit 1; }
