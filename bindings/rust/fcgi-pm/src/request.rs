//! A worker's request loop on libfcgi's FCGX API, accepting through the library.
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_char, c_int, CStr};
use std::io::{self, Read, Write};
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Once;

use fcgi_pm_sys as sys;

use crate::error::Error;
use crate::manager::{Exit, Hooks, Pm};

/// A listening socket to serve: any `AsRawFd` listener works with
/// [`crate::Worker::requests`]; this one is for the FastCGI convention of the
/// socket on descriptor 0 (what the `fcgi-pm` program and web servers that spawn
/// FastCGI programs hand over).
///
/// ```
/// // Here descriptor 0 is no socket: a clear error, nothing changed.
/// let err = fcgi_pm::Listener::stdin().unwrap_err();
/// assert_eq!(err.to_string(), "descriptor 0 is not a listening socket");
/// let listener: fcgi_pm::Listener = std::net::TcpListener::bind("127.0.0.1:0")?.into();
/// # let _ = listener;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Listener(OwnedFd);

impl Listener {
    /// The listening socket on descriptor 0 (else an error saying it is not one),
    /// as a descriptor of its own: descriptor 0 itself stays open.
    pub fn stdin() -> io::Result<Listener> {
        let mut listening: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: getsockopt into a c_int.
        let rc = unsafe {
            libc::getsockopt(0, libc::SOL_SOCKET, libc::SO_ACCEPTCONN, (&mut listening as *mut c_int).cast(), &mut len)
        };
        if rc != 0 || listening == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "descriptor 0 is not a listening socket"));
        }
        // SAFETY: fcntl makes a new descriptor, which is then owned here alone.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Listener(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl From<std::net::TcpListener> for Listener {
    fn from(l: std::net::TcpListener) -> Listener {
        Listener(l.into())
    }
}

impl From<std::os::unix::net::UnixListener> for Listener {
    fn from(l: std::os::unix::net::UnixListener) -> Listener {
        Listener(l.into())
    }
}

static FCGX_INIT: Once = Once::new();

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Busy,
    Ended,
}

struct Inner {
    /// The worker's handle (alive as long as the Worker the loop borrows, 'w).
    handle: Pm,
    req: UnsafeCell<sys::FCGX_Request>,
    state: Cell<State>,
}

impl Inner {
    fn hooks(&self) -> &Hooks {
        self.handle.hooks()
    }

    fn pm(&self) -> *mut sys::pm_t {
        self.handle.raw()
    }

    fn req(&self) -> *mut sys::FCGX_Request {
        self.req.get()
    }

    /// Ends the current request: libfcgi's finish, then the library's post-dispatch;
    /// the exit to make if the worker must now end. While a panic unwinds (the
    /// handler's), the connection is dropped instead, so that the web server sees a
    /// failed request rather than a short answer that looks complete.
    fn finish(&self) -> Option<Exit> {
        if self.state.get() != State::Busy {
            return None;
        }
        // SAFETY: the request was accepted; post_dispatch on the live handle.
        let rc = unsafe {
            let req = &mut *self.req();
            if std::thread::panicking() && req.ipcFd >= 0 {
                libc::close(req.ipcFd);
                req.ipcFd = -1;
                req.keepConnection = 0;
            }
            sys::FCGX_Finish_r(req);
            sys::pm_post_dispatch(self.pm())
        };
        let exit = sys::PM_IS_EXIT(rc).then(|| Exit(sys::PM_EXIT_STATUS(rc) as u8));
        self.state.set(if exit.is_some() { State::Ended } else { State::Idle });
        exit
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: initialised in Requests::new; a kept-alive connection is closed here
        // (at once: libfcgi's own close lingers for the peer).
        unsafe {
            let req = &mut *self.req();
            if req.ipcFd >= 0 {
                libc::close(req.ipcFd);
                req.ipcFd = -1;
            }
            sys::FCGX_Free(req, 0);
        }
    }
}

/// The requests of one worker, as an iterator: each item is accepted through the
/// library (`pm_fcgx_accept`: an idle worker stops at once on TERM or HUP, a busy one
/// finishes its request first) and wrapped in `pm_pre_dispatch` / `pm_post_dispatch`.
/// Iteration ends when the worker must stop: max_requests or max_size reached, TERM,
/// HUP, a requested stop, the manager gone; then return [`crate::Worker::exit_code`].
///
/// One request at a time: the next is accepted once the previous [`Request`] is
/// dropped (at the end of the loop's body); asking for it sooner panics.
pub struct Requests<'w> {
    inner: Rc<Inner>,
    _worker: PhantomData<&'w mut Pm>,
}

impl<'w> Requests<'w> {
    pub(crate) fn new(pm: &'w Pm, listen_fd: RawFd) -> Requests<'w> {
        FCGX_INIT.call_once(|| {
            // SAFETY: libfcgi's one-time initialisation.
            unsafe { sys::FCGX_Init() };
        });
        let mut req = MaybeUninit::<sys::FCGX_Request>::zeroed();
        // SAFETY: FCGX_InitRequest fills the whole struct.
        unsafe { sys::FCGX_InitRequest(req.as_mut_ptr(), listen_fd, 0) };
        let inner = Inner {
            handle: pm.alias(),
            // SAFETY: initialised just above.
            req: UnsafeCell::new(unsafe { req.assume_init() }),
            state: Cell::new(State::Idle),
        };
        Requests { inner: Rc::new(inner), _worker: PhantomData }
    }

    fn end_with(&self, error: Option<Error>) -> Option<Request<'w>> {
        self.inner.state.set(State::Ended);
        if let Some(e) = error {
            *self.inner.hooks().loop_error.borrow_mut() = Some(e);
        }
        self.inner.hooks().resume_panic();
        None
    }
}

impl Requests<'_> {
    /// The worker's handle, to log or ask for a stop from inside the loop.
    pub fn pm(&self) -> &Pm {
        &self.inner.handle
    }
}

impl FusedIterator for Requests<'_> {}

impl<'w> Iterator for Requests<'w> {
    type Item = Request<'w>;

    fn next(&mut self) -> Option<Request<'w>> {
        let inner = &*self.inner;
        // A hook's panic (post_dispatch's, say) continues here, before the loop ends.
        inner.hooks().resume_panic();
        match inner.state.get() {
            State::Ended => return None,
            State::Busy => panic!("fcgi_pm: the previous request is still alive: drop it before accepting the next"),
            State::Idle => {}
        }
        let mut fcgx_rc: c_int = 0;
        // SAFETY: the live handle and the request initialised for this loop.
        let rc = unsafe { sys::fcgi_pm_fcgx_accept_r(inner.pm(), inner.req(), &mut fcgx_rc) };
        if rc < 0 {
            // SAFETY: live handle.
            if unsafe { sys::pm_worker_stopping(inner.pm()) } == 1 {
                return self.end_with(None);
            }
            let e = if fcgx_rc == 0 {
                Error::from_handle(inner.pm(), rc)
            } else {
                // libfcgi's: a negative errno (or one of its own codes, below -2)
                let os = io::Error::from_raw_os_error(-fcgx_rc);
                Error::os(format!("FCGX_Accept_r: {os} ({fcgx_rc})"), -fcgx_rc)
            };
            return self.end_with(Some(e));
        }
        // SAFETY: live handle.
        let rc = unsafe { sys::pm_pre_dispatch(inner.pm()) };
        if sys::PM_IS_EXIT(rc) {
            // SAFETY: the request accepted above is ended unanswered: a hook asked to exit.
            unsafe { sys::FCGX_Finish_r(inner.req()) };
            return self.end_with(None);
        }
        inner.state.set(State::Busy);
        Some(Request { inner: self.inner.clone(), _worker: PhantomData })
    }
}

/// One FastCGI request: its params, stdin ([`Read`], also [`Request::stdin`]),
/// stdout ([`Write`], also [`Request::stdout`]) and stderr ([`Request::stderr`]).
/// Dropping it finishes the request (libfcgi's `FCGX_Finish_r`, then the library's
/// `pm_post_dispatch`).
///
/// ```no_run
/// use std::io::Write;
/// # fn serve(mut worker: fcgi_pm::Worker, listener: std::net::TcpListener) -> std::io::Result<()> {
/// for mut req in worker.requests(&listener) {
///     let uri = req.param("REQUEST_URI").unwrap_or("/").to_owned();
///     write!(req, "Content-Type: text/plain\r\n\r\nYou asked for {uri}\n")?;
/// }
/// # Ok(()) }
/// ```
pub struct Request<'w> {
    inner: Rc<Inner>,
    _worker: PhantomData<&'w mut Pm>,
}

impl Request<'_> {
    fn raw(&self) -> &sys::FCGX_Request {
        // SAFETY: the request is being served; only this Request touches it meanwhile.
        unsafe { &*self.inner.req() }
    }

    /// The value of the param `name` (`REQUEST_URI`, `HTTP_HOST`, ...); `None` if
    /// absent or not UTF-8 ([`Request::param_bytes`] has it then).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.param_bytes(name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of the param `name`, as bytes.
    pub fn param_bytes(&self, name: &[u8]) -> Option<&[u8]> {
        self.params_bytes().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every param as `(name, value)`, those in UTF-8.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params_bytes().filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
    }

    /// Every param as `(name, value)` bytes.
    pub fn params_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut envp = self.raw().envp as *const *const c_char;
        std::iter::from_fn(move || {
            // SAFETY: libfcgi's NULL-terminated "NAME=value" array, alive until finish.
            unsafe {
                if envp.is_null() || (*envp).is_null() {
                    return None;
                }
                let entry = CStr::from_ptr(*envp).to_bytes();
                envp = envp.add(1);
                let eq = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
                Some((&entry[..eq], entry.get(eq + 1..).unwrap_or(&[])))
            }
        })
    }

    /// The request's body.
    pub fn stdin(&mut self) -> Stream<'_> {
        Stream { stream: self.raw().in_, _request: PhantomData }
    }

    /// The response: headers, a blank line, the body.
    pub fn stdout(&mut self) -> Stream<'_> {
        Stream { stream: self.raw().out, _request: PhantomData }
    }

    /// The web server's error log.
    pub fn stderr(&mut self) -> Stream<'_> {
        Stream { stream: self.raw().err, _request: PhantomData }
    }

    /// The application status the FastCGI END_REQUEST record carries (default 0).
    pub fn set_exit_status(&mut self, status: i32) {
        // SAFETY: the request's output stream.
        unsafe { sys::FCGX_SetExitStatus(status, self.raw().out) }
    }

    /// Finishes the request now (as dropping it does): `None` to go on, or the exit
    /// this worker must now make (the loop then ends).
    pub fn finish(self) -> Option<Exit> {
        self.inner.finish()
    }

    /// The worker's handle, to log or ask for a stop while serving.
    pub fn pm(&self) -> &Pm {
        &self.inner.handle
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("id", &self.raw().requestId).field("uri", &self.param("REQUEST_URI")).finish()
    }
}

impl std::fmt::Debug for Requests<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Requests")
    }
}

impl std::fmt::Debug for Stream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        let _ = self.inner.finish();
    }
}

impl Read for Request<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stdin().read(buf)
    }
}

impl Write for Request<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stdout().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.stdout().write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stdout().flush()
    }
}

/// One of a request's streams: stdin reads ([`Read`]), stdout and stderr write
/// ([`Write`], buffered by libfcgi; `flush` sends what is buffered).
pub struct Stream<'r> {
    stream: *mut sys::FCGX_Stream,
    _request: PhantomData<&'r mut ()>,
}

impl Stream<'_> {
    fn error(&self, call: &str) -> io::Error {
        // SAFETY: the request's stream.
        let code = unsafe { sys::FCGX_GetError(self.stream) };
        if code > 0 {
            io::Error::from_raw_os_error(code)
        } else {
            io::Error::other(format!("{call}: FastCGI error {code}"))
        }
    }
}

/// libfcgi counts in c_int: larger buffers go in pieces.
const CHUNK: usize = 1 << 30;

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK) as c_int;
        // SAFETY: at most n bytes into buf.
        let got = unsafe { sys::FCGX_GetStr(buf.as_mut_ptr().cast(), n, self.stream) };
        if got < 0 {
            return Err(self.error("FCGX_GetStr"));
        }
        if got == 0 && n > 0 && unsafe { sys::FCGX_GetError(self.stream) } != 0 {
            return Err(self.error("FCGX_GetStr"));
        }
        Ok(got as usize)
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK) as c_int;
        // SAFETY: n bytes from buf.
        let put = unsafe { sys::FCGX_PutStr(buf.as_ptr().cast(), n, self.stream) };
        if put < 0 {
            return Err(self.error("FCGX_PutStr"));
        }
        Ok(put as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        // SAFETY: the request's stream.
        if unsafe { sys::FCGX_FFlush(self.stream) } < 0 {
            return Err(self.error("FCGX_FFlush"));
        }
        Ok(())
    }
}
