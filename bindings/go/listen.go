package fcgipm

/*
#include <fcgi_pm.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// parseAddress splits Config.Address into a network and an address for net.Listen.
func parseAddress(address string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(address, "unix:"):
		network, addr = "unix", strings.TrimPrefix(address, "unix:")
	case strings.HasPrefix(address, "tcp:"):
		network, addr = "tcp", strings.TrimPrefix(address, "tcp:")
	case strings.HasPrefix(address, "/"):
		network, addr = "unix", address
	default:
		network, addr = "tcp", address
	}
	if network == "tcp" {
		if _, _, e := net.SplitHostPort(addr); e != nil {
			return "", "", &Error{Code: int(C.PM_EINVAL),
				Message: fmt.Sprintf("Address: %q is neither a socket path nor host:port", address)}
		}
	} else if addr == "" || !strings.HasPrefix(addr, "/") {
		return "", "", &Error{Code: int(C.PM_EINVAL),
			Message: fmt.Sprintf("Address: %q: a unix socket needs an absolute path", address)}
	}
	return network, addr, nil
}

// isListening reports whether fd is a socket that listens.
func isListening(fd int) bool {
	v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	return err == nil && v == 1
}

// givenSocket is the descriptor a FastCGI server is handed: 0, or systemd's first.
func givenSocket() (int, error) {
	if isListening(0) {
		return 0, nil
	}
	if pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID")); pid == os.Getpid() {
		if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n == 1 && isListening(3) {
			return 3, nil
		}
	}
	return -1, &Error{Code: int(C.PM_EINVAL),
		Message: "Address is empty, and neither descriptor 0 nor socket activation (LISTEN_FDS=1) is a listening socket"}
}

// removeStaleSocket takes away path if it is a unix socket no one listens on.
func removeStaleSocket(path string) {
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&os.ModeSocket == 0 {
		return
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path)
	}
}

// listenFD opens the pool's socket (or finds the one given) and returns a descriptor
// of it that an exec keeps open.
func listenFD(address string) (int, error) {
	if address == "" {
		return givenSocket()
	}
	network, addr, err := parseAddress(address)
	if err != nil {
		return -1, err
	}
	if network == "unix" {
		removeStaleSocket(addr)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		var errno syscall.Errno
		errors.As(err, &errno)
		return -1, &Error{Code: int(C.PM_ESYS), Message: fmt.Sprintf("listen: %s: %v", address, err), Errno: errno}
	}
	f, err := l.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return -1, &Error{Code: int(C.PM_ESYS), Message: fmt.Sprintf("listen: %s: %v", address, err)}
	}
	// Kept for the exec: neither closed (a unix listener would remove its file) nor
	// close-on-exec. l's own descriptor is close-on-exec.
	keep = append(keep, l, f)
	keptFile = f
	fd := int(f.Fd())
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0); e != 0 {
		return -1, &Error{Code: int(C.PM_ESYS), Message: fmt.Sprintf("fcntl: %v", e), Errno: e}
	}
	return fd, nil
}

// keep holds what must outlive Serve's exec (a finalizer would close it); keptFile
// is the descriptor handed on, which a single process serves itself.
var (
	keep     []io.Closer
	keptFile *os.File
)

// closeKept closes what listenFD opened, once it is not needed (a failed exec, a
// single process that has stopped).
func closeKept() {
	for _, k := range keep {
		k.Close()
	}
	keep, keptFile = nil, nil
}
