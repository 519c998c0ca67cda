#!/usr/bin/env python3
"""Prints the CPU (user + sys, reaped children included, in ms) of every process in the
target hosts' network namespaces, listed one per line (as `readlink /proc/PID/ns/net`
prints them) in NETNS_FILE: not the bastion, not the lab's router namespaces (where the
latency helper runs), not the tools. Differences of two readings taken around a tool's run
are the hosts' CPU for that run. Standard library only. Usage: hostcpu.py NETNS_FILE"""

import os
import sys

HZ = os.sysconf("SC_CLK_TCK")
with open(sys.argv[1]) as f:
    want = {line.strip() for line in f if line.strip()}
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        if os.readlink(f"/proc/{pid}/ns/net") not in want:
            continue
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    # utime, stime, cutime, cstime: fields 14-17 of stat(5); rest starts at field 3.
    total += sum(int(x) for x in rest[11:15])
print(total * 1000 // HZ)
