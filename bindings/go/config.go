package fcgipm

/*
#include <stdlib.h>
#include <fcgi_pm.h>
*/
import "C"

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Config is a pool: where it listens, the library's parameters, and the hooks.
//
// The zero value of every field means the library's default (README, "Parameters"),
// so that Config{Processes: 4, Address: "/run/app.sock"} is a complete pool. A
// negative duration means zero seconds (for DieTimeout: wait for ever). A duration
// must be a whole number of milliseconds, the library's resolution.
type Config struct {
	// Address is the listening socket: "unix:/path" or an absolute path (a unix
	// socket; a stale socket file left by a dead server is replaced), "tcp:host:port"
	// or "host:port". Empty: the socket the program was given, as FastCGI servers
	// are, on descriptor 0 (spawn-fcgi, the fcgi-pm program), or by systemd's socket
	// activation (LISTEN_FDS=1, on descriptor 3). In a worker it is not read: the
	// worker serves the socket its manager opened.
	Address string

	// Processes is the number of workers (n_processes). 0, the default: no pool,
	// Serve serves in this process (no manager: no pid file, no title of its own).
	Processes int

	// How the manager stops and restarts workers.
	DieTimeout   time.Duration // die_timeout: TERM's grace before KILL; default 60s
	StartDelay   time.Duration // start_delay: between forks; default 0
	MinUptime    time.Duration // min_uptime: a worker ending sooner is a crash; default 1s
	BackoffMin   time.Duration // backoff_min: the first crash's respawn delay; default 100ms
	BackoffMax   time.Duration // backoff_max: the longest; default 30s
	CrashBudget  int           // crash_budget: crashes in CrashWindow before the manager gives up; 0: never
	CrashWindow  time.Duration // crash_window: default 10s
	StartTimeout time.Duration // start_timeout: a pool not ready so long after its start gives up; 0: none

	// When a worker ends after its request (the library's post-dispatch checks).
	MaxRequests          int64 // max_requests: requests a worker serves; 0: no limit
	SizecheckNumRequests int64 // sizecheck_num_requests: check the sizes below every so many requests
	MaxSizeKiB           int64 // max_size: virtual size limit
	MinShareSizeKiB      int64 // min_share_size: shared size floor
	MaxUnsharedSizeKiB   int64 // max_unshared_size: unshared size limit

	// Names and files.
	PIDFile     string // pid_fname: the manager's pid file (locked while it runs)
	Title       string // pm_title: the manager's process title; default "<program>-fcgi-pm"
	ProcessName string // process_name: each worker's title; default "<program>-fcgi"

	// KeepListening leaves the listening socket open on TERM (stop_listening 0), so
	// that connections wait for the next manager instead of being refused.
	KeepListening bool

	// The live status (`fcgi-pm status MANAGER`, pm_status_open): each
	// worker's state, and the method, URI and client address of its current or
	// last request, which the package tells the library for every request.
	//
	// NoScoreboard (scoreboard 0) keeps the requests out of the status: workers
	// write nothing of them there (what, since when, how long); the pool's figures
	// remain.
	NoScoreboard bool
	// StatusSocket (status_socket) is a unix socket path where the manager also
	// hands the status out (mode 0600, 0660 with StatusGroup; removed at the
	// stop): the way in for readers of another user. Empty: the status is read
	// through /proc, by the manager's user and root.
	StatusSocket string
	// StatusGroup (status_group) is the group, a name or a number, allowed on
	// StatusSocket (without one it is not used); a group the system does not have
	// fails Serve (ErrBadValue).
	StatusGroup string

	// The pool's size. Pool (pool) is "static" (the default: Processes workers,
	// always), "dynamic" (Processes to start, between MinIdle and MaxIdle idle, at
	// most MaxWorkers) or "ondemand" (none until a connection waits, at most
	// MaxWorkers). Idle workers beyond the resting size retire after IdleTimeout;
	// SpawnRate bounds the forks a second. Zero values leave the library's
	// defaults; the limits are checked together when Serve starts (ErrBadValue).
	Pool        string
	MinIdle     int           // min_idle (default 1)
	MaxIdle     int           // max_idle (default: the larger of MinIdle and Processes)
	MaxWorkers  int           // max_workers
	IdleTimeout time.Duration // idle_timeout (default 10 s)
	SpawnRate   int           // spawn_rate (default 1000)

	// Request limits, read by the manager from each worker's live status (they need
	// the scoreboard: not with NoScoreboard). A request running RequestTimeout has
	// its worker stopped, logged with its URI and replaced: the manager's TERM is a
	// stop as any other (Worker.Context cancelled, the listener closed), and its
	// KILL follows RequestTimeoutGrace later if the worker has not ended by then,
	// with the requests still open in it. One running RequestSlow (below
	// RequestTimeout) is logged and counted. Zero values: no limit; the
	// combinations are checked when Serve starts (ErrBadValue naming them).
	RequestTimeout      time.Duration // request_timeout (0: none)
	RequestTimeoutGrace time.Duration // request_timeout_grace (default 1 s; with RequestTimeout only)
	RequestSlow         time.Duration // request_slow (0: none)

	// Recycling: a worker is replaced, the new one ready before the old one stops
	// after its request. MaxRequestsJitter raises each worker's MaxRequests by a
	// random 0..N of its own (with MaxRequests only), so that workers started
	// together do not all leave together; MaxAge replaces a worker older than that;
	// MaxRSSKiB one with more resident memory (checked once a second). 0: none.
	MaxRequestsJitter int64         // max_requests_jitter
	MaxAge            time.Duration // max_age
	MaxRSSKiB         int64         // max_rss: resident size limit

	// MaxProcs is GOMAXPROCS in each worker. 0: GOMAXPROCS from the environment if
	// set, else 1 in a pool (one worker per core serves more on few cores than
	// fewer workers with more threads: README, "Using it from Go"), and Go's own
	// default in a single process.
	MaxProcs int

	// Hooks. Each runs in a worker (the manager runs no Go code: see the package
	// documentation); any may be nil.
	//
	// WorkerInit runs once in each worker before it serves, in Go, after the
	// library's own start of the worker (its "initialized" line; the manager counts
	// it ready, for systemd's READY=1 and start_timeout, from there): a non-nil error
	// ends the worker (status 1) and is logged.
	WorkerInit func(w *Worker) error
	// PreDispatch and PostDispatch run around each request's handler.
	PreDispatch  func(w *Worker, r *http.Request)
	PostDispatch func(w *Worker, r *http.Request)
	// Log receives each of the worker's log lines ("FastCGI: server (pid N): ..."),
	// without the newline, instead of stderr. It may be called from any goroutine.
	Log func(line string)
}

// param is one library parameter as text.
type param struct{ name, value string }

// excludedParameters are the library's parameters that Config leaves out, and why.
var excludedParameters = map[string]string{
	"no_exit":     "always 1: the Go side ends its workers itself, after their requests",
	"no_signals":  "the manager runs before Go, in C: its signals can only be the library's",
	"worker_exit": "how the library exits a worker: with no_exit 1 it does not",
	"stop_signal": "for workers exec'd by the library: the package forks its workers",
	"role":        "the library's to set (manager, server)",
}

func seconds(name string, d time.Duration) (string, error) {
	if d < 0 {
		return "0", nil
	}
	if d%time.Millisecond != 0 {
		return "", &Error{Code: int(C.PM_EBADVALUE),
			Message: fmt.Sprintf("%s: %v is finer than the library's milliseconds", name, d)}
	}
	ms := d.Milliseconds()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000), nil
}

// parameters lists the fields that differ from their zero value, as the library's
// parameters, in the library's order.
func (c *Config) parameters() ([]param, error) {
	var out []param
	integer := func(name string, v int64) {
		if v != 0 {
			out = append(out, param{name, strconv.FormatInt(v, 10)})
		}
	}
	text := func(name, v string) {
		if v != "" {
			out = append(out, param{name, v})
		}
	}
	var err error
	duration := func(name string, d time.Duration) {
		if d == 0 || err != nil {
			return
		}
		var s string
		if s, err = seconds(name, d); err == nil {
			out = append(out, param{name, s})
		}
	}
	integer("n_processes", int64(c.Processes))
	duration("die_timeout", c.DieTimeout)
	duration("start_delay", c.StartDelay)
	text("pid_fname", c.PIDFile)
	text("pm_title", c.Title)
	text("process_name", c.ProcessName)
	integer("max_requests", c.MaxRequests)
	integer("max_size", c.MaxSizeKiB)
	integer("sizecheck_num_requests", c.SizecheckNumRequests)
	duration("min_uptime", c.MinUptime)
	duration("backoff_min", c.BackoffMin)
	duration("backoff_max", c.BackoffMax)
	integer("crash_budget", int64(c.CrashBudget))
	duration("crash_window", c.CrashWindow)
	duration("start_timeout", c.StartTimeout)
	if c.KeepListening {
		out = append(out, param{"stop_listening", "0"})
	}
	integer("min_share_size", c.MinShareSizeKiB)
	integer("max_unshared_size", c.MaxUnsharedSizeKiB)
	if c.NoScoreboard {
		out = append(out, param{"scoreboard", "0"})
	}
	text("status_socket", c.StatusSocket)
	text("status_group", c.StatusGroup)
	text("pool", c.Pool)
	integer("min_idle", int64(c.MinIdle))
	integer("max_idle", int64(c.MaxIdle))
	integer("max_workers", int64(c.MaxWorkers))
	duration("idle_timeout", c.IdleTimeout)
	integer("spawn_rate", int64(c.SpawnRate))
	duration("request_timeout", c.RequestTimeout)
	duration("request_timeout_grace", c.RequestTimeoutGrace)
	duration("request_slow", c.RequestSlow)
	integer("max_requests_jitter", c.MaxRequestsJitter)
	duration("max_age", c.MaxAge)
	integer("max_rss", c.MaxRSSKiB)
	if err != nil {
		return nil, err
	}
	if c.Processes < 0 {
		return nil, &Error{Code: int(C.PM_ERANGE), Message: fmt.Sprintf("Processes: %d: 0 (this process serves) or more", c.Processes)}
	}
	if c.MaxProcs < 0 {
		return nil, &Error{Code: int(C.PM_ERANGE), Message: fmt.Sprintf("MaxProcs: %d: 0 or more", c.MaxProcs)}
	}
	return out, nil
}

// setParameters sets ps on pm; the first refusal, with the library's message.
func setParameters(pm *C.pm_t, ps []param) error {
	for _, p := range ps {
		if strings.IndexByte(p.value, 0) >= 0 {
			return &Error{Code: int(C.PM_EINVAL), Message: p.name + ": the value contains a NUL byte"}
		}
		name, value := C.CString(p.name), C.CString(p.value)
		rc := C.pm_parameter(pm, name, value)
		C.free(unsafe.Pointer(name))
		C.free(unsafe.Pointer(value))
		if rc < 0 {
			return lastError(pm, rc)
		}
	}
	return nil
}

// Validate checks c as the library would, on a scratch handle, and the address's
// form: the error Serve would return for it, or nil. Nothing is opened.
func (c Config) Validate() error {
	ps, err := c.parameters()
	if err != nil {
		return err
	}
	pm := C.pm_create()
	if pm == nil {
		return ErrNoMemory
	}
	defer C.pm_destroy(pm)
	if err := setParameters(pm, ps); err != nil {
		return err
	}
	if c.Address != "" {
		if _, _, err := parseAddress(c.Address); err != nil {
			return err
		}
	}
	return nil
}

// encodeParameters writes ps for the constructor: "name=value" lines, with '%',
// newlines and other control bytes of a value as %XX.
func encodeParameters(ps []param) string {
	var b []byte
	for _, p := range ps {
		b = append(b, p.name...)
		b = append(b, '=')
		for i := 0; i < len(p.value); i++ {
			ch := p.value[i]
			if ch == '%' || ch < 0x20 || ch == 0x7f {
				b = append(b, fmt.Sprintf("%%%02X", ch)...)
			} else {
				b = append(b, ch)
			}
		}
		b = append(b, '\n')
	}
	return string(b)
}

// parameterNames lists the library's parameters, in its order (pm_parameter_info).
func parameterNames() []string {
	var names []string
	for i := 0; ; i++ {
		var name *C.char
		if C.pm_parameter_info(C.int(i), &name, nil, nil, nil) != 0 {
			return names
		}
		names = append(names, C.GoString(name))
	}
}

// getParameter is pm's value of name, "" if unknown.
func getParameter(pm *C.pm_t, name string) string {
	n := C.CString(name)
	defer C.free(unsafe.Pointer(n))
	return C.GoString(C.pm_get_parameter(pm, n))
}

func destroyHandle(pm *C.pm_t) { C.pm_destroy(pm) }
