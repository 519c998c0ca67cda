#!/usr/bin/env python3
"""Summarizes one run of benches/fanout/run.sh: prints a Markdown table per N and writes
summary.json next to it. Standard library only. Usage: summarize.py RESULTS_DIR"""

import json
import os
import re
import sys


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def timefile(d, name):
    """/usr/bin/time -f '%e %U %S %M' output: wall s, user s, sys s, max RSS KiB; None if absent."""
    t = read(os.path.join(d, name + ".time"), "")
    for line in t.splitlines():
        parts = line.split()
        if len(parts) == 4 and re.match(r"^[0-9.]+$", parts[0]):
            return {
                "wall": float(parts[0]),
                "user": float(parts[1]),
                "sys": float(parts[2]),
                "maxrss_kb": int(parts[3]),
                "timed_out": "exit 124" in t,
            }
    return None


def cpu(d, name):
    v = read(os.path.join(d, name + ".cpu_ns"))
    return int(v) / 1e9 if v and v.strip().lstrip("-").isdigit() else None


def host_cpu(d, name):
    """The target hosts' CPU during a tool's run (ms, from hostcpu.py), in seconds."""
    v = read(os.path.join(d, name + ".host_ms"))
    return int(v) / 1000 if v and v.strip().lstrip("-").isdigit() else None


def throttle(d, name):
    v = read(os.path.join(d, name + ".throttle"), "").split()
    return (int(v[0]), int(v[1])) if len(v) == 2 else (None, None)


def rc_failed(d, name, hosts):
    ok = set()
    for line in read(os.path.join(d, name + ".rc"), "").splitlines():
        h, _, rc = line.partition(" ")
        if rc.strip() == "0":
            ok.add(h)
    return len(hosts) - len(ok & set(hosts))


def ansible_failed(d, hosts):
    ok = set()
    for line in read(os.path.join(d, "ansible.out"), "").splitlines():
        m = re.match(r"^(\S+) \| (CHANGED|SUCCESS) \|", line)
        if m:
            ok.add(m.group(1))
    return len(hosts) - len(ok & set(hosts))


def audit_failed(d, hosts):
    try:
        with open(os.path.join(d, "audit.json")) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return len(hosts)
    reached = {h["name"] for h in rep.get("hosts", []) if h.get("reachable")}
    return len(hosts) - len(reached & set(hosts))


def fmt(v, unit="s", digits=2):
    if v is None:
        return "–"
    return f"{v:.{digits}f} {unit}".strip()


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def one(d, n):
    hosts = read(os.path.join(d, "hosts"), "").split()
    r = json.loads(read(os.path.join(d, "rampart.out"), "{}") or "{}")
    tools = {}
    tools["rampart cold"] = {
        "wall": r.get("cold_ms", 0) / 1000 if r else None,
        "cpu": r.get("cold_cpu_ms", 0) / 1000 if r else None,
        "failed": r.get("cold_failed"),
        "throttle": throttle(d, "rampart"),
        "note": "fanout-collect: new connections; the process's own CPU during the phase",
        "host": r.get("cold_host_ms", 0) / 1000 if r else None,
    }
    tools["rampart warm"] = {
        "wall": r.get("warm_ms", 0) / 1000 if r else None,
        "cpu": r.get("warm_cpu_ms", 0) / 1000 if r else None,
        "failed": r.get("warm_failed"),
        "throttle": (None, None),
        "note": f"median of {r.get('warm_rounds')} rounds on held connections",
        "host": r.get("warm_host_ms", 0) / 1000 if r else None,
    }
    tools["rampart steady refresh"] = {
        "wall": r.get("steady_ms", 0) / 1000 if r and "steady_ms" in r else None,
        "cpu": r.get("steady_cpu_ms", 0) / 1000 if r and "steady_ms" in r else None,
        "failed": r.get("steady_failed"),
        "throttle": (None, None),
        "note": f"incremental refresh of unchanged hosts, {r.get('steady_execs')} execs",
        "host": r.get("steady_host_ms", 0) / 1000 if r and "steady_ms" in r else None,
    }
    at = timefile(d, "audit")
    tools["rampart audit"] = {
        "wall": at and at["wall"],
        "cpu": cpu(d, "audit"),
        "failed": audit_failed(d, hosts),
        "throttle": throttle(d, "audit"),
        "note": "`rampart audit` end to end, cold",
        "host": host_cpu(d, "audit"),
    }
    an = timefile(d, "ansible")
    tools["ansible"] = {
        "wall": an and an["wall"],
        "cpu": cpu(d, "ansible"),
        "failed": ansible_failed(d, hosts),
        "throttle": throttle(d, "ansible"),
        "note": "ad-hoc shell, forks 50, pipelining, ControlPersist, ProxyJump",
        "host": host_cpu(d, "ansible"),
    }
    ss = timefile(d, "ssh")
    tools["ssh -J, xargs -P"] = {
        "wall": ss and ss["wall"],
        "cpu": cpu(d, "ssh"),
        "failed": rc_failed(d, "ssh", hosts),
        "throttle": throttle(d, "ssh"),
        "note": "one ssh -J per host, 50 at a time",
        "host": host_cpu(d, "ssh"),
    }
    fl = timefile(d, "floor")
    tools["floor (ssh, warm mux)"] = {
        "wall": fl and fl["wall"],
        "cpu": cpu(d, "floor"),
        "failed": rc_failed(d, "floor", hosts),
        "throttle": throttle(d, "floor"),
        "note": "one command per host over open ControlMaster connections",
        "host": host_cpu(d, "floor"),
    }
    extra = {
        "peak_rss_mb": r.get("peak_rss_kb", 0) / 1024 if r else None,
        "audit_peak_rss_mb": at and at["maxrss_kb"] / 1024,
        "exec_channels": r.get("exec_channels"),
        # cold, warm rounds, one full incremental round, as many steady rounds
        "rounds": 2 + 2 * (r.get("warm_rounds") or 0) if r and "steady_ms" in r else 1 + (r.get("warm_rounds") or 0),
        "lab_up_s": (read(os.path.join(d, "lab-up.time"), "") or "").strip(),
        "latency": (read(os.path.join(d, "latency.txt"), "") or "").strip(),
        "sshd": (read(os.path.join(d, "edge-sshd-limits.txt"), "") or "").strip(),
    }
    return {"n": n, "hosts": len(hosts), "tools": tools, "extra": extra}


def table(res):
    t = res["tools"]
    cold = t["rampart audit"]
    cold_c = t["rampart cold"]
    warm = t["rampart warm"]
    out = [
        f"### N = {res['n']} hosts behind the bastion",
        "",
        "| tool | wall | controller CPU | hosts' CPU per host | failed hosts | MaxStartups throttling / drop connection lines | rampart audit ÷ tool (wall, CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in t.items():
        thr = v["throttle"]
        thr_s = "–" if thr[0] is None else f"{thr[0]} / {thr[1]}"
        if name in ("ansible", "ssh -J, xargs -P", "floor (ssh, warm mux)"):
            rr = f"{ratio(cold['wall'], v['wall'])}, {ratio(cold['cpu'], v['cpu'])}"
        else:
            rr = ""
        hc = v.get("host")
        per_host = hc * 1000 / res["hosts"] if hc is not None and res["hosts"] else None
        out.append(
            f"| {name} | {fmt(v['wall'])} | {fmt(v['cpu'])} | {fmt(per_host, 'ms', 1)} | "
            f"{'–' if v['failed'] is None else v['failed']} | {thr_s} | {rr} |"
        )
    fl = t["floor (ssh, warm mux)"]
    e = res["extra"]
    out += [
        "",
        f"- rampart cold (collection only) ÷ floor, wall: {ratio(cold_c['wall'], fl['wall'])}; "
        f"warm ÷ floor, wall: {ratio(warm['wall'], fl['wall'])}, CPU: {ratio(warm['cpu'], fl['cpu'])}",
        f"- rampart peak RSS: {fmt(e['peak_rss_mb'], 'MB', 1)} (fanout-collect, "
        f"{e['rounds']} collections in one process); `rampart audit`: {fmt(e['audit_peak_rss_mb'], 'MB', 1)}",
        f"- exec channels opened by rampart: {e['exec_channels']} for {e['rounds']} collections of {res['hosts']} hosts",
        f"- latency: {e['latency'].replace(chr(10), '; ')}; bastion sshd: {e['sshd'].replace(chr(10), ', ')}",
        f"- lab up --hosts {res['n']}: {e['lab_up_s']} s",
        "",
    ]
    return "\n".join(out)


def main():
    root = sys.argv[1]
    results = []
    for name in sorted(os.listdir(root), key=lambda s: (len(s), s)):
        m = re.match(r"^n(\d+)$", name)
        if m:
            results.append(one(os.path.join(root, name), int(m.group(1))))
    print((read(os.path.join(root, "machine.txt"), "") or "").strip().replace("\n", "  \n"))
    print()
    for r in results:
        print(table(r))
    cap = os.path.join(root, "capture")
    if os.path.isdir(cap):
        try:
            with open(os.path.join(cap, "tcpdump-hyperfine.json")) as f:
                mean = json.load(f)["results"][0]["mean"]
            pk = int((read(os.path.join(cap, "packets"), "0") or "0").strip())
            print(f"tcpdump -r FILE -w /dev/null on the lab capture: {pk} packets, "
                  f"{mean * 1000:.1f} ms, {pk / mean / 1e6:.2f} M packets/s")
        except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError):
            pass
    with open(os.path.join(root, "summary.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
