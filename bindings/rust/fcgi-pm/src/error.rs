//! The library's `PM_E*` codes as a Rust error.
use std::ffi::CStr;
use std::fmt;

use fcgi_pm_sys as sys;

/// What went wrong: one kind per `PM_E*` code of the C library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `PM_EINVAL`: an argument is not valid (a NUL byte in a string, say).
    InvalidArgument,
    /// `PM_ENOMEM`: out of memory.
    OutOfMemory,
    /// `PM_EUNKNOWN`: no parameter has that name.
    UnknownParameter,
    /// `PM_EBADVALUE`: the value is not valid for this parameter.
    BadValue,
    /// `PM_ERANGE`: the value is out of the parameter's range.
    OutOfRange,
    /// `PM_ETOOLONG`: a string is too long.
    TooLong,
    /// `PM_ESTATE`: not allowed in this process or state (`manage` with threads
    /// running, a parameter fixed once the manager runs, ...).
    State,
    /// `PM_ECHILD`: no worker to wait for.
    NoChild,
    /// `PM_ELOCKED`: another manager holds the pid file.
    Locked,
    /// `PM_EPIDFILE`: the pid file's path is not a regular file.
    PidFile,
    /// `PM_ESYS`: a system call failed ([`Error::raw_os_error`] tells which errno).
    System,
    /// `PM_EINTERNAL`: a bug in the library.
    Internal,
    /// `PM_ESTOPPED`: the worker is stopping and takes no more requests.
    Stopped,
    /// A code this crate does not know (a newer library).
    Other(i32),
}

impl ErrorKind {
    /// The kind of a `PM_E*` code.
    ///
    /// ```
    /// use fcgi_pm::ErrorKind;
    /// assert_eq!(ErrorKind::from_code(-9), ErrorKind::Locked);
    /// assert_eq!(ErrorKind::Locked.code(), -9);
    /// assert_eq!(fcgi_pm::strerror(-9), "pid file is held by another manager");
    /// ```
    pub fn from_code(code: i32) -> ErrorKind {
        match code {
            sys::PM_EINVAL => ErrorKind::InvalidArgument,
            sys::PM_ENOMEM => ErrorKind::OutOfMemory,
            sys::PM_EUNKNOWN => ErrorKind::UnknownParameter,
            sys::PM_EBADVALUE => ErrorKind::BadValue,
            sys::PM_ERANGE => ErrorKind::OutOfRange,
            sys::PM_ETOOLONG => ErrorKind::TooLong,
            sys::PM_ESTATE => ErrorKind::State,
            sys::PM_ECHILD => ErrorKind::NoChild,
            sys::PM_ELOCKED => ErrorKind::Locked,
            sys::PM_EPIDFILE => ErrorKind::PidFile,
            sys::PM_ESYS => ErrorKind::System,
            sys::PM_EINTERNAL => ErrorKind::Internal,
            sys::PM_ESTOPPED => ErrorKind::Stopped,
            other => ErrorKind::Other(other),
        }
    }

    /// The `PM_E*` code.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::InvalidArgument => sys::PM_EINVAL,
            ErrorKind::OutOfMemory => sys::PM_ENOMEM,
            ErrorKind::UnknownParameter => sys::PM_EUNKNOWN,
            ErrorKind::BadValue => sys::PM_EBADVALUE,
            ErrorKind::OutOfRange => sys::PM_ERANGE,
            ErrorKind::TooLong => sys::PM_ETOOLONG,
            ErrorKind::State => sys::PM_ESTATE,
            ErrorKind::NoChild => sys::PM_ECHILD,
            ErrorKind::Locked => sys::PM_ELOCKED,
            ErrorKind::PidFile => sys::PM_EPIDFILE,
            ErrorKind::System => sys::PM_ESYS,
            ErrorKind::Internal => sys::PM_EINTERNAL,
            ErrorKind::Stopped => sys::PM_ESTOPPED,
            ErrorKind::Other(code) => code,
        }
    }
}

/// An error of the library: its kind (the `PM_E*` code), the library's detailed
/// message (`pm_errmsg`), and for [`ErrorKind::System`] the errno behind it.
///
/// ```
/// let err = fcgi_pm::Manager::builder().processes(1_000_000).build().unwrap_err();
/// assert_eq!(err.kind(), fcgi_pm::ErrorKind::OutOfRange);
/// assert!(err.to_string().contains("n_processes"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    errno: i32,
}

impl Error {
    /// An error with its own message.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), errno: 0 }
    }

    /// A failed system call's error, with its errno.
    pub(crate) fn os(message: impl Into<String>, errno: i32) -> Error {
        Error { kind: ErrorKind::System, message: message.into(), errno }
    }

    /// The error the last call on `pm` returned, with the library's message.
    pub(crate) fn from_handle(pm: *mut sys::pm_t, code: i32) -> Error {
        // SAFETY: pm is a live handle; the message is copied before any other call.
        let (message, errno) = unsafe { (cstr(sys::pm_errmsg(pm)), sys::pm_errno(pm)) };
        let message = if message.is_empty() { strerror(code) } else { message };
        Error { kind: ErrorKind::from_code(code), message, errno }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `PM_E*` code.
    pub fn code(&self) -> i32 {
        self.kind.code()
    }

    /// The errno behind a [`ErrorKind::System`] error.
    pub fn raw_os_error(&self) -> Option<i32> {
        (self.errno != 0).then_some(self.errno)
    }

    /// The library's detailed message (what `Display` shows).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        match e.raw_os_error() {
            Some(errno) => std::io::Error::new(std::io::Error::from_raw_os_error(errno).kind(), e),
            None => std::io::Error::other(e),
        }
    }
}

/// The library's text for a `PM_E*` code (`pm_strerror`).
pub fn strerror(code: i32) -> String {
    // SAFETY: pm_strerror returns a static string for any value.
    unsafe { cstr(sys::pm_strerror(code)) }
}

/// A C string the library owns, copied ("" for NULL).
pub(crate) unsafe fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
