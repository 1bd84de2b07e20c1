package fcgipm

/*
#cgo pkg-config: fcgi-pm
#include <stdlib.h>
#include "start.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

var serving atomic.Bool

// Serve makes the program the pool cfg describes, each worker serving h (nil:
// http.DefaultServeMux) through net/http/fcgi.
//
// Called in the process the user started, Serve checks cfg, opens the listening
// socket and execs the program again in place (same pid): there the library's
// manager starts before Go's runtime and forks the workers; it does not come back
// to Go, and exits once the pool has stopped. In each worker main runs again from
// the start and its call of Serve serves requests until the worker must stop (TERM,
// HUP, max_requests, the manager's death, Worker.Stop), lets the requests in flight
// finish, and returns nil, or an *ExitError with the status to exit with. With
// Processes 0 this process serves itself, and stops on TERM or HUP the same way.
//
// Serve returns an error at once if cfg is refused (an *Error: errors.Is with
// ErrBadValue, ErrRange, ...), if the socket cannot be opened, or if the manager
// could not start (ErrLocked: another manager holds the pid file). Nothing has
// changed then but that main ran twice.
func Serve(cfg Config, h http.Handler) error {
	if h == nil {
		h = http.DefaultServeMux
	}
	start := &C.fcgipm_started
	switch start.state {
	case C.FCGIPM_FAILED:
		if serving.Swap(true) {
			return &Error{Code: int(C.PM_ESTATE), Message: "Serve: called twice"}
		}
		if network, path, err := parseAddress(cfg.Address); err == nil && network == "unix" {
			removeStaleSocket(path) // made for the pool that did not start
		}
		return &Error{Code: int(start.code), Message: C.GoString(&start.message[0]), Errno: syscall.Errno(start.sys_errno)}
	case C.FCGIPM_WORKER, C.FCGIPM_ADOPTED:
		if serving.Swap(true) {
			return &Error{Code: int(C.PM_ESTATE), Message: "Serve: called twice in a worker"}
		}
		return serveWorker(&cfg, h, start.pm, int(start.listen_fd), start.state == C.FCGIPM_ADOPTED)
	}
	if os.Getenv(C.FCGIPM_MANAGE_VARIABLE) != "" { // the constructor did not run
		return &Error{Code: int(C.PM_EINTERNAL), Message: "Serve: the pool's start was not taken up before Go started"}
	}
	ps, err := cfg.parameters()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return err
	}
	if serving.Swap(true) {
		return &Error{Code: int(C.PM_ESTATE), Message: "Serve: called twice"}
	}
	if cfg.Processes == 0 && (cfg.Pool == "" || cfg.Pool == "static") {
		return serveSingle(&cfg, h, ps) // an ondemand pool starts with none, as a manager
	}
	fd, err := listenFD(cfg.Address)
	if err != nil {
		serving.Store(false)
		return err
	}
	env := append(os.Environ(), C.FCGIPM_MANAGE_VARIABLE+"="+encodeParameters(ps),
		C.FCGIPM_LISTEN_VARIABLE+"="+strconv.Itoa(fd))
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	serving.Store(false)
	closeKept()
	return &Error{Code: int(C.PM_ESYS), Message: fmt.Sprintf("exec: /proc/self/exe: %v", err), Errno: err.(syscall.Errno)}
}

// serveSingle serves in this process: Processes 0, the library's single process.
func serveSingle(cfg *Config, h http.Handler, ps []param) error {
	fd, err := listenFD(cfg.Address)
	defer closeKept() // the socket's file too, for a unix socket
	if err == nil {
		var pm *C.pm_t
		if pm, err = newHandle(ps); err == nil {
			if rc := C.pm_manage(pm); rc != C.PM_SINGLE_PROCESS {
				err = lastError(pm, rc)
				C.pm_destroy(pm)
			} else {
				return serveWorker(cfg, h, pm, fd, false)
			}
		}
	}
	serving.Store(false)
	return err
}

// newHandle is a handle with ps set, and no_exit.
func newHandle(ps []param) (*C.pm_t, error) {
	pm := C.pm_create()
	if pm == nil {
		return nil, ErrNoMemory
	}
	err := setParameters(pm, append(ps, param{"no_exit", "1"}))
	if err != nil {
		C.pm_destroy(pm)
		return nil, err
	}
	return pm, nil
}

// Main is Serve for a main that has nothing else to do: it exits the process, with
// the status the worker ended with (0 after a normal stop), or after one line on
// stderr with 2 if cfg is refused and 1 if the pool could not start.
func Main(cfg Config, h http.Handler) {
	err := Serve(cfg, h)
	var exit *ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit):
		os.Exit(exit.Status)
	}
	fmt.Fprintln(os.Stderr, err)
	for _, refused := range []error{ErrInvalid, ErrUnknown, ErrBadValue, ErrRange, ErrTooLong} {
		if errors.Is(err, refused) {
			os.Exit(2)
		}
	}
	os.Exit(1)
}

// InWorker reports whether this process is a worker of a pool (forked by the
// package's manager, or exec'd by the fcgi-pm program), as decided before main ran.
func InWorker() bool {
	s := C.fcgipm_started.state
	return s == C.FCGIPM_WORKER || s == C.FCGIPM_ADOPTED
}

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.pm_version()) }
