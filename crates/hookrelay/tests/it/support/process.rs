//! Runs the real `hookrelay` binary as a child process, configured only through `HOOKRELAY_*`
//! variables, on a free port, with its output captured to a file in the test's folder. The child
//! is killed (SIGKILL) and reaped when the guard is dropped, and the tail of its log is printed
//! when the test is failing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

/// A port that was free a moment ago (bound on 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Sums every sample of a Prometheus counter (all label sets), and lists them.
pub fn prometheus_samples(text: &str, metric: &str) -> (f64, Vec<(String, f64)>) {
    let mut total = 0.0;
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if key.split('{').next() == Some(metric) {
            let v: f64 = value.parse().unwrap_or(f64::NAN);
            total += v;
            samples.push((key.to_owned(), v));
        }
    }
    (total, samples)
}

/// One `hookrelay serve` child process.
pub struct ServerProcess {
    pub name: String,
    pub base: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `hookrelay serve --role <role>` on `db_url` and waits for `GET /health` = 200.
    /// `env` adds or overrides `HOOKRELAY_*` settings. The log goes to `<dir>/<name>.log`.
    pub async fn start(
        name: &str,
        role: &str,
        db_url: &str,
        admin_key: &str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_limited(name, role, db_url, admin_key, dir, env, None).await
    }

    /// `start`, with every file the process writes capped at `max_file_bytes`
    /// (`RLIMIT_FSIZE`): past it a write fails as on a full disk (`EFBIG`, its signal ignored).
    pub async fn start_limited(
        name: &str,
        role: &str,
        db_url: &str,
        admin_key: &str,
        dir: &Path,
        env: &[(&str, &str)],
        max_file_bytes: Option<u64>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client");
        // The free port may be taken by someone else before the child binds it: try again then.
        for attempt in 1..=3 {
            let port = free_port();
            let log = dir.join(format!("{name}.{attempt}.log"));
            let out = File::create(&log).expect("create the child's log file");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
            cmd.args(["serve", "--role", role])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone the log file"))
                .stderr(out);
            // Only what this test sets: nothing leaks in from the developer's environment.
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("HOOKRELAY_") {
                    cmd.env_remove(k);
                }
            }
            cmd.env("HOOKRELAY_LISTEN", format!("127.0.0.1:{port}"))
                .env("HOOKRELAY_DATABASE_URL", db_url)
                .env("HOOKRELAY_ADMIN_KEY", admin_key)
                .env("HOOKRELAY_ALLOWED_TARGET_NETWORKS", "127.0.0.0/8")
                .env("HOOKRELAY_LOG_FORMAT", "json")
                .env("HOOKRELAY_DB_MAX_CONNECTIONS", "8");
            for (k, v) in env {
                cmd.env(k, v);
            }
            if let Some(max) = max_file_bytes {
                use std::os::unix::process::CommandExt;
                // SAFETY: between fork and exec only async-signal-safe calls (setrlimit,
                // signal), touching no memory of the parent's.
                unsafe {
                    cmd.pre_exec(move || {
                        let limit = libc::rlimit {
                            rlim_cur: max as libc::rlim_t,
                            rlim_max: max as libc::rlim_t,
                        };
                        if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                        Ok(())
                    });
                }
            }
            let child = cmd.spawn().expect("spawn the hookrelay binary");
            let mut server = Self {
                name: name.to_owned(),
                base: format!("http://127.0.0.1:{port}"),
                admin_key: admin_key.to_owned(),
                client: client.clone(),
                child: Some(child),
                log,
            };
            match server.wait_healthy(Duration::from_secs(30)).await {
                Ok(()) => return server,
                Err(why) if attempt < 3 && server.log_text().contains("cannot listen") => {
                    eprintln!("{name}: port {port} was taken ({why}); trying another");
                }
                Err(why) => panic!("{name} did not become healthy: {why}"),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// Polls `GET /health` until 200; fails early if the process exits.
    async fn wait_healthy(&mut self, deadline: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("the process exited with {status}"));
                }
            }
            let ok = self
                .client
                .get(format!("{}/health", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if start.elapsed() > deadline {
                return Err(format!("no healthy answer within {deadline:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGTERM (a graceful shutdown), then waits up to `deadline` for the process to exit and
    /// returns how it did; past the deadline it is killed and the test fails.
    pub async fn terminate(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the process is running");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) only sends a signal, to our own child, which is not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "send SIGTERM");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for the child") {
                return status;
            }
            if start.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {deadline:?} of SIGTERM; log tail:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown handler runs, nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the child");
            let status = child.wait().expect("reap the child");
            eprintln!("{}: killed (pid {}, {status})", self.name, child.id());
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the child's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Calls the API as the admin key; transport errors (a dead server) are returned.
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.admin_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{} {path}: request failed: {e}", self.name))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A plain-text GET (e.g. `/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        let resp = self
            .client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {path}: request failed: {e}", self.name));
        assert!(
            resp.status().is_success(),
            "{} {path}: {}",
            self.name,
            resp.status()
        );
        resp.text().await.expect("text body")
    }

    /// Creates a webhook and returns its JSON.
    pub async fn webhook(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 201, "create webhook: {v}");
        v
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- {} ({}) log tail: {} ----\n{}\n---- end of {} ----",
                self.name,
                self.base,
                self.log.display(),
                self.log_tail(40),
                self.name
            );
        }
    }
}
