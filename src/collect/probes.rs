//! The read-only probes of a host (a static allow-list of `sh` scripts), assembled into one
//! framed script per host, and the pure step from that script's frames to a
//! [`HostState`]. Running the script is the transport's job ([`super::collect_host`]).
//!
//! Every probe is a `&'static str`: no inventory value or remote text is ever put into a
//! command. A probe exits 127 when its tool is missing (state "not installed"); refusals
//! for lack of privileges are recognised by the tools' own words.
//!
//! Probes are cheap on the host: where the facts are in files or in a cheaper command, no
//! interpreter is started (ufw's status from its files and the live chains, firewalld from
//! the process table, every fail2ban jail through one Python start that loads no fail2ban
//! module, no legacy iptables dump where no legacy table is loaded). `firewall-cmd` (two Python starts) runs only where
//! firewalld runs in the host's network namespace. `benches/fanout/probe_cost.rs` measures each probe.
//!
//! Incremental refresh ([`super::Refresher`]): a probe whose output only changes with some
//! files or with the process table declares it in [`WATCHES`], one line per probe:
//!
//! ```text
//! "nginx" => ["/etc/nginx", "/etc/nginx/*"], procs: false, expires: 600;
//! ```
//!
//! The same literals make the [`FINGERPRINT`] probe (one `stat` of every watched path, the
//! process list from the shell, the listening sockets from `ss -tuln`), which runs in every
//! refresh; a watched probe runs again only when its paths' stat, the process list or (with
//! `socks: true`) the listening sockets changed, or `expires` seconds passed. A probe not in
//! [`WATCHES`] runs in every refresh: that is the default, and right for anything that
//! changes on its own (counters, rulesets, VPN handshakes). The sockets themselves are read
//! in every refresh, by the fingerprint; only `ss -p`'s walk of every process's descriptors
//! (who owns each socket) waits for a socket or a process to come or go. A watch may also
//! hold `only_while` the probe's last answer starts with a given text ("not running"): a
//! daemon's live state is then read in every refresh once it runs.
//!
//! On the host, the probes of one script run concurrently, four at a time
//! ([`ReadCommand::render`]), and their frames come back in this order, byte for byte as
//! if they had run one after the other. A probe that reads the process or socket table is
//! declared `alone` (`probe!(alone "ss", ...)`): it runs before the others start, so their
//! own processes and sockets never show in it.

use crate::ssh::{Frame, ReadCommand};
use crate::state::{Counters, Facts, Fail2ban, HostState, Probed, Stack, StateError, Vpn};

use super::{
    ParseError, containers, counters, crowdsec, datastore, django, facts, fail2ban, firewall,
    https, ids, jails, listeners, nginx, services, sshd, tls, ufw, vpn,
};

/// sshd, iptables and friends live in sbin, which a non-root PATH may lack.
/// `alone`: the probe reads the process or socket table, so it runs before the probes that
/// run concurrently ([`ReadCommand::alone`]), where their own processes cannot show.
/// The script may be several literals and [`gunicorn_here`]-style macros, joined.
macro_rules! probe {
    ($name:literal, $($script:expr),+) => {
        ReadCommand::new($name, concat!("PATH=$PATH:/usr/sbin:/sbin; ", $($script),+))
    };
    (alone $name:literal, $($script:expr),+) => {
        ReadCommand::alone($name, concat!("PATH=$PATH:/usr/sbin:/sbin; ", $($script),+))
    };
}

/// Sets `py` when a process of this host's network namespace is named gunicorn or python*
/// (the shell reads the names; `readlink` only for such a process): the Django probes start
/// no `ps` or `ss -p` without one.
macro_rules! gunicorn_here {
    () => {
        "me=$(readlink /proc/self/ns/net); py=; for q in /proc/[0-9]*; do \
         read -r c 2>/dev/null < \"$q/comm\" || continue; case $c in gunicorn*|python*) \
         [ \"$(readlink \"$q/ns/net\" 2>/dev/null)\" = \"$me\" ] && { py=1; break; };; esac; done; "
    };
}

/// The marker that starts the certificate part of the `nginx` probe's output.
pub const TLS_MARKER: &str = "### rampart tls files";

/// Every probe, in the order they run.
pub const PROBES: &[ReadCommand] = &[
    probe!(
        "facts",
        "read h < /proc/sys/kernel/hostname; echo \"hostname=$h\"; \
         echo \"uname=$(uname -rm)\"; read u _ < /proc/uptime; echo \"uptime=$u\"; \
         read c < /proc/1/comm; echo \"init=$c\""
    ),
    probe!(
        "os-release",
        "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"
    ),
    probe!(
        "ip-addr",
        "command -v ip >/dev/null 2>&1 || exit 127; ip -j addr"
    ),
    probe!(
        "ip-route",
        "command -v ip >/dev/null 2>&1 || exit 127; ip -j route"
    ),
    probe!(
        "ip6-route",
        "command -v ip >/dev/null 2>&1 || exit 127; ip -j -6 route"
    ),
    // ufw's own files instead of `ufw status verbose` (a Python start, ~75 ms of host CPU):
    // `ufw::status_text` rebuilds the status from these, the rules files and the live chains.
    // user.rules is root-only; without it ufw itself would refuse, in these words.
    probe!(
        "ufw",
        "command -v ufw >/dev/null 2>&1 || exit 127; \
         [ -r /etc/ufw/user.rules ] || { echo 'ERROR: You need to be root to run this script' >&2; exit 1; }; \
         echo '### rampart ufw files'; \
         for f in /etc/ufw/ufw.conf /etc/default/ufw; do [ -r \"$f\" ] || continue; \
         while IFS= read -r l || [ -n \"$l\" ]; do case $l in [A-Z]*=*) printf '%s\\n' \"$l\";; esac; \
         done < \"$f\"; done; a=; b=; c=; read -r a < /proc/sys/net/ipv4/ip_forward; \
         [ -r /proc/sys/net/ipv6/conf/default/forwarding ] && read -r b < /proc/sys/net/ipv6/conf/default/forwarding; \
         [ -r /proc/sys/net/ipv6/conf/all/forwarding ] && read -r c < /proc/sys/net/ipv6/conf/all/forwarding; \
         p=no; [ -d /proc/sys/net/ipv6 ] && p=yes; echo \"forward=${a:-0} ${b:-0} ${c:-0}\"; echo \"ipv6proc=$p\"; exit 0"
    ),
    probe!(
        "ufw-rules",
        "command -v ufw >/dev/null 2>&1 || exit 127; cat /etc/ufw/user.rules"
    ),
    probe!(
        "ufw-rules6",
        "command -v ufw >/dev/null 2>&1 || exit 127; cat /etc/ufw/user6.rules"
    ),
    // No legacy table loaded in this network namespace: the dump would be empty, so it is
    // not started (a process saved per collection on every nftables host). An unreadable
    // table list (not root) still runs it, so that the refusal shows.
    probe!(
        "iptables-legacy",
        "command -v iptables-legacy-save >/dev/null 2>&1 || exit 127; \
         f=/proc/net/ip_tables_names; \
         if [ -r \"$f\" ]; then { read -r t < \"$f\"; } 2>/dev/null || exit 0; fi; iptables-legacy-save"
    ),
    probe!(
        "ip6tables-legacy",
        "command -v ip6tables-legacy-save >/dev/null 2>&1 || exit 127; \
         f=/proc/net/ip6_tables_names; \
         if [ -r \"$f\" ]; then { read -r t < \"$f\"; } 2>/dev/null || exit 0; fi; ip6tables-legacy-save"
    ),
    // Plain iptables-save only where neither suffixed tool exists (older distributions).
    probe!(
        "iptables-plain",
        "command -v iptables-legacy-save >/dev/null 2>&1 && exit 127; \
         command -v iptables-nft-save >/dev/null 2>&1 && exit 127; \
         command -v iptables-save >/dev/null 2>&1 || exit 127; iptables-save"
    ),
    probe!(
        "ip6tables-plain",
        "command -v ip6tables-legacy-save >/dev/null 2>&1 && exit 127; \
         command -v ip6tables-nft-save >/dev/null 2>&1 && exit 127; \
         command -v ip6tables-save >/dev/null 2>&1 || exit 127; ip6tables-save"
    ),
    probe!(
        "ipset",
        "command -v ipset >/dev/null 2>&1 || exit 127; ipset save"
    ),
    probe!(
        "iptables-nft",
        "command -v iptables-nft-save >/dev/null 2>&1 || exit 127; iptables-nft-save"
    ),
    probe!(
        "ip6tables-nft",
        "command -v ip6tables-nft-save >/dev/null 2>&1 || exit 127; ip6tables-nft-save"
    ),
    probe!(
        "nft",
        "command -v nft >/dev/null 2>&1 || exit 127; nft -j list ruleset"
    ),
    // The process table, not `firewall-cmd --state` (a Python start and a D-Bus call, ~170
    // ms): firewalld runs in this host's network namespace or it does not run. Each
    // process's name is read by the shell (`pgrep` cost twice as much).
    probe!(
        "firewalld",
        "command -v firewall-cmd >/dev/null 2>&1 || exit 127; me=$(readlink /proc/self/ns/net); \
         s='not running'; for p in /proc/[0-9]*; do read -r c 2>/dev/null < \"$p/comm\" || continue; \
         [ \"$c\" = firewalld ] && [ \"$(readlink \"$p/ns/net\" 2>/dev/null)\" = \"$me\" ] && { s=running; break; }; \
         done; echo \"$s\"; exit 0"
    ),
    // firewalld's zones, where it runs in this network namespace: the default zone, every
    // zone (`--list-all-zones`: two Python starts in all, only on firewalld hosts), and the
    // service files the zones name, read from the host's own definitions (/etc before
    // /usr/lib, as firewalld does) instead of one `--info-service` start per service.
    // Service names travel only inside the host's shell, checked and quoted. Not watched:
    // runtime changes (`firewall-cmd` without --permanent) touch no file.
    probe!(
        "firewalld-zones",
        "command -v firewall-cmd >/dev/null 2>&1 || exit 127; me=$(readlink /proc/self/ns/net); r=; \
         for p in /proc/[0-9]*; do read -r c 2>/dev/null < \"$p/comm\" || continue; \
         [ \"$c\" = firewalld ] && [ \"$(readlink \"$p/ns/net\" 2>/dev/null)\" = \"$me\" ] && { r=1; break; }; \
         done; [ -n \"$r\" ] || { echo 'not running'; exit 0; }; echo running; \
         t=; command -v timeout >/dev/null 2>&1 && t='timeout 10'; \
         d=$($t firewall-cmd --get-default-zone 2>&1) || { printf '%s\\n' \"${d:-firewall-cmd: no answer}\" >&2; exit 1; }; \
         printf '### default %s\\n' \"$d\"; \
         z=$($t firewall-cmd --list-all-zones 2>&1) || { printf '%s\\n' \"${z:-firewall-cmd: no answer}\" >&2; exit 1; }; \
         printf '### zones\\n%s\\n' \"$z\"; \
         for s in $(printf '%s\\n' \"$z\" | sed -n 's/^  services: //p' | tr ' ' '\\n' | sort -u | head -n 128); do \
         case \"$s\" in *[!A-Za-z0-9_.+-]*) continue;; esac; \
         for f in \"/etc/firewalld/services/$s.xml\" \"/usr/lib/firewalld/services/$s.xml\"; do \
         [ -r \"$f\" ] && { printf '### service %s %s\\n' \"$s\" \"$f\"; head -c 65536 \"$f\"; echo; break; }; \
         done; done; exit 0"
    ),
    probe!(
        alone "ss",
        "command -v ss >/dev/null 2>&1 || exit 127; ss -H -tulpn"
    ),
    // Containers (Docker, Podman): only the fields the network needs, through `inspect
    // --format` on the host, never the environment (it holds secrets). An engine whose
    // daemon does not answer runs nothing; one that refuses this user is a permission error.
    // Where the docker CLI could find no daemon to ask (no DOCKER_HOST or DOCKER_CONTEXT, no
    // context, no socket at the default path) it is not started: that is the CLI's own
    // "cannot connect", without its 15 ms of CPU in every refresh of a host without Docker.
    // A daemon that does not answer within 10 s (`timeout`, where the host has it) fails this
    // probe alone, not the host's whole script at the remote timeout.
    probe!(
        "containers",
        "f=; t=; command -v timeout >/dev/null 2>&1 && t='timeout 10'; \
         for e in docker podman; do command -v $e >/dev/null 2>&1 || continue; f=1; \
         if [ $e = docker ] && [ -z \"${DOCKER_HOST:-}\" ] && [ -z \"${DOCKER_CONTEXT:-}\" ] \
         && [ ! -S /var/run/docker.sock ] && [ ! -S /run/docker.sock ] \
         && [ ! -e \"${HOME:-/nonexistent}/.docker/contexts/meta\" ]; then \
         echo \"### engine $e not running\"; continue; fi; \
         ids=$($t $e ps -q 2>&1); r=$?; [ $r = 124 ] && [ -n \"$t\" ] && { \
         echo \"$e ps: no answer in 10 s (a hung daemon?)\" >&2; exit 1; }; \
         case $ids in *'Cannot connect to the Docker daemon'*|*'Is the docker daemon running'*|*'no such file or directory'*) \
         echo \"### engine $e not running\"; continue;; esac; \
         [ $r = 0 ] || { printf '%s\\n' \"$ids\" >&2; exit 1; }; echo \"### engine $e\"; \
         [ -z \"$ids\" ] || $t $e inspect --format \
         '{\"id\":{{json .Id}},\"name\":{{json .Name}},\"image\":{{json .Config.Image}},\"running\":{{json .State.Running}},\"mode\":{{json .HostConfig.NetworkMode}},\"ports\":{{json .NetworkSettings.Ports}},\"networks\":{{json .NetworkSettings.Networks}}}' \
         $ids || { [ $? = 124 ] && [ -n \"$t\" ] && echo \"$e inspect: no answer in 10 s (a hung daemon?)\" >&2; \
         exit 1; }; done; [ -n \"$f\" ] || exit 127"
    ),
    // Every jail's status through one connection to the server's socket: fail2ban's own
    // interpreter, isolated and without site packages (`-I -S`), speaks the client's protocol
    // (a pickled command list, then `<F2B_END_COMMAND>`) with the C modules `_socket` and
    // `_pickle` alone, and prints the client's own text (12 ms of host CPU where importing
    // fail2ban's client modules took 38). Only `status` commands are sent. Where the reply
    // names a class it cannot load, or without the default socket, the client as before: one
    // call for the overview, one per jail; jail names travel only inside the host's own
    // shell, quoted.
    probe!(
        "fail2ban",
        "command -v fail2ban-client >/dev/null 2>&1 || exit 127; \
         k=/var/run/fail2ban/fail2ban.sock; py=; \
         if [ -S \"$k\" ]; then read -r py < \"$(command -v fail2ban-client)\"; py=${py#\\#!}; py=${py%% *}; fi; \
         o=$( \
         if [ -n \"$py\" ] && [ -x \"$py\" ]; then \"$py\" -I -S -c 'exec(\"import sys\\ntry:\\n    import _socket, _pickle\\nexcept Exception:\\n    sys.exit(3)\\nk = sys.argv[1]\\nE = b\\\"<F2B_END_COMMAND>\\\"\\ntry:\\n    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)\\n    s.settimeout(20)\\n    s.connect(k)\\nexcept PermissionError:\\n    print(\\\"ERROR  Permission denied to socket: \\\" + k + \\\", (you must be root)\\\")\\n    sys.exit(255)\\nexcept OSError:\\n    print(\\\"ERROR  Failed to access socket path: \\\" + k + \\\". Is fail2ban running?\\\")\\n    sys.exit(255)\\ndef q(c):\\n    s.sendall(_pickle.dumps(c, 2) + E)\\n    b = b\\\"\\\"\\n    while not b.endswith(E):\\n        d = s.recv(65536)\\n        if not d:\\n            sys.exit(3)\\n        b += d\\n    try:\\n        return _pickle.loads(b[:-len(E)])\\n    except Exception:\\n        sys.exit(3)\\ndef v(x):\\n    return \\\" \\\".join(map(str, x)) if isinstance(x, list) else str(x)\\ndef tree(r):\\n    for n, (a, b) in enumerate(r):\\n        t = n == len(r) - 1\\n        if isinstance(b, list) and b and all(isinstance(e, tuple) for e in b):\\n            print((\\\"`-\\\" if t else \\\"|-\\\") + \\\" \\\" + str(a))\\n            for m, (c, d) in enumerate(b):\\n                print((\\\"   \\\" if t else \\\"|  \\\") + (\\\"`-\\\" if m == len(b) - 1 else \\\"|-\\\") + \\\" \\\" + str(c) + \\\":\\\\t\\\" + v(d))\\n        else:\\n            print((\\\"`-\\\" if t else \\\"|-\\\") + \\\" \\\" + str(a) + \\\":\\\\t\\\" + v(b))\\nrc, r = q([\\\"status\\\"])\\nif rc != 0:\\n    print(\\\"ERROR  \\\" + str(r))\\n    sys.exit(255)\\nprint(\\\"Status\\\")\\ntree(r)\\nfor j in [x.strip() for x in str(dict(r).get(\\\"Jail list\\\", \\\"\\\")).split(\\\",\\\") if x.strip()]:\\n    print(\\\"### jail \\\" + j)\\n    rc, r = q([\\\"status\\\", j])\\n    if rc != 0:\\n        print(\\\"ERROR  \\\" + str(r))\\n    else:\\n        print(\\\"Status for the jail: \\\" + j)\\n        tree(r)\\ns.sendall(b\\\"<F2B_CLOSE_COMMAND>\\\" + E)\\n\")' \"$k\"; rc=$?; [ \"$rc\" -eq 3 ] || exit \"$rc\"; fi; \
         s=$(fail2ban-client status 2>&1); rc=$?; printf '%s\\n' \"$s\"; \
         [ \"$rc\" -eq 0 ] || exit \"$rc\"; \
         for j in $(printf '%s\\n' \"$s\" | sed -n 's/.*Jail list:[[:space:]]*//p' | tr ',' ' '); do \
         printf '### jail %s\\n' \"$j\"; fail2ban-client status \"$j\" 2>&1; done); rc=$?; \
         printf '%s\\n' \"$o\"; [ \"$rc\" -eq 0 ] || exit \"$rc\"; \
         printf '%s\\n' \"$o\" | sed -n 's/.*File list:[[:space:]]*//p' | tr -s ' \\t' '\\n\\n' | head -n 64 | \
         while IFS= read -r f; do [ -n \"$f\" ] || continue; \
         if [ -e \"$f\" ]; then stat -c '### stat %F|-|%n' -- \"$f\"; else printf '### stat missing|0|%s\\n' \"$f\"; fi; \
         done"
    ),
    // The jail files fail2ban reads (no fail2ban-client call), and whether a journal exists
    // for the systemd backend to read.
    probe!(
        "fail2ban-jails",
        "command -v fail2ban-client >/dev/null 2>&1 || exit 127; \
         for f in /etc/fail2ban/paths-common.conf /etc/fail2ban/paths-debian.conf; do \
         [ -f \"$f\" ] && { printf '### paths %s\\n' \"$f\"; head -c 65536 \"$f\"; echo; }; done; \
         for f in /etc/fail2ban/jail.conf /etc/fail2ban/jail.d/*.conf /etc/fail2ban/jail.local /etc/fail2ban/jail.d/*.local; do \
         [ -f \"$f\" ] && { printf '### file %s\\n' \"$f\"; head -c 262144 \"$f\"; echo; }; done; \
         j=no; for d in /run/log/journal /var/log/journal; do \
         [ -n \"$(find \"$d\" -name '*.journal' 2>/dev/null | head -n 1)\" ] && j=yes; done; \
         printf '### journal %s\\n' \"$j\"; exit 0"
    ),
    // CrowdSec: its agent in this network namespace (the PID namespace may be shared), and,
    // where it runs, its decisions, read-only (cscli takes about half a second: skipped
    // where no agent runs).
    probe!(
        "crowdsec",
        "command -v cscli >/dev/null 2>&1 || exit 127; n=$(readlink /proc/self/ns/net); \
         for p in /proc/[0-9]*; do read -r c 2>/dev/null < \"$p/comm\" || continue; \
         [ \"$c\" = crowdsec ] && [ \"$(readlink \"$p/ns/net\" 2>/dev/null)\" = \"$n\" ] && { echo '### running'; r=1; break; }; \
         done; [ -n \"$r\" ] || { echo '### decisions skipped'; exit 0; }; \
         t=; command -v timeout >/dev/null 2>&1 && t='timeout 10'; \
         o=$($t cscli decisions list -o json); rc=$?; printf '### decisions %s\\n' \"$rc\"; \
         printf '%s\\n' \"$o\" | head -c 4194304; exit 0"
    ),
    // IDS alert files: only their last 256 KiB, whatever their size.
    probe!(
        "ids",
        "found=; for s in 'suricata-eve /var/log/suricata/eve.json' 'snort-json /var/log/snort/alert_json.txt' \
         'snort-fast /var/log/snort/alert_fast.txt'; do set -- $s; [ -f \"$2\" ] || continue; found=1; \
         printf '### ids %s %s %s\\n' \"$1\" \"$(stat -c '%s %i' -- \"$2\")\" \"$2\"; tail -c 262144 -- \"$2\"; echo; done; \
         [ -n \"$found\" ] || command -v suricata >/dev/null 2>&1 || command -v snort >/dev/null 2>&1 || exit 127; exit 0"
    ),
    // The host's own HTTPS page, from every `listen ... ssl` address nginx has (wildcards and
    // names become loopback, so nothing leaves the host): headers only, a GET of `/`.
    probe!(
        "https-self",
        "command -v nginx >/dev/null 2>&1 || exit 127; command -v curl >/dev/null 2>&1 || exit 127; \
         nginx -T 2>/dev/null | sed -n '/^[[:space:]]*listen[[:space:]].*[[:space:]]ssl[[:space:];]/s/^[[:space:]]*listen[[:space:]][[:space:]]*\\([^;[:space:]]*\\).*/\\1/p' \
         | sort -u | head -n 8 | while IFS= read -r l; do \
         case \"$l\" in unix:*) continue;; \\[*\\]:*|*:*) a=${l%:*}; p=${l##*:};; *[!0-9]*) a=$l; p=80;; *) a=127.0.0.1; p=$l;; esac; \
         case \"$a\" in '*'|0.0.0.0) a=127.0.0.1;; '[::]') a='[::1]';; \\[*\\]) ;; *[!0-9.]*) a=127.0.0.1;; esac; \
         case \"$p\" in ''|*[!0-9]*) continue;; esac; \
         printf '### url https://%s:%s/\\n' \"$a\" \"$p\"; \
         curl -ksS --noproxy '*' --proto =https --max-time 5 -o /dev/null -D - \"https://$a:$p/\" 2>&1; done; exit 0"
    ),
    // Private and preshared keys are blanked on the host, before they travel (no awk where
    // there is no interface: most hosts).
    probe!(
        "wireguard",
        "command -v wg >/dev/null 2>&1 || exit 127; \
         o=$(wg show all dump); [ -n \"$o\" ] || exit 0; printf '%s\\n' \"$o\" | awk -F'\\t' 'BEGIN{OFS=\"\\t\"} NF==5{$2=\"(hidden)\"} \
         NF==9 && $3!=\"(none)\"{$3=\"(hidden)\"} {print}'"
    ),
    probe!(
        "openvpn",
        "found=; for f in /run/openvpn/*.status /run/openvpn-server/*.status \
         /var/log/openvpn/*status*.log /etc/openvpn/*status*.log; do \
         [ -f \"$f\" ] && { found=1; printf '### file %s\\n' \"$f\"; head -c 1048576 \"$f\"; echo; }; \
         done; [ -n \"$found\" ] || command -v openvpn >/dev/null 2>&1 || exit 127; exit 0"
    ),
    // `sshd -T`, then each `Match` block of sshd_config and its drop-ins (awk prints the
    // block and, for Address/User criteria, a connection it applies to), and `sshd -T -C`
    // for at most 16 such connections. A spec is used only if it is made of address and
    // user-name characters; nothing from the file reaches a shell word unquoted.
    probe!(
        "sshd",
        "command -v sshd >/dev/null 2>&1 || exit 127; sshd -T || exit $?; for f in \
         /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; do [ -r \"$f\" ] && awk -v f=\"$f\" \
         'function rep(p,  n, a, o) { if (p ~ /^!/ || p == \"\") return \"\"; n = split(p, a, \
         \"/\"); p = a[1]; gsub(/[*?]/, \"1\", p); if (p ~ /:/) return p; while (split(p, o, \
         \".\") < 4) p = p \".1\"; split(p, o, \".\"); if (n > 1 && a[2] < 32 && o[4] == \"0\") p \
         = o[1] \".\" o[2] \".\" o[3] \".1\"; return p }; { line = $0; sub(/^[ \\t]+/, \"\", \
         line) }; line ~ /^#/ || line == \"\" { next }; tolower($1) == \"match\" { inm = 1; crit \
         = line; sub(/^[^ \\t]+[ \\t]+/, \"\", crit); print \"match \" f \":\" NR \": \" crit; \
         addrs = \"\"; users = \"\"; for (i = 2; i < NF; i += 2) { k = tolower($i); v = $(i + 1); \
         if (k == \"address\") { c = split(v, ps, \",\"); for (j = 1; j <= c; j++) { r = \
         rep(ps[j]); if (r != \"\") addrs = addrs \" \" r } }; if (k == \"user\") { c = split(v, \
         ps, \",\"); for (j = 1; j <= c; j++) if (ps[j] ~ /^[a-z_][a-z0-9_-]*$/) users = users \" \
         \" ps[j] } }; u = \"root\"; split(users, us, \" \"); if (us[1] != \"\") u = us[1]; na = \
         split(addrs, as, \" \"); if (na == 0 && users != \"\" && nc++ < 16) print \"C user=\" u; \
         for (j = 1; j <= na && j <= 4; j++) if (nc++ < 16) print \"C addr=\" as[j] \",user=\" u; \
         next }; inm { print \"set \" f \":\" NR \": \" line }' \"$f\"; done | head -n 400 | \
         while IFS= read -r l; do case \"$l\" in \"C \"*) s=${l#C }; printf '### spec %s\\n' \
         \"$s\"; case \"$s\" in *[!A-Za-z0-9.:,=_-]*) ;; *) sshd -T -C \"$s\" 2>&1 | grep -E \
         '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|usepam|authenticationmethods) \
         ';; esac ;; *) printf '### %s\\n' \"$l\" ;; esac; done; exit 0"
    ),
    // nginx -T once, then the certificates its config names (absolute, or under /etc/nginx).
    probe!(
        "nginx",
        "command -v nginx >/dev/null 2>&1 || exit 127; \
         c=$(nginx -T 2>&1); rc=$?; printf '%s\\n' \"$c\"; \
         printf '%s\\n' '### rampart tls files'; \
         printf '%s\\n' \"$c\" | sed -n 's/^[[:space:]]*ssl_certificate[[:space:]][[:space:]]*\\([^;$]*\\);.*/\\1/p' \
         | sort -u | head -n 64 | while IFS= read -r f; do \
         case \"$f\" in /*) ;; *) f=\"/etc/nginx/$f\";; esac; \
         [ -r \"$f\" ] && { printf '### file %s\\n' \"$f\"; head -c 65536 \"$f\"; echo; }; done; \
         exit \"$rc\""
    ),
    probe!(
        alone "services",
        "command -v ps >/dev/null 2>&1 || exit 127; readlink /proc/self/ns/net; \
         ps -e -o pid=,netns=,comm=,args= | cut -c 1-200; \
         read c < /proc/1/comm; if [ \"$c\" = systemd ]; then echo '### systemd'; \
         systemctl show -p Id,ActiveState fail2ban snort suricata prometheus-node-exporter \
         zabbix-agent zabbix-agent2 nagios-nrpe-server prometheus prometheus-alertmanager \
         ssh nginx openvpn 2>/dev/null; fi; exit 0"
    ),
    probe!(
        "counters",
        "read -r u < /proc/uptime && echo \"$u\"; echo '### dev'; cat /proc/net/dev; \
         echo '### snmp'; cat /proc/net/snmp; echo '### conntrack'; \
         for f in nf_conntrack_count nf_conntrack_max; do v=; \
         { read -r v < /proc/sys/net/netfilter/$f; } 2>/dev/null && echo \"$v\" || echo none; done"
    ),
    // Data stores and apps (crate::collect::datastore, django). Secrets are blanked here,
    // on the host, before anything travels: requirepass/masterauth, ACL passwords and
    // hashes, `*pass*` options, SECRET_KEY/PASSWORD/TOKEN assignments and dict entries.
    probe!(
        "stack-postgres",
        "found=; for c in /etc/postgresql/*/*/postgresql.conf; do [ -f \"$c\" ] || continue; \
         found=1; d=${c%/postgresql.conf}; printf '### cluster %s\\n' \"$c\"; \
         printf '### file %s\\n' \"$c\"; head -c 262144 \"$c\"; echo; \
         for f in \"$d\"/conf.d/*.conf; do [ -f \"$f\" ] && { printf '### file %s\\n' \"$f\"; \
         head -c 65536 \"$f\"; echo; }; done; \
         h=$(cat \"$c\" \"$d\"/conf.d/*.conf 2>/dev/null | sed -n \"s/^[[:space:]]*hba_file[[:space:]]*=[[:space:]]*'\\([^']*\\)'.*/\\1/p\" | tail -n 1); \
         [ -n \"$h\" ] || h=\"$d/pg_hba.conf\"; \
         [ -f \"$h\" ] && { printf '### hba %s\\n' \"$h\"; head -c 262144 \"$h\"; echo; }; done; \
         [ -n \"$found\" ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || exit 127; exit 0"
    ),
    probe!(
        "stack-redis",
        "printf '### version %s\\n' \"$(redis-server --version 2>/dev/null | head -n 1)\"; \
         found=; for f in /etc/redis/*.conf; do [ -f \"$f\" ] || continue; \
         case \"$f\" in *sentinel*) continue;; esac; found=1; printf '### file %s\\n' \"$f\"; \
         head -c 262144 \"$f\" | sed -E \
         's/^([[:space:]]*(requirepass|masterauth|masteruser|tls-key-file-pass|tls-client-key-file-pass)[[:space:]]+)(\"[^\"]|[^\"[:space:]]).*$/\\1(hidden)/I; \
         /^[[:space:]]*user[[:space:]]/I s/([[:space:]])([<>#!])[^[:space:]]*/\\1\\2(hidden)/g'; \
         echo; done; [ -n \"$found\" ] || command -v redis-server >/dev/null 2>&1 || exit 127; exit 0"
    ),
    probe!(
        "stack-mysql",
        "command -v mysqld >/dev/null 2>&1 || command -v mariadbd >/dev/null 2>&1 || \
         [ -x /usr/sbin/mysqld ] || [ -x /usr/sbin/mariadbd ] || exit 127; \
         for f in /etc/mysql/my.cnf /etc/mysql/mariadb.cnf /etc/mysql/conf.d/*.cnf \
         /etc/mysql/mariadb.conf.d/*.cnf /etc/mysql/mysql.conf.d/*.cnf; do [ -f \"$f\" ] && { \
         printf '### file %s\\n' \"$f\"; head -c 65536 \"$f\" | \
         sed -E 's/^([[:space:]]*[A-Za-z_-]*pass[A-Za-z_-]*[[:space:]]*=).*/\\1 (hidden)/I'; echo; }; \
         done; exit 0"
    ),
    probe!(
        "stack-memcached",
        "command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || exit 127; \
         [ -f /etc/memcached.conf ] && { printf '### file %s\\n' /etc/memcached.conf; \
         head -c 65536 /etc/memcached.conf; echo; }; exit 0"
    ),
    // gunicorn masters of this host's network namespace (the PID namespace may be shared),
    // their working directory, settings module and arguments, then the project's settings,
    // views and urls files. Only DJANGO_SETTINGS_MODULE is taken from the environment.
    // Neither this probe nor the next starts `ps` or `ss -p` where no process of this
    // namespace is named gunicorn or python* (the shell reads the names): most hosts.
    probe!(
        alone "stack-django",
        gunicorn_here!(),
        "[ -z \"$py\" ] || ps -e -o pid=,ppid=,comm=,args= 2>/dev/null | awk '{ g[$1] = ($3 ~ /^(gunicorn|python)/) && \
         ($4 ~ /gunicorn/ || $5 ~ /gunicorn/ || $6 ~ /gunicorn/); p[$1] = $2 } \
         END { for (k in g) if (g[k] && !g[p[k]]) print k }' | sort -n | head -n 16 | \
         while read -r p; do [ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ] || continue; \
         d=$(readlink /proc/$p/cwd 2>/dev/null) || continue; \
         printf '### gunicorn %s\\n' \"$p\"; printf 'cwd=%s\\n' \"$d\"; \
         printf 'settings=%s\\n' \"$(tr '\\000' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^DJANGO_SETTINGS_MODULE=//p' | head -n 1)\"; \
         printf 'args=%s\\n' \"$(tr '\\000' ' ' < /proc/$p/cmdline | cut -c 1-2000 | \
         sed -E 's/([A-Za-z_]*(SECRET|PASSWORD|PASSWD|TOKEN|KEY)[A-Za-z_]*=)[^ ]*/\\1(hidden)/Ig')\"; \
         find \"$d\" -maxdepth 3 -type f \\( -name 'settings*.py' -o -path '*/settings/*.py' \
         -o -name views.py -o -name urls.py \\) -size -256k 2>/dev/null | sort | head -n 64 | \
         while IFS= read -r f; do printf '### file %s\\n' \"$f\"; \
         sed -E \"s/^([[:space:]]*[A-Za-z_]*(SECRET|PASSWORD|PASSWD|TOKEN)[A-Za-z_]*[[:space:]]*=).*/\\\\1 '(hidden)'/I; \
         s/(['\\\"][A-Za-z_]*(SECRET|PASSWORD|PASSWD|TOKEN)[A-Za-z_]*['\\\"][[:space:]]*:[[:space:]]*).*/\\\\1'(hidden)',/I\" \"$f\"; \
         echo; done; done; \
         command -v gunicorn >/dev/null 2>&1 || [ -d /usr/lib/python3/dist-packages/gunicorn ] || exit 127; exit 0"
    ),
    // One GET of a URL no app routes, on each port a gunicorn (or python) server listens on
    // in this host: only the status and whether Django's debug page came back travel.
    probe!(
        "stack-app-http",
        "command -v ss >/dev/null 2>&1 || exit 127; command -v curl >/dev/null 2>&1 || exit 127; ",
        gunicorn_here!(),
        "[ -n \"$py\" ] || exit 0; ss -H -tlnp 2>/dev/null | awk '/\"(gunicorn|python[0-9.]*)\"/ {print $4}' | sort -u | head -n 16 | \
         while IFS= read -r a; do port=${a##*:}; addr=${a%:*}; \
         case \"$port\" in ''|*[!0-9]*) continue;; esac; \
         case \"$addr\" in '*'|0.0.0.0|'[::]'|'') addr=127.0.0.1;; esac; \
         case \"$addr\" in *[!0-9.]*) continue;; esac; \
         for s in http https; do \
         b=$(curl -sk --max-time 5 -w '\\n%{http_code}' \"$s://$addr:$port/rampart-probe-unknown-url\" 2>/dev/null | tail -c 1000000); \
         c=$(printf '%s' \"$b\" | tail -n 1); case \"$c\" in ''|000) continue;; esac; \
         if printf '%s' \"$b\" | grep -q 'DEBUG = True'; then d=debug; else d=nodebug; fi; \
         printf '### app %s %s %s %s\\n' \"$port\" \"$s\" \"$c\" \"$d\"; break; done; done; exit 0"
    ),
];

/// When a probe must run again in an incremental refresh ([`super::Refresher`]). A probe
/// not named in [`WATCHES`] runs in every refresh: that is the safe default for a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub probe: &'static str,
    /// Paths (`*` and `?` globs, expanded by the host's shell) whose inode, size or mtime
    /// changing means the probe's output may have changed. A directory's mtime moves when
    /// an entry is added, removed or renamed (editors save by renaming).
    pub paths: &'static [&'static str],
    /// A process started or ended (the probe reads the process table).
    pub procs: bool,
    /// A listening socket was opened or closed (`ss -tuln` in the fingerprint: protocol,
    /// state and local address of each, not the queue lengths). With `procs`, the owners
    /// `ss -p` names cannot have changed either, short of a descriptor handed between
    /// processes that all still run.
    pub socks: bool,
    /// Runs again at the latest this many seconds after it last ran, whatever the
    /// fingerprint says (facts no fingerprint sees: unit states, journal-backed jails).
    pub expires: u64,
    /// Watched only while its last frame succeeded and its output starts with this text:
    /// otherwise it runs in every refresh. For a probe whose answer depends on the process
    /// table only while its daemon does not run ("not running"), and on live state once it
    /// does (firewalld's runtime zones, CrowdSec's decisions).
    pub only_while: Option<&'static str>,
}

impl Watch {
    /// Whether this watch holds for a host whose last frames are `frames`; see
    /// [`Watch::only_while`].
    pub fn holds(&self, frames: &[Frame]) -> bool {
        match self.only_while {
            None => true,
            Some(start) => frames.iter().any(|f| {
                f.name == self.probe
                    && f.complete()
                    && f.exit_status == Some(0)
                    && f.stdout.starts_with(start.as_bytes())
            }),
        }
    }
}

/// Declares [`WATCHES`] and, from the same literals, the [`FINGERPRINT`] probe that stats
/// every watched path in one `stat` and lists the process table without starting a program
/// for it (`echo /proc/[0-9]*`). Its own ancestry (this session's shells, `timeout`, sshd's
/// session processes) is printed too, so a new session does not read as a changed host. The
/// same `stat` reads each process's network namespace: processes of other namespaces on the
/// same machine (containers, other lab hosts, whatever shares the PID namespace) are left
/// out, as the `services` probe leaves them out.
/// `None`, or `Some` of the literal given: an optional part of a [`watches!`] line.
macro_rules! opt {
    () => {
        None
    };
    ($x:literal) => {
        Some($x)
    };
}

macro_rules! watches {
    ($( $probe:literal => [$($path:literal),* $(,)?], procs: $procs:literal, expires: $exp:literal
        $(, socks: $socks:literal)? $(, only_while: $while:literal)?; )*) => {
        /// The probes an incremental refresh may skip, and what says they must run again.
        /// One line per probe: `"name" => ["/etc/x", "/etc/x.d/*"], procs: false, expires: 600;`.
        pub const WATCHES: &[Watch] = &[
            $( Watch {
                probe: $probe,
                paths: &[$($path),*],
                procs: $procs,
                socks: { false $( || $socks )? },
                expires: $exp,
                only_while: opt!($($while)?),
            }, )*
        ];

        /// The cheap probe whose output decides which watched probes run again
        /// ([`fingerprint_tokens`]). Read-only: `read` and `echo` are shell built-ins; one
        /// `ss -tuln` (the listening sockets, without walking every process's descriptors as
        /// `ss -p` does) and one `stat`.
        pub static FINGERPRINT: ReadCommand = ReadCommand::alone(
            "fingerprint",
            concat!(
                "PATH=$PATH:/usr/sbin:/sbin; p=self; o=; i=0; \
                 while [ \"$i\" -lt 10 ]; do read -r a b c d e < /proc/$p/stat || break; \
                 o=\"$o $a\"; case $d in ''|0|1) break;; esac; p=$d; i=$((i+1)); done; \
                 echo \"self$o\"; printf '%s\\n' '### procs'; echo /proc/[0-9]*; \
                 printf '%s\\n' '### socks'; if command -v ss >/dev/null 2>&1; then \
                 ss -H -tuln 2>/dev/null || echo \"failed $?\"; else echo none; fi; \
                 command -v stat >/dev/null 2>&1 || { echo '### no stat'; exit 0; }; \
                 printf '%s\\n' '### stat'; stat -L -c '%n|%i|%s|%Y' \
                 /proc/self/ns/net /proc/[0-9]*/ns/net ",
                $( $( $path, " ", )* )*
                "2>/dev/null; printf '%s\\n' '### after'; echo /proc/[0-9]*; exit 0"
            ),
        );
    };
}

watches! {
    "os-release" => ["/etc/os-release", "/usr/lib/os-release"], procs: false, expires: 3600;
    "ufw-rules" => ["/etc/ufw/user.rules"], procs: false, expires: 600;
    "ufw-rules6" => ["/etc/ufw/user6.rules"], procs: false, expires: 600;
    "firewalld" => [], procs: true, expires: 600;
    "fail2ban" => ["/etc/fail2ban", "/etc/fail2ban/*", "/etc/fail2ban/*/*",
        "/var/lib/fail2ban/fail2ban.sqlite3", "/var/log/fail2ban.log"], procs: true, expires: 60;
    "sshd" => ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d", "/etc/ssh/sshd_config.d/*",
        "/etc/ssh/ssh_host_*"], procs: false, expires: 600;
    "nginx" => ["/etc/nginx", "/etc/nginx/*", "/etc/nginx/*/*", "/etc/nginx/*/*/*",
        "/etc/letsencrypt/live/*/*", "/etc/ssl/certs", "/etc/ssl/private"], procs: false,
        expires: 600;
    "services" => [], procs: true, expires: 120;
    // Config files, and what the host runs: none of these is a ruleset or a socket read.
    // The journal's first file lands in a machine-id directory below the journal's own.
    "fail2ban-jails" => ["/etc/fail2ban", "/etc/fail2ban/*", "/etc/fail2ban/*/*",
        "/run/log/journal", "/run/log/journal/*", "/var/log/journal", "/var/log/journal/*"],
        procs: false, expires: 600;
    // The page nginx serves changes with its config, once nginx reloads (new workers).
    "https-self" => ["/etc/nginx", "/etc/nginx/*", "/etc/nginx/*/*", "/etc/nginx/*/*/*",
        "/etc/letsencrypt/live/*/*", "/etc/ssl/certs", "/etc/ssl/private"], procs: true,
        expires: 600;
    "stack-postgres" => ["/etc/postgresql", "/etc/postgresql/*", "/etc/postgresql/*/*",
        "/etc/postgresql/*/*/*", "/etc/postgresql/*/*/conf.d/*",
        "/usr/lib/postgresql/*/bin/postgres"], procs: false, expires: 600;
    "stack-redis" => ["/etc/redis", "/etc/redis/*", "/usr/bin/redis-server"], procs: false,
        expires: 600;
    // A Django app changes what it runs only when gunicorn restarts or reloads (new
    // processes); its files on disk are read again at the latest after two minutes.
    "stack-django" => [], procs: true, expires: 120;
    "stack-app-http" => [], procs: true, expires: 120;
    // Where the tool is installed but its daemon does not run in this network namespace,
    // the answer changes only when a process starts; once it runs, its live state (runtime
    // zones, decisions) is read in every refresh.
    "firewalld-zones" => [], procs: true, expires: 600, only_while: "not running\n";
    "crowdsec" => [], procs: true, expires: 600, only_while: "### decisions skipped\n";
    // The listening sockets and their owners: `ss -p` (it reads every process's descriptors)
    // runs again when the fingerprint's `ss -tuln` or the process table changed.
    "ss" => [], procs: true, expires: 300, socks: true;
}

/// The watched probes' tokens from the [`FINGERPRINT`] probe's output: one hash per
/// watched probe of the stat lines its paths matched (and of the process list, less this
/// session's own processes, when it watches processes). `None` when the output cannot be
/// trusted (no `stat` on the host, no process list): then every watched probe runs again.
pub fn fingerprint_tokens(text: &str) -> Option<Vec<(&'static str, u64)>> {
    use std::hash::{Hash as _, Hasher as _};
    let (head, parts) = sections(text, "### ");
    let own: Vec<&str> = head
        .lines()
        .find_map(|l| l.strip_prefix("self"))?
        .split_whitespace()
        .collect();
    let mut procs: Option<Vec<u32>> = None;
    let mut after: Option<std::collections::HashSet<u32>> = None;
    let mut socks: Option<Vec<(&str, &str, &str)>> = None;
    let mut stats: Option<Vec<(String, String)>> = None;
    // Each process's network namespace (inode), and this session's own.
    let mut netns: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (name, body) in &parts {
        match *name {
            "procs" => {
                let mut pids: Vec<u32> = body
                    .split_whitespace()
                    .filter_map(|w| w.strip_prefix("/proc/"))
                    .filter(|p| !own.contains(p))
                    .filter_map(|p| p.parse().ok())
                    .collect();
                pids.sort_unstable();
                procs = Some(pids);
            }
            "after" => {
                after = Some(
                    body.split_whitespace()
                        .filter_map(|w| w.strip_prefix("/proc/")?.parse().ok())
                        .collect(),
                );
            }
            // Protocol, state and local address: the queue lengths move with the traffic.
            "socks" => {
                let mut list: Vec<(&str, &str, &str)> = body
                    .lines()
                    .map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        match f.as_slice() {
                            [net, state, _, _, local, ..] => (*net, *state, *local),
                            _ => (l, "", ""),
                        }
                    })
                    .collect();
                list.sort_unstable();
                socks = Some(list);
            }
            "stat" => {
                let mut files = Vec::new();
                for (n, rest) in body.lines().filter_map(|l| l.split_once('|')) {
                    let proc_ns = n
                        .strip_prefix("/proc/")
                        .and_then(|r| r.strip_suffix("/ns/net"));
                    match proc_ns {
                        Some(pid) => {
                            let inode = rest.split('|').next().unwrap_or_default();
                            netns.insert(pid, inode);
                        }
                        None => files.push((n.to_string(), rest.to_string())),
                    }
                }
                stats = Some(files);
            }
            _ => {}
        }
    }
    let (mut procs, socks, stats) = (procs?, socks?, stats?);
    if procs.is_empty() {
        return None;
    }
    // A process that ended while the fingerprint ran (listed before the `stat`, gone after
    // it) is not part of the host any more: without this, the short-lived processes of
    // whatever else runs in a shared PID namespace read as a change in every refresh.
    if let Some(after) = &after {
        procs.retain(|p| after.contains(p));
    }
    // Another namespace's process is not this host's. One whose namespace could not be read
    // (the user may not look) counts, as does every one when the session's own namespace is
    // unknown.
    if let Some(own_ns) = netns.get("self") {
        procs.retain(|p| {
            netns
                .get(p.to_string().as_str())
                .is_none_or(|ns| ns == own_ns)
        });
    }
    let mut out = Vec::new();
    for w in WATCHES {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (n, rest) in &stats {
            if w.paths.iter().any(|p| glob_match(p, n)) {
                n.hash(&mut h);
                rest.hash(&mut h);
            }
        }
        if w.procs {
            procs.hash(&mut h);
        }
        if w.socks {
            socks.hash(&mut h);
        }
        out.push((w.probe, h.finish()));
    }
    Some(out)
}

/// `*` (any run of characters but `/`) and `?` (one character), as the shell expands them.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => n.first().is_some_and(|&c| c != b'/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The tool each probe needs, for "not installed" states.
fn tool_of(probe: &str) -> &'static str {
    match probe {
        "ip-addr" | "ip-route" | "ip6-route" => "ip",
        "ufw" | "ufw-rules" | "ufw-rules6" => "ufw",
        "iptables-legacy" => "iptables-legacy-save",
        "ip6tables-legacy" => "ip6tables-legacy-save",
        "iptables-nft" => "iptables-nft-save",
        "ip6tables-nft" => "ip6tables-nft-save",
        "iptables-plain" => "iptables-save",
        "ip6tables-plain" => "ip6tables-save",
        "ipset" => "ipset",
        "nft" => "nft",
        "firewalld" | "firewalld-zones" => "firewalld",
        "ss" => "ss",
        "containers" => "docker/podman",
        "fail2ban" => "fail2ban",
        "wireguard" => "wg",
        "openvpn" => "openvpn",
        "sshd" => "sshd",
        "nginx" => "nginx",
        "services" => "ps",
        "fail2ban-jails" => "fail2ban",
        "crowdsec" => "cscli",
        "ids" => "suricata/snort",
        "https-self" => "nginx/curl",
        "stack-postgres" => "postgres",
        "stack-redis" => "redis-server",
        "stack-mysql" => "mysqld",
        "stack-memcached" => "memcached",
        "stack-django" => "gunicorn",
        "stack-app-http" => "curl",
        _ => "sh",
    }
}

/// The one framed script that collects a whole host.
pub fn host_script() -> Result<ReadCommand, crate::ssh::CommandError> {
    let probes: Vec<&ReadCommand> = PROBES.iter().collect();
    ReadCommand::framed("collect", &probes)
}

/// Words with which tools refuse for lack of privileges.
fn is_permission_denied(text: &str) -> bool {
    const WORDS: [&str; 9] = [
        "Permission denied",
        "you must be root",
        "You need to be root",
        "Operation not permitted",
        "a password is required",
        "a terminal is required",
        "no hostkeys available",
        "must be run as root",
        "permission denied while trying to connect",
    ];
    WORDS.iter().any(|w| text.contains(w))
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    let mut l = super::clean(line);
    if l.len() > 300 {
        let mut cut = 300;
        while !l.is_char_boundary(cut) {
            cut -= 1;
        }
        l.truncate(cut);
    }
    l
}

/// One probe's output, as text, with its outcome.
struct Out {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

/// Looks a probe's frame up and classifies failures. `Ok` carries the frame even when the
/// exit status is not zero (some tools report state that way); callers decide.
fn frame(frames: &[Frame], name: &str) -> Probed<Out> {
    let Some(f) = frames.iter().find(|f| f.name == name) else {
        return Probed::Failed {
            stage: name.to_string(),
            message: "the probe produced no frame (output cut short?)".into(),
        };
    };
    let out = Out {
        stdout: String::from_utf8_lossy(&f.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&f.stderr).into_owned(),
        status: f.exit_status,
    };
    match out.status {
        None => Probed::Failed {
            stage: name.to_string(),
            message: "the probe was cut short (no exit status)".into(),
        },
        Some(127) => Probed::NotInstalled {
            tool: tool_of(name).to_string(),
        },
        Some(0) => Probed::Ok(out),
        Some(_) if is_permission_denied(&out.stderr) || is_permission_denied(&out.stdout) => {
            Probed::PermissionDenied {
                stage: name.to_string(),
                message: first_line(if out.stderr.trim().is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                }),
            }
        }
        Some(_) => Probed::Ok(out),
    }
}

/// A probe whose non-zero exit is a failure.
fn strict(frames: &[Frame], name: &str) -> Probed<String> {
    match frame(frames, name) {
        Probed::Ok(o) if o.status == Some(0) => Probed::Ok(o.stdout),
        Probed::Ok(o) => Probed::Failed {
            stage: name.to_string(),
            message: format!(
                "exit status {}: {}",
                o.status.unwrap_or(-1),
                first_line(if o.stderr.trim().is_empty() {
                    &o.stdout
                } else {
                    &o.stderr
                })
            ),
        },
        other => other.map(|o| o.stdout),
    }
}

fn parsed<T, E: std::fmt::Display>(stage: &str, r: Result<T, E>) -> Probed<T> {
    match r {
        Ok(v) => Probed::Ok(v),
        Err(e) => Probed::Failed {
            stage: format!("parse {stage}"),
            message: e.to_string(),
        },
    }
}

/// Splits text at lines starting with `prefix`: the part before the first such line, and
/// (rest of the marker line, body) for each.
fn sections<'a>(text: &'a str, prefix: &str) -> (String, Vec<(&'a str, String)>) {
    let mut head = String::new();
    let mut parts: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(prefix) {
            parts.push((rest.trim(), String::new()));
        } else {
            let buf = match parts.last_mut() {
                Some((_, b)) => b,
                None => &mut head,
            };
            buf.push_str(line);
            buf.push('\n');
        }
    }
    (head, parts)
}

fn build_facts(frames: &[Frame]) -> Probed<Facts> {
    strict(frames, "facts").map(|text| {
        let mut f = Facts::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k {
                "hostname" => f.hostname = super::clean(v),
                "uname" => {
                    let mut w = v.split_whitespace();
                    f.kernel = w.next().map(super::clean).unwrap_or_default();
                    f.machine = w.next().map(super::clean).unwrap_or_default();
                }
                "uptime" => f.uptime_secs = counters::parse_uptime(v),
                "init" => f.init = Some(super::clean(v)),
                _ => {}
            }
        }
        if let Probed::Ok(t) = strict(frames, "os-release")
            && let Ok(os) = facts::parse_os_release(&t)
        {
            f.os = os;
        }
        if let Probed::Ok(t) = strict(frames, "ip-addr")
            && let Ok(i) = facts::parse_ip_addr(&t)
        {
            f.interfaces = i;
        }
        for name in ["ip-route", "ip6-route"] {
            if let Probed::Ok(t) = strict(frames, name)
                && let Ok(r) = facts::parse_ip_route(&t)
            {
                f.routes.extend(r);
            }
        }
        f
    })
}

fn build_fail2ban(frames: &[Frame]) -> Probed<Fail2ban> {
    let out = match frame(frames, "fail2ban") {
        Probed::Ok(o) => o,
        other => return other.map(|_| Fail2ban::default()),
    };
    let text = format!("{}{}", out.stdout, out.stderr);
    let (head, jails) = sections(&out.stdout, "### jail ");
    let overview = match fail2ban::parse_overview(if jails.is_empty() { &text } else { &head }) {
        Ok(o) => o,
        Err(e) => return parsed("fail2ban", Err(e)),
    };
    match &overview {
        fail2ban::Overview::PermissionDenied(m) => {
            return Probed::PermissionDenied {
                stage: "fail2ban".into(),
                message: m.clone(),
            };
        }
        fail2ban::Overview::NotRunning => {
            return Probed::Ok(fail2ban::build(&overview, None, Vec::new()));
        }
        fail2ban::Overview::Running { .. } => {}
    }
    let mut list = Vec::new();
    for (name, body) in jails {
        match fail2ban::parse_jail(name, &body) {
            Ok(j) => list.push(j),
            Err(e) => return parsed("fail2ban", Err(e)),
        }
    }
    Probed::Ok(fail2ban::build(&overview, None, list))
}

fn build_vpn(frames: &[Frame], facts: &Probed<Facts>) -> Probed<Vpn> {
    let wireguard = match strict(frames, "wireguard") {
        Probed::Ok(t) => parsed("wireguard", vpn::parse_wg_dump(&t, None)),
        other => other.map(|_| Vec::new()),
    };
    let wireguard = wireguard.map(|mut ifs| {
        if let Some(f) = facts.ok() {
            for w in &mut ifs {
                w.up = f.interfaces.iter().find(|i| i.name == w.name).map(|i| i.up);
            }
        }
        ifs
    });
    let openvpn = match strict(frames, "openvpn") {
        Probed::Ok(t) => {
            let (_, files) = sections(&t, "### file ");
            let mut out = Vec::new();
            let mut err = None;
            for (path, body) in files {
                match vpn::parse_openvpn(path, &body) {
                    Ok(s) => out.push(s),
                    Err(e) => err = Some(e),
                }
            }
            match err {
                Some(e) if out.is_empty() => parsed("openvpn", Err(e)),
                _ => Probed::Ok(out),
            }
        }
        other => other.map(|_| Vec::new()),
    };
    Probed::Ok(Vpn { wireguard, openvpn })
}

fn build_counters(frames: &[Frame]) -> Probed<Counters> {
    match strict(frames, "counters") {
        Probed::Ok(t) => {
            let (head, parts) = sections(&t, "### ");
            let mut c = Counters {
                uptime_secs: counters::parse_uptime(&head),
                ..Counters::default()
            };
            for (name, body) in parts {
                match name {
                    "dev" => match counters::parse_net_dev(&body) {
                        Ok(d) => c.interfaces = d,
                        Err(e) => return parsed("counters", Err(e)),
                    },
                    "snmp" => c.tcp = counters::parse_snmp(&body).ok(),
                    "conntrack" => {
                        let mut l = body.lines();
                        c.conntrack = l
                            .next()
                            .and_then(|n| counters::parse_conntrack(n, l.next()));
                    }
                    _ => {}
                }
            }
            Probed::Ok(c)
        }
        other => other.map(|_| Counters::default()),
    }
}

/// When the `ufw` probe read ufw's files (its output starts with [`ufw::FILES_MARKER`]),
/// replaces its text by the `ufw status verbose` text those files and the live chains give;
/// frames of `ufw status verbose` itself (older captures) pass through.
fn ufw_status_from_files(mut texts: Vec<(&str, Probed<String>)>) -> Vec<(&str, Probed<String>)> {
    let get = |texts: &[(&str, Probed<String>)], n: &str| -> Option<String> {
        texts
            .iter()
            .find(|(k, _)| *k == n)
            .and_then(|(_, p)| p.ok().cloned())
    };
    let Some(files) = get(&texts, "ufw") else {
        return texts;
    };
    let Some(body) = files.strip_prefix(ufw::FILES_MARKER) else {
        return texts;
    };
    let status = match ufw::parse_files(body) {
        Ok(f) => {
            let loaded = [
                "iptables-nft",
                "iptables-legacy",
                "ip6tables-nft",
                "ip6tables-legacy",
            ]
            .iter()
            .filter_map(|n| get(&texts, n))
            .any(|t| ufw::chains_loaded(&t));
            Probed::Ok(ufw::status_text(
                &f,
                get(&texts, "ufw-rules").as_deref(),
                get(&texts, "ufw-rules6").as_deref(),
                loaded,
            ))
        }
        Err(e) => parsed("ufw", Err(e)),
    };
    for (k, p) in &mut texts {
        if *k == "ufw" {
            *p = status.clone();
        }
    }
    texts
}

/// firewalld's zones (the `firewalld-zones` probe) into the firewall, as evidence; what
/// could not be read becomes a note of the firewall, never a failed firewall.
fn add_firewalld(fw: &mut crate::firewall::Firewall, frames: &[Frame]) {
    use crate::firewall::firewalld;
    match frame(frames, "firewalld-zones") {
        Probed::Ok(o) if o.status == Some(0) => match firewalld::parse(&o.stdout) {
            Ok(f) => fw.firewalld = f,
            Err(e) => fw.notes.push(format!("firewalld zones: {e}")),
        },
        Probed::Ok(o) if firewalld::is_permission_problem(&o.stderr) => fw.notes.push(format!(
            "firewalld zones: permission denied ({}); the verdicts still come from its nft table",
            first_line(&o.stderr)
        )),
        Probed::Ok(o) => fw.notes.push(format!(
            "firewalld zones: firewall-cmd failed ({})",
            first_line(&o.stderr)
        )),
        Probed::NotInstalled { .. } => {}
        other => fw
            .notes
            .push(format!("firewalld zones: {}", other.status_label())),
    }
}

/// Turns the frames of one [`host_script`] run into the host's state. Pure: every part is
/// built on its own, so one failing probe or parser loses nothing else.
pub fn state_from_frames(host: &str, frames: &[Frame]) -> HostState {
    let facts = build_facts(frames);

    // Firewall: every backend's output, whatever state each is in.
    let texts: Vec<(&str, Probed<String>)> = [
        "ufw",
        "ufw-rules",
        "ufw-rules6",
        "iptables-legacy",
        "ip6tables-legacy",
        "iptables-nft",
        "ip6tables-nft",
        "nft",
        "iptables-plain",
        "ip6tables-plain",
        "ipset",
    ]
    .iter()
    .map(|n| (*n, strict(frames, n)))
    .collect();
    let texts = ufw_status_from_files(texts);
    let get = |n: &str| -> Probed<&str> {
        texts.iter().find(|(k, _)| *k == n).map_or(
            Probed::NotInstalled {
                tool: n.to_string(),
            },
            |(_, p)| p.as_ref().map(String::as_str),
        )
    };
    let firewalld_running = match frame(frames, "firewalld") {
        Probed::Ok(o) => Some(o.stdout.trim() == "running"),
        _ => None,
    };
    let inputs = firewall::Inputs {
        ufw_status: get("ufw"),
        ufw_user_rules: get("ufw-rules").ok().copied(),
        ufw_user6_rules: get("ufw-rules6").ok().copied(),
        iptables_legacy: get("iptables-legacy"),
        ip6tables_legacy: get("ip6tables-legacy"),
        iptables_nft: get("iptables-nft"),
        ip6tables_nft: get("ip6tables-nft"),
        nft: get("nft"),
        firewalld_running,
    };
    let more = firewall::MoreInputs {
        iptables_plain: get("iptables-plain"),
        ip6tables_plain: get("ip6tables-plain"),
        ipset: get("ipset"),
    };
    let any_ruleset = [
        &inputs.ufw_status,
        &inputs.iptables_legacy,
        &inputs.iptables_nft,
        &inputs.nft,
        &more.iptables_plain,
    ]
    .iter()
    .any(|p| p.is_ok());
    let denied = [
        &inputs.ufw_status,
        &inputs.iptables_legacy,
        &inputs.iptables_nft,
        &inputs.nft,
    ]
    .iter()
    .find(|p| matches!(p, Probed::PermissionDenied { .. }))
    .map(|p| p.as_ref().map(|_| ()));
    let firewall = match (any_ruleset, denied) {
        (false, Some(Probed::PermissionDenied { stage, message })) => {
            Probed::PermissionDenied { stage, message }
        }
        _ => {
            let mut fw = firewall::assemble_with(&inputs, &more);
            add_firewalld(&mut fw, frames);
            Probed::Ok(fw)
        }
    };

    let listeners = match strict(frames, "ss") {
        Probed::Ok(t) => parsed("ss", listeners::parse(&t)),
        other => other.map(|_| Vec::new()),
    };
    let fail2ban = build_fail2ban(frames);
    let vpn = build_vpn(frames, &facts);
    let sshd = match frame(frames, "sshd") {
        Probed::Ok(o) if o.status == Some(0) => parsed("sshd", sshd::parse_with_matches(&o.stdout)),
        Probed::Ok(o) if sshd::is_permission_problem(&o.stderr) => Probed::PermissionDenied {
            stage: "sshd".into(),
            message: first_line(&o.stderr),
        },
        Probed::Ok(o) => Probed::Failed {
            stage: "sshd".into(),
            message: first_line(&o.stderr),
        },
        other => other.map(|_| crate::state::Sshd::default()),
    };
    let (nginx, tls) = match frame(frames, "nginx") {
        Probed::Ok(o) => {
            let (conf, certs) = match o.stdout.split_once(TLS_MARKER) {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (o.stdout.clone(), String::new()),
            };
            let n = parsed("nginx", nginx::parse(&conf));
            let (c, errs) = tls::parse_files(&certs);
            let t = if c.is_empty() && !errs.is_empty() {
                Probed::Failed {
                    stage: "parse tls".into(),
                    message: errs.join("; "),
                }
            } else {
                Probed::Ok(c)
            };
            (n, t)
        }
        other => {
            let t = other.as_ref().map(|_| Vec::new());
            (other.map(|_| crate::state::Nginx::default()), t)
        }
    };
    let services = match strict(frames, "services") {
        Probed::Ok(t) => {
            let (head, parts) = sections(&t, "### systemd");
            match services::parse_ps(&head) {
                Ok((own, procs)) => {
                    let mut s = services::from_processes(own, &procs);
                    if let Some((_, body)) = parts.first() {
                        services::apply_systemd(&mut s, body);
                    }
                    Probed::Ok(s)
                }
                Err(e) => parsed("services", Err(e)),
            }
        }
        other => other.map(|_| crate::state::Services::default()),
    };
    let counters = build_counters(frames);
    let defences = build_defences(frames);
    let stack = build_stack(frames);
    let containers = match strict(frames, "containers") {
        Probed::Ok(t) => parsed("containers", containers::parse_probe(&t)),
        other => other.map(|_| Vec::new()),
    };

    let mut errors = Vec::new();
    for p in PROBES {
        if !frames.iter().any(|f| f.name == p.name()) {
            errors.push(StateError {
                stage: "frames".into(),
                message: format!("no output for probe {}", p.name()),
            });
        }
    }
    HostState {
        host: host.to_string(),
        collected_at: None,
        facts,
        firewall,
        listeners,
        fail2ban,
        vpn,
        sshd,
        nginx,
        tls,
        services,
        counters,
        defences,
        stack,
        containers,
        errors,
    }
}

/// CrowdSec, IDS files, the jails' sources (with the `stat`s the fail2ban probe made of
/// the files its running jails poll) and the host's own HTTPS answer.
fn build_defences(frames: &[Frame]) -> crate::state::Defences {
    let crowdsec = match frame(frames, "crowdsec") {
        Probed::Ok(o) => parsed("crowdsec", crowdsec::parse_probe(&o.stdout, &o.stderr)),
        other => other.map(|_| crate::state::Crowdsec::default()),
    };
    let ids = match strict(frames, "ids") {
        Probed::Ok(t) => parsed("ids", ids::parse_probe(&t)),
        other => other.map(|_| Vec::new()),
    };
    let mut jail_sources = match strict(frames, "fail2ban-jails") {
        Probed::Ok(t) => parsed("fail2ban-jails", jails::parse_probe(&t)),
        other => other.map(|_| crate::state::JailSources::default()),
    };
    if let (Probed::Ok(js), Probed::Ok(o)) = (&mut jail_sources, frame(frames, "fail2ban")) {
        js.files = o.stdout.lines().filter_map(jails::parse_stat).collect();
    }
    let https = match strict(frames, "https-self") {
        Probed::Ok(t) => parsed("https-self", https::parse_probe(&t)),
        other => other.map(|_| Vec::new()),
    };
    crate::state::Defences {
        crowdsec,
        ids,
        jail_sources,
        https,
    }
}

/// The data stores and apps. A stack probe that failed is kept in `unread`, so a check that
/// needed it can say it could not decide rather than say "fine".
fn build_stack(frames: &[Frame]) -> Stack {
    let mut st = Stack::default();
    let mut read = |name: &str| -> Option<String> {
        match frame(frames, name) {
            Probed::Ok(o) => Some(o.stdout),
            Probed::NotInstalled { .. } => None,
            Probed::PermissionDenied { stage, message } | Probed::Failed { stage, message } => {
                st.unread.push(StateError { stage, message });
                None
            }
        }
    };
    let pg = read("stack-postgres");
    let redis = read("stack-redis");
    let mysql = read("stack-mysql");
    let memcached = read("stack-memcached");
    let apps = read("stack-django");
    let http = read("stack-app-http");
    let mut failed = |stage: &str, e: ParseError| {
        st.unread.push(StateError {
            stage: format!("parse {stage}"),
            message: e.to_string(),
        });
    };
    let mut out = Stack::default();
    if let Some(t) = pg {
        match datastore::parse_postgres(&t) {
            Ok(v) => out.postgres = v,
            Err(e) => failed("stack-postgres", e),
        }
    }
    if let Some(t) = redis {
        match datastore::parse_redis(&t) {
            Ok(v) => out.redis = v,
            Err(e) => failed("stack-redis", e),
        }
    }
    if let Some(t) = mysql {
        match datastore::parse_mysql(&t) {
            Ok(v) => out.mysql = Some(v),
            Err(e) => failed("stack-mysql", e),
        }
    }
    if let Some(t) = memcached {
        match datastore::parse_memcached_probe(&t) {
            Ok(v) => out.memcached = v,
            Err(e) => failed("stack-memcached", e),
        }
    }
    if let Some(t) = apps {
        match django::parse_apps(&t) {
            Ok(v) => out.apps = v,
            Err(e) => failed("stack-django", e),
        }
    }
    if let Some(t) = http {
        match django::parse_app_probes(&t) {
            Ok(v) => out.app_probes = v,
            Err(e) => failed("stack-app-http", e),
        }
    }
    out.unread = st.unread;
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn f(name: &str, status: Option<i32>, out: &str, err: &str) -> Frame {
        Frame {
            name: name.into(),
            exit_status: status,
            stdout: out.as_bytes().to_vec(),
            stderr: err.as_bytes().to_vec(),
        }
    }

    #[test]
    fn globs_match_as_the_shell_expands_them() {
        assert!(glob_match("/etc/nginx/*", "/etc/nginx/nginx.conf"));
        assert!(!glob_match(
            "/etc/nginx/*",
            "/etc/nginx/sites-enabled/default"
        ));
        assert!(glob_match(
            "/etc/nginx/*/*",
            "/etc/nginx/sites-enabled/default"
        ));
        assert!(glob_match(
            "/etc/ssh/ssh_host_*",
            "/etc/ssh/ssh_host_ed25519_key"
        ));
        assert!(glob_match("/a?c", "/abc") && !glob_match("/a?c", "/a/c"));
        assert!(!glob_match("/etc/ufw/user.rules", "/etc/ufw/user6.rules"));
    }

    #[test]
    fn fingerprint_tokens_follow_files_and_processes_not_the_session() {
        let text = |own: &str, procs: &str, size: u32| {
            format!(
                "self {own}\n### procs\n{procs}\n### socks\n\
                 tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\n\
                 tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n### stat\n\
                 /etc/ufw/user.rules|12|{size}|1700000000\n\
                 /etc/ssh/sshd_config|13|3200|1700000000\n"
            )
        };
        let tok = |t: &str| fingerprint_tokens(t).unwrap();
        let of = |t: &[(&str, u64)], n: &str| t.iter().find(|(k, _)| *k == n).unwrap().1;
        let a = tok(&text(
            "900 899 898",
            "/proc/1 /proc/50 /proc/898 /proc/899 /proc/900",
            300,
        ));
        // Another session (other pids of its own), same host: nothing changed.
        let b = tok(&text(
            "990 989 988",
            "/proc/1 /proc/50 /proc/988 /proc/989 /proc/990",
            300,
        ));
        assert_eq!(a, b);
        // A rule added: user.rules grew; only ufw-rules changes.
        let c = tok(&text(
            "990 989",
            "/proc/1 /proc/50 /proc/989 /proc/990",
            310,
        ));
        assert_ne!(of(&a, "ufw-rules"), of(&c, "ufw-rules"));
        assert_eq!(of(&a, "sshd"), of(&c, "sshd"));
        assert_eq!(of(&a, "services"), of(&c, "services"));
        // A process started: the process watchers change, the file watchers do not.
        let d = tok(&text(
            "990 989",
            "/proc/1 /proc/50 /proc/77 /proc/989 /proc/990",
            300,
        ));
        assert_ne!(of(&a, "services"), of(&d, "services"));
        assert_ne!(of(&a, "fail2ban"), of(&d, "fail2ban"));
        assert_eq!(of(&a, "ufw-rules"), of(&d, "ufw-rules"));
        // Processes of other network namespaces (another lab host, a container sharing the
        // PID namespace) come and go without changing this host; its own do change it, and
        // so does one whose namespace could not be read.
        let with_ns = |procs: &str, ns: &[(&str, u32)]| {
            let mut t = text("990 989", procs, 300);
            t.push_str("/proc/self/ns/net|4026532254|0|1\n");
            for (pid, ino) in ns {
                t.push_str(&format!("/proc/{pid}/ns/net|{ino}|0|1\n"));
            }
            tok(&t)
        };
        let base = with_ns("/proc/1 /proc/50", &[("1", 4026531840), ("50", 4026532254)]);
        let other = with_ns(
            "/proc/1 /proc/50 /proc/61",
            &[("1", 4026531840), ("50", 4026532254), ("61", 4026532999)],
        );
        assert_eq!(of(&base, "services"), of(&other, "services"));
        assert_eq!(of(&base, "fail2ban"), of(&other, "fail2ban"));
        let own = with_ns(
            "/proc/1 /proc/50 /proc/62",
            &[("1", 4026531840), ("50", 4026532254), ("62", 4026532254)],
        );
        assert_ne!(of(&base, "services"), of(&own, "services"));
        let unread = with_ns(
            "/proc/1 /proc/50 /proc/63",
            &[("1", 4026531840), ("50", 4026532254)],
        );
        assert_ne!(of(&base, "services"), of(&unread, "services"));
        // The namespace lines are not watched files.
        assert_eq!(of(&base, "ufw-rules"), of(&a, "ufw-rules"));
        // No stat on the host, or no process list: nothing can be trusted.
        assert!(
            fingerprint_tokens("self 1\n### procs\n/proc/1\n### socks\n### no stat\n").is_none()
        );
        // Nor without the socket list.
        assert!(fingerprint_tokens("self 1\n### procs\n/proc/1\n### stat\n").is_none());
        assert!(fingerprint_tokens("### stat\n").is_none());
    }

    #[test]
    fn a_process_that_ended_while_the_fingerprint_ran_is_no_change() {
        // Listed before the `stat`, its namespace unread, then (`### after`) gone or not.
        let text = |procs: &str, after: &str| {
            format!(
                "self 900\n### procs\n{procs}\n### socks\n### stat\n\
                 /proc/self/ns/net|4026532254|0|1\n/proc/1/ns/net|4026532254|0|1\n\
                 /proc/50/ns/net|4026532254|0|1\n### after\n{after}\n"
            )
        };
        let of = |t: &str| {
            let t = fingerprint_tokens(t).unwrap();
            t.iter().find(|(k, _)| *k == "services").unwrap().1
        };
        let base = of(&text("/proc/1 /proc/50", "/proc/1 /proc/50"));
        // A short-lived process of whatever shares the PID namespace: no change.
        let ended = of(&text(
            "/proc/1 /proc/50 /proc/77",
            "/proc/1 /proc/50 /proc/78",
        ));
        assert_eq!(base, ended);
        // Still there, namespace unreadable: it counts (the safe direction).
        let unread = of(&text(
            "/proc/1 /proc/50 /proc/77",
            "/proc/1 /proc/50 /proc/77",
        ));
        assert_ne!(base, unread);
        // One of the host's own that ended (a daemon gone) is a change.
        let gone = of(&text("/proc/1 /proc/50", "/proc/1"));
        assert_ne!(base, gone);
    }

    #[test]
    fn the_socket_owners_run_again_when_a_listener_comes_or_goes_not_with_its_queue() {
        let text = |socks: &str| {
            format!(
                "self 900\n### procs\n/proc/1 /proc/50\n### socks\n{socks}### stat\n\
                 /etc/ssh/sshd_config|13|3200|1700000000\n"
            )
        };
        let of = |socks: &str, n: &str| {
            let t = fingerprint_tokens(&text(socks)).unwrap();
            t.iter().find(|(k, _)| *k == n).unwrap().1
        };
        let base =
            "tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\nudp UNCONN 0 0 0.0.0.0:51820 0.0.0.0:*\n";
        // The same sockets with other queue lengths, in another order: unchanged.
        let queued =
            "udp UNCONN 2304 0 0.0.0.0:51820 0.0.0.0:*\ntcp LISTEN 7 511 0.0.0.0:80 0.0.0.0:*\n";
        assert_eq!(of(base, "ss"), of(queued, "ss"));
        // A port opened, one closed, an address changed: the owners are read again.
        let opened = format!("{base}tcp LISTEN 0 128 0.0.0.0:5432 0.0.0.0:*\n");
        assert_ne!(of(base, "ss"), of(&opened, "ss"));
        assert_ne!(
            of(base, "ss"),
            of("tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\n", "ss")
        );
        let moved =
            "tcp LISTEN 0 511 10.0.0.5:80 0.0.0.0:*\nudp UNCONN 0 0 0.0.0.0:51820 0.0.0.0:*\n";
        assert_ne!(of(base, "ss"), of(moved, "ss"));
        // `ss` failing is a change too (its frame will say why).
        assert_ne!(of(base, "ss"), of("failed 1\n", "ss"));
        // Only the socket watchers follow sockets.
        assert_eq!(of(base, "sshd"), of(&opened, "sshd"));
        assert_eq!(of(base, "services"), of(&opened, "services"));
    }

    #[test]
    fn a_hung_container_daemon_fails_its_own_probe_not_the_script() {
        let has_timeout = std::process::Command::new("sh")
            .args(["-c", "command -v timeout"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_timeout {
            return;
        }
        // A docker CLI whose daemon never answers.
        let bin = tempfile::tempdir().unwrap();
        let fake = bin.path().join("docker");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let probe = |n: &str| PROBES.iter().find(|p| p.name() == n).unwrap();
        let cmd = ReadCommand::framed("t", &[probe("containers"), probe("os-release")]).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd.render(false))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.path().display()))
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
        let frames = cmd.parse_frames(&out.stdout, &out.stderr);
        let c = frames.iter().find(|f| f.name == "containers").unwrap();
        assert_eq!(c.exit_status, Some(1), "{c:?}");
        assert!(
            String::from_utf8_lossy(&c.stderr).contains("docker ps: no answer in 10 s"),
            "{c:?}"
        );
        let os = frames.iter().find(|f| f.name == "os-release").unwrap();
        assert!(os.complete() && os.exit_status == Some(0), "{os:?}");
        let st = state_from_frames("h", &frames);
        match &st.containers {
            Probed::Failed { message, .. } => assert!(message.contains("no answer"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_conditional_watch_holds_only_while_the_daemon_is_said_not_to_run() {
        let w = |name: &str| WATCHES.iter().find(|w| w.probe == name).unwrap();
        let zones = w("firewalld-zones");
        assert!(zones.procs && zones.paths.is_empty());
        // Not running: only a new process can change the answer, so it is watched.
        assert!(zones.holds(&[f("firewalld-zones", Some(0), "not running\n", "")]));
        // Running: runtime zones change with no file and no process: every refresh.
        let running = "running\n### default public\n### zones\npublic\n";
        assert!(!zones.holds(&[f("firewalld-zones", Some(0), running, "")]));
        // A failed, cut or missing frame is no evidence: every refresh.
        assert!(!zones.holds(&[f("firewalld-zones", Some(1), "not running\n", "")]));
        assert!(!zones.holds(&[f("firewalld-zones", None, "not running\n", "")]));
        assert!(!zones.holds(&[f("crowdsec", Some(0), "not running\n", "")]));
        assert!(!zones.holds(&[]));
        let cs = w("crowdsec");
        assert!(cs.holds(&[f("crowdsec", Some(0), "### decisions skipped\n", "")]));
        assert!(!cs.holds(&[f(
            "crowdsec",
            Some(0),
            "### running\n### decisions 0\n[]\n",
            ""
        )]));
        // Every other watch holds whatever the frames say.
        assert!(w("sshd").holds(&[]));
    }

    #[test]
    fn the_fingerprint_declares_every_watched_path_and_only_probes_that_exist() {
        let fp = FINGERPRINT.probes()[0].1;
        for w in WATCHES {
            assert!(PROBES.iter().any(|p| p.name() == w.probe), "{}", w.probe);
            for p in w.paths {
                assert!(fp.contains(&format!(" {p} ")), "{p}");
            }
        }
        assert!(!fp.chars().any(char::is_control));
    }

    #[test]
    fn every_probe_has_a_valid_name_and_the_script_frames() {
        let s = host_script().unwrap();
        assert_eq!(s.probes().len(), PROBES.len());
        let text = s.render(false);
        assert!(text.contains("nft -j list ruleset"));
    }

    #[test]
    fn one_failing_probe_loses_nothing_else() {
        let frames = vec![
            f(
                "facts",
                Some(0),
                "hostname=h\nuname=6.1 x86_64\nuptime=5.5\ninit=sh\n",
                "",
            ),
            f("ss", Some(1), "", "ss: garbage\n"),
            f("sshd", Some(127), "", ""),
            f(
                "ufw",
                Some(1),
                "",
                "ERROR: You need to be root to run this script\n",
            ),
            f(
                "nft",
                Some(1),
                "",
                "Error: cache initialization failed: Operation not permitted\n",
            ),
            f(
                "fail2ban",
                Some(255),
                "ERROR Failed to access socket path: /x. Is fail2ban running?\n",
                "",
            ),
            f("counters", None, "1.0\n", ""),
        ];
        let st = state_from_frames("h", &frames);
        assert_eq!(st.facts.ok().unwrap().hostname, "h");
        assert_eq!(st.facts.ok().unwrap().kernel, "6.1");
        assert!(matches!(st.listeners, Probed::Failed { .. }));
        assert!(matches!(st.sshd, Probed::NotInstalled { ref tool } if tool == "sshd"));
        assert!(
            matches!(st.firewall, Probed::PermissionDenied { .. }),
            "{:?}",
            st.firewall
        );
        assert!(!st.fail2ban.ok().unwrap().running);
        assert!(matches!(st.counters, Probed::Failed { .. }));
        assert!(st.errors.iter().any(|e| e.message.contains("nginx")));
    }
}
