// Listening sockets as the kernel's socket diagnostics (NETLINK_SOCK_DIAG) report them:
// the length and limit of a listener's accept queue, and which listener is bound to a
// unix path or a TCP address. Sockets are looked up in the caller's network namespace.
// Nothing throws; failures return false with errno set.
#pragma once

#include <cstdint>
#include <string>
#include <sys/socket.h>

namespace fcgipm::sockdiag {

struct listen_queue {
    uint32_t length = 0;   // connections waiting to be accepted now
    uint32_t backlog = 0;  // the most that may wait (listen(2)'s backlog as the kernel keeps it)
};

// The accept queue of the listening socket with inode ino (fstat's st_ino of the socket,
// or the N of /proc/PID/fd's "socket:[N]"). family is the socket's own, as getsockname
// gives it: AF_UNIX (stream or seqpacket), AF_INET or AF_INET6 (TCP). The kernel lets
// length reach backlog + 1 before it turns connections away. false with errno: ENOENT
// (no listening socket of that family has that inode), EAFNOSUPPORT (another family),
// or a netlink failure.
bool queue_of(int family, uint64_t ino, listen_queue &out);

// The inode of the listening unix socket bound to path. Where stat(2) sees a socket at
// path, the listener holding that file (matched by device and inode, so a relative path
// or a socket bound by a relative name is found; on overlayfs, by the device of the
// file's directory if not its own); failing that, for an absolute path, the listener
// whose bound name is exactly path. A path starting with '\0' is an abstract name,
// matched byte for byte. false with errno: ENOENT (no such listener), EINVAL (empty
// path), or a netlink failure.
bool find_unix_listener(const std::string &path, uint64_t &ino);

// The inode of the TCP listener bound to addr (a sockaddr_in or sockaddr_in6, len its
// size): one bound to that address and port, or else one bound to the wildcard address
// of the same family on that port. With SO_REUSEPORT, one of those bound alike. false
// with errno: ENOENT (none), EINVAL (len too short), EAFNOSUPPORT (another family), or
// a netlink failure.
bool find_tcp_listener(const struct sockaddr *addr, socklen_t len, uint64_t &ino);

// keep true: the calls that follow share one netlink socket, opened now and kept (a
// process that asks each second, the manager, has no descriptor that comes and
// goes); false closes it (a new worker, which asks nothing).
void keep_socket(bool keep);

}  // namespace fcgipm::sockdiag
