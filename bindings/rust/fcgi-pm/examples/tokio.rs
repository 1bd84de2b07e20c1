//! An async runtime in each worker: `manage` first, while the process has one thread,
//! then a tokio runtime in each worker, its threads started with TERM and HUP blocked
//! so that a stop still reaches the request loop at once.
//!
//!     tokio [-n WORKERS] [--runtime-first] ADDRESS
//!
//! ADDRESS is a unix socket's path or HOST:PORT. Each request's answer is made by two
//! tasks on the runtime at once. `--runtime-first` builds the runtime before `manage`,
//! to show what the library says then.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use fcgi_pm::{Listener, Manager, Process};

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build()
}

async fn answer(uri: String) -> String {
    // Two "backend calls" at once, as an async handler makes them.
    let a = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        "one"
    });
    let b = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        "two"
    });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    format!("Hello from pid {}: {uri} took {a} and {two} task at once\n", std::process::id(), two = b)
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (mut processes, mut runtime_first, mut address) = (2, false, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" => processes = args.next().ok_or("-n needs a value")?.parse()?,
            "--runtime-first" => runtime_first = true,
            _ => address = Some(arg),
        }
    }
    let address = address.ok_or("usage: tokio [-n WORKERS] [--runtime-first] ADDRESS")?;
    let listener: Listener = if address.contains('/') {
        let _ = std::fs::remove_file(&address);
        std::os::unix::net::UnixListener::bind(&address)?.into()
    } else {
        std::net::TcpListener::bind(&address)?.into()
    };
    // Wrong: a runtime's threads before manage. The library refuses, and says why.
    let _early = if runtime_first { Some(runtime()?) } else { None };

    let mut worker = match Manager::builder().processes(processes).build()?.manage()? {
        Process::Worker(w) | Process::Single(w) => w,
        Process::Exit(status) => return Ok(status.into()),
    };
    // Right: in each worker, after manage.
    let runtime = worker.with_stop_signals_blocked(runtime)?;
    for mut req in worker.requests(&listener) {
        let uri = req.param("REQUEST_URI").unwrap_or("/").to_owned();
        let body = runtime.block_on(answer(uri));
        write!(req, "Content-Type: text/plain\r\n\r\n{body}")?;
    }
    drop(runtime); // its threads end before the process does
    Ok(worker.exit_code())
}
