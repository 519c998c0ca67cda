//! The rollback timer that lives on the host: save the state a fix will change, arm a
//! detached job that restores it after N seconds, and cancel the job only once rampart has
//! reconnected on a fresh connection and re-verified. If rampart never comes back (the fix
//! cut access, rampart crashed, the network died), the host restores itself.
//!
//! Everything here is a static `sh` script compiled into the binary; the only values passed
//! are the run ID (a checked name) and the number of seconds, as positional parameters.
//! State lives in `/var/lib/rampart/fix/RUN` on the host: `restore.sh` (the restore script,
//! written from the binary at save time), `armed` (present while the timer may fire), `pid`
//! (the timer's process), `restored` (the restore's exit status, once it ran).
//!
//! The timer is `setsid sh -c 'sleep N; ...' &`, which survives the SSH session; where
//! systemd is PID 1 a transient `systemd-run --on-active` timer is used as well, so the
//! restore also survives a logind session cleanup. Both fire the same script; whichever
//! renames `armed` to `firing` first restores, the other does nothing.

use crate::ssh::{MutatingCommand, SafeName};

/// What a rollback restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackKind {
    /// `/etc/ufw` and whether ufw was active.
    Ufw,
    /// The whole nft ruleset.
    Nft,
    /// `/etc/ssh/sshd_config.d`, then sshd reloaded.
    Sshd,
    /// The DOCKER-USER rules a run added (by their comment); Docker's own rules stay.
    DockerUser,
    /// firewalld's permanent configuration (`/etc/firewalld`), then `firewall-cmd --reload`,
    /// which also drops every runtime change made since.
    Firewalld,
    /// The iptables-legacy tables (IPv4, and IPv6 when they are loaded), restored whole with
    /// `iptables-legacy-restore` from what `iptables-legacy-save` printed.
    IptablesLegacy,
}

impl RollbackKind {
    fn save_script(self) -> &'static str {
        match self {
            RollbackKind::Ufw => SAVE_UFW,
            RollbackKind::Nft => SAVE_NFT,
            RollbackKind::Sshd => SAVE_SSHD,
            RollbackKind::DockerUser => SAVE_DOCKER_USER,
            RollbackKind::Firewalld => SAVE_FIREWALLD,
            RollbackKind::IptablesLegacy => SAVE_IPTABLES_LEGACY,
        }
    }

    fn restore_script(self) -> &'static str {
        match self {
            RollbackKind::Ufw => RESTORE_UFW,
            RollbackKind::Nft => RESTORE_NFT,
            RollbackKind::Sshd => RESTORE_SSHD,
            RollbackKind::DockerUser => RESTORE_DOCKER_USER,
            RollbackKind::Firewalld => RESTORE_FIREWALLD,
            RollbackKind::IptablesLegacy => RESTORE_IPTABLES_LEGACY,
        }
    }

    /// The host-side script that saves the state (reads the restore script on stdin; `$1`
    /// is the run ID). Public for tests that run it on the lab.
    pub fn save_script_text(self) -> &'static str {
        self.save_script()
    }

    /// The host-side restore script (`$1` is the run ID).
    pub fn restore_script_text(self) -> &'static str {
        self.restore_script()
    }

    pub fn label(self) -> &'static str {
        match self {
            RollbackKind::Ufw => "ufw rules and state",
            RollbackKind::Nft => "nft ruleset",
            RollbackKind::Sshd => "sshd drop-ins",
            RollbackKind::DockerUser => "DOCKER-USER rules",
            RollbackKind::Firewalld => "firewalld configuration (permanent and runtime)",
            RollbackKind::IptablesLegacy => "iptables-legacy tables",
        }
    }
}

/// A rollback a plan arms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub kind: RollbackKind,
    pub secs: u64,
}

/// Common start of every script: the run's directory from `$1`.
macro_rules! script {
    ($body:literal) => {
        concat!(
            "PATH=$PATH:/usr/sbin:/sbin; umask 077; d=/var/lib/rampart/fix/$1; ",
            $body
        )
    };
}

const SAVE_UFW: &str = script!(
    "set -e; mkdir -p \"$d\"; rm -rf \"$d/ufw\"; cp -a /etc/ufw \"$d/ufw\"; \
     if [ -f /etc/default/ufw ]; then cp -a /etc/default/ufw \"$d/default-ufw\"; fi; \
     if ufw status | grep -q '^Status: active'; then echo active; else echo inactive; fi > \"$d/state\"; \
     cat > \"$d/restore.sh\"; echo \"saved /etc/ufw ($(cat \"$d/state\")) in $d\""
);

/// Puts back ufw's files; an active ufw reloads them, an inactive one is disabled and its
/// chain skeleton removed (`ufw disable` leaves empty chains hooked into INPUT), keeping
/// every other chain (fail2ban's) as it is.
const RESTORE_UFW: &str = "PATH=$PATH:/usr/sbin:/sbin; d=/var/lib/rampart/fix/$1\n\
[ -d \"$d/ufw\" ] || exit 1\n\
for f in /etc/ufw/*; do [ -e \"$d/ufw/${f##*/}\" ] || rm -rf \"$f\"; done\n\
cp -a \"$d/ufw/.\" /etc/ufw/\n\
if [ -f \"$d/default-ufw\" ]; then cp -a \"$d/default-ufw\" /etc/default/ufw; fi\n\
if [ \"$(cat \"$d/state\")\" = active ]; then ufw --force enable && ufw reload; exit; fi\n\
ufw --force disable\n\
for t in iptables ip6tables; do command -v $t-save >/dev/null 2>&1 || continue; \
$t-save | grep -v -E '^:ufw6?-|^-A ufw6?-|-j ufw6?-' | $t-restore; done\n";

const SAVE_NFT: &str = script!(
    "set -e; mkdir -p \"$d\"; nft -s list ruleset > \"$d/ruleset.nft\"; \
     cat > \"$d/restore.sh\"; echo \"saved the nft ruleset in $d\""
);

const RESTORE_NFT: &str = "PATH=$PATH:/usr/sbin:/sbin; d=/var/lib/rampart/fix/$1\n\
[ -f \"$d/ruleset.nft\" ] || exit 1\n\
{ echo 'flush ruleset'; cat \"$d/ruleset.nft\"; } | nft -f -\n";

/// firewalld fixes change the runtime first and make it permanent only after
/// re-verification: the saved /etc/firewalld is what the permanent configuration was, and
/// `--reload` makes the runtime that again.
const SAVE_FIREWALLD: &str = script!(
    "set -e; mkdir -p \"$d\"; rm -rf \"$d/firewalld\"; cp -a /etc/firewalld \"$d/firewalld\"; \
     firewall-cmd --state >/dev/null; \
     cat > \"$d/restore.sh\"; echo \"saved /etc/firewalld in $d\""
);

/// Puts back /etc/firewalld (removing files a fix added) and reloads: permanent and runtime
/// are then both what they were before the fix.
const RESTORE_FIREWALLD: &str = "PATH=$PATH:/usr/sbin:/sbin; d=/var/lib/rampart/fix/$1\n\
[ -d \"$d/firewalld\" ] || exit 1\n\
rm -rf /etc/firewalld.rampart-new && cp -a \"$d/firewalld\" /etc/firewalld.rampart-new || exit 1\n\
rm -rf /etc/firewalld.rampart-old && mv /etc/firewalld /etc/firewalld.rampart-old && mv /etc/firewalld.rampart-new /etc/firewalld || exit 1\n\
rm -rf /etc/firewalld.rampart-old\n\
firewall-cmd --reload\n";

const SAVE_SSHD: &str = script!(
    "set -e; mkdir -p \"$d\" /etc/ssh/sshd_config.d; rm -rf \"$d/sshd_config.d\"; \
     cp -a /etc/ssh/sshd_config.d \"$d/sshd_config.d\"; \
     cat > \"$d/restore.sh\"; echo \"saved /etc/ssh/sshd_config.d in $d\""
);

/// Restores the drop-ins and reloads sshd (SIGHUP re-executes the listener; live sessions
/// are separate processes and stay).
const RESTORE_SSHD: &str = "PATH=$PATH:/usr/sbin:/sbin; d=/var/lib/rampart/fix/$1\n\
[ -d \"$d/sshd_config.d\" ] || exit 1\n\
for f in /etc/ssh/sshd_config.d/*; do [ -e \"$f\" ] || continue; [ -e \"$d/sshd_config.d/${f##*/}\" ] || rm -f \"$f\"; done\n\
cp -a \"$d/sshd_config.d/.\" /etc/ssh/sshd_config.d/\n\
sshd -t || exit 1\n\
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl reload ssh 2>/dev/null || systemctl reload sshd; else kill -HUP \"$(cat /run/sshd.pid)\"; fi\n";

/// Records the DOCKER-USER chain (both iptables variants) before the fix adds to it.
const SAVE_DOCKER_USER: &str = script!(
    "set -e; mkdir -p \"$d\"; for t in iptables-nft iptables-legacy; do \
     command -v $t >/dev/null 2>&1 || continue; \
     $t -w -S DOCKER-USER > \"$d/before-$t\" 2>/dev/null || : > \"$d/before-$t\"; done; \
     cat > \"$d/restore.sh\"; echo \"saved the DOCKER-USER chain in $d\""
);

/// Deletes the rampart-commented DOCKER-USER rules that were not there when the run saved:
/// exactly what this run added, whatever Docker did to its own rules meanwhile.
const RESTORE_DOCKER_USER: &str = "PATH=$PATH:/usr/sbin:/sbin; d=/var/lib/rampart/fix/$1\n\
for t in iptables-nft iptables-legacy; do\n\
[ -f \"$d/before-$t\" ] || continue\n\
$t -w -S DOCKER-USER 2>/dev/null | grep -F -e rampart-docker-user-restrict | grep -vxF -f \"$d/before-$t\" > \"$d/added-$t\" || true\n\
[ -s \"$d/added-$t\" ] || continue\n\
{ echo '*filter'; sed 's/^-A /-D /' \"$d/added-$t\"; echo COMMIT; } | $t-restore -w --noflush || exit 1\n\
done\n";

/// Saves the iptables-legacy tables; the IPv6 ones only when `ip6tables-legacy-save` prints
/// a table (the module may not be loaded, and restoring nothing is not restoring).
const SAVE_IPTABLES_LEGACY: &str = script!(
    "set -e; mkdir -p \"$d\"; rm -f \"$d/legacy.v4\" \"$d/legacy.v6\"; \
     iptables-legacy-save > \"$d/legacy.v4\"; \
     if ip6tables-legacy-save > \"$d/legacy.v6\" 2>/dev/null && grep -q '^\\*' \"$d/legacy.v6\"; then :; \
     else rm -f \"$d/legacy.v6\"; fi; \
     cat > \"$d/restore.sh\"; echo \"saved the iptables-legacy tables in $d\""
);

/// Puts back every saved table whole (`iptables-legacy-restore` without `--noflush`
/// replaces each table the file names, rules and chains, and leaves the others alone).
const RESTORE_IPTABLES_LEGACY: &str = "PATH=$PATH:/usr/sbin:/sbin; d=/var/lib/rampart/fix/$1\n\
[ -s \"$d/legacy.v4\" ] || exit 1\n\
iptables-legacy-restore -w < \"$d/legacy.v4\" || exit 1\n\
if [ -f \"$d/legacy.v6\" ]; then ip6tables-legacy-restore -w < \"$d/legacy.v6\" || exit 1; fi\n";

/// Arms the timer. `$2` is the delay in seconds.
const ARM: &str = script!(
    "[ -f \"$d/restore.sh\" ] || { echo \"nothing saved in $d\" >&2; exit 1; }; \
     rm -f \"$d/restored\" \"$d/firing\"; echo armed > \"$d/armed\"; \
     fire='d=/var/lib/rampart/fix/$1; mv \"$d/armed\" \"$d/firing\" 2>/dev/null || exit 0; sh \"$d/restore.sh\" \"$1\" > \"$d/restore.log\" 2>&1; echo $? > \"$d/restored\"'; \
     setsid sh -c \"sleep \\\"\\$2\\\"; $fire\" rampart-rollback \"$1\" \"$2\" </dev/null >/dev/null 2>&1 & \
     echo $! > \"$d/pid\"; \
     if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then \
     systemd-run --quiet --collect --on-active=\"$(( $2 + 1 ))\" --unit=\"rampart-rollback-$1\" /bin/sh -c \"$fire\" rampart-rollback \"$1\" || true; fi; \
     echo \"rollback armed: restores in $2 s unless cancelled (pid $(cat \"$d/pid\"))\""
);

/// Cancels the timer. Exit 3 when it already fired.
const CANCEL: &str = script!(
    "if rm \"$d/armed\" 2>/dev/null; then \
     kill \"$(cat \"$d/pid\" 2>/dev/null)\" 2>/dev/null; \
     if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl stop \"rampart-rollback-$1.timer\" 2>/dev/null; fi; \
     echo 'rollback cancelled'; exit 0; fi; \
     echo \"rollback already fired (restore status: $(cat \"$d/restored\" 2>/dev/null || echo running))\"; exit 3"
);

/// Fires the rollback now (a step failed): same path as the timer.
const FIRE_NOW: &str = script!(
    "mv \"$d/armed\" \"$d/firing\" 2>/dev/null || { echo 'rollback already fired'; exit 3; }; \
     kill \"$(cat \"$d/pid\" 2>/dev/null)\" 2>/dev/null; \
     sh \"$d/restore.sh\" \"$1\" > \"$d/restore.log\" 2>&1; rc=$?; echo $rc > \"$d/restored\"; \
     cat \"$d/restore.log\"; exit $rc"
);

fn sh(name: &'static str, script: &'static str, run: &SafeName) -> MutatingCommand {
    MutatingCommand::new(name, "sh")
        .arg("-c")
        .arg(script)
        .arg("rampart-fix")
        .name_arg(run)
}

/// Saves the state a rollback of `kind` restores (and stores the restore script).
pub fn save(kind: RollbackKind, run: &SafeName) -> MutatingCommand {
    sh("fix-rollback-save", kind.save_script(), run)
        .stdin(kind.restore_script().as_bytes().to_vec())
}

/// Arms the timer for `secs` seconds.
pub fn arm(run: &SafeName, secs: u64) -> MutatingCommand {
    sh("fix-rollback-arm", ARM, run).number(secs)
}

/// Cancels the timer (exit 3: it already fired).
pub fn cancel(run: &SafeName) -> MutatingCommand {
    sh("fix-rollback-cancel", CANCEL, run)
}

/// Restores now.
pub fn fire_now(run: &SafeName) -> MutatingCommand {
    sh("fix-rollback-now", FIRE_NOW, run)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The scripts are valid `sh` (parsed with `sh -n`, nothing executed).
    #[test]
    fn scripts_parse_in_sh() {
        for s in [
            SAVE_UFW,
            RESTORE_UFW,
            SAVE_NFT,
            RESTORE_NFT,
            SAVE_SSHD,
            RESTORE_SSHD,
            SAVE_FIREWALLD,
            RESTORE_FIREWALLD,
            SAVE_DOCKER_USER,
            RESTORE_DOCKER_USER,
            SAVE_IPTABLES_LEGACY,
            RESTORE_IPTABLES_LEGACY,
            ARM,
            CANCEL,
            FIRE_NOW,
        ] {
            let out = Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(s)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{s}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The arm/cancel/fire protocol on a scratch directory: the timer restores unless
    /// cancelled, and cancel after firing says so.
    #[test]
    fn timer_fires_unless_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap().to_string();
        // Run the scripts with the state directory moved into the scratch dir.
        let localize = |s: &str| s.replace("/var/lib/rampart/fix", &base);
        let run = |script: &str, args: &[&str]| {
            Command::new("sh")
                .arg("-c")
                .arg(localize(script))
                .arg("t")
                .args(args)
                .output()
                .unwrap()
        };
        let d = dir.path().join("r1");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("restore.sh"), "echo restored > \"$0.done\"\n").unwrap();
        // Cancelled: never restores.
        assert!(run(ARM, &["r1", "1"]).status.success());
        let c = run(CANCEL, &["r1"]);
        assert!(c.status.success(), "{c:?}");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(!d.join("restored").exists());
        // Not cancelled: the timer restores, and a late cancel reports it.
        assert!(run(ARM, &["r1", "1"]).status.success());
        let mut fired = false;
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if d.join("restored").exists() {
                fired = true;
                break;
            }
        }
        assert!(fired, "timer did not fire");
        assert_eq!(run(CANCEL, &["r1"]).status.code(), Some(3));
        // Fire now after re-arming: restores at once, the timer then does nothing.
        assert!(run(ARM, &["r1", "30"]).status.success());
        assert!(
            !d.join("restored").exists(),
            "arming clears the last restore"
        );
        assert!(run(FIRE_NOW, &["r1"]).status.success());
        assert!(d.join("restored").exists());
        assert_eq!(run(FIRE_NOW, &["r1"]).status.code(), Some(3));
    }
}
