//! The example worker (examples/hello.rs) under the manager, for real: a real FastCGI
//! client (cgi-fcgi), nginx in front, wrk for load, the `fcgi-pm` program for exec
//! mode. And this program itself as a manager whose hooks panic (its own `main`: no
//! test harness threads, so it may call `manage`).
//!
//! Each scenario runs in turn; any failure fails the run (exit 1).
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

type Outcome = Result<(), String>;
type Scenario = (&'static str, fn() -> Outcome);

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

fn target_dir() -> PathBuf {
    // target/<profile>/deps/process-<hash>
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

fn hello() -> PathBuf {
    target_dir().join("examples/hello")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fcgi-pm-rust-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: the process has ended.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(10));
    }
    cond()
}

/// Pids in log lines "<prefix><pid><suffix>".
fn pids_in(log: &str, prefix: &str, suffix: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|l| l.split_once(prefix).and_then(|(_, r)| r.split_once(suffix)).and_then(|(p, _)| p.parse().ok()))
        .collect()
}

/// A process under test (a manager), its stderr in a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join("stderr.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn");
        Proc { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn started(&self) -> Vec<u32> {
        pids_in(&self.log(), "server (pid ", ") started")
    }

    /// Waits until `n` workers have started and each said it is initialized.
    fn ready(&self, n: usize) -> Outcome {
        let ok = wait_until(Duration::from_secs(10), || {
            let log = self.log();
            pids_in(&log, "server (pid ", "): initialized").len() >= n
        });
        ensure!(ok, "the pool did not start {n} workers:\n{}", self.log());
        Ok(())
    }

    fn wait_exit(&mut self, timeout: Duration) -> Result<i32, String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Ok(status.code().unwrap_or(-1));
            }
            sleep(Duration::from_millis(10));
        }
        Err(format!("pid {} still running after {timeout:?}:\n{}", self.pid(), self.log()))
    }

    /// TERM, then: exit status 0, every process it started gone, and each process
    /// that ended through Rust dropped its state exactly once.
    fn stop(&mut self) -> Outcome {
        signal(self.pid(), libc::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(15))?;
        ensure!(status == 0, "the manager exited {status}:\n{}", self.log());
        self.no_orphans()?;
        let log = self.log();
        let mut expect = pids_in(&log, "server (pid ", ") exited with status 0");
        expect.push(self.pid());
        destructors_ran_once(&log, &expect)
    }

    /// TERM: exit status 0 and no worker left.
    fn stop_plain(&mut self) -> Outcome {
        signal(self.pid(), libc::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(15))?;
        ensure!(status == 0, "the manager exited {status}:\n{}", self.log());
        self.no_orphans()
    }

    fn no_orphans(&self) -> Outcome {
        let started = self.started();
        let ok = wait_until(Duration::from_secs(5), || started.iter().all(|p| !alive(*p)));
        ensure!(ok, "workers left behind: {:?}", started.iter().filter(|p| alive(**p)).collect::<Vec<_>>());
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn destructors_ran_once(log: &str, pids: &[u32]) -> Outcome {
    for pid in pids {
        let n = log.lines().filter(|l| *l == format!("hello: state dropped in pid {pid}")).count();
        ensure!(n == 1, "pid {pid} dropped its state {n} times:\n{log}");
    }
    Ok(())
}

fn start_hello(dir: &Path, args: &[&str], workers: usize) -> Result<(Proc, PathBuf), String> {
    let sock = dir.join("app.sock");
    let pool = Proc::spawn(Command::new(hello()).args(args).arg(&sock), dir);
    pool.ready(workers)?;
    Ok((pool, sock))
}

/// One request through cgi-fcgi: the response's body.
fn fcgi_get(sock: &Path, query: &str) -> Result<String, String> {
    let out = Command::new("cgi-fcgi")
        .args(["-bind", "-connect"])
        .arg(sock)
        .env_clear()
        .env("REQUEST_METHOD", "GET")
        .env("REQUEST_URI", format!("/?{query}"))
        .env("QUERY_STRING", query)
        .env("SCRIPT_FILENAME", "/hello")
        .output()
        .map_err(|e| format!("cgi-fcgi: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    body.filter(|b| b.starts_with("Hello from pid ")).ok_or_else(|| format!("bad response {text:?}"))
}

fn pid_of(body: &str) -> u32 {
    body["Hello from pid ".len()..].split(',').next().unwrap().parse().unwrap()
}

/// The project's nginx in front of a unix socket (examples/deploy/nginx-front.sh);
/// `keep_conn`: FastCGI connections kept alive (an upstream keepalive cache).
struct Nginx {
    dir: PathBuf,
    port: u16,
}

fn nginx_front() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../examples/deploy/nginx-front.sh")
}

impl Nginx {
    fn start(dir: &Path, sock: &Path, keep_conn: bool) -> Result<Nginx, String> {
        let mut cmd = Command::new("sh");
        cmd.arg(nginx_front()).arg("start").arg(dir).arg(sock);
        if keep_conn {
            // The script's server block, its upstream kept alive (same placeholders).
            let conf = dir.join("keep-conn.conf");
            fs::write(
                &conf,
                "upstream app { server unix:/run/fcgi-pm-hello.sock; keepalive 8; }\n\
                 server {\n listen 127.0.0.1:8080;\n location / {\n  include fastcgi_params;\n\
                 fastcgi_pass app;\n  fastcgi_keep_conn on;\n }\n}\n",
            )
            .unwrap();
            cmd.arg(conf);
        }
        let out = cmd.output().map_err(|e| format!("nginx-front.sh: {e}"))?;
        let port = String::from_utf8_lossy(&out.stdout).trim().parse();
        ensure!(out.status.success() && port.is_ok(), "nginx did not start: {}", String::from_utf8_lossy(&out.stderr));
        Ok(Nginx { dir: dir.to_path_buf(), port: port.unwrap() })
    }

    /// GET path: (status, body).
    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let status =
            text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad response {text:?}"))?;
        Ok((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = Command::new("sh").arg(nginx_front()).arg("stop").arg(&self.dir).status();
        }
    }
}

// ---- the scenarios ----

fn serves_through_cgi_fcgi_and_nginx() -> Outcome {
    let dir = scratch("serves");
    let (mut pool, sock) = start_hello(&dir, &["-n", "2"], 2)?;
    let workers = pool.started();
    for _ in 0..10 {
        let body = fcgi_get(&sock, "")?;
        ensure!(workers.contains(&pid_of(&body)), "served by {} not a worker {workers:?}", pid_of(&body));
    }
    let nginx = Nginx::start(&dir, &sock, false)?;
    for _ in 0..20 {
        let (status, body) = nginx.get("/hello")?;
        ensure!(status == 200 && body.starts_with("Hello from pid "), "{status} {body:?}");
    }
    drop(nginx);
    pool.stop()
}

fn respawns_a_killed_worker() -> Outcome {
    let dir = scratch("respawn");
    let (mut pool, sock) = start_hello(&dir, &["-n", "2"], 2)?;
    let victim = pool.started()[0];
    signal(victim, libc::SIGKILL);
    let ok = wait_until(Duration::from_secs(10), || pool.started().len() == 3);
    ensure!(ok, "no respawn:\n{}", pool.log());
    ensure!(pool.log().contains(&format!("server (pid {victim}) exited with status 9")), "{}", pool.log());
    pool.ready(3)?;
    for _ in 0..5 {
        ensure!(pid_of(&fcgi_get(&sock, "")?) != victim, "served by the killed worker");
    }
    pool.stop()
}

fn hup_under_load_loses_no_request() -> Outcome {
    let dir = scratch("hup");
    let (mut pool, sock) = start_hello(&dir, &["-n", "3"], 3)?;
    for keep_conn in [false, true] {
        let ndir = dir.join(if keep_conn { "nginx-keep" } else { "nginx" });
        fs::create_dir_all(&ndir).unwrap();
        let nginx = Nginx::start(&ndir, &sock, keep_conn)?;
        let before = pool.started().len();
        let wrk = Command::new("wrk")
            .args(["-t", "2", "-c", "16", "-d", "4s"])
            .arg(nginx.url())
            .stdout(Stdio::piped())
            .spawn();
        let wrk = wrk.map_err(|e| format!("wrk: {e}"))?;
        sleep(Duration::from_millis(1000));
        signal(pool.pid(), libc::SIGHUP);
        sleep(Duration::from_millis(1500));
        signal(pool.pid(), libc::SIGHUP);
        let out = wrk.wait_with_output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        let requests: u64 = report
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        ensure!(requests > 100, "wrk did not load the pool:\n{report}");
        ensure!(
            !report.contains("Non-2xx") && !report.contains("Socket errors"),
            "failed requests (keep_conn {keep_conn}):\n{report}"
        );
        let replaced = pool.started().len() - before;
        ensure!(replaced >= 6, "two HUPs replaced {replaced} workers, not 6:\n{}", pool.log());
        println!("  keep_conn {keep_conn}: {requests} requests, 0 failed, {replaced} workers replaced");
        pool.ready(pool.started().len())?;
    }
    pool.stop()
}

fn term_lets_a_request_in_flight_complete() -> Outcome {
    let dir = scratch("term");
    let (mut pool, sock) = start_hello(&dir, &["-n", "2", "--die-timeout", "10"], 2)?;
    let nginx = Nginx::start(&dir, &sock, false)?;
    let port = nginx.port;
    let slow = std::thread::spawn(move || Nginx { dir: PathBuf::new(), port }.get("/slow?sleep=1500"));
    sleep(Duration::from_millis(400));
    let start = Instant::now();
    signal(pool.pid(), libc::SIGTERM);
    let (status, body) = slow.join().unwrap()?;
    ensure!(status == 200 && body.starts_with("Hello from pid "), "the request in flight got {status} {body:?}");
    let code = pool.wait_exit(Duration::from_secs(10))?;
    ensure!(code == 0, "manager exited {code}");
    let took = start.elapsed();
    ensure!(took >= Duration::from_millis(900), "the manager did not wait for the busy worker ({took:?})");
    pool.no_orphans()?;
    let log = pool.log();
    let mut expect = pids_in(&log, "server (pid ", ") exited with status 0");
    ensure!(expect.len() == 2, "{log}");
    expect.push(pool.pid());
    destructors_ran_once(&log, &expect)
}

fn term_stops_idle_workers_at_once() -> Outcome {
    let dir = scratch("idle");
    let (mut pool, sock) = start_hello(&dir, &["-n", "2"], 2)?;
    // One worker holds a connection nginx keeps alive: it must stop at once too.
    let nginx = Nginx::start(&dir, &sock, true)?;
    ensure!(nginx.get("/")?.0 == 200, "no answer");
    let start = Instant::now();
    pool.stop()?;
    let took = start.elapsed();
    ensure!(took < Duration::from_secs(2), "an idle pool took {took:?} to stop:\n{}", pool.log());
    println!("  an idle pool (one worker on a kept-alive connection) stopped in {} ms", took.as_millis());
    Ok(())
}

fn max_requests_replaces_the_worker() -> Outcome {
    let dir = scratch("max");
    let (mut pool, sock) = start_hello(&dir, &["-n", "1", "--max-requests", "2"], 1)?;
    let first = pid_of(&fcgi_get(&sock, "")?);
    ensure!(pid_of(&fcgi_get(&sock, "")?) == first, "the second request went elsewhere");
    ensure!(wait_until(Duration::from_secs(5), || !alive(first)), "the worker did not exit after max_requests");
    pool.ready(2)?;
    let third = pid_of(&fcgi_get(&sock, "")?);
    ensure!(third != first, "served by the retired worker");
    ensure!(pool.log().contains(&format!("server (pid {first}): safe exit after max_requests (2)")), "{}", pool.log());
    pool.stop()
}

fn workers_end_with_their_manager() -> Outcome {
    let dir = scratch("orphan");
    let (mut pool, _) = start_hello(&dir, &["-n", "3"], 3)?;
    let workers = pool.started();
    signal(pool.pid(), libc::SIGKILL);
    let _ = pool.wait_exit(Duration::from_secs(5))?;
    pool.no_orphans()?;
    // They ended through Rust: their destructors ran.
    let ok = wait_until(Duration::from_secs(2), || destructors_ran_once(&pool.log(), &workers).is_ok());
    ensure!(ok, "{}", destructors_ran_once(&pool.log(), &workers).unwrap_err());
    Ok(())
}

/// The `fcgi-pm` program: CTest names it; else the in-tree build's, else the one in PATH.
fn fcgi_pm_cli() -> PathBuf {
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../build/src/fcgi-pm");
    std::env::var_os("FCGI_PM_CLI").map(PathBuf::from).unwrap_or_else(|| {
        if in_tree.exists() {
            in_tree
        } else {
            PathBuf::from("fcgi-pm")
        }
    })
}

/// `fcgi-pm status --json target`: the pool's JSON object.
fn status_json(target: &OsStr) -> Result<String, String> {
    let out = Command::new(fcgi_pm_cli()).args(["status", "--json", "--no-proc"]).arg(target).output();
    let out = out.map_err(|e| format!("fcgi-pm status: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success() && text.starts_with("{\"pool\":"), "fcgi-pm status: {out:?}");
    Ok(text)
}

/// The first number after `"key":` in `json` from `after` on (the pool's object
/// comes first, then the workers').
fn json_number(json: &str, after: &str, key: &str) -> Option<u64> {
    let rest = &json[json.find(after)?..];
    let rest = &rest[rest.find(&format!("\"{key}\":"))? + key.len() + 3..];
    rest[..rest.find(|c: char| !c.is_ascii_digit())?].parse().ok()
}

fn runs_under_the_fcgi_pm_program() -> Outcome {
    let cli = fcgi_pm_cli();
    let dir = scratch("exec");
    let sock = dir.join("app.sock");
    let mut pool = Proc::spawn(Command::new(cli).arg("-s").arg(&sock).args(["-F", "2", "--"]).arg(hello()), &dir);
    pool.ready(2)?;
    let workers = pool.started();
    let body = fcgi_get(&sock, "")?;
    ensure!(workers.contains(&pid_of(&body)), "served by {}, not by {workers:?}", pid_of(&body));
    // Adopted: each exec'd program became a worker of the CLI's manager, not a manager.
    for pid in &workers {
        let ppid = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let ppid: u32 = ppid.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        ensure!(ppid == pool.pid(), "worker {pid}'s parent is {ppid}");
        ensure!(pool.log().contains(&format!("FastCGI: server (pid {pid}): initialized")), "{}", pool.log());
    }
    signal(pool.pid(), libc::SIGHUP);
    ensure!(wait_until(Duration::from_secs(10), || pool.started().len() >= 4), "HUP replaced none:\n{}", pool.log());
    pool.ready(4)?;
    let after = pid_of(&fcgi_get(&sock, "")?);
    ensure!(!workers.contains(&after), "served by a replaced worker");
    signal(pool.pid(), libc::SIGTERM);
    let code = pool.wait_exit(Duration::from_secs(15))?;
    ensure!(code == 0, "fcgi-pm exited {code}");
    pool.no_orphans()?;
    let log = pool.log();
    destructors_ran_once(&log, &pids_in(&log, "server (pid ", ") exited with status 0"))
}

fn an_async_runtime_in_each_worker() -> Outcome {
    let tokio = target_dir().join("examples/tokio");
    let dir = scratch("tokio");
    // Started before manage: refused, with the reason and the remedy.
    let out = Command::new(&tokio).arg("--runtime-first").arg(dir.join("early.sock")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1) && err.contains("threads; call it before starting any"), "{err}");
    // Started in each worker: it serves, and HUP and TERM end idle workers at once.
    let sock = dir.join("app.sock");
    let mut pool = Proc::spawn(Command::new(&tokio).args(["-n", "2"]).arg(&sock), &dir);
    pool.ready(2)?;
    let out = Command::new("cgi-fcgi")
        .args(["-bind", "-connect"])
        .arg(&sock)
        .env_clear()
        .env("REQUEST_METHOD", "GET")
        .env("REQUEST_URI", "/async")
        .env("SCRIPT_FILENAME", "/t")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text.contains("/async took one and two"), "{text:?}");
    let start = Instant::now();
    signal(pool.pid(), libc::SIGHUP);
    ensure!(wait_until(Duration::from_secs(5), || pool.started().len() == 4), "HUP:\n{}", pool.log());
    pool.ready(4)?;
    let took = start.elapsed();
    ensure!(took < Duration::from_secs(2), "replacing 2 idle workers with runtimes took {took:?}");
    let start = Instant::now();
    signal(pool.pid(), libc::SIGTERM);
    ensure!(pool.wait_exit(Duration::from_secs(10))? == 0, "{}", pool.log());
    ensure!(start.elapsed() < Duration::from_secs(2), "TERM took {:?}", start.elapsed());
    pool.no_orphans()
}

// ---- this program as a manager of its own (a child of the test, FCGI_PM_RUST_MODE set) ----

/// A pool of one on the socket FCGI_PM_RUST_SOCK whose hook named `hook` panics.
fn panicking_pool(hook: &str) -> std::process::ExitCode {
    let listener = std::os::unix::net::UnixListener::bind(std::env::var("FCGI_PM_RUST_SOCK").unwrap()).unwrap();
    let boom = format!("boom in {hook}");
    let b = fcgi_pm::Manager::builder().processes(1).backoff_min(Duration::from_millis(200));
    let b = match hook {
        "manager_init" => b.on_manager_init(move |_| panic!("{boom}")),
        "server_init" => b.on_server_init(move |_| panic!("{boom}")),
        "pre_dispatch" => b.on_pre_dispatch(move |_| panic!("{boom}")),
        "post_dispatch" => b.on_post_dispatch(move |_| panic!("{boom}")),
        "log" => b.on_log(move |line| if line.contains("started") { panic!("{boom}") } else { eprintln!("{line}") }),
        other => panic!("no hook {other}"),
    };
    let mut worker = match b.build().unwrap().manage().unwrap() {
        fcgi_pm::Process::Worker(w) => w,
        fcgi_pm::Process::Single(_) => unreachable!(),
        fcgi_pm::Process::Exit(e) => {
            eprintln!("manage returned {e:?}"); // not after a hook's panic: it resumes instead
            return e.into();
        }
    };
    for mut req in worker.requests(&listener) {
        write!(req, "Content-Type: text/plain\r\n\r\nHello from pid {}, request\n", std::process::id()).unwrap();
    }
    eprintln!("the request loop ended"); // not after a hook's panic: it resumes in the loop
    worker.exit_code()
}

/// A worker that serves by its own means: Worker::dispatch around each "request",
/// until the library says to end (max_requests 3).
fn dispatching_pool() -> std::process::ExitCode {
    let b = fcgi_pm::Manager::builder().processes(1).max_requests(3).min_uptime(Duration::ZERO);
    let mut worker = match b.build().unwrap().manage().unwrap() {
        fcgi_pm::Process::Worker(w) => w,
        fcgi_pm::Process::Exit(e) => return e.into(),
        fcgi_pm::Process::Single(_) => unreachable!(),
    };
    let mut served = 0;
    loop {
        let request = worker.dispatch().expect("no hook asks to exit");
        served += 1;
        if let Some(exit) = request.finish() {
            eprintln!("dispatched {served}, then {exit:?}, exit status {:?}", worker.exit_status());
            sleep(Duration::from_millis(200)); // paces the respawns
            return exit.into();
        }
    }
}

/// A pool of one, its status also on the socket FCGI_PM_RUST_STATUS: a request whose
/// query is `wait=FILE` is answered once FILE exists.
fn status_pool() -> std::process::ExitCode {
    let listener = std::os::unix::net::UnixListener::bind(std::env::var("FCGI_PM_RUST_SOCK").unwrap()).unwrap();
    let status = std::env::var("FCGI_PM_RUST_STATUS").unwrap();
    let b = fcgi_pm::Manager::builder().processes(1).status_socket(status);
    let mut worker = match b.build().unwrap().manage().unwrap() {
        fcgi_pm::Process::Worker(w) => w,
        fcgi_pm::Process::Exit(e) => return e.into(),
        fcgi_pm::Process::Single(_) => unreachable!(),
    };
    for mut req in worker.requests(&listener) {
        if let Some(file) = req.param("QUERY_STRING").and_then(|q| q.strip_prefix("wait=")).map(PathBuf::from) {
            wait_until(Duration::from_secs(20), || file.exists());
        }
        write!(req, "Content-Type: text/plain\r\n\r\nHello from pid {}, request\n", std::process::id()).unwrap();
    }
    worker.exit_code()
}

/// A worker that names what it dispatches by its own means (Worker::set_request):
/// one job, held until the file FCGI_PM_RUST_SOCK exists; then idle until it must stop.
fn naming_pool() -> std::process::ExitCode {
    let release = PathBuf::from(std::env::var_os("FCGI_PM_RUST_SOCK").unwrap());
    let mut worker = match fcgi_pm::Manager::builder().processes(1).build().unwrap().manage().unwrap() {
        fcgi_pm::Process::Worker(w) => w,
        fcgi_pm::Process::Exit(e) => return e.into(),
        fcgi_pm::Process::Single(_) => unreachable!(),
    };
    worker.set_request("JOB", "/jobs/7?step=1", "queue");
    let job = worker.dispatch().expect("no hook asks to exit");
    wait_until(Duration::from_secs(20), || release.exists());
    if let Some(exit) = job.finish() {
        return exit.into();
    }
    wait_until(Duration::from_secs(20), || worker.stopping());
    worker.exit_code()
}

/// A worker that answers with what it read: the body's length and sum, a param; says
/// so on the request's stderr; max_size 1 KiB, checked after every request.
fn echoing_pool() -> std::process::ExitCode {
    let listener = std::os::unix::net::UnixListener::bind(std::env::var("FCGI_PM_RUST_SOCK").unwrap()).unwrap();
    let b = fcgi_pm::Manager::builder().processes(1).max_size_kib(1).sizecheck_num_requests(1);
    let mut worker = match b.build().unwrap().manage().unwrap() {
        fcgi_pm::Process::Worker(w) => w,
        fcgi_pm::Process::Exit(e) => return e.into(),
        fcgi_pm::Process::Single(_) => unreachable!(),
    };
    for mut req in worker.requests(&listener) {
        if req.param("QUERY_STRING") == Some("panic") {
            write!(req, "Content-Type: text/plain\r\n\r\nthe first half").unwrap();
            panic!("the handler panicked");
        }
        let mut body = Vec::new();
        req.stdin().read_to_end(&mut body).unwrap();
        let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
        let method = req.param("REQUEST_METHOD").unwrap_or("?").to_owned();
        let mut names: Vec<String> = req.params().map(|(n, _)| n.to_owned()).collect();
        names.sort();
        let names = names.join(",");
        writeln!(req.stderr(), "echo: read {} bytes", body.len()).unwrap();
        write!(req, "Content-Type: text/plain\r\n\r\n{method} {} bytes, sum {sum}, params {names}\n", body.len())
            .unwrap();
    }
    worker.exit_code()
}

fn a_request_s_stdin_params_and_stderr_and_max_size() -> Outcome {
    let (mut pool, sock) = spawn_self("echo");
    pool.ready(1)?;
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    let mut child = Command::new("cgi-fcgi")
        .args(["-bind", "-connect"])
        .arg(&sock)
        .env_clear()
        .env("REQUEST_METHOD", "POST")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("SCRIPT_FILENAME", "/echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains(&format!(
            "POST 100000 bytes, sum {sum}, params CONTENT_LENGTH,FCGI_ROLE,REQUEST_METHOD,SCRIPT_FILENAME"
        )),
        "{text:?}"
    );
    ensure!(String::from_utf8_lossy(&out.stderr).contains("echo: read 100000 bytes"), "{out:?}");
    // (libfcgi adds FCGI_ROLE.) max_size: a worker bigger than 1 KiB ends after its
    // request, and is replaced.
    let first = pool.started()[0];
    let ok = wait_until(Duration::from_secs(5), || {
        pool.log().contains(&format!("server (pid {first}): safe exit due to memory limits exceeded after 1 requests"))
    });
    ensure!(ok, "{}", pool.log());
    pool.ready(2)?;
    // A handler's panic: the web server sees the request fail, not a short answer.
    let nginx = Nginx::start(&pool.log.parent().unwrap().join("nginx"), &sock, false)?;
    let (status, body) = nginx.get("/?panic")?;
    ensure!(status == 502, "a panicking handler's request got {status} {body:?}");
    let ok = wait_until(Duration::from_secs(5), || pool.log().contains("exited with status 25856"));
    ensure!(ok, "the worker did not exit 101:\n{}", pool.log());
    ensure!(nginx.get("/")?.0 == 200, "no answer after the panic");
    drop(nginx);
    pool.stop_plain()
}

/// A single process whose accept fails in libfcgi (a non-blocking TCP listener:
/// EAGAIN), after an unrelated failure of the library's: the loop's error is libfcgi's.
fn failing_accept() -> std::process::ExitCode {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let manager = fcgi_pm::Manager::builder().processes(0).build().unwrap();
    assert!(manager.set_parameter("nope", "1").is_err());
    let fcgi_pm::Process::Single(mut worker) = manager.manage().unwrap() else { unreachable!() };
    assert_eq!(worker.requests(&listener).count(), 0);
    let e = worker.error().expect("the loop ended on an error");
    eprintln!("loop error: {:?} errno {:?}: {e}", e.kind(), e.raw_os_error());
    worker.exit_code()
}

fn an_accept_failing_in_libfcgi_ends_the_loop_with_its_error() -> Outcome {
    let (mut pool, _) = spawn_self("eagain");
    let code = pool.wait_exit(Duration::from_secs(10))?;
    let log = pool.log();
    ensure!(code == 1, "exit {code}:\n{log}");
    let want = format!("loop error: System errno Some({}): FCGX_Accept_r: ", libc::EAGAIN);
    ensure!(log.contains(&want) && !log.contains("nope"), "{log}");
    Ok(())
}

fn a_worker_dispatching_by_its_own_means_ends_at_max_requests() -> Outcome {
    let (mut pool, _) = spawn_self("dispatch");
    let ok = wait_until(Duration::from_secs(10), || pool.log().contains("safe exit after max_requests (3)"));
    ensure!(ok, "{}", pool.log());
    ensure!(pool.log().contains("dispatched 3, then Exit(0), exit status Some(0)"), "{}", pool.log());
    pool.stop_plain()
}

/// The live status names each request: through nginx, the Requests loop's (method,
/// URI, client), read by pid and on the status socket; then counted, shown as the
/// last. A worker dispatching by its own means names its own (Worker::set_request).
fn the_live_status_names_each_request() -> Outcome {
    let (mut pool, sock) = spawn_self("status");
    pool.ready(1)?;
    let dir = pool.log.parent().unwrap().to_path_buf();
    let status_sock = dir.join("status.sock");
    let worker = pool.started()[0];
    let nginx = Nginx::start(&dir.join("nginx"), &sock, false)?;
    let pid = pool.pid().to_string();
    let before = json_number(&status_json(pid.as_ref())?, "\"pool\"", "requests").unwrap_or(u64::MAX);
    let release = dir.join("release");
    let uri = format!("/status?wait={}", release.display());
    let port = nginx.port;
    let path = uri.clone();
    let waiting = std::thread::spawn(move || Nginx { dir: PathBuf::new(), port }.get(&path));
    let mut json = String::new();
    let busy = wait_until(Duration::from_secs(10), || {
        json = status_json(pid.as_ref()).unwrap_or_default();
        json.contains("\"state\":\"busy\"")
    });
    ensure!(busy, "no busy worker: {json}");
    for target in [pid.as_ref(), status_sock.as_os_str()] {
        let json = status_json(target)?;
        let want = format!("{{\"pid\":{worker},\"slot\":0,\"state\":\"busy\",\"busy\":true,\"requests\":{before},");
        ensure!(
            json.contains(&want)
                && json.contains(&format!("\"method\":\"GET\",\"uri\":\"{uri}\",\"remote\":\"127.0.0.1\"")),
            "status from {target:?}: {json}, want worker {worker} busy in GET {uri} from 127.0.0.1"
        );
    }
    fs::write(&release, "").unwrap();
    let (status, body) = waiting.join().unwrap()?;
    ensure!(status == 200 && body.starts_with(&format!("Hello from pid {worker},")), "{status} {body:?}");
    let counted = wait_until(Duration::from_secs(5), || {
        json = status_json(pid.as_ref()).unwrap_or_default();
        json_number(&json, "\"pool\"", "requests") == Some(before + 1)
    });
    ensure!(counted, "the request is not counted ({before} before): {json}");
    ensure!(
        json.contains("\"state\":\"idle\"")
            && json_number(&json, "\"workers\":[", "requests") == Some(before + 1)
            && json.contains(&format!("\"uri\":\"{uri}\"")),
        "after the request: {json}, want the worker idle, its request counted and shown as the last"
    );
    drop(nginx);
    pool.stop_plain()?;
    ensure!(!status_sock.exists(), "the status socket is left behind");

    let (mut pool, release) = spawn_self("named");
    pool.ready(1)?;
    let pid = pool.pid().to_string();
    let named = wait_until(Duration::from_secs(10), || {
        json = status_json(pid.as_ref()).unwrap_or_default();
        json.contains("\"state\":\"busy\"")
            && json.contains("\"method\":\"JOB\",\"uri\":\"/jobs/7?step=1\",\"remote\":\"queue\"")
    });
    ensure!(named, "the dispatched job is not shown: {json}");
    fs::write(&release, "").unwrap();
    let done = wait_until(Duration::from_secs(5), || {
        json = status_json(pid.as_ref()).unwrap_or_default();
        json.contains("\"state\":\"idle\"") && json_number(&json, "\"pool\"", "requests") == Some(1)
    });
    ensure!(done, "the job is not counted: {json}");
    pool.stop_plain()
}

/// This program again, as the manager that `mode` names (see main), on a socket of its own.
fn spawn_self(mode: &str) -> (Proc, PathBuf) {
    let dir = scratch(&format!("self-{mode}"));
    let sock = dir.join("app.sock");
    let me = std::env::current_exe().unwrap();
    let pool = Proc::spawn(
        Command::new(me)
            .env("FCGI_PM_RUST_MODE", mode)
            .env("FCGI_PM_RUST_SOCK", &sock)
            .env("FCGI_PM_RUST_STATUS", dir.join("status.sock")),
        &dir,
    );
    (pool, sock)
}

fn a_panic_in_a_manager_hook_stops_the_pool_and_resumes_in_rust() -> Outcome {
    for hook in ["manager_init", "log"] {
        let (mut pool, _) = spawn_self(hook);
        let code = pool.wait_exit(Duration::from_secs(10))?;
        let log = pool.log();
        ensure!(code == 101, "{hook}: exited {code}, not 101 (Rust's panic):\n{log}");
        ensure!(
            log.contains(&format!("boom in {hook}")) && log.contains("panicked at"),
            "{hook}: no panic message:\n{log}"
        );
        ensure!(log.contains(&format!("panic in the {hook} hook")), "{hook}: the library was not told:\n{log}");
        ensure!(!log.contains("manage returned"), "{hook}: the panic did not resume in Rust:\n{log}");
        pool.no_orphans()?;
    }
    Ok(())
}

fn a_panic_in_a_worker_hook_ends_that_worker() -> Outcome {
    for hook in ["server_init", "pre_dispatch", "post_dispatch"] {
        let (mut pool, sock) = spawn_self(hook);
        ensure!(
            wait_until(Duration::from_secs(10), || sock.exists() && !pool.started().is_empty()),
            "{hook}: no worker:\n{}",
            pool.log()
        );
        if hook == "pre_dispatch" {
            pool.ready(1)?;
            ensure!(fcgi_get(&sock, "").is_err(), "{hook}: the panicking request was answered");
        }
        if hook == "post_dispatch" {
            pool.ready(1)?; // the request was answered before its post-dispatch hook
            ensure!(fcgi_get(&sock, "").is_ok(), "{hook}: the request before the panic got no answer");
        }
        let ok = wait_until(Duration::from_secs(10), || {
            pool.log().contains("exited with status 25856") && pool.started().len() >= 2
        });
        ensure!(ok, "{hook}: the worker did not exit 101 (the wait status 25856, as the original logs it) and get replaced:\n{}", pool.log());
        let log = pool.log();
        ensure!(
            log.contains(&format!("boom in {hook}")) && log.contains(&format!("panic in the {hook} hook")),
            "{hook}:\n{log}"
        );
        ensure!(!log.contains("the request loop ended"), "{hook}: the panic did not resume in the loop:\n{log}");
        signal(pool.pid(), libc::SIGTERM);
        let code = pool.wait_exit(Duration::from_secs(10))?;
        ensure!(code == 0, "{hook}: the manager exited {code}:\n{}", pool.log());
        pool.no_orphans()?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match std::env::var("FCGI_PM_RUST_MODE").as_deref() {
        Ok("dispatch") => return dispatching_pool(),
        Ok("echo") => return echoing_pool(),
        Ok("eagain") => return failing_accept(),
        Ok("status") => return status_pool(),
        Ok("named") => return naming_pool(),
        Ok(hook) => return panicking_pool(hook),
        Err(_) => {}
    }
    let scenarios: &[Scenario] = &[
        ("serves through cgi-fcgi and nginx", serves_through_cgi_fcgi_and_nginx),
        ("respawns a killed worker", respawns_a_killed_worker),
        ("HUP under load loses no request", hup_under_load_loses_no_request),
        ("TERM lets a request in flight complete", term_lets_a_request_in_flight_complete),
        ("TERM stops idle workers at once", term_stops_idle_workers_at_once),
        ("max_requests replaces the worker", max_requests_replaces_the_worker),
        ("workers end with their manager", workers_end_with_their_manager),
        ("runs under the fcgi-pm program", runs_under_the_fcgi_pm_program),
        ("an async runtime in each worker", an_async_runtime_in_each_worker),
        (
            "a worker dispatching by its own means ends at max_requests",
            a_worker_dispatching_by_its_own_means_ends_at_max_requests,
        ),
        ("a request's stdin, params and stderr; max_size", a_request_s_stdin_params_and_stderr_and_max_size),
        (
            "an accept failing in libfcgi ends the loop with its error",
            an_accept_failing_in_libfcgi_ends_the_loop_with_its_error,
        ),
        (
            "a panic in a manager hook stops the pool and resumes in Rust",
            a_panic_in_a_manager_hook_stops_the_pool_and_resumes_in_rust,
        ),
        ("a panic in a worker hook ends that worker", a_panic_in_a_worker_hook_ends_that_worker),
        ("the live status names each request", the_live_status_names_each_request),
    ];
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut failed = 0;
    for (name, run) in scenarios {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let start = Instant::now();
        match run() {
            Ok(()) => println!("ok   {name} ({} ms)", start.elapsed().as_millis()),
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
    if failed > 0 {
        println!("{failed} scenario(s) failed");
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
