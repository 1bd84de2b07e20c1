package fcgipm

/*
#include <stdlib.h>
#include "start.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Worker is the process serving requests: one per worker of the pool (or the single
// process). Hooks get it; a handler finds it with FromContext.
type Worker struct {
	pm     *C.pm_t
	cfg    *Config
	ctx    context.Context
	cancel context.CancelFunc
	file   *os.File // the pool's socket as the worker inherited it
	ln     net.Listener

	mu       sync.Mutex // the handle's calls (one at a time), and what follows
	conns    map[*conn]struct{}
	stopping bool
	accepted bool // the accept loop is over: no connection can come in untracked
	exited   bool // the library said to exit: its later post-dispatch lines would repeat it
	status   int
	message  string
	drained  chan struct{}
	lines    []string // the library's log lines made under mu, for Config.Log after it
}

// locked runs f with mu held (the library's calls, one at a time), then gives
// Config.Log the lines the library logged meanwhile, mu released: Log may call back
// into the worker.
func (w *Worker) locked(f func()) {
	w.mu.Lock()
	f()
	lines := w.lines
	w.lines = nil
	w.mu.Unlock()
	if w.cfg.Log != nil {
		for _, l := range lines {
			w.cfg.Log(l)
		}
	}
}

type workerKey struct{}

// FromContext gives the Worker serving the request whose context ctx is
// (r.Context() in a handler).
func FromContext(ctx context.Context) (*Worker, bool) {
	w, ok := ctx.Value(workerKey{}).(*Worker)
	return w, ok
}

// Context is cancelled when the worker must stop: its requests in flight still
// finish, but work of its own (a background goroutine, a long poll) should end.
func (w *Worker) Context() context.Context { return w.ctx }

// Stop makes the worker stop as TERM would: at once if idle, after the requests in
// flight otherwise. Serve then returns nil.
func (w *Worker) Stop() {
	C.pm_request_stop(w.pm, 0)
	w.beginStop(0, "")
}

// Exit stops the worker as Stop does, logs msg, and makes Serve return an
// *ExitError with status (0-255; 0: Serve returns nil; outside that range, 1).
func (w *Worker) Exit(status int, msg string) {
	if status < 0 || status > 255 {
		status = 1
	}
	w.Notify("exiting: %s", msg)
	w.beginStop(status, msg)
	C.pm_request_stop(w.pm, 0)
}

// Notify logs one line as the library does ("FastCGI: server (pid N): ..."),
// printf-style.
func (w *Worker) Notify(format string, args ...interface{}) {
	line := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(line))
	w.locked(func() { C.fcgipm_notify(w.pm, line) })
}

// Parameter is the library's parameter name as text ("max_requests": "1000").
func (w *Worker) Parameter(name string) (string, bool) {
	n := C.CString(name)
	defer C.free(unsafe.Pointer(n))
	w.mu.Lock()
	defer w.mu.Unlock()
	v := C.pm_get_parameter(w.pm, n)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

// SetParameter sets one of the parameters that may change in a running worker
// (max_requests, say): an *Error otherwise.
func (w *Worker) SetParameter(name, value string) (err error) {
	w.locked(func() { err = setParameters(w.pm, []param{{name, value}}) })
	return err
}

// The parameters an adopted worker takes from its Config: the ones a worker acts on.
var workerParameters = map[string]bool{"max_requests": true, "max_requests_jitter": true,
	"sizecheck_num_requests": true, "max_size": true, "min_share_size": true, "max_unshared_size": true,
	"process_name": true}

// current is the worker of this process, whose library calls log through it.
var current *Worker

//export fcgipmGoLog
func fcgipmGoLog(line *C.char) {
	// Called from a library call, made with current.mu held (locked).
	if w := current; w != nil {
		w.lines = append(w.lines, C.GoString(line))
	}
}

// maxProcs is GOMAXPROCS for a worker (Config.MaxProcs).
func maxProcs(cfg *Config, pool bool) int {
	if cfg.MaxProcs > 0 {
		return cfg.MaxProcs
	}
	if os.Getenv("GOMAXPROCS") != "" || !pool {
		return 0
	}
	return 1
}

func serveWorker(cfg *Config, h http.Handler, pm *C.pm_t, fd int, adopted bool) error {
	w := &Worker{pm: pm, cfg: cfg, conns: map[*conn]struct{}{}, drained: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	defer w.cancel()
	current = w
	if cfg.Log != nil {
		C.fcgipm_log_to_go(pm, 1)
	}
	if adopted {
		ps, err := cfg.parameters()
		var own []param
		for _, p := range ps {
			if workerParameters[p.name] {
				own = append(own, p)
			}
		}
		if err == nil {
			w.locked(func() { err = setParameters(pm, own) })
		}
		if err != nil {
			w.Notify("%v", err)
			return err
		}
	}
	if n := maxProcs(cfg, C.GoString(C.pm_role(pm)) == "server"); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	// From here a stop signal is the worker's to act on (before, it ended the worker).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if C.pm_worker_stopping(pm) == 1 {
		return nil // stopped before Go took the signals: the library saw it
	}
	// Not for the program's own children (kept open across the exec that made the
	// pool, and so across the program's).
	syscall.CloseOnExec(fd)
	if keptFile != nil && int(keptFile.Fd()) == fd {
		w.file = keptFile // a single process's own socket
	} else {
		w.file = os.NewFile(uintptr(fd), "fcgipm-listener")
	}
	ln, err := net.FileListener(w.file)
	if err != nil {
		w.Notify("descriptor %d: %v", fd, err)
		return &Error{Code: int(C.PM_ESYS), Message: fmt.Sprintf("descriptor %d is not the pool's socket: %v", fd, err)}
	}
	w.ln = ln
	go w.watch(sigs)
	if cfg.WorkerInit != nil {
		if err := cfg.WorkerInit(w); err != nil {
			w.Notify("WorkerInit: %v", err)
			w.beginStop(1, err.Error())
		}
	}
	w.accept(h)
	w.mu.Lock()
	w.accepted = true
	w.checkDrained()
	w.mu.Unlock()
	<-w.drained
	w.file.Close() // a single process's socket refuses connections from now on
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status != 0 {
		return &ExitError{Status: w.status, Message: w.message}
	}
	return nil
}

// watch turns TERM and HUP into the library's stop (the log, the stop flags) and
// the worker's own.
func (w *Worker) watch(sigs chan os.Signal) {
	for {
		select {
		case s := <-sigs:
			C.pm_request_stop(w.pm, C.int(s.(syscall.Signal)))
			w.beginStop(0, "")
		case <-w.drained:
			return
		}
	}
}

// accept hands each connection to net/http/fcgi, until the listener is closed.
func (w *Worker) accept(h http.Handler) {
	delay := 5 * time.Millisecond
	for {
		nc, err := w.ln.Accept()
		if err != nil {
			if w.isStopping() {
				return
			}
			var errno syscall.Errno
			if errors.As(err, &errno) && (errno == syscall.EMFILE || errno == syscall.ENFILE ||
				errno == syscall.ENOBUFS || errno == syscall.ENOMEM || errno == syscall.ECONNABORTED) {
				time.Sleep(delay) // as net/http's server: wait for descriptors to be freed
				if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				continue
			}
			// The manager shuts the socket down on TERM (EINVAL), and its TERM follows.
			if errno != syscall.EINVAL {
				w.Notify("accept: %v", err)
			}
			w.beginStop(0, "")
			return
		}
		delay = 5 * time.Millisecond
		c := &conn{Conn: nc, w: w, since: time.Now()}
		stopping := w.track(c)
		// One net/http/fcgi server per connection, so that the handler knows its
		// connection: Serve takes c from the listener and starts serving it, and
		// returns at the listener's next Accept.
		fcgi.Serve(&connListener{c: c}, &handler{w: w, c: c, h: h})
		if stopping {
			return
		}
	}
}

func (w *Worker) isStopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping
}

// track counts c in; a connection accepted as the stop began is served all the same
// (its request is on its way). Reports whether the worker is stopping.
func (w *Worker) track(c *conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns[c] = struct{}{}
	if w.stopping {
		c.recheckLater()
	}
	return w.stopping
}

// beginStop: no more connections, the context cancelled, and each connection ended
// once no request is open on it. status, if not 0, is what the worker exits with.
func (w *Worker) beginStop(status int, msg string) {
	w.mu.Lock()
	if status != 0 && w.status == 0 {
		w.status, w.message = status, msg
	}
	if w.stopping {
		w.mu.Unlock()
		return
	}
	w.stopping = true
	for c := range w.conns {
		if c.begun == c.ended {
			c.recheckLater()
		}
	}
	w.checkDrained()
	w.mu.Unlock()
	w.cancel()
	if w.ln != nil {
		w.ln.Close()
	}
}

// checkDrained, with mu held: the stop is complete when no connection is left, nor
// can come.
func (w *Worker) checkDrained() {
	if w.stopping && w.accepted && len(w.conns) == 0 {
		select {
		case <-w.drained:
		default:
			close(w.drained)
		}
	}
}

// conn is one connection from the web server, with its requests counted: begun when
// its handler starts, ended when net/http/fcgi has written the request's last record.
type conn struct {
	net.Conn
	w      *Worker
	once   sync.Once
	since  time.Time
	begun  int         // with w.mu
	ended  int         // with w.mu
	read   atomic.Bool // bytes have come (a request is on its way)
	shut   bool        // with w.mu: the worker's side is ended, no request is taken
	closed bool        // with w.mu
}

// How long a stopping worker waits before it ends a connection with no request open:
// lingerGrace on one kept alive between requests, for a request nginx may be sending
// on it already (served, then the connection ends with its reply: nginx then never
// sends on a connection being ended, which would fail a POST that it may not resend);
// freshGrace on one just accepted, for its first bytes. endGrace is how long the web
// server has to close a connection the worker has ended.
const (
	lingerGrace = 100 * time.Millisecond
	freshGrace  = time.Second
	endGrace    = 5 * time.Second
)

// idle, with w.mu held: no request open, and one served or none coming.
func (c *conn) idle() bool {
	return c.begun == c.ended && (c.begun > 0 || (!c.read.Load() && time.Since(c.since) >= freshGrace))
}

// recheckLater ends c after its grace if it is still idle then (a request that came
// meanwhile ends it with its reply).
func (c *conn) recheckLater() {
	wait := lingerGrace
	if c.begun == 0 {
		wait = freshGrace - time.Since(c.since)
	}
	time.AfterFunc(wait, func() {
		c.w.mu.Lock()
		idle := c.idle()
		c.w.mu.Unlock()
		if idle {
			c.end()
		}
	})
}

// end finishes the worker's side of a connection without a request open on it: its
// write side is shut (a close over bytes not yet read, such as the rest of a request
// body, which net/http/fcgi reads after the reply, would reset it and could cost the
// web server the reply). Shut right after a request's last record, the end reaches
// nginx with the reply, and nginx does not keep the connection for another request;
// net/http/fcgi closes it when nginx has. A connection still open after endGrace is
// closed.
func (c *conn) end() {
	c.w.mu.Lock()
	already := c.shut || c.closed
	c.shut = true
	c.w.mu.Unlock()
	if already {
		return
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		time.AfterFunc(endGrace, func() { c.Close() })
		return
	}
	c.Close()
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.read.Load() {
		c.read.Store(true)
	}
	return n, err
}

// Write counts the end of a request: net/http/fcgi writes each record in one Write,
// and FCGI_END_REQUEST (type 3) is a request's last. A stopping worker then ends the
// connection, if nothing else is open on it.
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if len(b) >= 8 && b[0] == 1 && b[1] == 3 {
		c.w.mu.Lock()
		if c.ended < c.begun {
			c.ended++
		}
		idle := c.w.stopping && c.begun == c.ended
		c.w.mu.Unlock()
		if idle {
			c.end()
		}
	}
	return n, err
}

func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.w.mu.Lock()
		c.closed = true
		delete(c.w.conns, c)
		c.w.checkDrained()
		c.w.mu.Unlock()
	})
	return err
}

// connListener gives net/http/fcgi's Serve one connection, and then ends Serve.
type connListener struct {
	c     *conn
	taken bool
}

func (l *connListener) Accept() (net.Conn, error) {
	if !l.taken {
		l.taken = true
		return l.c, nil
	}
	return nil, net.ErrClosed
}

func (l *connListener) Close() error   { return nil }
func (l *connListener) Addr() net.Addr { return l.c.LocalAddr() }

// handler wraps the program's: the library's pre and post dispatch around each
// request, the hooks, the worker in the request's context, a panic contained.
type handler struct {
	w *Worker
	c *conn
	h http.Handler
}

// response notes whether anything was sent, for a panic's answer.
type response struct {
	http.ResponseWriter
	sent bool
}

func (r *response) WriteHeader(status int) { r.sent = true; r.ResponseWriter.WriteHeader(status) }
func (r *response) Write(b []byte) (int, error) {
	r.sent = true
	return r.ResponseWriter.Write(b)
}

// Flush passes http.Flusher on (net/http/fcgi's response is one).
func (r *response) Flush() {
	r.sent = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (hd *handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w, c := hd.w, hd.c
	var stopping C.int
	skip, stop := false, false
	// The request as the live status shows it: net/http/fcgi leaves r.RequestURI
	// empty (r.URL is REQUEST_URI parsed), and joins REMOTE_PORT to REMOTE_ADDR.
	uri, remote := r.RequestURI, r.RemoteAddr
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	w.locked(func() {
		if c.shut || c.closed { // ended by the stop under this request: no reply can go
			skip = true
			return
		}
		c.begun++
		// The request, named for the live status, and the library's pre-dispatch.
		if rc := C.fcgipm_pre_dispatch(w.pm, r.Method, uri, remote, &stopping); rc >= C.PM_EXIT {
			w.exitWith(int(rc - C.PM_EXIT))
		}
		stop = stopping != 0 || w.exited
	})
	if skip {
		return
	}
	if stop {
		w.beginStop(0, "")
	}
	r = r.WithContext(context.WithValue(r.Context(), workerKey{}, w))
	out := &response{ResponseWriter: rw}
	defer hd.finish()
	if w.cfg.PostDispatch != nil {
		defer w.cfg.PostDispatch(w, r)
	}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				w.Notify("panic serving %s: %v", r.URL.RequestURI(), v)
				w.stack(debug.Stack())
			}
			if out.sent || v == http.ErrAbortHandler {
				c.Close() // a reply cut short must not pass for a whole one (as net/http)
			} else {
				rw.WriteHeader(http.StatusInternalServerError)
			}
		}
	}()
	if w.cfg.PreDispatch != nil {
		w.cfg.PreDispatch(w, r)
	}
	hd.h.ServeHTTP(out, r)
}

// exitWith, with mu held: the library asked the worker to exit with status.
func (w *Worker) exitWith(status int) {
	w.exited = true
	if status != 0 && w.status == 0 {
		w.status = status
	}
}

func (hd *handler) finish() {
	w := hd.w
	var stopping C.int
	stop := false
	w.locked(func() {
		if !w.exited {
			if rc := C.fcgipm_post_dispatch(w.pm, &stopping); rc >= C.PM_EXIT {
				w.exitWith(int(rc - C.PM_EXIT))
			}
		}
		stop = stopping != 0 || w.exited
	})
	if stop {
		w.beginStop(0, "")
	}
}

// stack writes a panic's stack where the worker's log goes.
func (w *Worker) stack(trace []byte) {
	if w.cfg.Log == nil {
		os.Stderr.Write(trace)
		return
	}
	for _, line := range strings.Split(strings.TrimRight(string(trace), "\n"), "\n") {
		w.cfg.Log(line)
	}
}
