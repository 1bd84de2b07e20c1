//! A hello responder under the manager.
//!
//!     hello [-n WORKERS] [--max-requests N] [--die-timeout SECONDS] [--pid-file FILE] [ADDRESS]
//!
//! ADDRESS is a unix socket's path or HOST:PORT; without one the socket is
//! descriptor 0 (the FastCGI convention, as under the `fcgi-pm` program). A request
//! with `sleep=MS` in its query string takes that long. Each process says on stderr
//! when its state is dropped, to show that destructors run once in each.
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::ExitCode;
use std::time::Duration;

use fcgi_pm::{Listener, Manager, Process};

/// State built before `manage`, so each worker has its own copy, dropped once.
struct Greeter {
    greeting: String,
}

impl Drop for Greeter {
    fn drop(&mut self) {
        // One write, so that lines of several processes do not interleave.
        let line = format!("hello: state dropped in pid {}\n", std::process::id());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

fn listen(address: Option<&str>) -> std::io::Result<Listener> {
    match address {
        None => Listener::stdin(),
        Some(a) if a.contains('/') => {
            let _ = std::fs::remove_file(a);
            Ok(UnixListener::bind(a)?.into())
        }
        Some(a) => Ok(std::net::TcpListener::bind(a)?.into()),
    }
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut builder = Manager::builder().processes(2);
    let mut address = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        builder = match arg.as_str() {
            "-n" => builder.processes(value()?.parse()?),
            "--max-requests" => builder.max_requests(value()?.parse()?),
            "--die-timeout" => builder.die_timeout(Duration::from_secs_f64(value()?.parse()?)),
            "--pid-file" => builder.pid_file(value()?),
            _ if !arg.starts_with('-') => {
                address = Some(arg);
                builder
            }
            _ => return Err(format!("unknown option {arg}").into()),
        };
    }
    let listener = listen(address.as_deref())?;
    let greeter = Greeter { greeting: "Hello".into() };

    let mut worker = match builder.build()?.manage()? {
        Process::Worker(w) | Process::Single(w) => w,
        Process::Exit(status) => return Ok(status.into()), // the manager, once its pool stopped
    };
    for (served, mut req) in worker.requests(&listener).enumerate() {
        let sleep = req.param("QUERY_STRING").and_then(|q| q.strip_prefix("sleep=")).and_then(|ms| ms.parse().ok());
        if let Some(ms) = sleep {
            std::thread::sleep(Duration::from_millis(ms));
        }
        write!(
            req,
            "Content-Type: text/plain\r\n\r\n{} from pid {}, request {}\n",
            greeter.greeting,
            std::process::id(),
            served + 1
        )?;
    }
    Ok(worker.exit_code())
}
