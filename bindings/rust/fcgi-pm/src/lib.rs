//! A pre-forking FastCGI process manager: the C library libfcgi-pm, from Rust.
//!
//! A program opens its listening socket, builds a [`Manager`] and calls
//! [`Manager::manage`]: the process becomes the manager of a pool of worker processes
//! (forked from it), and `manage` returns in each worker, which serves requests with
//! [`Worker::requests`]. HUP replaces the workers, TERM stops the pool gracefully
//! (busy workers finish their requests), a worker that dies is respawned. The manager
//! is the C library's, with its log lines, pid file and systemd notifications.
//!
//! ```no_run
//! use std::io::Write;
//! use fcgi_pm::{Manager, Process};
//!
//! fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
//!     let listener = std::os::unix::net::UnixListener::bind("/run/hello.sock")?;
//!     let mut worker = match Manager::builder().processes(4).build()?.manage()? {
//!         Process::Worker(w) | Process::Single(w) => w,
//!         Process::Exit(status) => return Ok(status.into()), // the manager, done
//!     };
//!     for mut req in worker.requests(&listener) {
//!         write!(req, "Content-Type: text/plain\r\n\r\nHello from {}\n", std::process::id())?;
//!     }
//!     Ok(worker.exit_code())
//! }
//! ```
//!
//! Every exit goes through Rust: the library runs with its `no_exit` parameter, so
//! `manage` returns [`Process::Exit`] in the manager once its pool has stopped, and the
//! request loop ends in a worker that must stop; `main` returns, destructors run.
//! (One exception: a worker whose request runs past
//! [`request_timeout`](Builder::request_timeout) dies of the manager's TERM inside
//! the request.)
//! A panic in a hook closure never unwinds into C: it is caught, the process (in the
//! manager: the pool) is ended through the library, and the panic resumes in Rust
//! when the library's call returns.
//!
//! # Threads and async runtimes
//!
//! [`Manager::manage`] forks: it refuses (an [`ErrorKind::State`] error saying so)
//! a process that already runs more than one thread, since a signal meant for the
//! manager could reach another thread and a forked child would have lost them. Call it
//! first, in `main`; start threads or an async runtime in each worker, after `manage`
//! returned there:
//!
//! ```no_run
//! # fn build_runtime() -> std::io::Result<()> { Ok(()) }
//! let process = fcgi_pm::Manager::builder().processes(4).build()?.manage()?;
//! if let fcgi_pm::Process::Worker(worker) = process {
//!     // Only now, one runtime per worker, its threads leaving TERM and HUP to the
//!     // request loop, e.g. with tokio:
//!     // tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()
//!     let _runtime = worker.with_stop_signals_blocked(build_runtime)?;
//!     # drop(worker);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/tokio.rs` is a whole program doing so.
//!
//! # Under the `fcgi-pm` program
//!
//! The same program runs unchanged as a worker of the `fcgi-pm` program (exec mode):
//! `manage` sees `FCGI_PM_MANAGER_PID` and returns [`Process::Worker`] at once, and
//! the socket is descriptor 0 ([`Listener::stdin`]).
#![deny(missing_docs, missing_debug_implementations)]

mod error;
mod manager;
mod request;

pub use error::{strerror, Error, ErrorKind, Result};
pub use manager::{
    Builder, Dispatch, End, Exit, Manager, Pm, Pool, Process, Role, StopHandle, StopSignal, Worker, WorkerExit,
};
pub use request::{Listener, Request, Requests, Stream};

/// The version of the library in use ("MAJOR.MINOR.PATCH").
pub fn version() -> String {
    // SAFETY: a static string.
    unsafe { error::cstr(fcgi_pm_sys::pm_version()) }
}

/// A parameter of the library, as `pm_parameter_info` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterInfo {
    /// Its name, for [`Builder::set`].
    pub name: String,
    /// "integer", "seconds", "boolean", "text" or "choice" ("unknown" for a type
    /// newer than this crate).
    pub kind: &'static str,
    /// Its bounds as text ("0..100000000", "manager|server").
    pub bounds: String,
    /// Whether it may still be set once the manager runs.
    pub settable_when_running: bool,
}

/// Every parameter of the library, in its fixed order.
///
/// ```
/// let die = fcgi_pm::parameters().into_iter().find(|p| p.name == "die_timeout").unwrap();
/// assert_eq!(die.kind, "seconds");
/// assert!(die.settable_when_running);
/// assert!(fcgi_pm::version().starts_with("0."));
/// ```
pub fn parameters() -> Vec<ParameterInfo> {
    let mut out = Vec::new();
    for index in 0.. {
        let (mut name, mut kind, mut bounds, mut settable) = (std::ptr::null(), 0, std::ptr::null(), 0);
        // SAFETY: out-pointers to locals; the strings are static.
        if unsafe { fcgi_pm_sys::pm_parameter_info(index, &mut name, &mut kind, &mut bounds, &mut settable) } != 0 {
            break;
        }
        let kind = match kind as u32 {
            fcgi_pm_sys::PM_PARAM_INTEGER => "integer",
            fcgi_pm_sys::PM_PARAM_SECONDS => "seconds",
            fcgi_pm_sys::PM_PARAM_BOOLEAN => "boolean",
            fcgi_pm_sys::PM_PARAM_TEXT => "text",
            fcgi_pm_sys::PM_PARAM_CHOICE => "choice",
            _ => "unknown",
        };
        // SAFETY: static C strings.
        let (name, bounds) = unsafe { (error::cstr(name), error::cstr(bounds)) };
        out.push(ParameterInfo { name, kind, bounds, settable_when_running: settable != 0 });
    }
    out
}
