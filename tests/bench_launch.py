"""Run one command and write its own wall time, CPU time and peak RSS: ``python -I -S bench_launch.py REPORT CMD...``.

Why a launcher: Linux carries the peak RSS of a forking process into the child's ``ru_maxrss``
(the forked copy of the parent counts until ``exec`` replaces it), so a bench that forged the
images and holds them cannot fork ``vol`` itself and trust the figure. This script starts with
neither site packages nor the bench's data (a few MB), forks the command, reaps exactly that
pid with ``os.wait4`` and writes what the kernel accounted to that child alone. Standard
library only, run with ``-I -S`` so that it stays small.
"""

import json
import os
import sys
import time


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w") as out:
        json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
                   "exit": code}, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
