//! The manager: its builder, the process `manage` turns the caller into, and hooks.
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CString, OsStr};
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fcgi_pm_sys as sys;

use crate::error::{cstr, Error, ErrorKind, Result};
use crate::request::Requests;

/// What a [`StopHandle`] shares with its [`Manager`]: the C handle while it lives
/// (null once the Manager has dropped it), and how many stop or reload calls are
/// using it right now, which the Manager waits out before freeing it. Atomics only:
/// a signal handler may call in.
struct Shared {
    pm: AtomicPtr<sys::pm_t>,
    users: AtomicUsize,
}

type HookFn = Box<dyn FnMut(&Pm)>;
type LogFn = Box<dyn FnMut(&str)>;
type EndFn = Box<dyn FnMut(&Pm, End)>;

/// What the C hooks call back into, at a fixed address (boxed) for their `user`.
pub(crate) struct Hooks {
    hooks: [RefCell<Option<HookFn>>; HOOKS],
    log: RefCell<Option<LogFn>>,
    end: RefCell<Option<EndFn>>,
    /// A hook's panic, caught at the C boundary, to resume once the C call returns.
    panic: Cell<Option<Box<dyn Any + Send>>>,
    /// The error that ended a request loop early.
    pub(crate) loop_error: RefCell<Option<Error>>,
}

const HOOKS: usize = 8;
const HOOK_NAMES: [&str; HOOKS] = [
    "manager_init",
    "server_init",
    "pre_dispatch",
    "post_dispatch",
    "pre_fork",
    "parent_after_fork",
    "child_after_fork",
    "manager_signal",
];
/// Hooks that run in the manager: a panic there stops the pool (pm_die); in a worker
/// or a new child it ends that process (pm_exit).
const IN_MANAGER: [bool; HOOKS] = [true, false, false, false, true, true, false, true];

/// The exit status Rust uses for a panic.
const PANIC_STATUS: c_int = 101;

impl Hooks {
    fn new() -> Hooks {
        Hooks {
            hooks: Default::default(),
            log: RefCell::new(None),
            end: RefCell::new(None),
            panic: Cell::new(None),
            loop_error: RefCell::new(None),
        }
    }

    fn panicked(&self) -> bool {
        let p = self.panic.take();
        let yes = p.is_some();
        self.panic.set(p);
        yes
    }

    /// Runs user code from a C hook: a panic is caught, kept, and ends the process
    /// (in_manager: the pool) through the library, which then returns to Rust.
    fn guarded(&self, pm: *mut sys::pm_t, what: &str, in_manager: bool, f: impl FnOnce(&Pm)) -> bool {
        if self.panicked() {
            return false; // no more user code until the panic is resumed
        }
        let handle = Pm { pm, hooks: self, _not_send: PhantomData };
        match panic::catch_unwind(AssertUnwindSafe(|| f(&handle))) {
            Ok(()) => true,
            Err(payload) => {
                self.panic.set(Some(payload));
                let msg = CString::new(format!("panic in the {what} hook")).unwrap();
                // SAFETY: pm is the live handle the hook was called with; with "no_exit"
                // these return, and the library unwinds to the call that ran the hook.
                unsafe {
                    if in_manager {
                        sys::pm_die(pm, msg.as_ptr(), PANIC_STATUS);
                    } else {
                        sys::pm_exit(pm, msg.as_ptr(), PANIC_STATUS);
                    }
                }
                false
            }
        }
    }

    /// Continues a hook's panic in Rust, now that the C call that ran it returned.
    pub(crate) fn resume_panic(&self) {
        if let Some(payload) = self.panic.take() {
            panic::resume_unwind(payload);
        }
    }
}

unsafe extern "C" fn hook_trampoline<const I: usize>(pm: *mut sys::pm_t, user: *mut c_void) {
    let hooks = &*(user as *const Hooks);
    hooks.guarded(pm, HOOK_NAMES[I], IN_MANAGER[I], |handle| {
        if let Ok(mut slot) = hooks.hooks[I].try_borrow_mut() {
            if let Some(f) = slot.as_mut() {
                f(handle);
            }
        }
    });
}

unsafe extern "C" fn log_trampoline(pm: *mut sys::pm_t, line: *const c_char, user: *mut c_void) {
    use std::io::Write as _;
    let hooks = &*(user as *const Hooks);
    let text = cstr(line);
    let in_manager = cstr(sys::pm_role(pm)) == "manager";
    let mut delivered = false;
    hooks.guarded(pm, "log", in_manager, |_| {
        // A line logged from inside the log closure itself goes to stderr.
        if let Ok(mut slot) = hooks.log.try_borrow_mut() {
            if let Some(f) = slot.as_mut() {
                f(&text);
                delivered = true;
            }
        }
    });
    if !delivered {
        let _ = writeln!(std::io::stderr(), "{text}"); // never a panic here: stderr may be gone
    }
}

unsafe extern "C" fn end_trampoline(
    pm: *mut sys::pm_t,
    how: c_int,
    msg: *const c_char,
    status: c_int,
    user: *mut c_void,
) {
    let hooks = &*(user as *const Hooks);
    let end = End { abort: how == sys::PM_END_ABORT, message: cstr(msg), status: status as u8 };
    hooks.guarded(pm, "end", true, |handle| {
        if let Ok(mut slot) = hooks.end.try_borrow_mut() {
            if let Some(f) = slot.as_mut() {
                f(handle, end);
            }
        }
    });
}

const TRAMPOLINES: [unsafe extern "C" fn(*mut sys::pm_t, *mut c_void); HOOKS] = [
    hook_trampoline::<0>,
    hook_trampoline::<1>,
    hook_trampoline::<2>,
    hook_trampoline::<3>,
    hook_trampoline::<4>,
    hook_trampoline::<5>,
    hook_trampoline::<6>,
    hook_trampoline::<7>,
];

/// The manager's own decision to end, told to [`Builder::on_end`]: a stop beginning
/// (TERM, a requested stop), or the die timeout that ends a stop by killing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    /// `true` at the die timeout (workers are killed next), `false` when a stop begins.
    pub abort: bool,
    /// The library's message ("safe exit from signal TERM", "wait timeout").
    pub message: String,
    /// The status the manager will exit with.
    pub status: u8,
}

/// This process's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The manager (or a single process, or a process before `manage`).
    Manager,
    /// A worker ("server" in the library's log lines).
    Server,
}

/// How the pool's size is kept (the `pool` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// `static`: `n_processes` workers, always (the default).
    Static,
    /// `dynamic`: `n_processes` to start, between `min_idle` and `max_idle` idle,
    /// at most `max_workers`.
    Dynamic,
    /// `ondemand`: none until a connection waits, at most `max_workers`; idle ones
    /// retire after `idle_timeout`.
    OnDemand,
}

/// How a worker ends once it must stop (the `worker_exit` parameter). With this
/// crate the library never exits itself: the worker's request loop ends, and the
/// choice is what the library does when the program then exits through Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// `exit`: the default.
    Exit,
    /// `_exit`: stdio flushed, then `_exit(2)`.
    FlushedExit,
    /// `_exit_unflushed`: `_exit(2)` alone.
    UnflushedExit,
}

/// The signal that stops an exec'd worker (the `stop_signal` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM, the default.
    Term,
    /// SIGINT.
    Int,
    /// SIGQUIT (nginx's and unicorn's graceful stop).
    Quit,
    /// SIGHUP.
    Hup,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGWINCH (Apache's graceful stop).
    Winch,
}

impl StopSignal {
    fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "TERM",
            StopSignal::Int => "INT",
            StopSignal::Quit => "QUIT",
            StopSignal::Hup => "HUP",
            StopSignal::Usr1 => "USR1",
            StopSignal::Usr2 => "USR2",
            StopSignal::Winch => "WINCH",
        }
    }
}

/// The status a process is to exit with, now, through Rust (so that destructors run).
///
/// ```
/// let exit = fcgi_pm::Exit::from(3);
/// assert_eq!(exit.status(), 3);
/// let _: std::process::ExitCode = exit.into();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit(pub(crate) u8);

impl Exit {
    /// The status, 0-255.
    pub fn status(self) -> u8 {
        self.0
    }
}

impl From<u8> for Exit {
    fn from(status: u8) -> Exit {
        Exit(status)
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.0)
    }
}

impl std::process::Termination for Exit {
    fn report(self) -> ExitCode {
        self.into()
    }
}

/// What [`Manager::manage`] made of this process.
///
/// ```
/// // processes(0): no pool, this process serves by itself.
/// match fcgi_pm::Manager::builder().processes(0).build()?.manage()? {
///     fcgi_pm::Process::Single(worker) => assert_eq!(worker.role(), fcgi_pm::Role::Manager),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), fcgi_pm::Error>(())
/// ```
pub enum Process {
    /// A worker of the pool: serve requests, then return [`Worker::exit_code`] from `main`.
    Worker(Worker),
    /// `processes(0)`: nothing is managed; this process serves requests itself.
    Single(Worker),
    /// This process is done: the manager after its pool stopped (exit with this
    /// status), or a process whose init hook asked to end.
    Exit(Exit),
}

/// The library's handle as hooks, managers and workers share it: logging, ending the
/// process, stopping or reloading the pool, the pid file, parameters.
///
/// Reached through [`Manager`] and [`Worker`] (both dereference to it) and given to
/// every hook.
///
/// ```
/// let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let sink = lines.clone();
/// let manager = fcgi_pm::Manager::builder()
///     .on_log(move |line| sink.borrow_mut().push(line.to_owned()))
///     .build()?;
/// manager.notify("warming the cache");
/// assert_eq!(manager.role(), fcgi_pm::Role::Manager);
/// assert!(lines.borrow()[0].ends_with("): warming the cache"));
/// # Ok::<(), fcgi_pm::Error>(())
/// ```
pub struct Pm {
    pm: *mut sys::pm_t,
    hooks: *const Hooks,
    _not_send: PhantomData<*const ()>,
}

fn c_string(what: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorKind::InvalidArgument, format!("{what}: contains a NUL byte")))
}

/// Seconds as the library reads them: decimal, exact (it refuses more than three decimals).
fn seconds(d: Duration) -> String {
    let text = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Pm {
    pub(crate) fn raw(&self) -> *mut sys::pm_t {
        self.pm
    }

    /// Another view of the same handle, for a request loop to lend out.
    pub(crate) fn alias(&self) -> Pm {
        Pm { pm: self.pm, hooks: self.hooks, _not_send: PhantomData }
    }

    pub(crate) fn hooks(&self) -> &Hooks {
        // SAFETY: the hooks live as long as the Manager that owns this handle.
        unsafe { &*self.hooks }
    }

    fn check(&self, rc: c_int) -> Result<c_int> {
        if rc < 0 {
            Err(Error::from_handle(self.pm, rc))
        } else {
            Ok(rc)
        }
    }

    /// Sets a parameter by its library name, the value as text: what the typed
    /// setters of [`Builder`] do. Settable while the manager runs (from a hook) are
    /// those `pm_parameter_info` says.
    pub fn set_parameter(&self, name: &str, value: &str) -> Result<()> {
        if name == "no_exit" {
            return Err(Error::new(
                ErrorKind::State,
                "no_exit: the Rust crate keeps it at 1 (every exit goes through Rust, destructors run)",
            ));
        }
        self.set_raw(name, value.as_bytes())
    }

    pub(crate) fn set_raw(&self, name: &str, value: &[u8]) -> Result<()> {
        let (n, v) = (c_string("parameter name", name.as_bytes())?, c_string(name, value)?);
        // SAFETY: live handle, C strings.
        self.check(unsafe { sys::pm_parameter(self.pm, n.as_ptr(), v.as_ptr()) }).map(drop)
    }

    /// A parameter's current value as text; `None` for an unknown name.
    pub fn parameter(&self, name: &str) -> Option<String> {
        let n = CString::new(name).ok()?;
        // SAFETY: live handle; the string is copied at once.
        let v = unsafe { sys::pm_get_parameter(self.pm, n.as_ptr()) };
        (!v.is_null()).then(|| unsafe { cstr(v) })
    }

    /// Logs one line, `FastCGI: <role> (pid <pid>): <msg>` (to stderr, or to the
    /// [`Builder::on_log`] closure).
    pub fn notify(&self, msg: &str) {
        let line = CString::new(msg.replace('\0', "\\0")).unwrap();
        // SAFETY: a "%s" format with one C string.
        unsafe { sys::pm_notify(self.pm, c"%s".as_ptr(), line.as_ptr()) }
    }

    /// This process's role.
    pub fn role(&self) -> Role {
        // SAFETY: live handle.
        if unsafe { cstr(sys::pm_role(self.pm)) } == "server" {
            Role::Server
        } else {
            Role::Manager
        }
    }

    fn end(
        &self,
        f: unsafe extern "C" fn(*mut sys::pm_t, *const c_char, c_int) -> c_int,
        msg: &str,
        status: u8,
    ) -> Exit {
        let m = CString::new(msg.replace('\0', "\\0")).unwrap();
        // SAFETY: live handle; with "no_exit" (always set by this crate) it returns.
        let rc = unsafe { f(self.pm, m.as_ptr(), c_int::from(status)) };
        Exit(if sys::PM_IS_EXIT(rc) { sys::PM_EXIT_STATUS(rc) as u8 } else { status })
    }

    /// `pm_die`: in the manager, stops the workers (TERM, then KILL at the die
    /// timeout), logs `dying: <msg>`; in a worker, logs it. Returns the status to
    /// exit with; from a hook, the call that ran the hook then ends as well.
    pub fn die(&self, msg: &str, status: u8) -> Exit {
        self.end(sys::pm_die, msg, status)
    }

    /// `pm_exit`: kills any remaining workers at once, logs `msg`. As [`Pm::die`].
    pub fn exit(&self, msg: &str, status: u8) -> Exit {
        self.end(sys::pm_exit, msg, status)
    }

    /// `pm_abort`: as [`Pm::exit`], with status 1 when `status` is 0.
    pub fn abort(&self, msg: &str, status: u8) -> Exit {
        self.end(sys::pm_abort, msg, status)
    }

    /// Asks for a stop, as TERM would (in a worker: at once if idle, after its
    /// request if busy). From another thread or a signal handler: [`StopHandle`].
    pub fn request_stop(&self) -> Result<()> {
        // SAFETY: live handle.
        self.check(unsafe { sys::pm_request_stop(self.pm, 0) }).map(drop)
    }

    /// Asks the manager to replace every worker, as HUP would; an error in a worker.
    pub fn request_reload(&self) -> Result<()> {
        // SAFETY: live handle.
        self.check(unsafe { sys::pm_request_reload(self.pm) }).map(drop)
    }

    /// In a worker: whether it must stop (TERM, HUP, a requested stop, the manager's
    /// stop or death).
    pub fn stopping(&self) -> bool {
        // SAFETY: live handle.
        unsafe { sys::pm_worker_stopping(self.pm) == 1 }
    }

    /// How many times this process received `signo` (TERM and HUP are counted).
    pub fn received_signal(&self, signo: i32) -> u32 {
        // SAFETY: live handle.
        unsafe { sys::pm_received_signal(self.pm, signo).max(0) as u32 }
    }

    /// Sets the process title (`ps`).
    pub fn set_process_name(&self, name: &str) -> Result<()> {
        let n = c_string("process name", name.as_bytes())?;
        // SAFETY: live handle, C string.
        self.check(unsafe { sys::pm_change_process_name(self.pm, n.as_ptr()) }).map(drop)
    }

    /// Writes this process's pid to `path` (`None`: the `pid_file` parameter) and
    /// keeps it locked until it is removed or the process ends.
    pub fn write_pid_file(&self, path: Option<&Path>) -> Result<()> {
        let p = path.map(|p| c_string("pid file", p.as_os_str().as_bytes())).transpose()?;
        // SAFETY: live handle, C string or NULL.
        self.check(unsafe { sys::pm_write_pid_file(self.pm, p.as_ref().map_or(ptr::null(), |p| p.as_ptr())) }).map(drop)
    }

    /// Removes `path` (`None`: the `pid_file` parameter) if it is still this process's.
    pub fn remove_pid_file(&self, path: Option<&Path>) -> Result<()> {
        let p = path.map(|p| c_string("pid file", p.as_os_str().as_bytes())).transpose()?;
        // SAFETY: live handle, C string or NULL.
        self.check(unsafe { sys::pm_remove_pid_file(self.pm, p.as_ref().map_or(ptr::null(), |p| p.as_ptr())) })
            .map(drop)
    }

    /// In the manager's init hook: waits for one worker to exit and returns its pid
    /// (`pm_wait`); an error elsewhere.
    pub fn wait_worker(&self) -> Result<i32> {
        // SAFETY: live handle.
        self.check(unsafe { sys::pm_wait(self.pm) })
    }

    /// The status this process was asked to exit with, if any.
    pub fn exit_status(&self) -> Option<u8> {
        // SAFETY: live handle.
        let s = unsafe { sys::pm_exit_status(self.pm) };
        (s >= 0).then_some(s as u8)
    }
}

/// A handle to stop or reload the pool from another thread or a signal handler
/// (`pm_request_stop` / `pm_request_reload` are async-signal-safe; so is this).
/// Once its [`Manager`] (or [`Worker`]) is gone, it does nothing.
///
/// In a worker, a stop asked from another thread takes effect at the end of the
/// current request or at the next accept: it does not wake an accept already
/// waiting in the request loop's thread (a signal handler on that thread does).
///
/// ```
/// let manager = fcgi_pm::Manager::builder().processes(2).build()?;
/// let stop = manager.stop_handle();
/// // e.g. from an admin thread started after manage (before it, manage refuses):
/// std::thread::spawn(move || stop.stop()).join().unwrap();
/// // A stop asked before manage is acted on as soon as it runs.
/// # Ok::<(), fcgi_pm::Error>(())
/// ```
#[derive(Clone)]
pub struct StopHandle(Arc<Shared>);

impl StopHandle {
    fn with(&self, f: unsafe extern "C" fn(*mut sys::pm_t) -> c_int) {
        self.0.users.fetch_add(1, Ordering::SeqCst);
        let pm = self.0.pm.load(Ordering::SeqCst);
        if !pm.is_null() {
            // SAFETY: the Manager frees the handle only once users is back at 0.
            unsafe { f(pm) };
        }
        self.0.users.fetch_sub(1, Ordering::SeqCst);
    }

    /// As TERM: the manager stops its pool; a worker stops after its request.
    pub fn stop(&self) {
        unsafe extern "C" fn stop(pm: *mut sys::pm_t) -> c_int {
            sys::pm_request_stop(pm, 0)
        }
        self.with(stop);
    }

    /// As HUP: the manager replaces its workers. Ignored in a worker.
    pub fn reload(&self) {
        self.with(sys::pm_request_reload);
    }
}

/// A manager not yet managing: parameters and hooks are set, then [`Manager::manage`]
/// forks the pool.
///
/// The library runs with its `no_exit` parameter set: it never ends the process
/// itself. Every exit goes through Rust — `manage` and the request loop return, and
/// `main` returns the status — so destructors run in every process.
///
/// ```
/// use std::time::Duration;
/// let manager = fcgi_pm::Manager::builder()
///     .processes(4)
///     .die_timeout(Duration::from_secs(10))
///     .max_requests(10_000)
///     .build()?;
/// assert_eq!(manager.parameter("n_processes").as_deref(), Some("4"));
/// # Ok::<(), fcgi_pm::Error>(())
/// ```
pub struct Manager {
    shared: Arc<Shared>,
    /// Boxed (Box::into_raw), at a fixed address the C hooks hold; freed in drop.
    hooks: NonNull<Hooks>,
    pm: Pm,
}

impl Manager {
    /// A manager with every parameter at its default.
    pub fn new() -> Result<Manager> {
        // SAFETY: no precondition.
        let raw = unsafe { sys::pm_create() };
        if raw.is_null() {
            return Err(Error::new(ErrorKind::OutOfMemory, "pm_create: out of memory"));
        }
        let hooks = NonNull::from(Box::leak(Box::new(Hooks::new())));
        let pm = Pm { pm: raw, hooks: hooks.as_ptr(), _not_send: PhantomData };
        let shared = Arc::new(Shared { pm: AtomicPtr::new(raw), users: AtomicUsize::new(0) });
        let manager = Manager { shared, hooks, pm };
        manager.set_raw("no_exit", b"1")?;
        Ok(manager)
    }

    /// A builder of a new manager.
    pub fn builder() -> Builder {
        Builder { manager: Manager::new() }
    }

    /// A handle that stops or reloads this pool from another thread or a signal handler.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.shared.clone())
    }

    /// Becomes the manager and forks the workers (`pm_manage`): returns
    /// [`Process::Worker`] in each worker, [`Process::Single`] with `processes(0)`,
    /// and in the manager, once its pool has stopped, [`Process::Exit`].
    ///
    /// Call it before the process starts a thread (or an async runtime): the library
    /// refuses a process with more than one thread, as a signal meant for the manager
    /// could reach another. Start them in each worker.
    pub fn manage(self) -> Result<Process> {
        // SAFETY: live handle; hooks point into self.hooks, which the process keeps.
        let rc = unsafe { sys::pm_manage(self.pm.raw()) };
        self.pm.hooks().resume_panic();
        match rc {
            sys::PM_WORKER => Ok(Process::Worker(Worker { manager: self })),
            sys::PM_SINGLE_PROCESS => Ok(Process::Single(Worker { manager: self })),
            sys::PM_MANAGER_DONE => Ok(Process::Exit(Exit(self.exit_status().unwrap_or(0)))),
            rc => Err(Error::from_handle(self.pm.raw(), rc)),
        }
    }

    fn set_hook(&mut self, index: usize, f: HookFn) {
        *self.pm.hooks().hooks[index].borrow_mut() = Some(f);
        let user = self.hooks.as_ptr().cast::<c_void>();
        // SAFETY: the trampoline reads user as the Hooks, boxed in self.
        unsafe { sys::pm_set_hook(self.pm.raw(), index as sys::pm_hook_t, Some(TRAMPOLINES[index]), user) };
    }

    fn set_log(&mut self, f: LogFn) {
        *self.pm.hooks().log.borrow_mut() = Some(f);
        let user = self.hooks.as_ptr().cast::<c_void>();
        // SAFETY: as set_hook.
        unsafe { sys::pm_set_notify_hook(self.pm.raw(), Some(log_trampoline), user) };
    }

    fn set_end(&mut self, f: EndFn) {
        *self.pm.hooks().end.borrow_mut() = Some(f);
        let user = self.hooks.as_ptr().cast::<c_void>();
        // SAFETY: as set_hook.
        unsafe { sys::pm_set_end_hook(self.pm.raw(), Some(end_trampoline), user) };
    }
}

impl std::fmt::Debug for Pm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pm").field("role", &self.role()).field("exit_status", &self.exit_status()).finish()
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Manager").field(&self.pm).finish()
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Worker").field(&self.manager.pm).finish()
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Worker(w) => f.debug_tuple("Worker").field(w).finish(),
            Process::Single(w) => f.debug_tuple("Single").field(w).finish(),
            Process::Exit(e) => f.debug_tuple("Exit").field(e).finish(),
        }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("manager", &self.manager).finish()
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopHandle")
    }
}

impl Deref for Manager {
    type Target = Pm;
    fn deref(&self) -> &Pm {
        &self.pm
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // StopHandles see the handle gone; one in the middle of a call is waited out.
        let pm = self.shared.pm.swap(ptr::null_mut(), Ordering::SeqCst);
        while self.shared.users.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        // SAFETY: the live handle, used by nothing else now; then the hooks it held.
        unsafe {
            sys::pm_destroy(pm);
            drop(Box::from_raw(self.hooks.as_ptr()));
        }
    }
}

/// A worker (or the single process): serves requests with [`Worker::requests`].
pub struct Worker {
    manager: Manager,
}

impl Worker {
    /// The request loop on `listener` (a listening socket: a `TcpListener`, a
    /// `UnixListener`, [`crate::Listener::stdin`]). Ends when the worker must stop.
    pub fn requests<'a, L: AsFd + ?Sized>(&'a mut self, listener: &'a L) -> Requests<'a> {
        Requests::new(&self.manager.pm, listener.as_fd().as_raw_fd())
    }

    /// A handle to stop this worker from another thread or a signal handler.
    pub fn stop_handle(&self) -> StopHandle {
        self.manager.stop_handle()
    }

    /// Names the next request for the live status (`pm_set_request`): its method,
    /// URI and client address ("" for one not known), each cut to what the status
    /// keeps (15, 191 and 47 bytes; at a NUL). Call it before [`Worker::dispatch`];
    /// a request not named shows none. [`Worker::requests`] names each of its own.
    ///
    /// ```no_run
    /// # fn serve(mut worker: fcgi_pm::Worker) {
    /// worker.set_request("GET", "/report?day=3", "192.0.2.7");
    /// let request = worker.dispatch();
    /// # drop(request); }
    /// ```
    pub fn set_request(&mut self, method: &str, uri: &str, remote: &str) {
        /// s as a C string, in a buffer as long as the longest field the library keeps
        /// (no allocation; a NUL in s ends it early, as it would in C).
        fn field(s: &str) -> [u8; 192] {
            let mut buf = [0u8; 192];
            let n = s.len().min(buf.len() - 1);
            buf[..n].copy_from_slice(&s.as_bytes()[..n]);
            buf
        }
        let (m, u, r) = (field(method), field(uri), field(remote));
        // SAFETY: live handle; NUL-terminated buffers, copied by the library.
        unsafe { sys::pm_set_request(self.raw(), m.as_ptr().cast(), u.as_ptr().cast(), r.as_ptr().cast()) };
    }

    /// Starts a request this worker accepted by its own means (`pm_pre_dispatch`);
    /// `Err` with the exit to make when a pre-dispatch hook asked to end.
    pub fn dispatch(&mut self) -> Result<Dispatch<'_>, Exit> {
        // SAFETY: live handle.
        let rc = unsafe { sys::pm_pre_dispatch(self.raw()) };
        self.manager.pm.hooks().resume_panic();
        if sys::PM_IS_EXIT(rc) {
            return Err(Exit(sys::PM_EXIT_STATUS(rc) as u8));
        }
        Ok(Dispatch { worker: self, finished: false })
    }

    /// Runs `f` with TERM and HUP blocked in this thread, so that the threads `f`
    /// starts (an async runtime's, a pool's) inherit a mask that leaves those signals
    /// to this one, where the request loop waits, and a stop always ends an idle
    /// worker's wait at once. (Linux gives a signal sent to the process to its main
    /// thread first, unless one is pending there already: without this, a stop
    /// mostly but not always lands where it should.) Start a worker's threads this way.
    ///
    /// ```no_run
    /// # fn serve(mut worker: fcgi_pm::Worker) {
    /// let pool = worker.with_stop_signals_blocked(|| {
    ///     (0..4).map(|_| std::thread::spawn(|| { /* ... */ })).collect::<Vec<_>>()
    /// });
    /// # drop(pool); }
    /// ```
    pub fn with_stop_signals_blocked<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(libc::sigset_t);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: the mask saved below.
                unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, ptr::null_mut()) };
            }
        }
        // SAFETY: sigset_t is plain data, filled by the calls.
        let restore = unsafe {
            let mut stops: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut stops);
            libc::sigaddset(&mut stops, libc::SIGTERM);
            libc::sigaddset(&mut stops, libc::SIGHUP);
            libc::pthread_sigmask(libc::SIG_BLOCK, &stops, &mut old);
            Restore(old)
        };
        let result = f();
        drop(restore);
        result
    }

    /// The error that ended a request loop early (an accept failing), if any.
    pub fn error(&self) -> Option<Error> {
        self.manager.pm.hooks().loop_error.borrow().clone()
    }

    /// What `main` returns once the request loop has ended: the status the library
    /// asked for (0 after max_requests, TERM, HUP...), 1 if the loop failed.
    pub fn exit_code(&self) -> ExitCode {
        self.manager.pm.hooks().resume_panic();
        match (self.exit_status(), self.error()) {
            (Some(status), _) => ExitCode::from(status),
            (None, Some(_)) => ExitCode::FAILURE,
            (None, None) => ExitCode::SUCCESS,
        }
    }
}

/// One request served by other means than [`Worker::requests`] (a FastCGI
/// implementation of the program's own): `pm_pre_dispatch` when made,
/// `pm_post_dispatch` when finished or dropped. Between the two the worker is busy: a
/// TERM or HUP waits for the end of the request, and then ends the worker
/// ([`Pm::exit_status`] is set, [`Dispatch::finish`] says so). Only
/// [`Worker::requests`] also makes an idle worker stop at once.
///
/// ```no_run
/// # fn serve(mut worker: fcgi_pm::Worker) {
/// loop {
///     // ... accept the next request ...
///     let Ok(request) = worker.dispatch() else { break };
///     // ... answer it ...
///     if request.finish().is_some() {
///         break; // max_requests, TERM, HUP, the manager gone: this worker ends
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
#[must_use = "dropping it finishes the request at once"]
pub struct Dispatch<'w> {
    worker: &'w Worker,
    finished: bool,
}

impl Dispatch<'_> {
    /// Finishes the request: `None` to go on, or the exit this worker must now make.
    pub fn finish(mut self) -> Option<Exit> {
        self.end()
    }

    fn end(&mut self) -> Option<Exit> {
        self.finished = true;
        // SAFETY: live handle; the pre_dispatch of this request was made.
        let rc = unsafe { sys::pm_post_dispatch(self.worker.raw()) };
        self.worker.manager.pm.hooks().resume_panic();
        sys::PM_IS_EXIT(rc).then(|| Exit(sys::PM_EXIT_STATUS(rc) as u8))
    }
}

impl Drop for Dispatch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // During a panic's unwinding the hooks' own panic is not resumed on top.
            if std::thread::panicking() {
                self.finished = true;
                // SAFETY: as in end.
                unsafe { sys::pm_post_dispatch(self.worker.raw()) };
            } else {
                self.end();
            }
        }
    }
}

impl Deref for Worker {
    type Target = Pm;
    fn deref(&self) -> &Pm {
        &self.manager.pm
    }
}

/// Builds a [`Manager`]: one typed setter per parameter of the library, which
/// validates each value; the first refused one is the error of [`Builder::build`].
///
/// ```
/// use std::time::Duration;
/// let err = fcgi_pm::Manager::builder()
///     .processes(2)
///     .die_timeout(Duration::from_micros(1500)) // the library takes milliseconds
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), fcgi_pm::ErrorKind::BadValue);
/// assert!(err.to_string().contains("die_timeout"), "{err}");
/// ```
#[must_use]
pub struct Builder {
    manager: Result<Manager>,
}

macro_rules! seconds_setters {
    ($($(#[$doc:meta])* $fn:ident => $name:literal;)*) => {$(
        $(#[$doc])*
        pub fn $fn(self, value: Duration) -> Self {
            self.set($name, &seconds(value))
        }
    )*};
}

macro_rules! integer_setters {
    ($($(#[$doc:meta])* $fn:ident($ty:ty) => $name:literal;)*) => {$(
        $(#[$doc])*
        pub fn $fn(self, value: $ty) -> Self {
            self.set($name, &value.to_string())
        }
    )*};
}

macro_rules! bool_setters {
    ($($(#[$doc:meta])* $fn:ident => $name:literal;)*) => {$(
        $(#[$doc])*
        pub fn $fn(self, value: bool) -> Self {
            self.set($name, if value { "1" } else { "0" })
        }
    )*};
}

macro_rules! hook_setters {
    ($($(#[$doc:meta])* $fn:ident => $index:expr;)*) => {$(
        $(#[$doc])*
        pub fn $fn(mut self, f: impl FnMut(&Pm) + 'static) -> Self {
            if let Ok(m) = &mut self.manager {
                m.set_hook($index, Box::new(f));
            }
            self
        }
    )*};
}

impl Builder {
    /// Sets a parameter by its library name, the value as text (for one this crate
    /// has no setter for yet).
    pub fn set(self, name: &str, value: &str) -> Self {
        self.apply(|m| m.set_parameter(name, value))
    }

    /// Applies `f` unless a setter failed before; its error is then the builder's.
    fn apply(mut self, f: impl FnOnce(&Manager) -> Result<()>) -> Self {
        if let Ok(m) = &self.manager {
            if let Err(e) = f(m) {
                self.manager = Err(e);
            }
        }
        self
    }

    /// The manager, or the first error of a setter.
    pub fn build(self) -> Result<Manager> {
        self.manager
    }

    integer_setters! {
        /// `n_processes`: workers to keep (default 1); 0: no manager, this process
        /// serves ([`Process::Single`]).
        processes(u32) => "n_processes";
        /// `max_requests`: a worker exits after this many requests (0: no limit).
        max_requests(u64) => "max_requests";
        /// `max_size`: a worker exits when its virtual size exceeds this many KiB (0: no limit).
        max_size_kib(u64) => "max_size";
        /// `sizecheck_num_requests`: the size limits are checked every this many requests.
        sizecheck_num_requests(u64) => "sizecheck_num_requests";
        /// `min_share_size`: a worker exits when its shared memory falls below this many KiB.
        min_share_size_kib(u64) => "min_share_size";
        /// `max_unshared_size`: a worker exits when its unshared memory exceeds this many KiB.
        max_unshared_size_kib(u64) => "max_unshared_size";
        /// `crash_budget`: failures within `crash_window` before the pool backs off
        /// (0: `n_processes`).
        crash_budget(u32) => "crash_budget";
        /// `min_idle`: a dynamic pool's idle workers, at least (default 1).
        min_idle(u32) => "min_idle";
        /// `max_idle`: a dynamic pool's idle workers at rest, at most (0: the larger
        /// of `min_idle` and `n_processes`).
        max_idle(u32) => "max_idle";
        /// `max_workers`: the most workers a dynamic or ondemand pool grows to.
        max_workers(u32) => "max_workers";
        /// `spawn_rate`: the most forks a second, and at once, when the pool grows.
        spawn_rate(u32) => "spawn_rate";
        /// `max_requests_jitter`: each worker's `max_requests` raised by a random
        /// 0..N of its own, so that workers started together do not all leave
        /// together (with `max_requests` only; checked by `manage`).
        max_requests_jitter(u64) => "max_requests_jitter";
        /// `max_rss`: a worker with more than this many KiB resident is replaced
        /// after its request, the new one ready first (checked once a second; 0: no
        /// limit; needs the scoreboard).
        max_rss_kib(u64) => "max_rss";
    }

    seconds_setters! {
        /// `die_timeout`: how long a stop waits for busy workers before killing them.
        die_timeout => "die_timeout";
        /// `start_delay`: the pause between forks at start.
        start_delay => "start_delay";
        /// `min_uptime`: a worker ending sooner than this counts as a crash.
        min_uptime => "min_uptime";
        /// `backoff_min`: the first respawn delay after a crash.
        backoff_min => "backoff_min";
        /// `backoff_max`: the longest respawn delay.
        backoff_max => "backoff_max";
        /// `crash_window`: the window of `crash_budget`.
        crash_window => "crash_window";
        /// `start_timeout`: a pool not ready this long after the start gives up (0: never).
        start_timeout => "start_timeout";
        /// `idle_timeout`: how long an idle worker beyond the pool's resting size stays.
        idle_timeout => "idle_timeout";
        /// `request_timeout`: a request running this long has its worker stopped
        /// (TERM, then KILL `request_timeout_grace` later), logged with its URI and
        /// replaced (0: no limit; needs the scoreboard). That worker dies of the TERM
        /// inside the request: the one exit that does not go through Rust (no
        /// destructors run in it).
        request_timeout => "request_timeout";
        /// `request_timeout_grace`: how long a worker stopped at its request's
        /// deadline gets before KILL (default 1 s; with `request_timeout` only).
        request_timeout_grace => "request_timeout_grace";
        /// `request_slow`: a request running this long is logged and counted (0:
        /// never; below `request_timeout` when both are set; needs the scoreboard).
        request_slow => "request_slow";
        /// `max_age`: a worker older than this is replaced after its request, the new
        /// one ready first (0: no limit).
        max_age => "max_age";
    }

    bool_setters! {
        /// `no_signals`: the library installs no signal handler; drive it with
        /// [`StopHandle`] or [`Pm::request_stop`].
        no_signals => "no_signals";
        /// `stop_listening`: on TERM the manager shuts down the listening sockets (default true).
        stop_listening => "stop_listening";
        /// `scoreboard`: the workers write their requests (method, URI, client,
        /// timing) into the live status, `fcgi-pm status` (default true).
        scoreboard => "scoreboard";
    }

    /// `pid_fname`: the pid file the manager writes and holds locked.
    pub fn pid_file(self, path: impl AsRef<Path>) -> Self {
        self.apply(|m| m.set_raw("pid_fname", path.as_ref().as_os_str().as_bytes()))
    }

    /// `status_socket`: a unix socket where the manager also hands the live status
    /// out (mode 0600, 0660 with [`Builder::status_group`]; removed at the stop),
    /// for readers of another user: `fcgi-pm status PATH`.
    pub fn status_socket(self, path: impl AsRef<Path>) -> Self {
        self.apply(|m| m.set_raw("status_socket", path.as_ref().as_os_str().as_bytes()))
    }

    /// `status_group`: the group (a name or a number) allowed on the status socket
    /// (not used without one); `manage` fails with [`ErrorKind::BadValue`] if the
    /// system has no such group.
    pub fn status_group(self, group: &str) -> Self {
        self.set("status_group", group)
    }

    /// `pm_title`: the manager's process title.
    pub fn title(self, title: &str) -> Self {
        self.set("pm_title", title)
    }

    /// `process_name`: the workers' process title.
    pub fn process_name(self, name: &str) -> Self {
        self.set("process_name", name)
    }

    /// `role`: the role this process logs as before `manage`.
    pub fn role(self, role: Role) -> Self {
        self.set("role", if role == Role::Server { "server" } else { "manager" })
    }

    /// `pool`: how the pool's size is kept; the limits are checked together by
    /// `manage` ([`ErrorKind::BadValue`] naming them).
    pub fn pool(self, pool: Pool) -> Self {
        self.set(
            "pool",
            match pool {
                Pool::Static => "static",
                Pool::Dynamic => "dynamic",
                Pool::OnDemand => "ondemand",
            },
        )
    }

    /// `worker_exit`: how a stopping worker's process ends.
    pub fn worker_exit(self, how: WorkerExit) -> Self {
        self.set(
            "worker_exit",
            match how {
                WorkerExit::Exit => "exit",
                WorkerExit::FlushedExit => "_exit",
                WorkerExit::UnflushedExit => "_exit_unflushed",
            },
        )
    }

    /// `stop_signal`: the signal that stops an exec'd worker (exec mode only).
    pub fn stop_signal(self, signal: StopSignal) -> Self {
        self.set("stop_signal", signal.name())
    }

    /// Exec mode (`pm_set_exec`): each worker execs `argv[0]` (looked up in `PATH`
    /// without a '/') with `argv`, `listener` as its descriptor 0, instead of
    /// returning from `manage`.
    pub fn exec<L, I, S>(self, listener: &L, argv: I) -> Self
    where
        L: AsFd + ?Sized,
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.apply(|m| {
            let args: Vec<CString> =
                argv.into_iter().map(|a| c_string("exec argument", a.as_ref().as_bytes())).collect::<Result<_>>()?;
            let mut ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
            ptrs.push(ptr::null_mut());
            // SAFETY: a NULL-terminated array of C strings, copied by the library.
            let rc = unsafe { sys::pm_set_exec(m.raw(), listener.as_fd().as_raw_fd(), ptrs.as_ptr(), ptr::null()) };
            m.check(rc).map(drop)
        })
    }

    hook_setters! {
        /// In the manager, before the first fork.
        on_manager_init => 0;
        /// In each worker, before `manage` returns in it.
        on_server_init => 1;
        /// At the top of each request, after the library's own work.
        on_pre_dispatch => 2;
        /// At the end of each request, after the library's own checks.
        on_post_dispatch => 3;
        /// In the manager, just before each fork.
        on_pre_fork => 4;
        /// In the manager, just after each fork (a failed one too).
        on_parent_after_fork => 5;
        /// In each new child first, every signal still blocked.
        on_child_after_fork => 6;
        /// In the manager, when its wait was cut short by a signal the program handles itself.
        on_manager_signal => 7;
    }

    /// Every log line (without its newline) goes to `f` instead of stderr.
    pub fn on_log(mut self, f: impl FnMut(&str) + 'static) -> Self {
        if let Ok(m) = &mut self.manager {
            m.set_log(Box::new(f));
        }
        self
    }

    /// The manager's own decision to end (a stop beginning, the die timeout).
    pub fn on_end(mut self, f: impl FnMut(&Pm, End) + 'static) -> Self {
        if let Ok(m) = &mut self.manager {
            m.set_end(Box::new(f));
        }
        self
    }
}
