#include "os.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <time.h>
#include <unistd.h>

namespace fcgipm::os {

std::string errno_text(int err) {
    char buf[256];
    // GNU strerror_r returns the text, possibly not in buf.
    return ::strerror_r(err, buf, sizeof buf);
}

int64_t now_ms() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void close_fd(int fd) {
    if (fd >= 0)
        ::close(fd);  // Linux releases the descriptor even when close reports EINTR
}

int epoll_create() {
    return ::epoll_create1(EPOLL_CLOEXEC);
}

int epoll_add(int epfd, int fd, uint64_t tag, bool edge) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN | (edge ? EPOLLET : 0u);
    ev.data.u64 = tag;
    return ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void epoll_rearm(int epfd, int fd, uint64_t tag, bool on) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = tag;
    ::epoll_ctl(epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
}

void epoll_del(int epfd, int fd) {
    struct epoll_event ev = {};
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

int signalfd_create(const sigset_t &mask) {
    return ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

int epoll_wait_tags(int epfd, uint64_t *tags, int max, int64_t timeout_ms, bool &interrupted) {
    struct epoll_event events[8];
    if (max > 8)
        max = 8;
    int timeout = timeout_ms < 0 ? -1 : timeout_ms > INT32_MAX ? INT32_MAX : static_cast<int>(timeout_ms);
    int n = ::epoll_wait(epfd, events, max, timeout);
    interrupted = n < 0 && errno == EINTR;
    if (n < 0)
        return interrupted ? 0 : -1;  // EINTR: the caller's loop looks again
    for (int i = 0; i < n; ++i)
        tags[i] = events[i].data.u64;
    return n;
}

ssize_t read_signals(int sfd, signal_event *events, size_t max_events) {
    struct signalfd_siginfo info[8];
    size_t count = 0;
    while (count < max_events) {
        size_t want = std::min(max_events - count, sizeof info / sizeof info[0]);
        ssize_t n = ::read(sfd, info, want * sizeof info[0]);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -1;
        if (n <= 0)
            break;
        size_t got = static_cast<size_t>(n) / sizeof info[0];
        for (size_t i = 0; i < got; ++i)
            events[count++] = {static_cast<int>(info[i].ssi_signo), static_cast<pid_t>(info[i].ssi_pid),
                               info[i].ssi_code, info[i].ssi_int};
        if (got < want)
            break;  // drained; one arriving now leaves the descriptor readable for epoll
    }
    return static_cast<ssize_t>(count);
}

int eventfd_create() {
    return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void wake(int fd) {
    if (fd < 0)
        return;
    int saved = errno;
    uint64_t one = 1;
    ssize_t n = ::write(fd, &one, sizeof one);
    (void)n;  // EAGAIN: the counter is full, the loop is woken anyway
    errno = saved;
}

int drain_eventfd(int fd) {
    uint64_t value;
    ssize_t n;
    do
        n = ::read(fd, &value, sizeof value);
    while (n < 0 && errno == EINTR);
    return n < 0 && errno != EAGAIN ? -1 : 0;
}

bool cloexec_pipe(int fds[2]) {
    return ::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0;
}

int read_exec_failure(int fd, int &err) {
    ssize_t n;
    do
        n = ::read(fd, &err, sizeof err);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return 1;  // (4 bytes are written at once: a shorter read still means a failure)
    return n == 0 ? 0 : -1;
}

void write_exec_failure(int fd, int err) {
    if (fd < 0)
        return;
    ssize_t n = ::write(fd, &err, sizeof err);
    (void)n;
}

void wait_for_sigchld(int64_t timeout_ms) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    struct timespec t = {static_cast<time_t>(timeout_ms / 1000), static_cast<long>(timeout_ms % 1000) * 1000000};
    ::sigtimedwait(&chld, nullptr, &t);
}

pid_t exited_child() {
    siginfo_t info;
    info.si_pid = 0;
    int r;
    do
        r = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    return r < 0 ? 0 : info.si_pid;
}

pid_t reap(pid_t pid, int &status) {
    pid_t r;
    do
        r = ::waitpid(pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    return r;
}

pid_t reap_blocking(pid_t pid, int &status) {
    pid_t r;
    do
        r = ::waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    return r;
}

namespace {
bool is_listening(int fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
}
}  // namespace

std::vector<int> listening_fds() {
    std::vector<int> fds;
    DIR *dir = ::opendir("/proc/self/fd");
    if (!dir) {
        struct rlimit lim;
        rlim_t top = ::getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : 1024;
        for (int fd = 0; fd < static_cast<int>(std::min<rlim_t>(top, 65536)); ++fd)
            if (is_listening(fd))
                fds.push_back(fd);
        return fds;
    }
    int own = ::dirfd(dir);
    while (struct dirent *e = ::readdir(dir)) {
        char *end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == own)
            continue;
        if (is_listening(static_cast<int>(fd)))
            fds.push_back(static_cast<int>(fd));
    }
    ::closedir(dir);
    return fds;
}

bool name_of(int fd, socket_name &name) {
    name.len = sizeof name.addr;
    return ::getsockname(fd, reinterpret_cast<sockaddr *>(&name.addr), &name.len) == 0;
}

blocked_call interrupted_call(const void *context, int &fd) {
    fd = -1;
#if defined(__x86_64__)
    if (!context)
        return blocked_call::unknown;
    // A restarted system call is left by the kernel with rip on its `syscall`
    // instruction (0f 05) again and rax holding its number once more.
    const mcontext_t &m = static_cast<const ucontext_t *>(context)->uc_mcontext;
    auto *ip = reinterpret_cast<const unsigned char *>(m.gregs[REG_RIP]);
    if (!ip || ip[0] != 0x0f || ip[1] != 0x05)
        return blocked_call::none;
    fd = static_cast<int>(m.gregs[REG_RDI]);
    switch (m.gregs[REG_RAX]) {
    case SYS_read:
    case SYS_readv:
    case SYS_recvfrom:
    case SYS_recvmsg:
        return blocked_call::read;
    case SYS_write:
    case SYS_writev:
    case SYS_sendto:
    case SYS_sendmsg:
        return blocked_call::write;
    case SYS_accept:
    case SYS_accept4:
        return blocked_call::accept;
    default:
        return blocked_call::other;
    }
#else
    (void)context;
    return blocked_call::unknown;
#endif
}

namespace {
// Whether a connection's local address is that of the listening socket l.
bool accepted_on(const socket_name &c, const socket_name &l) {
    if (c.addr.ss_family != l.addr.ss_family)
        return false;
    switch (c.addr.ss_family) {
    case AF_UNIX:  // an accepted socket has its listener's name
        return c.len == l.len && c.len > sizeof(sa_family_t) && std::memcmp(&c.addr, &l.addr, c.len) == 0;
    case AF_INET: {
        auto &a = reinterpret_cast<const sockaddr_in &>(c.addr);
        auto &b = reinterpret_cast<const sockaddr_in &>(l.addr);
        return a.sin_port == b.sin_port &&
               (b.sin_addr.s_addr == htonl(INADDR_ANY) || a.sin_addr.s_addr == b.sin_addr.s_addr);
    }
    case AF_INET6: {
        auto &a = reinterpret_cast<const sockaddr_in6 &>(c.addr);
        auto &b = reinterpret_cast<const sockaddr_in6 &>(l.addr);
        return a.sin6_port == b.sin6_port && (IN6_IS_ADDR_UNSPECIFIED(&b.sin6_addr) ||
                                              std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0);
    }
    default:
        return false;
    }
}
}  // namespace

bool answered_and_quiet(int fd, const socket_name *names, int n) {
    int type = 0, unread = 0;
    socklen_t len = sizeof type;
    socket_name own;
    if (fd < 0 || is_listening(fd) || ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_STREAM || !name_of(fd, own))
        return false;
    bool ours = false;
    for (int i = 0; i < n && !ours; ++i)
        ours = accepted_on(own, names[i]);
    if (!ours || ::ioctl(fd, FIONREAD, &unread) != 0 || unread != 0)
        return false;
    if (own.addr.ss_family == AF_UNIX)
        return true;
    struct tcp_info info = {};
    len = sizeof info;
    // Sent on, and nothing received since (in ms: a request's first bytes after the
    // last reply mean one is arriving, split).
    return ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
           len >= offsetof(struct tcp_info, tcpi_data_segs_out) + sizeof info.tcpi_data_segs_out &&
           info.tcpi_data_segs_out > 0 && info.tcpi_last_data_recv >= info.tcpi_last_data_sent;
}

int thread_count() {
    DIR *dir = ::opendir("/proc/self/task");
    if (!dir)
        return 1;
    int n = 0;
    while (struct dirent *e = ::readdir(dir))
        if (e->d_name[0] != '.')
            ++n;
    ::closedir(dir);
    return n > 0 ? n : 1;
}

namespace {

// A message of one byte with room for one descriptor.
struct fd_message {
    char byte;
    struct iovec iov;
    struct msghdr msg;
    union {  // last: cmsghdr ends in a flexible array
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;

    explicit fd_message(char b) : byte(b), iov{&byte, 1}, msg{}, control{} {
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
    }
};

}  // namespace

void send_fd(int sock, char tag, int fd) {
    fd_message m(tag);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ::sendmsg(sock, &m.msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int receive_fd(int sock, char &tag) {
    fd_message m(0);
    ssize_t n = ::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
    tag = m.byte;
    struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&m.msg) : nullptr;
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

bool group_id(const std::string &name, gid_t &gid) {
    struct group g, *found = nullptr;
    char buf[4096];
    if (::getgrnam_r(name.c_str(), &g, buf, sizeof buf, &found) == 0 && found) {
        gid = found->gr_gid;
        return true;
    }
    char *end = nullptr;
    errno = 0;
    unsigned long n = std::strtoul(name.c_str(), &end, 10);
    if (name.empty() || *end || errno || n > 0x7fffffff)
        return false;
    gid = static_cast<gid_t>(n);
    return true;
}

namespace {

// The start of a small file (dir: a directory's descriptor, or AT_FDCWD), ended by a
// NUL; false if it cannot be opened or is empty.
bool read_small_file(int dir, const char *path, char *buf, size_t size) {
    int fd = ::openat(dir, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = ::read(fd, buf, size - 1);
    ::close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

}  // namespace

bool socket_identity(int fd, int &family, uint64_t &inode) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    struct stat st;
    if (::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0 || ::fstat(fd, &st) != 0)
        return false;
    family = addr.ss_family;
    inode = static_cast<uint64_t>(st.st_ino);
    return true;
}

bool process_size_kb(int64_t &size, int64_t &share) {
    char buf[128];
    if (!read_small_file(AT_FDCWD, "/proc/self/statm", buf, sizeof buf))
        return false;
    char *p = buf;
    long long pages = std::strtoll(p, &p, 10);
    std::strtoll(p, &p, 10);  // resident
    long long shared = std::strtoll(p, &p, 10);
    int64_t kb_per_page = ::sysconf(_SC_PAGESIZE) / 1024;
    size = pages * kb_per_page;
    share = shared * kb_per_page;
    return true;
}

bool proc_usage(int proc, pid_t pid, int64_t &cpu_us, int64_t &rss_kb) {
    char path[32], buf[1024];
    std::snprintf(path, sizeof path, "%d/stat", static_cast<int>(pid));
    if (!read_small_file(proc, path, buf, sizeof buf))
        return false;
    // After the command, which may hold spaces and parentheses: its last ')'. Then
    // state (3), ..., utime (14), stime (15), ..., rss (24, in pages).
    char *p = std::strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    long long rss = 0;
    if (!p || std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
                          &utime, &stime, &rss) != 3)
        return false;
    static const long long tick = ::sysconf(_SC_CLK_TCK), page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
    cpu_us = static_cast<int64_t>((utime + stime) * 1000000 / static_cast<unsigned long long>(tick));
    rss_kb = rss * page_kb;
    return true;
}

}  // namespace fcgipm::os
