//! The safe API without forking: every parameter's setter, bad input, errors.
use std::time::Duration;

use fcgi_pm::{Builder, ErrorKind, Manager, Pool, Role, StopSignal, WorkerExit};

type Setter = fn(Builder) -> Builder;

/// Each parameter of the library, the typed setter for it, and the value it should
/// then read back as.
fn setters() -> Vec<(&'static str, Setter, &'static str)> {
    vec![
        ("n_processes", |b| b.processes(7), "7"),
        ("die_timeout", |b| b.die_timeout(Duration::from_millis(2500)), "2.5"),
        ("start_delay", |b| b.start_delay(Duration::from_millis(10)), "0.01"),
        ("pid_fname", |b| b.pid_file("/tmp/fcgi-pm-rust-api.pid"), "/tmp/fcgi-pm-rust-api.pid"),
        ("pm_title", |b| b.title("app-manager"), "app-manager"),
        ("process_name", |b| b.process_name("app-worker"), "app-worker"),
        ("no_signals", |b| b.no_signals(true), "1"),
        ("role", |b| b.role(Role::Server), "server"),
        ("max_requests", |b| b.max_requests(500), "500"),
        ("max_size", |b| b.max_size_kib(65536), "65536"),
        ("sizecheck_num_requests", |b| b.sizecheck_num_requests(10), "10"),
        ("min_uptime", |b| b.min_uptime(Duration::from_secs(2)), "2"),
        ("backoff_min", |b| b.backoff_min(Duration::from_millis(50)), "0.05"),
        ("backoff_max", |b| b.backoff_max(Duration::from_secs(30)), "30"),
        ("crash_budget", |b| b.crash_budget(3), "3"),
        ("crash_window", |b| b.crash_window(Duration::from_secs(20)), "20"),
        ("start_timeout", |b| b.start_timeout(Duration::from_secs(5)), "5"),
        ("worker_exit", |b| b.worker_exit(WorkerExit::FlushedExit), "_exit"),
        ("stop_listening", |b| b.stop_listening(false), "0"),
        ("stop_signal", |b| b.stop_signal(StopSignal::Quit), "QUIT"),
        ("min_share_size", |b| b.min_share_size_kib(1024), "1024"),
        ("max_unshared_size", |b| b.max_unshared_size_kib(2048), "2048"),
        ("scoreboard", |b| b.scoreboard(false), "0"),
        ("status_socket", |b| b.status_socket("/run/app.status"), "/run/app.status"),
        ("status_group", |b| b.status_group("adm"), "adm"),
        ("pool", |b| b.pool(Pool::OnDemand), "ondemand"),
        ("min_idle", |b| b.min_idle(2), "2"),
        ("max_idle", |b| b.max_idle(4), "4"),
        ("max_workers", |b| b.max_workers(16), "16"),
        ("idle_timeout", |b| b.idle_timeout(Duration::from_secs(3)), "3"),
        ("spawn_rate", |b| b.spawn_rate(100), "100"),
        ("request_timeout", |b| b.request_timeout(Duration::from_secs(30)), "30"),
        ("request_timeout_grace", |b| b.request_timeout_grace(Duration::from_millis(2500)), "2.5"),
        ("request_slow", |b| b.request_slow(Duration::from_secs(5)), "5"),
        ("max_requests_jitter", |b| b.max_requests_jitter(50), "50"),
        ("max_age", |b| b.max_age(Duration::from_secs(3600)), "3600"),
        ("max_rss", |b| b.max_rss_kib(524288), "524288"),
    ]
}

#[test]
fn every_parameter_has_a_typed_setter_that_sets_it() {
    let table = setters();
    let mut names: Vec<&str> = table.iter().map(|t| t.0).collect();
    names.push("no_exit"); // the crate's own: always 1
    names.sort_unstable();
    let mut library: Vec<String> = fcgi_pm::parameters().into_iter().map(|p| p.name).collect();
    library.sort_unstable();
    assert_eq!(names, library, "a parameter of the library without a typed setter, or one too many");
    for (name, set, expected) in table {
        let manager = set(Manager::builder()).build().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(manager.parameter(name).as_deref(), Some(expected), "{name}");
    }
}

#[test]
fn exits_go_through_rust() {
    let manager = Manager::new().unwrap();
    assert_eq!(manager.parameter("no_exit").as_deref(), Some("1"));
    assert_eq!(manager.role(), Role::Manager);
    assert_eq!(manager.exit_status(), None);
    // pm_die before manage logs and returns the status instead of exiting.
    let logged = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = logged.clone();
    let manager = Manager::builder().on_log(move |line| sink.borrow_mut().push(line.to_owned())).build().unwrap();
    assert_eq!(manager.die("enough", 3).status(), 3);
    assert_eq!(manager.exit_status(), Some(3));
    assert_eq!(manager.exit("now", 4).status(), 4);
    assert_eq!(manager.abort("bad", 0).status(), 1);
    manager.notify("a line with\0a NUL");
    let lines = logged.borrow();
    assert!(lines[0].starts_with("FastCGI: manager (pid ") && lines[0].ends_with("): dying: enough"), "{lines:?}");
    assert!(lines.last().unwrap().ends_with("a line with\\0a NUL"), "{lines:?}");
}

#[test]
fn bad_values_are_errors_naming_the_problem_and_change_nothing() {
    let cases: Vec<(Builder, ErrorKind, &str)> = vec![
        (Manager::builder().processes(1_000_000), ErrorKind::OutOfRange, "n_processes"),
        (Manager::builder().die_timeout(Duration::from_micros(1500)), ErrorKind::BadValue, "die_timeout"),
        (Manager::builder().backoff_max(Duration::from_secs(u64::MAX)), ErrorKind::OutOfRange, "backoff_max"),
        (Manager::builder().max_requests(u64::MAX), ErrorKind::OutOfRange, "max_requests"),
        (Manager::builder().process_name(&"x".repeat(300)), ErrorKind::TooLong, "process_name"),
        (Manager::builder().title(""), ErrorKind::BadValue, "pm_title"),
        (Manager::builder().pid_file("/tmp/a\0b"), ErrorKind::InvalidArgument, "NUL"),
        (Manager::builder().set("no_such", "1"), ErrorKind::UnknownParameter, "no_such"),
        (Manager::builder().set("no_signals", "maybe"), ErrorKind::BadValue, "no_signals"),
        (Manager::builder().exec(&std::io::stdin(), Vec::<&str>::new()), ErrorKind::InvalidArgument, "argv"),
        (Manager::builder().exec(&std::io::stdin(), ["/bin/tr\0ue"]), ErrorKind::InvalidArgument, "NUL"),
    ];
    for (builder, kind, word) in cases {
        let err = builder.build().expect_err(word);
        assert_eq!(err.kind(), kind, "{word}: {err}");
        assert_eq!(err.code(), kind.code());
        assert!(err.to_string().contains(word), "{word}: {err}");
    }
    // no_exit stays 1: exits go through Rust.
    let err = Manager::builder().set("no_exit", "0").build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("no_exit"), "{err}");
    let manager = Manager::new().unwrap();
    assert!(manager.set_parameter("no_exit", "0").is_err());
    assert_eq!(manager.parameter("no_exit").as_deref(), Some("1"));
    // The first error is kept; later setters change nothing.
    let err = Manager::builder().processes(1_000_000).set("nope", "1").processes(2).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
    // A failing set on a manager changes nothing.
    let manager = Manager::builder().max_requests(9).build().unwrap();
    assert!(manager.set_parameter("max_requests", "-1").is_err());
    assert_eq!(manager.parameter("max_requests").as_deref(), Some("9"));
    assert_eq!(manager.parameter("no_such"), None);
}

#[test]
fn every_error_code_has_a_kind_and_the_library_text() {
    let mut texts = std::collections::BTreeSet::new();
    for code in -13..=-1 {
        let kind = ErrorKind::from_code(code);
        assert!(!matches!(kind, ErrorKind::Other(_)), "{code}");
        assert_eq!(kind.code(), code);
        let text = fcgi_pm::strerror(code);
        assert!(!text.is_empty() && text != fcgi_pm::strerror(-100), "{code}: {text}");
        texts.insert(text);
    }
    assert_eq!(texts.len(), 13, "each code its own text");
    assert_eq!(ErrorKind::from_code(-14), ErrorKind::Other(-14));
    // A system error keeps its errno, and converts to an io::Error of that kind.
    let manager = Manager::new().unwrap();
    let err = manager.write_pid_file(Some(std::path::Path::new("/nonexistent/dir/x.pid"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(err.to_string().contains("/nonexistent/dir/x.pid"), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    let _: &dyn std::error::Error = &io;
}

#[test]
fn manage_refuses_a_process_with_threads_and_says_what_to_do() {
    // The test harness runs this on a thread of its own: the process has several.
    let err = Manager::builder().processes(2).build().unwrap().manage().expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("threads") && err.to_string().contains("before starting"), "{err}");
}

#[test]
fn a_worker_only_api_is_refused_outside_a_worker() {
    let manager = Manager::new().unwrap();
    assert!(!manager.stopping());
    assert_eq!(manager.wait_worker().unwrap_err().kind(), ErrorKind::State);
    assert_eq!(manager.received_signal(libc::SIGTERM), 0);
    // Stop and reload requests before manage are kept for it; from another thread too.
    let stop = manager.stop_handle();
    let other = stop.clone();
    std::thread::spawn(move || {
        other.reload();
        other.stop();
    })
    .join()
    .unwrap();
    // Once the manager is gone its handles do nothing (and free nothing twice).
    drop(manager);
    stop.stop();
    stop.reload();
    // A pid file's path need not be UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/tmp/fcgi-pm-\xff.pid"));
    let manager = Manager::builder().pid_file(path).build().unwrap();
    assert!(manager.parameter("pid_fname").is_some());
    assert!(fcgi_pm::version().starts_with("0."));
}

#[test]
fn dropping_a_manager_frees_its_handle_and_the_pid_file_it_holds() {
    let path = std::env::temp_dir().join(format!("fcgi-pm-rust-api-{}.pid", std::process::id()));
    let first = Manager::new().unwrap();
    first.write_pid_file(Some(&path)).unwrap();
    let second = Manager::new().unwrap();
    let err = second.write_pid_file(Some(&path)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    drop(first); // pm_destroy: the lock goes with the handle
    second.write_pid_file(Some(&path)).unwrap();
    second.remove_pid_file(Some(&path)).unwrap();
    assert!(!path.exists());
}
