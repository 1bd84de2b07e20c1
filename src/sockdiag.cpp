#include "sockdiag.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

namespace fcgipm::sockdiag {

namespace {

// sk_state of a listening socket, unix or TCP (the kernel's TCP_LISTEN, and the bit
// TCPF_LISTEN that selects it in a dump; neither is in the uapi headers).
constexpr uint8_t listen_state = 10;
constexpr uint32_t listen_states = 1u << listen_state;

// The kernel makes no dump datagram larger than 32 KiB.
constexpr size_t recv_size = 32768;

// Netlink messages and attributes are both padded to 4 bytes.
constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }
constexpr size_t msg_header = align4(sizeof(nlmsghdr));
constexpr size_t attr_header = align4(sizeof(nlattr));

uint32_t dump_seq = 0;  // each dump's own: what an earlier one left is told apart
int kept_fd = -1;       // keep_socket's
bool keeping = false;

// A request as sent: the netlink header, then the family's request.
template <typename Request>
struct request_msg {
    nlmsghdr header;
    Request body;
};

// Closes the netlink socket on every return, leaving errno as it was.
struct socket_guard {
    int fd;
    ~socket_guard() {
        int saved = errno;
        ::close(fd);
        errno = saved;
    }
};

// Sends req as a SOCK_DIAG_BY_FAMILY dump and calls on_socket(payload, size) with each
// socket the kernel reports, until on_socket returns true or the dump ends. false with
// errno if the socket, the request or the reply failed.
template <typename Request, typename OnSocket>
bool dump_on(int fd, const Request &req, OnSocket on_socket);

template <typename Request, typename OnSocket>
bool dump(const Request &req, OnSocket on_socket) {
    if (keeping) {
        // The kept socket, read to the end of each dump (the kernel runs one dump
        // at a time on a socket); one that failed midway is closed and made anew.
        if (kept_fd < 0)
            kept_fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (kept_fd < 0)
            return false;
        bool found = false;
        bool ok = dump_on(kept_fd, req, [&](const unsigned char *p, size_t n) {
            if (!found)
                found = on_socket(p, n);
            return false;  // on to NLMSG_DONE
        });
        if (!ok) {
            socket_guard gone{kept_fd};
            kept_fd = -1;
        }
        return ok;
    }
    int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return false;
    socket_guard guard{fd};
    return dump_on(fd, req, on_socket);
}

template <typename Request, typename OnSocket>
bool dump_on(int fd, const Request &req, OnSocket on_socket) {
    ++dump_seq;
    static_assert(offsetof(request_msg<Request>, body) == msg_header);
    request_msg<Request> msg{};
    msg.header.nlmsg_len = static_cast<uint32_t>(msg_header + sizeof req);
    msg.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.header.nlmsg_seq = dump_seq;
    msg.body = req;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    for (;;) {
        ssize_t sent = ::sendto(fd, &msg, msg.header.nlmsg_len, 0,
                                reinterpret_cast<const sockaddr *>(&kernel), sizeof kernel);
        if (sent >= 0)
            break;
        if (errno != EINTR)
            return false;
    }

    std::vector<unsigned char> buf(recv_size);
    for (;;) {
        sockaddr_nl from{};
        iovec iov{buf.data(), buf.size()};
        msghdr mh{};
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t got = ::recvmsg(fd, &mh, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (mh.msg_flags & MSG_TRUNC) {
            errno = EMSGSIZE;
            return false;
        }
        if (from.nl_pid != 0)  // not from the kernel
            continue;
        size_t n = static_cast<size_t>(got);
        if (n == 0) {
            errno = EPROTO;
            return false;
        }

        // One datagram holds several messages; the last of the dump is NLMSG_DONE.
        for (size_t off = 0; off + msg_header <= n;) {
            nlmsghdr h;
            std::memcpy(&h, buf.data() + off, sizeof h);
            if (h.nlmsg_len < msg_header || h.nlmsg_len > n - off) {
                errno = EPROTO;
                return false;
            }
            const unsigned char *payload = buf.data() + off + msg_header;
            size_t size = h.nlmsg_len - msg_header;
            off += align4(h.nlmsg_len);
            if (h.nlmsg_seq != dump_seq)
                continue;
            if (h.nlmsg_type == NLMSG_DONE) {
                // Carries the dump's error, if it ended on one.
                int err = 0;
                if (size >= sizeof err)
                    std::memcpy(&err, payload, sizeof err);
                if (err < 0) {
                    errno = -err;
                    return false;
                }
                return true;
            }
            if (h.nlmsg_type == NLMSG_ERROR) {
                nlmsgerr e{};
                if (size < sizeof e.error) {
                    errno = EPROTO;
                    return false;
                }
                std::memcpy(&e.error, payload, sizeof e.error);
                if (e.error == 0)  // an acknowledgement
                    return true;
                errno = e.error < 0 ? -e.error : EPROTO;
                return false;
            }
            if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY && on_socket(payload, size))
                return true;
        }
    }
}

// Calls on_attr(type, data, size) for each netlink attribute in [p, p + size).
template <typename OnAttr>
void for_each_attr(const unsigned char *p, size_t size, OnAttr on_attr) {
    for (size_t off = 0; off + attr_header <= size;) {
        nlattr a;
        std::memcpy(&a, p + off, sizeof a);
        if (a.nla_len < attr_header || a.nla_len > size - off)
            return;
        on_attr(a.nla_type & NLA_TYPE_MASK, p + off + attr_header, a.nla_len - attr_header);
        off += align4(a.nla_len);
    }
}

// A dump of the listening unix sockets, with the attributes show asks for.
unix_diag_req unix_listeners(uint32_t show) {
    unix_diag_req req{};
    req.sdiag_family = AF_UNIX;
    req.udiag_states = listen_states;
    req.udiag_show = show;
    return req;
}

// A dump of the listening TCP sockets of family; port (network order) narrows it when
// not 0.
inet_diag_req_v2 tcp_listeners(int family, uint16_t port) {
    inet_diag_req_v2 req{};
    req.sdiag_family = static_cast<uint8_t>(family);
    req.sdiag_protocol = IPPROTO_TCP;
    req.idiag_states = listen_states;
    req.id.idiag_sport = port;
    req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    return req;
}

// Whether a unix socket's UNIX_DIAG_VFS (the inode its path names) is inode ino on
// device dev, as stat(2) gives them. The kernel gives the device in its internal form,
// major << 20 | minor, not stat's; and the inode number cut to 32 bits.
bool same_file(const unix_diag_vfs &vfs, ino_t ino, dev_t dev) {
    return vfs.udiag_vfs_ino == static_cast<uint32_t>(ino)
        && vfs.udiag_vfs_dev >> 20 == major(dev)
        && (vfs.udiag_vfs_dev & 0xfffff) == minor(dev);
}

// The directory holding path's last component.
std::string parent_of(const std::string &path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// A unix socket's UNIX_DIAG_NAME as a path: a pathname up to its terminating NUL, an
// abstract name (leading NUL) whole.
std::string bound_name(const unsigned char *p, size_t size) {
    const char *s = reinterpret_cast<const char *>(p);
    if (size > 0 && s[0] != '\0')
        size = strnlen(s, size);
    return std::string(s, size);
}

bool unix_queue_of(uint32_t ino, listen_queue &out) {
    bool found = false, have_rqlen = false;
    bool ok = dump(unix_listeners(UDIAG_SHOW_RQLEN), [&](const unsigned char *p, size_t size) {
        unix_diag_msg m;
        if (size < sizeof m)
            return false;
        std::memcpy(&m, p, sizeof m);
        if (m.udiag_ino != ino || m.udiag_state != listen_state)
            return false;
        found = true;
        for_each_attr(p + sizeof m, size - sizeof m, [&](int type, const unsigned char *a, size_t n) {
            // For a listener, rqueue is the connections pending and wqueue the backlog.
            unix_diag_rqlen rq;
            if (type != UNIX_DIAG_RQLEN || n < sizeof rq)
                return;
            std::memcpy(&rq, a, sizeof rq);
            out.length = rq.udiag_rqueue;
            out.backlog = rq.udiag_wqueue;
            have_rqlen = true;
        });
        return true;
    });
    if (!ok)
        return false;
    if (!found || !have_rqlen) {
        errno = found ? EOPNOTSUPP : ENOENT;
        return false;
    }
    return true;
}

bool tcp_queue_of(int family, uint32_t ino, listen_queue &out) {
    bool found = false;
    bool ok = dump(tcp_listeners(family, 0), [&](const unsigned char *p, size_t size) {
        inet_diag_msg m;
        if (size < sizeof m)
            return false;
        std::memcpy(&m, p, sizeof m);
        if (m.idiag_inode != ino || m.idiag_state != listen_state)
            return false;
        // For a listener, rqueue is the accept queue's length and wqueue its limit.
        out.length = m.idiag_rqueue;
        out.backlog = m.idiag_wqueue;
        found = true;
        return true;
    });
    if (!ok)
        return false;
    if (!found) {
        errno = ENOENT;
        return false;
    }
    return true;
}

}  // namespace

bool queue_of(int family, uint64_t ino, listen_queue &out) {
    if (family != AF_UNIX && family != AF_INET && family != AF_INET6) {
        errno = EAFNOSUPPORT;
        return false;
    }
    // Socket inodes are 32-bit, and none is 0.
    if (ino == 0 || ino > UINT32_MAX) {
        errno = ENOENT;
        return false;
    }
    uint32_t ino32 = static_cast<uint32_t>(ino);
    return family == AF_UNIX ? unix_queue_of(ino32, out) : tcp_queue_of(family, ino32, out);
}

bool find_unix_listener(const std::string &path, uint64_t &ino) {
    if (path.empty()) {
        errno = EINVAL;
        return false;
    }
    bool abstract = path[0] == '\0';
    struct stat st, dir;
    bool have_file = !abstract && ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
    // overlayfs over several filesystems gives a file the device of its layer, and the
    // kernel reports the overlay's, which its directories show.
    bool have_dir = have_file && ::stat(parent_of(path).c_str(), &dir) == 0 && dir.st_dev != st.st_dev;
    // A relative name could be bound relative to any directory: only the file says.
    bool by_name = abstract || path[0] == '/';
    if (!have_file && !by_name) {
        errno = ENOENT;
        return false;
    }

    uint32_t file_match = 0, dir_match = 0, name_match = 0;
    bool ok = dump(unix_listeners(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS), [&](const unsigned char *p, size_t size) {
        unix_diag_msg m;
        if (size < sizeof m)
            return false;
        std::memcpy(&m, p, sizeof m);
        if (m.udiag_state != listen_state)
            return false;
        for_each_attr(p + sizeof m, size - sizeof m, [&](int type, const unsigned char *a, size_t n) {
            if (type == UNIX_DIAG_VFS && have_file && n >= sizeof(unix_diag_vfs)) {
                unix_diag_vfs vfs;
                std::memcpy(&vfs, a, sizeof vfs);
                if (same_file(vfs, st.st_ino, st.st_dev))
                    file_match = m.udiag_ino;
                else if (have_dir && dir_match == 0 && same_file(vfs, st.st_ino, dir.st_dev))
                    dir_match = m.udiag_ino;
            } else if (type == UNIX_DIAG_NAME && by_name && name_match == 0 && bound_name(a, n) == path) {
                name_match = m.udiag_ino;
            }
        });
        return file_match != 0;
    });
    if (!ok)
        return false;
    uint32_t match = file_match != 0 ? file_match : dir_match != 0 ? dir_match : name_match;
    if (match == 0) {
        errno = ENOENT;
        return false;
    }
    ino = match;
    return true;
}

bool find_tcp_listener(const struct sockaddr *addr, socklen_t len, uint64_t &ino) {
    if (addr == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) {
        errno = EINVAL;
        return false;
    }
    sa_family_t family;
    std::memcpy(&family, reinterpret_cast<const char *>(addr) + offsetof(sockaddr, sa_family), sizeof family);

    // The address and port wanted, as inet_diag_sockid holds them (network order).
    uint32_t want[4] = {};
    size_t addr_size;
    uint16_t port;
    uint32_t scope = 0;
    if (family == AF_INET) {
        sockaddr_in sin;
        if (len < static_cast<socklen_t>(sizeof sin)) {
            errno = EINVAL;
            return false;
        }
        std::memcpy(&sin, addr, sizeof sin);
        std::memcpy(want, &sin.sin_addr, sizeof sin.sin_addr);
        addr_size = sizeof sin.sin_addr;
        port = sin.sin_port;
    } else if (family == AF_INET6) {
        sockaddr_in6 sin6;
        if (len < static_cast<socklen_t>(sizeof sin6)) {
            errno = EINVAL;
            return false;
        }
        std::memcpy(&sin6, addr, sizeof sin6);
        std::memcpy(want, &sin6.sin6_addr, sizeof sin6.sin6_addr);
        addr_size = sizeof sin6.sin6_addr;
        port = sin6.sin6_port;
        scope = sin6.sin6_scope_id;
    } else {
        errno = EAFNOSUPPORT;
        return false;
    }
    if (port == 0) {
        errno = ENOENT;
        return false;
    }

    static const uint32_t wildcard[4] = {};
    uint32_t exact = 0, any = 0;
    bool ok = dump(tcp_listeners(family, port), [&](const unsigned char *p, size_t size) {
        inet_diag_msg m;
        if (size < sizeof m)
            return false;
        std::memcpy(&m, p, sizeof m);
        if (m.idiag_state != listen_state || m.id.idiag_sport != port || m.idiag_inode == 0)
            return false;
        // A link-local listener is bound to its interface as well.
        if (scope != 0 && m.id.idiag_if != 0 && m.id.idiag_if != scope)
            return false;
        if (std::memcmp(m.id.idiag_src, want, addr_size) == 0) {
            exact = m.idiag_inode;
            return true;
        }
        if (any == 0 && std::memcmp(m.id.idiag_src, wildcard, addr_size) == 0)
            any = m.idiag_inode;
        return false;
    });
    if (!ok)
        return false;
    if (exact == 0 && any == 0) {
        errno = ENOENT;
        return false;
    }
    ino = exact != 0 ? exact : any;
    return true;
}

void keep_socket(bool keep) {
    keeping = keep;
    if (keep && kept_fd < 0)
        kept_fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (!keep && kept_fd >= 0) {
        socket_guard gone{kept_fd};
        kept_fd = -1;
    }
}

}  // namespace fcgipm::sockdiag
