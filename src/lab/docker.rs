//! dock1: a database host that runs PostgreSQL in Docker, the way many small Django fleets
//! do with docker-compose, and the most common way a "firewalled" database ends up exposed.
//!
//! ufw on dock1 is configured well: 5432 only from the app segment. Docker publishes the
//! container's 5432 on every address (`-p 5432:5432`): its PREROUTING DNAT sends the
//! connection to the container before ufw's INPUT rules could see it, and its FORWARD chains
//! accept it. So 5432 is open to every segment that can route to dock1, whatever ufw says.
//!
//! Everything is real: Debian's dockerd (its own containerd, `vfs` storage, the host's own
//! /var, /run and network namespace), an image made locally with `docker import` (no
//! registry is reachable) whose root is a few directories and symlinks, with the host's /usr
//! mounted read-only into the container, and the real PostgreSQL 15 binary serving a data
//! directory initialised here.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::LabError;
use super::config::{Daemon, in_view};
use super::stack::{ids, write};
use super::sys::{self, Cmd};

/// The host that runs Docker.
pub const DOCKER_HOST: &str = "dock1";
/// The image every lab container runs (built locally).
pub const IMAGE: &str = "rampart-lab/base:1";
/// The PostgreSQL container's name.
pub const PG_CONTAINER: &str = "lab-pg";
/// Where the container's data directory lives, in dock1's own /var.
const PG_DATA: &str = "/var/lib/rampart-lab-docker/pgdata";
/// The image's root before import, in dock1's own /var.
const IMAGE_ROOT: &str = "/var/lib/rampart-lab-docker/image";
const IMAGE_TAR: &str = "/var/lib/rampart-lab-docker/image.tar";
/// The container's database password (planted: it must never appear in rampart's output).
pub const DOCK_DB_PASSWORD: &str = "rpl-planted-dock-pw-71be0c";

/// dockerd's program and its client, from Debian's docker.io (the client under
/// /usr/local/bin on some machines is a newer one; the lab uses its own package's).
const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";

fn docker(host: &str, stage: &'static str, holder: u32) -> Cmd {
    Cmd::in_host(host, stage, holder, DOCKER)
}

/// The cgroup hierarchies mounted in this (the root) mount namespace, as (mount point, file
/// system type, super options), from /proc/self/mountinfo. dockerd needs them, and a lab
/// host's mount namespace has a fresh /sys without them (`ip netns exec` remounts /sys).
fn cgroup_mounts() -> Vec<(String, String, String)> {
    parse_cgroup_mounts(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

fn parse_cgroup_mounts(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        if l.len() < 5 || r.len() < 3 || !matches!(r[0], "cgroup" | "cgroup2") {
            continue;
        }
        if !l[4].starts_with("/sys/fs/cgroup") {
            continue;
        }
        let opts: Vec<&str> = r[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro"))
            .collect();
        out.push((l[4].to_string(), r[0].to_string(), opts.join(",")));
    }
    out
}

/// Mounts the machine's cgroup hierarchies inside the host's mount namespace (once).
fn mount_cgroups(host: &str, holder: u32) -> Result<(), LabError> {
    let mounts = cgroup_mounts();
    if mounts.is_empty() {
        return Err(LabError::Failed {
            host: host.into(),
            stage: "cgroups",
            detail: "no cgroup file system is mounted under /sys/fs/cgroup here; dockerd \
                     needs one"
                .into(),
        });
    }
    let already = Cmd::in_host(host, "cgroups", holder, "mountpoint")
        .args(["-q", &mounts[0].0])
        .succeeds();
    if already {
        return Ok(());
    }
    let top_is_v2 = mounts
        .iter()
        .any(|(p, t, _)| p == "/sys/fs/cgroup" && t == "cgroup2");
    if !top_is_v2 {
        Cmd::in_host(host, "cgroups", holder, "mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "cgroup", "/sys/fs/cgroup"])
            .run()?;
    }
    for (path, fstype, opts) in &mounts {
        Cmd::in_host(host, "cgroups", holder, "mkdir")
            .args(["-p", path])
            .run()?;
        let mut m = Cmd::in_host(host, "cgroups", holder, "mount").args(["-t", fstype]);
        if !opts.is_empty() {
            m = m.args(["-o", opts]);
        }
        m.args([fstype.as_str(), path.as_str()]).run()?;
    }
    Ok(())
}

/// Starts dockerd in the host (its own containerd; state in the host's /var and /run).
pub(super) fn start_dockerd(host: &str, holder: u32, log: &Path) -> Result<(), LabError> {
    mount_cgroups(host, holder)?;
    Cmd::in_host(host, "start dockerd", holder, DOCKERD)
        .arg("--pidfile")
        .arg(Daemon::Dockerd.pid_file())
        .args(["--storage-driver", "vfs", "--log-level", "warn"])
        // The defaults, said out loud: Docker's own iptables rules and docker-proxy are the
        // point of this host.
        .args(["--iptables=true", "--userland-proxy=true"])
        .spawn_detached(log)?;
    Ok(())
}

/// The image: an almost empty root (the host's /usr is mounted read-only at run time), made
/// here and imported, since no registry is reachable.
fn ensure_image(host: &str, holder: u32) -> Result<(), LabError> {
    if docker(host, "image", holder)
        .args(["image", "inspect", IMAGE])
        .succeeds()
    {
        return Ok(());
    }
    let root = in_view(holder, IMAGE_ROOT);
    for d in ["usr", "etc", "tmp", "dev", "proc", "sys", "data", "run"] {
        let p = root.join(d);
        fs::create_dir_all(&p).map_err(LabError::io(host, "image root", &p))?;
    }
    {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = root.join("tmp");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).map_err(LabError::io(
            host,
            "image root",
            &tmp,
        ))?;
    }
    for l in ["bin", "sbin", "lib", "lib64"] {
        let p = root.join(l);
        if fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink(format!("usr/{l}"), &p).map_err(LabError::io(
                host,
                "image root",
                &p,
            ))?;
        }
    }
    let (uid, gid) = ids(host, "postgres")?;
    write(
        host,
        &root.join("etc/passwd"),
        format!("root:x:0:0:root:/root:/bin/sh\npostgres:x:{uid}:{gid}:PostgreSQL:/data:/bin/sh\n")
            .as_bytes(),
        0o644,
    )?;
    write(
        host,
        &root.join("etc/group"),
        format!("root:x:0:\npostgres:x:{gid}:\n").as_bytes(),
        0o644,
    )?;
    Cmd::in_host(host, "image", holder, "tar")
        .args(["-C", IMAGE_ROOT, "-cf", IMAGE_TAR, "."])
        .run()?;
    docker(host, "image", holder)
        .args(["import", IMAGE_TAR, IMAGE])
        .run()?;
    Ok(())
}

/// The container's data directory: initdb with a password for `postgres`, and pg_hba that
/// takes password logins from anywhere (the firewall was meant to keep the world out).
fn ensure_pg_data(host: &str, holder: u32) -> Result<(), LabError> {
    let data = in_view(holder, PG_DATA);
    if data.join("PG_VERSION").exists() {
        return Ok(());
    }
    let (uid, gid) = ids(host, "postgres")?;
    let parent = in_view(holder, "/var/lib/rampart-lab-docker");
    for p in [&parent, &data] {
        fs::create_dir_all(p).map_err(LabError::io(host, "mkdir", p))?;
    }
    std::os::unix::fs::chown(&data, Some(uid), Some(gid))
        .map_err(LabError::io(host, "chown", &data))?;
    let pwfile = in_view(holder, "/run/rampart-lab/dock-pg.pw");
    write(
        host,
        &pwfile,
        format!("{DOCK_DB_PASSWORD}\n").as_bytes(),
        0o600,
    )?;
    std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
        .map_err(LabError::io(host, "chown", &pwfile))?;
    let init = Cmd::in_host(host, "initdb", holder, "setpriv")
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(format!("{}/initdb", super::stack::PG_BIN))
        .args([
            "-D",
            PG_DATA,
            "-U",
            "postgres",
            "--pwfile=/run/rampart-lab/dock-pg.pw",
        ])
        .args(["--auth=scram-sha-256", "--no-instructions", "-E", "UTF8"])
        .run();
    let _ = fs::remove_file(&pwfile);
    init?;
    let hba = data.join("pg_hba.conf");
    write(
        host,
        &hba,
        b"# rampart lab: dock1's containerised PostgreSQL. Passwords from anywhere: the host\n\
          # firewall was meant to keep everyone but the app segment out.\n\
          local all all scram-sha-256\n\
          host all all 0.0.0.0/0 scram-sha-256\n\
          host all all ::/0 scram-sha-256\n",
        0o600,
    )?;
    std::os::unix::fs::chown(&hba, Some(uid), Some(gid)).map_err(LabError::io(host, "chown", &hba))
}

/// Starts the PostgreSQL container, publishing 5432 on every address, and records the
/// container's postgres pid for `lab status`.
pub(super) fn start_pg_container(host: &str, holder: u32, log: &Path) -> Result<(), LabError> {
    let ready = sys::wait_until(Duration::from_secs(30), || {
        docker(host, "docker info", holder)
            .args(["info", "--format", "{{.ServerVersion}}"])
            .succeeds()
    });
    if !ready {
        return Err(LabError::Failed {
            host: host.into(),
            stage: "dockerd",
            detail: format!(
                "dockerd did not answer within 30 s (see {})",
                log.with_file_name("dockerd.log").display()
            ),
        });
    }
    ensure_image(host, holder)?;
    ensure_pg_data(host, holder)?;
    let (uid, gid) = ids(host, "postgres")?;
    // A stale container (dockerd restarted) is replaced; none is fine.
    let _ = docker(host, "docker rm", holder)
        .args(["rm", "-f", PG_CONTAINER])
        .output();
    docker(host, "docker run", holder)
        .args(["run", "-d", "--name", PG_CONTAINER, "--restart", "no"])
        .args(["-p", "5432:5432"])
        .args(["-v", "/usr:/usr:ro"])
        .arg("-v")
        .arg(format!("{PG_DATA}:/data"))
        .arg("--user")
        .arg(format!("{uid}:{gid}"))
        .arg(IMAGE)
        .arg(format!("{}/postgres", super::stack::PG_BIN))
        .args(["-D", "/data", "-c", "listen_addresses=*"])
        .args([
            "-c",
            "unix_socket_directories=/tmp",
            "-c",
            "shared_buffers=16MB",
        ])
        .run()?;
    let pid = docker(host, "docker inspect", holder)
        .args(["inspect", "--format", "{{.State.Pid}}", PG_CONTAINER])
        .run()?;
    let pid = pid.trim();
    write(
        host,
        &in_view(holder, &Daemon::DockerPostgres.pid_file()),
        format!("{pid}\n").as_bytes(),
        0o644,
    )
}

/// Removes the lab's containers before `lab down` kills the host's processes (best effort:
/// dockerd may already be gone; the container processes are then killed as descendants of
/// their shims).
pub(super) fn remove_containers(host: &str, holder: u32) {
    let _ = docker(host, "docker rm", holder)
        .args(["rm", "-f", PG_CONTAINER])
        .output();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_come_from_mountinfo() {
        let text = "\
35 24 0:30 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
36 35 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 35 0:32 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
38 35 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
39 35 0:34 /docker /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 24 0:35 / /mnt/other rw - cgroup cgroup rw,pids
garbage line
";
        assert_eq!(
            parse_cgroup_mounts(text),
            vec![
                ("/sys/fs/cgroup/cpu".into(), "cgroup".into(), "cpu".into()),
                (
                    "/sys/fs/cgroup/systemd".into(),
                    "cgroup".into(),
                    "name=systemd".into()
                ),
                (
                    "/sys/fs/cgroup/unified".into(),
                    "cgroup2".into(),
                    String::new()
                ),
                (
                    "/sys/fs/cgroup/memory".into(),
                    "cgroup".into(),
                    "memory".into()
                ),
            ]
        );
    }
}
