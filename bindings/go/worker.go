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
	"sync"
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
// *ExitError with status (0-255; 0: Serve returns nil).
func (w *Worker) Exit(status int, msg string) {
	if status < 0 || status > 255 {
		status = 1
	}
	w.Notify("exiting: %s", msg)
	w.beginStop(status, msg)
	C.pm_request_stop(w.pm, 0)
}

// Notify logs one line as the library does ("FastCGI: server (pid N): ...").
func (w *Worker) Notify(format string, args ...interface{}) {
	line := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(line))
	w.mu.Lock()
	C.fcgipm_notify(w.pm, line)
	w.mu.Unlock()
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
func (w *Worker) SetParameter(name, value string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return setParameters(w.pm, []param{{name, value}})
}

// The parameters an adopted worker takes from its Config: the ones a worker acts on.
var workerParameters = map[string]bool{"max_requests": true, "sizecheck_num_requests": true,
	"max_size": true, "min_share_size": true, "max_unshared_size": true, "process_name": true}

var logTo func(string)

//export fcgipmGoLog
func fcgipmGoLog(line *C.char) {
	if f := logTo; f != nil {
		f(C.GoString(line))
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
	if cfg.Log != nil {
		logTo = cfg.Log
		C.fcgipm_log_to_go(pm, 1)
	}
	if adopted {
		ps, _ := cfg.parameters()
		var own []param
		for _, p := range ps {
			if workerParameters[p.name] {
				own = append(own, p)
			}
		}
		if err := setParameters(pm, own); err != nil {
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
	w.file = os.NewFile(uintptr(fd), "fcgipm-listener")
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
	for s := range sigs {
		C.pm_request_stop(w.pm, C.int(s.(syscall.Signal)))
		w.beginStop(0, "")
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

// beginStop: no more connections, the context cancelled, and each connection closed
// once no request of its is open. status, if not 0, is what the worker exits with.
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
	var idle []*conn
	for c := range w.conns {
		if c.idle() {
			idle = append(idle, c)
		} else if c.begun == 0 {
			c.recheckLater()
		}
	}
	w.checkDrained()
	w.mu.Unlock()
	w.cancel()
	if w.ln != nil {
		w.ln.Close()
	}
	for _, c := range idle {
		c.Close()
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
	begun  int // with w.mu
	ended  int // with w.mu
	closed bool
}

// freshGrace is how long a stopping worker waits for the first request of a
// connection it has just accepted (a web server sends it at once).
const freshGrace = 100 * time.Millisecond

// idle, with w.mu held: no request open, and one served or none coming.
func (c *conn) idle() bool {
	return c.begun == c.ended && (c.begun > 0 || time.Since(c.since) >= freshGrace)
}

func (c *conn) recheckLater() {
	time.AfterFunc(freshGrace-time.Since(c.since), func() {
		c.w.mu.Lock()
		shut := c.idle()
		c.w.mu.Unlock()
		if shut {
			c.Close()
		}
	})
}

// Write counts the end of a request: net/http/fcgi writes each record in one Write,
// and FCGI_END_REQUEST (type 3) is a request's last. A stopping worker then closes
// the connection, if nothing else is open on it.
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if len(b) >= 8 && b[0] == 1 && b[1] == 3 {
		c.w.mu.Lock()
		if c.ended < c.begun {
			c.ended++
		}
		shut := c.w.stopping && c.begun == c.ended
		c.w.mu.Unlock()
		if shut {
			c.Close()
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

func (hd *handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w, c := hd.w, hd.c
	var stopping C.int
	w.mu.Lock()
	if c.closed { // closed by the stop under this request: the web server retries it
		w.mu.Unlock()
		return
	}
	c.begun++
	C.fcgipm_pre_dispatch(w.pm, &stopping)
	w.mu.Unlock()
	if stopping != 0 {
		w.beginStop(0, "")
	}
	defer hd.finish()
	r = r.WithContext(context.WithValue(r.Context(), workerKey{}, w))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { // as net/http: the response is cut off
				c.Close()
				return
			}
			w.Notify("panic serving %s: %v", r.URL.RequestURI(), v)
			os.Stderr.Write(debug.Stack())
			rw.WriteHeader(http.StatusInternalServerError) // if nothing was sent yet
		}
	}()
	if w.cfg.PreDispatch != nil {
		w.cfg.PreDispatch(w, r)
	}
	hd.h.ServeHTTP(rw, r)
	if w.cfg.PostDispatch != nil {
		w.cfg.PostDispatch(w, r)
	}
}

func (hd *handler) finish() {
	w := hd.w
	var stopping C.int
	w.mu.Lock()
	if !w.exited {
		rc := C.fcgipm_post_dispatch(w.pm, &stopping)
		if rc >= C.PM_EXIT {
			w.exited = true
			if st := int(rc - C.PM_EXIT); st != 0 && w.status == 0 {
				w.status = st
			}
		}
	}
	stop := stopping != 0 || w.exited
	w.mu.Unlock()
	if stop {
		w.beginStop(0, "")
	}
}
