#!/usr/bin/env bash
# The fan-out benchmark: rampart against tuned Ansible and plain OpenSSH, on the same scale
# lab, in the same run. See docs/benchmarks.md.
#
#   sudo dev/sandbox bench benches/fanout/run.sh            # N = 10 50 200
#   sudo dev/sandbox bench benches/fanout/run.sh 10 50      # other sizes
#
# On a fresh Debian 12 machine it installs what it needs: hyperfine, GNU time, tcpdump and
# iptables from Debian, ansible-core from PyPI into a venv under benches/fanout/.venv. It
# builds rampart and the bench helpers in release mode, takes the lab test lock exclusively
# (the same file tests/common uses), brings up N light hosts behind the bastion, adds the
# latency, runs every tool, and puts everything back (lab at --hosts 0, no delay rules, no
# cgroups, no leftover ssh masters) on exit, also when interrupted.
#
# Results: benches/fanout/results/STAMP/ (summary.md, summary.json, per-tool raw files).
# Environment: RAMPART_BENCH_OUT (results dir), FORKS (50), WARM_ROUNDS (3),
# BASTION_DELAY_US (1000), TARGET_DELAY_US (5000), TOOL_TIMEOUT (300 s per tool run),
# COMMAND_TIMEOUT (rampart's [transport] command_timeout_secs in the bench inventory, 120),
# FANOUT_PROFILE (release). Run it in a sandbox: dev/sandbox NAME benches/fanout/run.sh.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10 50 200)
FORKS=${FORKS:-50}
WARM_ROUNDS=${WARM_ROUNDS:-3}
BASTION_DELAY_US=${BASTION_DELAY_US:-1000}
TARGET_DELAY_US=${TARGET_DELAY_US:-5000}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-300}
COMMAND_TIMEOUT=${COMMAND_TIMEOUT:-120}
OUT=${RAMPART_BENCH_OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
STATE=${XDG_STATE_HOME:-$HOME/.local/state}/rampart/lab
LOCK=${TMPDIR:-/tmp}/rampart-lab-tests.lock
CG=/sys/fs/cgroup/cpuacct
Q_BASTION=7701
Q_TARGETS=7702

say() { printf '[fanout %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (the lab is namespaces, links and mounts)"
# The hosts' CPU is read from /proc: the lab must be this PID namespace's own, and the run
# must not touch the machine's root namespace. Run it in a sandbox: dev/sandbox NAME run.sh.
[ -n "${RAMPART_SANDBOX:-}" ] || [ -n "${FANOUT_ALLOW_ROOT_NS:-}" ] ||
	die "run inside a sandbox: dev/sandbox NAME benches/fanout/run.sh (or set FANOUT_ALLOW_ROOT_NS=1)"
[ -d "$CG" ] || die "$CG missing: controller CPU is read from a cpuacct cgroup per tool"
mkdir -p "$OUT"

# --- what the benchmark needs --------------------------------------------------------------
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v iptables >/dev/null || need+=(iptables)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
VENV=$HERE/.venv
if [ ! -x "$VENV/bin/ansible" ]; then
	say "installing ansible-core from PyPI into $VENV"
	/usr/bin/python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q 'ansible-core>=2.17,<2.19'
fi
# FANOUT_PROFILE=dev measures a debug build (controller figures are then not comparable).
PROFILE=${FANOUT_PROFILE:-release}
say "building rampart and the bench helpers ($PROFILE, $CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build -q --profile "$PROFILE" --bin rampart --example fanout-collect \
	--example fanout-probe-script --example fanout-netdelay --example fanout-probe-cost)
BIN=$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
RAMPART=$BIN/rampart
"$BIN/examples/fanout-probe-script" >"$OUT/script.sh"

# --- the lab, exclusively ------------------------------------------------------------------
exec 9>"$LOCK"
say "waiting for the lab lock $LOCK (exclusive)"
flock -x -w 1800 9 || die "lab lock busy for 30 min"

DELAY_PIDS=()
cleanup() {
	set +e
	say "cleaning up"
	iptables -t mangle -D OUTPUT -o rpl-up -j NFQUEUE --queue-num $Q_BASTION --queue-bypass 2>/dev/null
	ip netns exec rpl-core iptables -t mangle -D POSTROUTING -o br-fleet \
		-j NFQUEUE --queue-num $Q_TARGETS --queue-bypass 2>/dev/null
	for p in "${DELAY_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${CP:-}" ] && rm -rf "$CP"
	for d in "$CG"/rampart-bench-*; do
		[ -d "$d" ] || continue
		for p in $(cat "$d/cgroup.procs"); do kill "$p" 2>/dev/null; done
		sleep 0.2
		rmdir "$d" 2>/dev/null
	done
	"$RAMPART" lab up --hosts 0 >"$OUT/lab-restore.log" 2>&1 || say "lab up --hosts 0 failed: see $OUT/lab-restore.log"
	flock -u 9
}
trap cleanup EXIT
trap 'exit 130' INT TERM

edge_holder() { cat "$STATE/hosts/edge/holder.pid"; }
edge_log() { echo "/proc/$(edge_holder)/root/var/log/auth.log"; }

add_delay() {
	# netem would do this, but this kernel has no sch_netem; see benches/fanout/netdelay.rs.
	if [ ${#DELAY_PIDS[@]} -eq 0 ]; then
		"$BIN/examples/fanout-netdelay" $Q_BASTION "$BASTION_DELAY_US" &
		DELAY_PIDS+=($!)
		ip netns exec rpl-core "$BIN/examples/fanout-netdelay" $Q_TARGETS "$TARGET_DELAY_US" &
		DELAY_PIDS+=($!)
		sleep 0.5
	fi
	iptables -t mangle -C OUTPUT -o rpl-up -j NFQUEUE --queue-num $Q_BASTION --queue-bypass 2>/dev/null ||
		iptables -t mangle -A OUTPUT -o rpl-up -j NFQUEUE --queue-num $Q_BASTION --queue-bypass
	ip netns exec rpl-core iptables -t mangle -C POSTROUTING -o br-fleet \
		-j NFQUEUE --queue-num $Q_TARGETS --queue-bypass 2>/dev/null ||
		ip netns exec rpl-core iptables -t mangle -A POSTROUTING -o br-fleet \
			-j NFQUEUE --queue-num $Q_TARGETS --queue-bypass
}

# TCP connect time (one round trip) from $1's netns to $2:22, median of 5, in ms.
connect_rtt() {
	ip netns exec "$1" /usr/bin/python3 -c '
import socket, sys, time
t = []
for _ in range(5):
    s = socket.socket(); a = time.perf_counter(); s.connect((sys.argv[1], 22)); t.append(time.perf_counter() - a); s.close()
print("%.2f" % (sorted(t)[2] * 1000))' "$2"
}

{
	echo "date: $(date -Is)"
	echo "nproc: $(nproc)"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
	echo "memory: $(free -h | awk '/^Mem:/{print $2}')"
	echo "kernel: $(uname -r)"
	echo "uptime: $(uptime)"
	echo "openssh: $(ssh -V 2>&1)"
	echo "ansible: $("$VENV/bin/ansible" --version 2>/dev/null | sed -n 1p)"
	echo "rampart: $(git -C "$ROOT" rev-parse --short HEAD) ($PROFILE build)"
} >"$OUT/machine.txt"

# --- one tool run in its own cpuacct cgroup -------------------------------------------------
# Controller CPU is the cgroup's: the tool and every process it starts, also the ssh masters
# that ControlPersist daemonizes (they escape /usr/bin/time's wait-based accounting).
cg_new() { local d="$CG/rampart-bench-$1"; mkdir -p "$d"; echo "$d"; }
cg_ns() { cat "$1/cpuacct.usage"; }
cg_drop() {
	local d=$1 p
	for p in $(cat "$d/cgroup.procs"); do kill "$p" 2>/dev/null; done
	sleep 0.2
	rmdir "$d" 2>/dev/null || true
}
# cg_run CGDIR NAME CMD...: runs CMD in CGDIR under /usr/bin/time, bounded by TOOL_TIMEOUT.
# The hosts' CPU (every target's processes, from /proc accounting; hostcpu.py) goes to
# $D/NAME.host_ms.
cg_run() {
	local d=$1 name=$2 h0
	shift 2
	h0=$(hosts_ms)
	(
		echo "$BASHPID" >"$d/cgroup.procs"
		exec timeout "$TOOL_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$D/$name.time" "$@"
	) >"$D/$name.out" 2>"$D/$name.err" || echo "exit $?" >>"$D/$name.time"
	sleep 0.3
	echo $(($(hosts_ms) - h0)) >"$D/$name.host_ms"
}
hosts_ms() { /usr/bin/python3 "$HERE/hostcpu.py" "$D/targets.netns"; }
log_mark() { wc -l <"$(edge_log)"; }
# log_count FROM NAME: bastion sshd lines about MaxStartups since line FROM.
log_count() {
	local from=$1 name=$2
	tail -n +"$((from + 1))" "$(edge_log)" >"$D/$name.edge-auth.log"
	printf '%s %s\n' \
		"$(grep -c 'MaxStartups throttling' "$D/$name.edge-auth.log" || true)" \
		"$(grep -c 'drop connection' "$D/$name.edge-auth.log" || true)" >"$D/$name.throttle"
}
settle() { sleep 3; }

SCRIPT_TEXT=$(cat "$OUT/script.sh")
CFG=$STATE/ssh_config

for N in "${SIZES[@]}"; do
	D=$OUT/n$N
	mkdir -p "$D"
	say "N=$N: lab up --hosts $N"
	/usr/bin/time -f '%e' -o "$D/lab-up.time" "$RAMPART" lab up --hosts "$N" >"$D/lab-up.log" 2>&1 ||
		die "lab up --hosts $N failed: $D/lab-up.log"
	add_delay
	nsenter --target "$(edge_holder)" --mount --net --uts /usr/sbin/sshd -T 2>/dev/null |
		grep -iE '^(maxstartups|maxsessions|loglevel) ' >"$D/edge-sshd-limits.txt"
	HOSTS=$(awk '/^Host s[0-9]+$/{print $2}' "$CFG" | head -n "$N")
	printf '%s\n' $HOSTS >"$D/hosts"
	[ "$(wc -l <"$D/hosts")" = "$N" ] || die "ssh_config lists $(wc -l <"$D/hosts") scale hosts, want $N"
	# The targets' network namespaces: their processes are the hosts' CPU.
	for h in $HOSTS; do readlink "/proc/$(cat "$STATE/hosts/$h/holder.pid")/ns/net"; done >"$D/targets.netns"
	first=$(head -1 "$D/hosts")
	first_addr=$(awk -v h="$first" '$1=="Host"{c=($2==h)} c&&$1=="HostName"{print $2; exit}' "$CFG")
	{
		echo "edge connect ms (from root): $(/usr/bin/python3 -c '
import socket, time
t = []
for _ in range(5):
    s = socket.socket(); a = time.perf_counter(); s.connect(("10.77.0.10", 22)); t.append(time.perf_counter() - a); s.close()
print("%.2f" % (sorted(t)[2] * 1000))')"
		echo "$first connect ms (from edge): $(connect_rtt rpl-edge "$first_addr")"
	} >"$D/latency.txt"
	say "N=$N: $(tr '\n' ';' <"$D/latency.txt")"

	# Inventory for rampart: the bastion and the N targets behind it.
	{
		printf '[defaults]\nuser = "root"\nbastion = "edge"\n'
		printf 'identity_files = ["%s"]\nknown_hosts = ["%s"]\n\n' "$STATE/id_ed25519" "$STATE/known_hosts"
		# Every lab host runs on this machine's cores: N probe scripts at once take about N
		# times as long each, so the default 20 s command timeout would fail every host at
		# N=200 (docs/benchmarks.md). COMMAND_TIMEOUT=20 measures that.
		printf '[transport]\ncommand_timeout_secs = %s\n\n' "$COMMAND_TIMEOUT"
		printf '[[host]]\nname = "edge"\naddress = "10.77.0.10"\nroles = ["bastion"]\nbastion = "none"\n'
		awk -v want="$N" '$1=="Host" && $2 ~ /^s[0-9]+$/ {h=$2} $1=="HostName" && h!="" && n<want {printf "\n[[host]]\nname = \"%s\"\naddress = \"%s\"\n", h, $2; h=""; n++}' "$CFG"
	} >"$D/inventory.toml"
	# Inventory and configuration for Ansible, tuned as a user would tune it.
	{
		echo "[targets]"
		cat "$D/hosts"
		printf '\n[targets:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n'
	} >"$D/ansible-inventory.ini"
	# Control sockets live under a short path: a Unix socket path has at most 107 bytes.
	CP=$(mktemp -d /tmp/rfb.XXXXXX)
	mkdir -p "$CP/a" "$CP/f"
	cat >"$D/ansible.cfg" <<-EOF
		[defaults]
		forks = $FORKS
		host_key_checking = True
		timeout = 30
		interpreter_python = /usr/bin/python3
		[ssh_connection]
		pipelining = True
		ssh_args = -F $CFG -o ControlMaster=auto -o ControlPersist=60s
		control_path_dir = $CP/a
		control_path = %(directory)s/%%C
	EOF
	# The probe script as an unsafe (never templated) variable: it holds `{#` and friends.
	{
		printf 'probe: !unsafe |\n'
		sed 's/^/  /' "$OUT/script.sh"
	} >"$D/ansible-vars.yml"

	# (a) rampart: cold, then warm rounds on held connections, in one process.
	settle
	m=$(log_mark)
	cg=$(cg_new "rampart-$N")
	cg_run "$cg" rampart env TARGETS_NETNS="$D/targets.netns" "$BIN/examples/fanout-collect" \
		"$D/inventory.toml" "$WARM_ROUNDS"
	cg_ns "$cg" >"$D/rampart.cpu_ns"
	cg_drop "$cg"
	log_count "$m" rampart
	say "N=$N: rampart $(cat "$D/rampart.out")"

	# (a') rampart audit, the product's own command, cold, end to end (start, collect, check, report).
	settle
	m=$(log_mark)
	cg=$(cg_new "audit-$N")
	cg_run "$cg" audit "$RAMPART" audit -i "$D/inventory.toml" --hosts 's*' --format json \
		-o "$D/audit.json" --no-history
	cg_ns "$cg" >"$D/audit.cpu_ns"
	cg_drop "$cg"
	log_count "$m" audit
	say "N=$N: audit $(cat "$D/audit.time" | tr '\n' ' ')"

	# (b) Ansible ad-hoc, cold (fresh ControlPersist directory), the same script.
	settle
	m=$(log_mark)
	cg=$(cg_new "ansible-$N")
	cg_run "$cg" ansible env ANSIBLE_CONFIG="$D/ansible.cfg" ANSIBLE_NOCOLOR=1 \
		"$VENV/bin/ansible" targets -i "$D/ansible-inventory.ini" -o -m shell \
		-e "@$D/ansible-vars.yml" -a '{{ probe }}'
	cg_ns "$cg" >"$D/ansible.cpu_ns"
	for s in "$CP"/a/*; do if [ -S "$s" ]; then ssh -o ControlPath="$s" -O exit dummy 2>/dev/null || true; fi; done
	cg_drop "$cg"
	log_count "$m" ansible
	say "N=$N: ansible $(cat "$D/ansible.time" | tr '\n' ' ')"

	# (c) plain OpenSSH: ssh -J through the bastion, xargs -P, the same script.
	cat >"$D/ssh-one.sh" <<-EOF
		#!/bin/sh
		ssh -F "$CFG" -J edge -o ControlMaster=no -o ControlPath=none "\$1" "\$(cat "$OUT/script.sh")" \\
			>"$D/ssh-out/\$1.out" 2>"$D/ssh-out/\$1.err"
		echo "\$1 \$?" >>"$D/ssh.rc"
	EOF
	chmod +x "$D/ssh-one.sh"
	mkdir -p "$D/ssh-out"
	: >"$D/ssh.rc"
	settle
	m=$(log_mark)
	cg=$(cg_new "ssh-$N")
	cg_run "$cg" ssh xargs -P "$FORKS" -n 1 "$D/ssh-one.sh" <"$D/hosts"
	cg_ns "$cg" >"$D/ssh.cpu_ns"
	cg_drop "$cg"
	log_count "$m" ssh
	say "N=$N: ssh -J $(cat "$D/ssh.time" | tr '\n' ' ')"

	# (d) the floor: OpenSSH over already-open multiplexed connections, one command per host.
	mkdir -p "$D/floor-out"
	cg=$(cg_new "floor-$N")
	cat >"$D/floor-master.sh" <<-EOF
		#!/bin/sh
		for i in 1 2 3; do
			ssh -F "$CFG" -o ControlMaster=yes -o ControlPath="$CP/f/%C" -o ControlPersist=600 -N -f "\$1" && exit 0
			sleep 1
		done
		exit 1
	EOF
	cat >"$D/floor-one.sh" <<-EOF
		#!/bin/sh
		ssh -F "$CFG" -o ControlMaster=no -o ControlPath="$CP/f/%C" "\$1" "\$(cat "$OUT/script.sh")" \\
			>"$D/floor-out/\$1.out" 2>"$D/floor-out/\$1.err"
		echo "\$1 \$?" >>"$D/floor.rc"
	EOF
	chmod +x "$D/floor-master.sh" "$D/floor-one.sh"
	: >"$D/floor.rc"
	# Masters opened a few at a time (untimed, not counted): the floor assumes them open.
	cg_run "$cg" floor-setup xargs -P 4 -n 1 "$D/floor-master.sh" <"$D/hosts"
	settle
	m=$(log_mark)
	before=$(cg_ns "$cg")
	cg_run "$cg" floor xargs -P "$FORKS" -n 1 "$D/floor-one.sh" <"$D/hosts"
	echo $(($(cg_ns "$cg") - before)) >"$D/floor.cpu_ns"
	log_count "$m" floor
	say "N=$N: floor $(cat "$D/floor.time" | tr '\n' ' ')"
	for s in "$CP"/f/*; do if [ -S "$s" ]; then ssh -o ControlPath="$s" -O exit dummy 2>/dev/null || true; fi; done
	cg_drop "$cg"
	rm -rf "$CP"
done

# --- a capture of real lab traffic for the decoding bench, and tcpdump's own time on it ----
D=$OUT/capture
mkdir -p "$D"
say "capturing lab traffic on the bastion during one more rampart run"
ip netns exec rpl-edge timeout 120 tcpdump -i any -s 256 -U -q -w "$D/lab-traffic.pcap" \
	2>"$D/tcpdump.err" &
TCPDUMP=$!
sleep 1
"$BIN/examples/fanout-collect" "$OUT/n${SIZES[-1]}/inventory.toml" 1 >"$D/collect.json" 2>"$D/collect.err" || true
sleep 1
kill -INT "$TCPDUMP" 2>/dev/null || true
wait "$TCPDUMP" 2>/dev/null || true
tcpdump -r "$D/lab-traffic.pcap" -w /dev/null 2>&1 | tail -1 >"$D/packets.txt" || true
tcpdump -nn -r "$D/lab-traffic.pcap" 2>/dev/null | wc -l >"$D/packets"
hyperfine -N -w 2 -r 10 --export-json "$D/tcpdump-hyperfine.json" \
	"tcpdump -r $D/lab-traffic.pcap -w /dev/null" >"$D/tcpdump-hyperfine.txt" 2>&1 || true

trap - EXIT
cleanup
# The host's side probe by probe, on the default lab's web1 (ufw, fail2ban, nginx, sshd).
say "probe costs on web1 (fanout-probe-cost)"
"$RAMPART" lab up >"$OUT/lab-default.log" 2>&1 &&
	"$BIN/examples/fanout-probe-cost" "$ROOT/inventory.toml" web1 20 >"$OUT/probe_cost.md" 2>"$OUT/probe_cost.err" ||
	say "probe costs failed: $OUT/probe_cost.err"
/usr/bin/python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
say "done: $OUT/summary.md; decode bench: RAMPART_BENCH_PCAP=$D/lab-traffic.pcap cargo bench --bench decode"
