package fcgipm

/*
#include <fcgi_pm.h>
*/
import "C"

import (
	"fmt"
	"syscall"
)

// The library's error codes, one sentinel each, for errors.Is. An error this package
// returns for a refusal of the library's is an *Error, which matches its code's
// sentinel and carries the library's message.
var (
	ErrInvalid  = sentinel(C.PM_EINVAL)    // invalid argument
	ErrNoMemory = sentinel(C.PM_ENOMEM)    // out of memory
	ErrUnknown  = sentinel(C.PM_EUNKNOWN)  // unknown parameter
	ErrBadValue = sentinel(C.PM_EBADVALUE) // value is not valid for this parameter
	ErrRange    = sentinel(C.PM_ERANGE)    // value out of range
	ErrTooLong  = sentinel(C.PM_ETOOLONG)  // string too long
	ErrState    = sentinel(C.PM_ESTATE)    // not allowed in this process or state
	ErrChild    = sentinel(C.PM_ECHILD)    // no worker to wait for
	ErrLocked   = sentinel(C.PM_ELOCKED)   // pid file is held by another manager
	ErrPidFile  = sentinel(C.PM_EPIDFILE)  // pid file path is not a regular file
	ErrSys      = sentinel(C.PM_ESYS)      // system call failed
	ErrInternal = sentinel(C.PM_EINTERNAL) // internal error
	ErrStopped  = sentinel(C.PM_ESTOPPED)  // the worker is stopping: no more requests
)

var sentinels = map[int]*codeError{}

// codeError is a sentinel: a code and the library's text for it.
type codeError struct {
	code int
	text string
}

func (e *codeError) Error() string { return "fcgipm: " + e.text }

func sentinel(code C.int) error {
	e := &codeError{int(code), C.GoString(C.pm_strerror(code))}
	sentinels[e.code] = e
	return e
}

// Error is a failure the library reported: its PM_E* code (negative), the library's
// message naming the problem, and for ErrSys the errno behind it.
type Error struct {
	Code    int
	Message string
	Errno   syscall.Errno
}

// Error is "fcgipm: " and the library's message (or its code's text).
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("fcgipm: %s", C.GoString(C.pm_strerror(C.int(e.Code))))
	}
	return "fcgipm: " + e.Message
}

// Is reports whether target is the sentinel of e's code (errors.Is(err, ErrLocked)).
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && target == error(s)
}

// Unwrap gives the errno of an ErrSys failure, so that errors.Is(err,
// syscall.EADDRINUSE) also works.
func (e *Error) Unwrap() error {
	if e.Errno != 0 {
		return e.Errno
	}
	return nil
}

// ExitError is how a worker ends that was asked to exit with a non-zero status (by
// the library, or by Worker.Exit): Serve returns it, and main should exit with Status.
type ExitError struct {
	Status  int
	Message string
}

// Error names the status, and the reason when known.
func (e *ExitError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("fcgipm: exit status %d", e.Status)
	}
	return fmt.Sprintf("fcgipm: exit status %d: %s", e.Status, e.Message)
}

// lastError is the failure just reported on pm, as an *Error.
func lastError(pm *C.pm_t, code C.int) error {
	e := &Error{Code: int(code), Message: C.GoString(C.pm_errmsg(pm))}
	if code == C.PM_ESYS {
		e.Errno = syscall.Errno(C.pm_errno(pm))
	}
	return e
}
