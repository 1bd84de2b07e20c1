//! The cost of one request's dispatch pair through the safe API (`Worker::dispatch`,
//! then `Dispatch::finish`: pm_pre_dispatch + pm_post_dispatch) in a real worker of a
//! pool of one, the Rust counterpart of bench/dispatch_bench.cpp (bench/dispatch.sh
//! runs both):
//!
//!     dispatch --time=N,REPS   times N pairs REPS times: "pair MEDIAN STDDEV", ns per pair
//!     dispatch --pairs=K       K pairs between two marker system calls, for strace
//!
//! The markers are access(2) calls on the paths dispatch_bench uses. The worker then
//! stops its pool as a server stop would: TERM to the manager, and the next pair ends it.
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fcgi_pm::{Manager, Process, Worker};

fn usage() -> ExitCode {
    eprintln!("usage: dispatch --time=N,REPS | --pairs=K");
    ExitCode::from(2)
}

fn pair(worker: &mut Worker) -> bool {
    match worker.dispatch() {
        Ok(request) => black_box(request).finish().is_none(),
        Err(_) => false,
    }
}

fn main() -> ExitCode {
    // cargo bench adds --bench: not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (mut time, mut pairs) = (None, None);
    for a in &args {
        if let Some(v) = a.strip_prefix("--time=") {
            let Some((n, reps)) = v.split_once(',') else { return usage() };
            let (Ok(n), Ok(reps)) = (n.parse::<u64>(), reps.parse::<usize>()) else { return usage() };
            time = Some((n.max(1), reps.max(1)));
        } else if let Some(k) = a.strip_prefix("--pairs=") {
            let Ok(k) = k.parse::<u64>() else { return usage() };
            pairs = Some(k);
        } else {
            return usage();
        }
    }
    if time.is_none() == pairs.is_none() {
        return usage();
    }
    let manager = match Manager::builder().processes(1).build() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("dispatch: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut worker = match manager.manage() {
        Ok(Process::Worker(w)) => w,
        Ok(Process::Exit(e)) => return e.into(), // the manager, once its worker stopped
        Ok(Process::Single(_)) => unreachable!("a pool of one"),
        Err(e) => {
            eprintln!("dispatch: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((n, reps)) = time {
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            let start = Instant::now();
            for _ in 0..n {
                pair(&mut worker);
            }
            samples.push(start.elapsed().as_nanos() as f64 / n as f64);
        }
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = if reps % 2 == 1 { samples[reps / 2] } else { (samples[reps / 2 - 1] + samples[reps / 2]) / 2.0 };
        let mean = samples.iter().sum::<f64>() / reps as f64;
        let stddev = (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / reps as f64).sqrt();
        println!("pair {median:.1} {stddev:.1}");
    } else if let Some(k) = pairs {
        // SAFETY: access(2) on constant paths, as markers.
        unsafe { libc::access(c"/nonexistent/dispatch-bench-begin".as_ptr(), libc::F_OK) };
        for _ in 0..k {
            pair(&mut worker);
        }
        // SAFETY: as above.
        unsafe { libc::access(c"/nonexistent/dispatch-bench-end".as_ptr(), libc::F_OK) };
    }
    // SAFETY: TERM to the manager, which sends it on to this worker.
    unsafe { libc::kill(libc::getppid(), libc::SIGTERM) };
    let start = Instant::now();
    while worker.received_signal(libc::SIGTERM) == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if pair(&mut worker) {
        eprintln!("dispatch: no TERM came back from the manager within 10 s");
        return ExitCode::FAILURE;
    }
    worker.exit_code()
}
