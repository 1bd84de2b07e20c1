//! Raw declarations of libfcgi-pm's C API, `fcgi_pm.h`, one for one, and of the few
//! libfcgi (`fcgiapp.h`) calls a worker's request loop needs.
//!
//! Everything here is `unsafe` and documented in the C header; the safe interface is
//! the `fcgi-pm` crate. `tests/header.rs` compiles these declarations against the
//! installed headers and fails when the two drift apart (a name missing on either
//! side, a different value, type or struct layout).
//!
//! The library is found with pkg-config (`fcgi-pm`, `fcgi`); `fcgi_pm_fcgx_accept_r` is
//! the header-only `pm_fcgx_accept_r` of `fcgi_pm_fcgx.h`, compiled by the build script.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use core::ffi::{c_char, c_int, c_longlong, c_uint, c_void};
use core::marker::{PhantomData, PhantomPinned};

pub const PM_VERSION_MAJOR: c_int = 0;
pub const PM_VERSION_MINOR: c_int = 2;
pub const PM_VERSION_PATCH: c_int = 0;
pub const PM_VERSION_NUMBER: c_int = 200;

/// `pm_error_t`: the return codes.
pub type pm_error_t = c_int;
pub const PM_OK: pm_error_t = 0;
pub const PM_EINVAL: pm_error_t = -1;
pub const PM_ENOMEM: pm_error_t = -2;
pub const PM_EUNKNOWN: pm_error_t = -3;
pub const PM_EBADVALUE: pm_error_t = -4;
pub const PM_ERANGE: pm_error_t = -5;
pub const PM_ETOOLONG: pm_error_t = -6;
pub const PM_ESTATE: pm_error_t = -7;
pub const PM_ECHILD: pm_error_t = -8;
pub const PM_ELOCKED: pm_error_t = -9;
pub const PM_EPIDFILE: pm_error_t = -10;
pub const PM_ESYS: pm_error_t = -11;
pub const PM_EINTERNAL: pm_error_t = -12;
pub const PM_ESTOPPED: pm_error_t = -13;
pub const PM_E_LAST_: pm_error_t = -14;

pub const PM_SINGLE_PROCESS: c_int = 0;
pub const PM_WORKER: c_int = 1;
pub const PM_MANAGER_DONE: c_int = 2;

pub const PM_EXIT: c_int = 256;
/// `PM_IS_EXIT(rc)`.
#[inline]
pub const fn PM_IS_EXIT(rc: c_int) -> bool {
    rc >= PM_EXIT
}
/// `PM_EXIT_STATUS(rc)`.
#[inline]
pub const fn PM_EXIT_STATUS(rc: c_int) -> c_int {
    rc - PM_EXIT
}

/// `pm_t`, the opaque handle.
#[repr(C)]
pub struct pm_t {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `pm_hook_t`: which hook.
pub type pm_hook_t = c_uint;
pub const PM_HOOK_MANAGER_INIT: pm_hook_t = 0;
pub const PM_HOOK_SERVER_INIT: pm_hook_t = 1;
pub const PM_HOOK_PRE_DISPATCH: pm_hook_t = 2;
pub const PM_HOOK_POST_DISPATCH: pm_hook_t = 3;
pub const PM_HOOK_PRE_FORK: pm_hook_t = 4;
pub const PM_HOOK_PARENT_AFTER_FORK: pm_hook_t = 5;
pub const PM_HOOK_CHILD_AFTER_FORK: pm_hook_t = 6;
pub const PM_HOOK_MANAGER_SIGNAL: pm_hook_t = 7;

pub type pm_hook_fn = Option<unsafe extern "C" fn(pm: *mut pm_t, user: *mut c_void)>;
pub type pm_notify_fn = Option<unsafe extern "C" fn(pm: *mut pm_t, line: *const c_char, user: *mut c_void)>;

pub const PM_END_DIE: c_int = 0;
pub const PM_END_ABORT: c_int = 1;
pub type pm_end_fn =
    Option<unsafe extern "C" fn(pm: *mut pm_t, how: c_int, msg: *const c_char, status: c_int, user: *mut c_void)>;

/// `pm_param_type_t`: a parameter's type, from `pm_parameter_info`.
pub type pm_param_type_t = c_uint;
pub const PM_PARAM_INTEGER: pm_param_type_t = 0;
pub const PM_PARAM_SECONDS: pm_param_type_t = 1;
pub const PM_PARAM_BOOLEAN: pm_param_type_t = 2;
pub const PM_PARAM_TEXT: pm_param_type_t = 3;
pub const PM_PARAM_CHOICE: pm_param_type_t = 4;

/// `pm_status_t`, the opaque live-status reader.
#[repr(C)]
pub struct pm_status_t {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `pm_worker_state_t`: a worker's state in the live status.
pub type pm_worker_state_t = c_uint;
pub const PM_WORKER_STARTING: pm_worker_state_t = 0;
pub const PM_WORKER_IDLE: pm_worker_state_t = 1;
pub const PM_WORKER_BUSY: pm_worker_state_t = 2;
pub const PM_WORKER_STOPPING: pm_worker_state_t = 3;
pub const PM_WORKER_RUNNING: pm_worker_state_t = 4;

/// `pm_pool_field_t`: the pool's figures in a snapshot, by number (`pm_status_value`, `pm_status_text`).
pub type pm_pool_field_t = c_uint;
pub const PM_POOL_MANAGER_PID: pm_pool_field_t = 0;
pub const PM_POOL_START_TIME_US: pm_pool_field_t = 1;
pub const PM_POOL_UPTIME_US: pm_pool_field_t = 2;
pub const PM_POOL_TARGET: pm_pool_field_t = 3;
pub const PM_POOL_WORKERS: pm_pool_field_t = 4;
pub const PM_POOL_READY: pm_pool_field_t = 5;
pub const PM_POOL_IDLE: pm_pool_field_t = 6;
pub const PM_POOL_BUSY: pm_pool_field_t = 7;
pub const PM_POOL_STARTING: pm_pool_field_t = 8;
pub const PM_POOL_STOPPING: pm_pool_field_t = 9;
pub const PM_POOL_CRASH_BACKOFF: pm_pool_field_t = 10;
pub const PM_POOL_BACKOFF_US: pm_pool_field_t = 11;
pub const PM_POOL_ACCEPTED: pm_pool_field_t = 12;
pub const PM_POOL_REQUESTS: pm_pool_field_t = 13;
pub const PM_POOL_SPAWNED: pm_pool_field_t = 14;
pub const PM_POOL_RESPAWNS: pm_pool_field_t = 15;
pub const PM_POOL_EXITS: pm_pool_field_t = 16;
pub const PM_POOL_CRASHES: pm_pool_field_t = 17;
pub const PM_POOL_RELOADS: pm_pool_field_t = 18;
pub const PM_POOL_MAX_BUSY: pm_pool_field_t = 19;
pub const PM_POOL_POOL_FULL: pm_pool_field_t = 20;
pub const PM_POOL_LISTEN_QUEUE: pm_pool_field_t = 21;
pub const PM_POOL_LISTEN_QUEUE_MAX: pm_pool_field_t = 22;
pub const PM_POOL_LISTEN_BACKLOG: pm_pool_field_t = 23;
pub const PM_POOL_TITLE: pm_pool_field_t = 24;
pub const PM_POOL_PHASE: pm_pool_field_t = 25;
pub const PM_POOL_SLOW_REQUESTS: pm_pool_field_t = 26;
pub const PM_POOL_DEADLINE_KILLS: pm_pool_field_t = 27;
pub const PM_POOL_RECYCLED: pm_pool_field_t = 28;
pub const PM_POOL_MODE: pm_pool_field_t = 29;
pub const PM_POOL_FIELDS_: pm_pool_field_t = 30;

/// `pm_slot_field_t`: a worker's figures in a snapshot, by number.
pub type pm_slot_field_t = c_uint;
pub const PM_SLOT_PID: pm_slot_field_t = 0;
pub const PM_SLOT_INDEX: pm_slot_field_t = 1;
pub const PM_SLOT_STATE: pm_slot_field_t = 2;
pub const PM_SLOT_BUSY: pm_slot_field_t = 3;
pub const PM_SLOT_REQUESTS: pm_slot_field_t = 4;
pub const PM_SLOT_START_TIME_US: pm_slot_field_t = 5;
pub const PM_SLOT_REQUEST_START_US: pm_slot_field_t = 6;
pub const PM_SLOT_REQUEST_US: pm_slot_field_t = 7;
pub const PM_SLOT_CPU_US: pm_slot_field_t = 8;
pub const PM_SLOT_RSS_KB: pm_slot_field_t = 9;
pub const PM_SLOT_METHOD: pm_slot_field_t = 10;
pub const PM_SLOT_URI: pm_slot_field_t = 11;
pub const PM_SLOT_REMOTE: pm_slot_field_t = 12;
pub const PM_SLOT_FIELDS_: pm_slot_field_t = 13;

/// `pm_status_value`'s and `pm_status_text`'s worker for the pool's own figures.
pub const PM_STATUS_POOL: c_int = -1;

/// `pm_status_read`'s flag: each worker's CPU and memory too (/proc).
pub const PM_STATUS_PROC: c_int = 1;

extern "C" {
    pub fn pm_create() -> *mut pm_t;
    pub fn pm_destroy(pm: *mut pm_t);
    pub fn pm_parameter(pm: *mut pm_t, name: *const c_char, value: *const c_char) -> c_int;
    pub fn pm_check_parameters(pm: *mut pm_t) -> c_int;
    pub fn pm_get_parameter(pm: *mut pm_t, name: *const c_char) -> *const c_char;
    pub fn pm_manage(pm: *mut pm_t) -> c_int;
    pub fn pm_set_exec(pm: *mut pm_t, listen_fd: c_int, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
    pub fn pm_pre_dispatch(pm: *mut pm_t) -> c_int;
    pub fn pm_post_dispatch(pm: *mut pm_t) -> c_int;
    pub fn pm_accept(pm: *mut pm_t, listen_fd: c_int) -> c_int;
    pub fn pm_worker_stopping(pm: *mut pm_t) -> c_int;
    pub fn pm_wait_connection(pm: *mut pm_t, fd: c_int) -> c_int;
    pub fn pm_accept_begin(pm: *mut pm_t) -> c_int;
    pub fn pm_accept_end(pm: *mut pm_t) -> c_int;
    pub fn pm_set_end_hook(pm: *mut pm_t, fn_: pm_end_fn, user: *mut c_void) -> c_int;
    pub fn pm_set_hook(pm: *mut pm_t, which: pm_hook_t, fn_: pm_hook_fn, user: *mut c_void) -> c_int;
    pub fn pm_set_notify_hook(pm: *mut pm_t, fn_: pm_notify_fn, user: *mut c_void) -> c_int;
    pub fn pm_die(pm: *mut pm_t, msg: *const c_char, status: c_int) -> c_int;
    pub fn pm_exit(pm: *mut pm_t, msg: *const c_char, status: c_int) -> c_int;
    pub fn pm_abort(pm: *mut pm_t, msg: *const c_char, status: c_int) -> c_int;
    pub fn pm_request_stop(pm: *mut pm_t, signo: c_int) -> c_int;
    pub fn pm_request_reload(pm: *mut pm_t) -> c_int;
    pub fn pm_wait(pm: *mut pm_t) -> c_int;
    pub fn pm_write_pid_file(pm: *mut pm_t, fname: *const c_char) -> c_int;
    pub fn pm_remove_pid_file(pm: *mut pm_t, fname: *const c_char) -> c_int;
    pub fn pm_change_process_name(pm: *mut pm_t, name: *const c_char) -> c_int;
    pub fn pm_received_signal(pm: *mut pm_t, signo: c_int) -> c_int;
    pub fn pm_notify(pm: *mut pm_t, fmt: *const c_char, ...);
    pub fn pm_warn(pm: *mut pm_t, fmt: *const c_char, ...);
    pub fn pm_role(pm: *mut pm_t) -> *const c_char;
    pub fn pm_exit_status(pm: *mut pm_t) -> c_int;
    pub fn pm_errmsg(pm: *mut pm_t) -> *const c_char;
    pub fn pm_errno(pm: *mut pm_t) -> c_int;
    pub fn pm_set_request(pm: *mut pm_t, method: *const c_char, uri: *const c_char, remote: *const c_char) -> c_int;
    pub fn pm_set_request_params(pm: *mut pm_t, envp: *const *mut c_char) -> c_int;
    pub fn pm_status_new() -> *mut pm_status_t;
    pub fn pm_status_open(st: *mut pm_status_t, target: *const c_char) -> c_int;
    pub fn pm_status_read(st: *mut pm_status_t, flags: c_int) -> c_int;
    pub fn pm_status_workers(st: *mut pm_status_t) -> c_int;
    pub fn pm_status_value(st: *mut pm_status_t, worker: c_int, field: c_int, value: *mut c_longlong) -> c_int;
    pub fn pm_status_text(st: *mut pm_status_t, worker: c_int, field: c_int) -> *const c_char;
    pub fn pm_status_field_info(slot: c_int, field: c_int, name: *mut *const c_char, is_text: *mut c_int) -> c_int;
    pub fn pm_worker_state_name(state: c_int) -> *const c_char;
    pub fn pm_status_errmsg(st: *mut pm_status_t) -> *const c_char;
    pub fn pm_status_errno(st: *mut pm_status_t) -> c_int;
    pub fn pm_status_close(st: *mut pm_status_t);
    pub fn pm_parameter_info(
        index: c_int,
        name: *mut *const c_char,
        type_: *mut c_int,
        bounds: *mut *const c_char,
        settable_when_running: *mut c_int,
    ) -> c_int;
    pub fn pm_strerror(code: c_int) -> *const c_char;
    pub fn pm_version() -> *const c_char;
    pub fn pm_version_number() -> c_int;
}

/// libfcgi's `FCGX_Stream`, used through pointers only.
#[repr(C)]
pub struct FCGX_Stream {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

pub type FCGX_ParamArray = *mut *mut c_char;

/// libfcgi's `FCGX_Request` (the layout is checked against `fcgiapp.h`).
#[repr(C)]
pub struct FCGX_Request {
    pub requestId: c_int,
    pub role: c_int,
    pub in_: *mut FCGX_Stream,
    pub out: *mut FCGX_Stream,
    pub err: *mut FCGX_Stream,
    pub envp: *mut *mut c_char,
    pub paramsPtr: *mut c_void,
    pub ipcFd: c_int,
    pub isBeginProcessed: c_int,
    pub keepConnection: c_int,
    pub appStatus: c_int,
    pub nWriters: c_int,
    pub flags: c_int,
    pub listen_sock: c_int,
    pub detached: c_int,
}

extern "C" {
    pub fn FCGX_Init() -> c_int;
    pub fn FCGX_OpenSocket(path: *const c_char, backlog: c_int) -> c_int;
    pub fn FCGX_InitRequest(request: *mut FCGX_Request, sock: c_int, flags: c_int) -> c_int;
    pub fn FCGX_Accept_r(request: *mut FCGX_Request) -> c_int;
    pub fn FCGX_Finish_r(request: *mut FCGX_Request);
    pub fn FCGX_Free(request: *mut FCGX_Request, close: c_int);
    pub fn FCGX_GetParam(name: *const c_char, envp: FCGX_ParamArray) -> *mut c_char;
    pub fn FCGX_GetStr(str_: *mut c_char, n: c_int, stream: *mut FCGX_Stream) -> c_int;
    pub fn FCGX_PutStr(str_: *const c_char, n: c_int, stream: *mut FCGX_Stream) -> c_int;
    pub fn FCGX_FFlush(stream: *mut FCGX_Stream) -> c_int;
    pub fn FCGX_GetError(stream: *mut FCGX_Stream) -> c_int;
    pub fn FCGX_SetExitStatus(status: c_int, stream: *mut FCGX_Stream);
}

extern "C" {
    /// `pm_fcgx_accept_r` of `fcgi_pm_fcgx.h` (a static inline function there),
    /// compiled into this crate by its build script.
    pub fn fcgi_pm_fcgx_accept_r(pm: *mut pm_t, req: *mut FCGX_Request, fcgx_rc: *mut c_int) -> c_int;
}
