//! The hookrelay server as a child process: fresh store, spawn, health wait, memory, teardown.
//! Guards kill the child and drop the PostgreSQL schema even when the bench fails midway.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use rand::distributions::{Alphanumeric, DistString};
use rand::RngCore;

/// Kind of store the server runs on, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        }
    }
}

/// The store the server gets, plus what must be undone at the end.
pub struct Database {
    pub kind: DbKind,
    /// URL handed to the server in HOOKRELAY_DATABASE_URL.
    pub server_url: String,
    /// Human description for the report (no credentials).
    pub description: String,
    pg_schema: Option<PgSchema>,
}

impl Database {
    /// A fresh SQLite file in `workdir` when `url` is None; a fresh schema for postgres URLs;
    /// any other URL is used as given.
    pub fn prepare(url: Option<&str>, workdir: &Path) -> Result<Database> {
        let Some(url) = url else {
            let path = workdir.join("bench.db");
            // An empty file is a valid empty SQLite database; creating it spares the server
            // from needing create-if-missing for a path it did not choose.
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            return Ok(Database {
                kind: DbKind::Sqlite,
                server_url: format!("sqlite://{}", path.display()),
                description: "sqlite (fresh file in a temp dir)".to_string(),
                pg_schema: None,
            });
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let schema = PgSchema::create(url)?;
            let server_url = schema_url(url, &schema.name);
            let description = format!(
                "postgres ({}, fresh schema {})",
                redact_url(strip_query(url)),
                schema.name
            );
            return Ok(Database {
                kind: DbKind::Postgres,
                server_url,
                description,
                pg_schema: Some(schema),
            });
        }
        if url.starts_with("sqlite:") {
            return Ok(Database {
                kind: DbKind::Sqlite,
                server_url: url.to_string(),
                description: format!("sqlite ({url}, as given: not necessarily fresh)"),
                pg_schema: None,
            });
        }
        bail!("--database-url must start with sqlite: or postgres://, got {url}")
    }

    /// Drops the PostgreSQL schema now (call after the server is stopped); errors are reported.
    pub fn cleanup(&mut self) -> Result<()> {
        match self.pg_schema.as_mut() {
            Some(schema) => schema.drop_now(),
            None => Ok(()),
        }
    }
}

/// What every scenario starts from: a temporary working directory, a fresh store in it (or a
/// fresh PostgreSQL schema), the server binary and the node keys its nodes share.
///
/// Stop the nodes before `finish`: it drops the schema, then removes the directory (or keeps it
/// with `--keep-workdir`). On an early return the guards do the same.
pub struct Stage {
    pub db: Database,
    pub bin: PathBuf,
    keys: NodeKeys,
    // Last, so that it is removed after the schema is dropped.
    workdir: tempfile::TempDir,
}

/// A started node, healthy, and a client for its API.
pub struct Node {
    pub process: ServerProcess,
    pub api: crate::api::Api,
    /// From spawn to the first healthy answer.
    pub startup: Duration,
}

impl Stage {
    pub fn prepare(cli: &crate::cli::Cli) -> Result<Stage> {
        let workdir = tempfile::Builder::new()
            .prefix("hookrelay-bench-")
            .tempdir()
            .context("creating a temporary working directory")?;
        Ok(Stage {
            db: Database::prepare(cli.database_url.as_deref(), workdir.path())?,
            bin: cli.server_bin(),
            keys: NodeKeys::generate(),
            workdir,
        })
    }

    /// Spawns `hookrelay serve --role <role>` on the stage's store, logging to `<name>.log`.
    pub fn spawn(&self, role: &str, name: &str) -> Result<ServerProcess> {
        ServerProcess::spawn(&ServerSpec {
            bin: &self.bin,
            database_url: &self.db.server_url,
            workdir: self.workdir.path(),
            role,
            name,
            keys: &self.keys,
        })
    }

    /// Spawns the node that serves the API (`role` `all` or `api`) and waits until it is healthy;
    /// its client keeps up to `connections` idle connections.
    pub async fn start(&self, role: &str, connections: usize) -> Result<Node> {
        let mut process = self.spawn(role, "server")?;
        let api = crate::api::Api::new(&process.base_url, &process.admin_key, connections)?;
        let startup = process
            .wait_healthy(&api.client, crate::STARTUP_TIMEOUT)
            .await?;
        Ok(Node {
            process,
            api,
            startup,
        })
    }

    /// Drops the schema (errors are warnings: the figures stand) and removes the directory.
    pub fn finish(self, keep_workdir: bool) {
        let Stage {
            mut db, workdir, ..
        } = self;
        if let Err(err) = db.cleanup() {
            eprintln!("warning: {err:#}");
        }
        if keep_workdir {
            eprintln!("working directory kept: {}", workdir.keep().display());
        }
    }
}

fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// `url` with `options=-csearch_path=<schema>` appended (percent-encoded `=`).
fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// Hides a password in `scheme://user:password@host`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// A schema created for this run with psql, dropped (CASCADE) at the end.
struct PgSchema {
    psql_url: String,
    name: String,
    dropped: bool,
}

impl PgSchema {
    fn create(url: &str) -> Result<PgSchema> {
        let name = format!(
            "bench_{}",
            Alphanumeric
                .sample_string(&mut rand::thread_rng(), 10)
                .to_lowercase()
        );
        let psql_url = strip_query(url).to_string();
        run_psql(&psql_url, &format!("CREATE SCHEMA {name}")).context(
            "creating a fresh schema for the server (is psql installed and the URL reachable?)",
        )?;
        Ok(PgSchema {
            psql_url,
            name,
            dropped: false,
        })
    }

    fn drop_now(&mut self) -> Result<()> {
        if self.dropped {
            return Ok(());
        }
        self.dropped = true;
        run_psql(
            &self.psql_url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        )
        .with_context(|| format!("dropping schema {}", self.name))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Err(err) = self.drop_now() {
            eprintln!("warning: {err:#}");
        }
    }
}

fn run_psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql -c '{sql}' failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Where and how to start the server.
pub struct ServerSpec<'a> {
    pub bin: &'a Path,
    pub database_url: &'a str,
    pub workdir: &'a Path,
    /// `hookrelay serve --role` (`all`, `api` or `worker`).
    pub role: &'a str,
    /// Names the log file (`<name>.log` in the working directory).
    pub name: &'a str,
    /// Nodes sharing one store share these.
    pub keys: &'a NodeKeys,
}

/// The admin key and master key of a run's nodes.
pub struct NodeKeys {
    pub admin: String,
    pub master: String,
}

impl NodeKeys {
    pub fn generate() -> Self {
        Self {
            admin: generate_admin_key(),
            master: generate_master_key(),
        }
    }
}

/// The running server; killed on drop if `stop` was not called.
pub struct ServerProcess {
    child: Option<Child>,
    pub pid: u32,
    pub base_url: String,
    pub admin_key: String,
    pub log_path: PathBuf,
}

impl ServerProcess {
    pub fn spawn(spec: &ServerSpec<'_>) -> Result<ServerProcess> {
        if !spec.bin.is_file() {
            bail!(
                "server binary {} not found: build it with `cargo build -p hookrelay --release`, \
                 or pass --server-bin / HOOKRELAY_BIN",
                spec.bin.display()
            );
        }
        let port = free_port()?;
        let admin_key = spec.keys.admin.clone();
        let log_path = spec.workdir.join(format!("{}.log", spec.name));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let mut cmd = Command::new(spec.bin);
        cmd.args(["serve", "--role", spec.role])
            .current_dir(spec.workdir)
            .env("HOOKRELAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKRELAY_DATABASE_URL", spec.database_url)
            .env("HOOKRELAY_ADMIN_KEY", &admin_key)
            .env("HOOKRELAY_ALLOWED_TARGET_NETWORKS", "127.0.0.0/8")
            .env("HOOKRELAY_MASTER_KEY", &spec.keys.master)
            .env("HOOKRELAY_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It ties the
        // server's life to the spawning thread, which is the main thread (the bench spawns the
        // server from the top-level future of `#[tokio::main]`), so a bench killed by SIGKILL
        // does not leave a server behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", spec.bin.display()))?;
        Ok(ServerProcess {
            pid: child.id(),
            child: Some(child),
            base_url: format!("http://127.0.0.1:{port}"),
            admin_key,
            log_path,
        })
    }

    /// Polls `GET /health` until it answers 200, the child exits, or `timeout` passes.
    pub async fn wait_healthy(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Duration> {
        let started = Instant::now();
        let deadline = started + timeout;
        let url = format!("{}/health", self.base_url);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("checking the server process")? {
                    bail!(
                        "the server exited ({status}) before becoming healthy; log tail:\n{}",
                        self.log_tail(4096)
                    );
                }
            }
            let last = match client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
                    return Ok(started.elapsed())
                }
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(err) => err.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "the server did not answer 200 on /health within {timeout:?} (last: {last}); log tail:\n{}",
                    self.log_tail(4096)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the child has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(err) => Some(format!("unknown ({err})")),
        }
    }

    /// Reads the server's VmHWM, then stops it (SIGTERM, SIGKILL after a grace period).
    /// Returns the peak resident memory in KiB when it could be read.
    pub fn stop(&mut self) -> Option<u64> {
        let hwm = read_status_kib(self.pid, "VmHWM");
        self.kill();
        hwm
    }

    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: plain syscall on our own child's pid, which cannot have been reaped
            // (and reused) yet since we still hold the un-waited Child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The last `max` bytes of the server's output.
    pub fn log_tail(&self, max: u64) -> String {
        let Ok(mut file) = File::open(&self.log_path) else {
            return "(no server log)".to_string();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
        let mut buf = Vec::new();
        let _ = file.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago (bound to 127.0.0.1:0 and released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// `hr_` + 43 random base62 characters (about 256 bits).
pub fn generate_admin_key() -> String {
    format!(
        "hr_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 43)
    )
}

/// Base64 of 32 random bytes.
pub fn generate_master_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB.
pub fn read_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, field)
}

/// The bench's own peak resident memory in KiB.
pub fn own_hwm_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&text, "VmHWM")
}

/// The CPU time several processes have used so far, together (`None` if one cannot be read).
pub fn cpu_time_of(pids: &[u32]) -> Option<Duration> {
    pids.iter().map(|pid| cpu_time(Some(*pid))).sum()
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; `pid: None`
/// reads the bench's own.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse_stat_cpu_ticks(&text)
        .map(|t| Duration::from_secs_f64(t as f64 / ticks_per_s.max(1) as f64))
}

/// utime + stime, in clock ticks. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from the last `)`.
fn parse_stat_cpu_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Phases of a run, for memory sampling and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Setup = 0,
    Warmup = 1,
    Steady = 2,
    Drain = 3,
    Ledger = 4,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Setup,
        Phase::Warmup,
        Phase::Steady,
        Phase::Drain,
        Phase::Ledger,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Warmup => "warm-up",
            Phase::Steady => "steady",
            Phase::Drain => "drain",
            Phase::Ledger => "ledger",
        }
    }
}

/// The current phase, shared by the emitter (which moves it) and the memory sampler.
#[derive(Default)]
pub struct PhaseCell(AtomicU8);

impl PhaseCell {
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    /// Moves from `from` to `to` only if still in `from`.
    pub fn advance(&self, from: Phase, to: Phase) {
        let _ = self
            .0
            .compare_exchange(from as u8, to as u8, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn get(&self) -> Phase {
        let v = self.0.load(Ordering::Relaxed);
        Phase::ALL
            .into_iter()
            .find(|p| *p as u8 == v)
            .unwrap_or(Phase::Setup)
    }
}

/// Samples the server's VmRSS every 500 ms and keeps the peak per phase (KiB).
pub struct MemSampler {
    peaks: Arc<[AtomicU64; 5]>,
    task: tokio::task::JoinHandle<()>,
}

impl MemSampler {
    pub fn spawn(pid: u32, phase: Arc<PhaseCell>) -> MemSampler {
        let peaks: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
        let task_peaks = peaks.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                if let Some(rss) = read_status_kib(pid, "VmRSS") {
                    task_peaks[phase.get() as usize].fetch_max(rss, Ordering::Relaxed);
                }
            }
        });
        MemSampler { peaks, task }
    }

    /// Stops sampling; peak VmRSS per phase in KiB (0 = no sample in that phase).
    pub fn finish(self) -> [u64; 5] {
        self.task.abort();
        std::array::from_fn(|i| self.peaks[i].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_ticks_past_an_odd_command_name() {
        let text = "42 (hook relay) (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat_cpu_ticks(text), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_proc_status_fields() {
        let text =
            "Name:\thookrelay\nVmPeak:\t  200000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t    9999 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(9999));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
        assert!(own_hwm_kib().is_some_and(|kib| kib > 0));
    }

    #[test]
    fn builds_the_postgres_schema_url() {
        assert_eq!(
            schema_url("postgres://postgres@127.0.0.1:5432/test", "bench_ab12"),
            "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dbench_ab12"
        );
        assert_eq!(
            schema_url("postgres://h/db?sslmode=disable", "bench_x"),
            "postgres://h/db?sslmode=disable&options=-csearch_path%3Dbench_x"
        );
        assert_eq!(
            strip_query("postgres://h/db?sslmode=disable"),
            "postgres://h/db"
        );
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn generated_keys_have_the_expected_shape() {
        let key = generate_admin_key();
        assert_eq!(key.len(), 3 + 43);
        assert!(key.starts_with("hr_"));
        assert!(key[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        let master = base64::engine::general_purpose::STANDARD
            .decode(generate_master_key())
            .expect("valid base64");
        assert_eq!(master.len(), 32);
    }

    #[test]
    fn phase_cell_advances_only_from_the_given_phase() {
        let cell = PhaseCell::default();
        assert_eq!(cell.get(), Phase::Setup);
        cell.set(Phase::Warmup);
        cell.advance(Phase::Warmup, Phase::Steady);
        assert_eq!(cell.get(), Phase::Steady);
        cell.set(Phase::Drain);
        cell.advance(Phase::Warmup, Phase::Steady);
        assert_eq!(cell.get(), Phase::Drain);
    }
}
