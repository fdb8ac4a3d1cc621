//! A throwaway PostgreSQL cluster of the test's own (initdb into a temp folder, on a free port),
//! for tests that stop and restart the database: the shared server on 5432 is never touched.
//! Uses the machine's PostgreSQL binaries (`/usr/lib/postgresql/<v>/bin`), run as `postgres`
//! when the test runs as root (initdb refuses root).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::free_port;

pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn postgres_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!("PostgreSQL's server binaries are needed under {root:?} (apt-get install postgresql): {e}")
        })
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL version with pg_ctl under /usr/lib/postgresql")
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgCluster {
    /// initdb + start; the cluster trusts local connections as `postgres`.
    pub fn start() -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        // The server runs as `postgres`: it must be able to enter the folder.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("open the temp dir");
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let mut init = as_postgres(&bin, "initdb");
        init.args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&data);
        run(init, "initdb");
        let cluster = Self {
            bin,
            data,
            port: free_port(),
            log,
            _dir: dir,
        };
        cluster.start_again();
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) cluster on its port and waits until it accepts connections.
    pub fn start_again(&self) {
        let socket_dir = self.data.parent().expect("data has a parent");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=100",
            self.port,
            socket_dir.display()
        );
        let mut start = as_postgres(&self.bin, "pg_ctl");
        start
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &options, "start"]);
        run(start, "pg_ctl start");
    }

    /// Stops the cluster: `fast` disconnects every client and shuts down cleanly.
    pub fn stop(&self) {
        let mut stop = as_postgres(&self.bin, "pg_ctl");
        stop.args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop");
        run(stop, "pg_ctl stop");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}
