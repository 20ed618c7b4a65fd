#!/usr/bin/env python3
"""CPU seconds of PostgreSQL and of the `postback` server during one bench command.

Usage: cpu.py POSTMASTER_PID COMMAND [ARGS...]

PostgreSQL's CPU is the postmaster's utime+stime+cutime+cstime (exited backends are counted in
cutime/cstime) plus its live children's utime+stime, read from /proc/PID/stat before and after
the command. The server's CPU is the last sample (every 0.2 s) of any `postback` process's own
utime+stime while the command runs: a lower bound, since the bench stops it at the end.
"""
import os
import subprocess
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name is in parentheses and may hold spaces: split after it.
        rest = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return utime, stime, cutime, cstime


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(entry))
        except OSError:
            continue
    return out


def postgres_cpu(pid):
    u, s, cu, cs = stat(pid)
    total = u + s + cu + cs
    for child in children(pid):
        try:
            cu_, cs_, _, _ = stat(child)
            total += cu_ + cs_
        except OSError:
            pass
    return total / TICK


def server_cpu(samples, stop):
    while not stop.is_set():
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != "postback":
                        continue
                u, s, _, _ = stat(int(entry))
                samples[int(entry)] = (u + s) / TICK
            except OSError:
                continue
        time.sleep(0.2)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    postmaster = int(sys.argv[1])
    before = postgres_cpu(postmaster)
    samples, stop = {}, threading.Event()
    sampler = threading.Thread(target=server_cpu, args=(samples, stop), daemon=True)
    sampler.start()
    status = subprocess.call(sys.argv[2:])
    stop.set()
    sampler.join()
    after = postgres_cpu(postmaster)
    print(f"postgresql cpu: {after - before:.2f} s")
    print(f"server cpu:     >= {sum(samples.values()):.2f} s ({len(samples)} process(es))")
    sys.exit(status)


if __name__ == "__main__":
    main()
