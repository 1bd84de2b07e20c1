#include "os.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

int epoll_add(int epfd, int fd, uint64_t tag) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
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
            events[count++] = {static_cast<int>(info[i].ssi_signo), static_cast<pid_t>(info[i].ssi_pid)};
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

void *map_shared(size_t bytes) {
    void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
}

void unmap_shared(void *p, size_t bytes) {
    if (p)
        ::munmap(p, bytes);
}

bool process_size_kb(int64_t &size, int64_t &share) {
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *p = buf;
    long long pages = std::strtoll(p, &p, 10);
    std::strtoll(p, &p, 10);  // resident
    long long shared = std::strtoll(p, &p, 10);
    int64_t kb_per_page = ::sysconf(_SC_PAGESIZE) / 1024;
    size = pages * kb_per_page;
    share = shared * kb_per_page;
    return true;
}

}  // namespace fcgipm::os
