#include "scoreboard.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "os.h"
#include "sockdiag.h"

namespace fcgipm {

namespace board {

void copy_text(char *to, size_t to_size, const char *from, size_t from_size) {
    size_t n = ::strnlen(from, std::min(from_size, to_size - 1));
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(from[i]);
        to[i] = c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c);
    }
    to[n] = '\0';
}

bool read_view(const uint32_t &seq, const void *from, void *to, size_t n, int tries) {
    for (int i = 0; i < tries; ++i) {
        if (i >= 8)
            ::sched_yield();  // the writer may have been preempted mid-write: let it finish
        uint32_t before = __atomic_load_n(&seq, __ATOMIC_ACQUIRE);
        if (before & 1)
            continue;
        // A copy that a writer may be changing under it: word by word, each load
        // atomic (relaxed), checked by the counter after.
        const uint32_t *src = static_cast<const uint32_t *>(from);
        uint32_t *dst = static_cast<uint32_t *>(to);
        for (size_t k = 0; k < n / sizeof(uint32_t); ++k)
            dst[k] = __atomic_load_n(&src[k], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&seq, __ATOMIC_RELAXED) == before)
            return true;
    }
    return false;
}

uint32_t best_clock() {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return clock_coarse_ns;
    char source[32] = "";
    int fd = ::open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? ::read(fd, source, sizeof source - 1) : -1;
    os::close_fd(fd);
    std::string name(source, n > 0 ? static_cast<size_t>(n) : 0);
    if (name == "tsc\n" || name == "kvm-clock\n")
        return clock_tsc;
#endif
    return clock_coarse_ns;
}

}  // namespace board

namespace {

int64_t mono_ns() {
    struct timespec t;
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

int64_t unix_us() {
    struct timespec t;
    ::clock_gettime(CLOCK_REALTIME, &t);
    return static_cast<int64_t>(t.tv_sec) * 1000000 + t.tv_nsec / 1000;
}

void copy_text(char *to, size_t size, const std::string &from) {
    size_t n = std::min(from.size(), size - 1);
    std::memcpy(to, from.data(), n);
    to[n] = '\0';
}

}  // namespace

// A worker's mapping stays until the process ends: its signal handler writes its
// slot, and may run while the handle is destroyed at exit.
scoreboard::~scoreboard() {
    if (owner_)
        destroy();
}

bool scoreboard::create(size_t n, const std::string &title, int64_t start_ms) {
    destroy();
    size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    size_t want = std::max<size_t>(n, 1);
    bytes_ = (sizeof(board_header) + want * sizeof(worker_slot) + page - 1) / page * page;
    capacity_ = (bytes_ - sizeof(board_header)) / sizeof(worker_slot);
    // A memfd: readers of the manager's user find it in /proc/PID/fd; nothing is
    // left behind when the last process holding it ends. Without one (a kernel
    // before 3.17, or a seccomp filter), the pool still runs, unseen by status.
    // Sealed at its size: no holder of a descriptor (an exec'd worker) can shrink
    // it under the others' mappings (SIGBUS).
    fd_ = ::memfd_create(memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *p = MAP_FAILED;
    if (fd_ >= 0) {
        ::fchmod(fd_, 0600);
        if (::ftruncate(fd_, static_cast<off_t>(bytes_)) == 0 &&
            ::fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
            p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED) {
            os::close_fd(fd_);
            fd_ = -1;
        }
    }
    if (p == MAP_FAILED)
        p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        bytes_ = capacity_ = 0;
        return false;
    }
    header_ = static_cast<board_header *>(p);
    slots_ = reinterpret_cast<worker_slot *>(static_cast<char *>(p) + sizeof(board_header));
    owner_ = true;
    board_header &h = *header_;
    h.magic = board_magic;
    h.version = board_version;
    h.header_size = sizeof(board_header);
    h.slot_size = sizeof(worker_slot);
    h.capacity = static_cast<uint32_t>(capacity_);
    h.manager_pid = ::getpid();
    h.clock = board::best_clock();
    h.start_unix_us = unix_us() - (os::now_ms() - start_ms) * 1000;
    h.start_mono_ns = start_ms * 1000000;
    h.clock_ref_ticks = board::ticks(h.clock);
    h.clock_ref_ns = mono_ns();
    copy_text(h.title, sizeof h.title, title);
    constants_ = h;
    shadow_.assign(capacity_, manager_view{});
    return true;
}

bool scoreboard::valid_layout(const board_header &h, size_t bytes) {
    return bytes >= sizeof(board_header) && h.magic == board_magic && h.version == board_version &&
           h.header_size == sizeof(board_header) && h.slot_size == sizeof(worker_slot) &&
           h.capacity <= (bytes - sizeof(board_header)) / sizeof(worker_slot);
}

bool scoreboard::sealed(int fd) {
    int seals = ::fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK);
}

bool scoreboard::attach(int fd) {
    destroy();
    struct stat st;
    if (!sealed(fd) || ::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(board_header)))
        return false;
    size_t bytes = static_cast<size_t>(st.st_size);
    void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return false;
    header_ = static_cast<board_header *>(p);
    bytes_ = bytes;
    if (!valid_layout(*header_, bytes)) {
        destroy();
        return false;
    }
    slots_ = reinterpret_cast<worker_slot *>(static_cast<char *>(p) + sizeof(board_header));
    capacity_ = header_->capacity;
    return true;
}

void scoreboard::destroy() {
    if (owner_)
        sockdiag::keep_socket(false);
    close_status_socket(true);
    if (header_)
        ::munmap(header_, bytes_);
    header_ = nullptr;
    slots_ = nullptr;
    bytes_ = capacity_ = 0;
    close_fds();
}

void scoreboard::close_fds() {
    owner_ = false;  // a worker's now
    sockdiag::keep_socket(false);
    os::close_fd(fd_);
    fd_ = -1;
    close_status_socket(false);
    status_path_.clear();  // the manager's to remove
}

void scoreboard::set_listeners(const std::vector<int> &fds) {
    if (!header_)
        return;
    board::write_begin(header_->seq);
    uint32_t n = 0;
    for (int fd : fds) {
        int family;
        uint64_t inode;
        if (n < board_listeners && os::socket_identity(fd, family, inode))
            header_->listeners[n++] = {static_cast<uint32_t>(family), 0, inode};
    }
    header_->n_listeners = n;
    sockdiag::keep_socket(true);  // for the samples: opened now, with the manager's other descriptors
    std::copy(std::begin(header_->listeners), std::end(header_->listeners), std::begin(constants_.listeners));
    constants_.n_listeners = n;
    board::write_end(header_->seq);
}

void scoreboard::publish(const pool_figures &f) {
    if (!header_)
        return;
    board_header &h = *header_;
    board::write_begin(h.seq);
    h.phase = f.phase;
    h.target = f.target;
    h.live = f.live;
    h.ready = f.ready;
    h.stopping = f.stopping;
    h.crash_limited = f.crash_limited;
    h.mode = f.mode;
    h.backoff_until_mono_ns = f.backoff_until_ms > 0 ? f.backoff_until_ms * 1000000 : 0;
    h.counts = counts;
    board::write_end(h.seq);
}

void scoreboard::reset_slot(size_t i) {
    if (i >= capacity_)
        return;
    worker_slot &s = slots_[i];
    board::write_begin(header_->seq);  // readers see the slot before or after, whole
    __atomic_store_n(&s.state, 0, __ATOMIC_RELAXED);
    s.initialized = 0;
    s.stopped = 0;
    s.views = 0;
    s.requests = 0;
    __atomic_store_n(&s.deadline_start, 0, __ATOMIC_RELAXED);
    board::write_begin(s.wseq);  // no worker writes it now: the last one is reaped
    s.busy = 0;
    s.served = 0;
    s.request_start = 0;
    s.last_duration = 0;
    s.method[0] = s.remote[0] = s.uri[0] = '\0';
    board::write_end(s.wseq);
    board::write_end(header_->seq);
}

// Every write of a manager's view is under the header's counter too: a reader's
// snapshot then has the slots that the header's figures count.
template <class F>
void scoreboard::write_manager_view(size_t i, F &&f) {
    if (i >= capacity_)
        return;
    worker_slot &s = slots_[i];
    board::write_begin(header_->seq);
    board::write_begin(s.mseq);
    f(s, *header_);
    manager_view &m = shadow_[i];
    m = {s.pid, s.started_unix_us, s.told_to_stop, s.flags, s.usage_requests, s.cpu_us, s.rss_kb, m.usage_at_ms};
    board::write_end(s.mseq);
    board::write_end(header_->seq);
}

void scoreboard::slot_started(size_t i, pid_t pid, bool exec) {
    write_manager_view(i, [&](worker_slot &s, board_header &h) {
        s.pid = pid;
        s.started_unix_us = unix_us();
        s.told_to_stop = 0;
        s.flags = exec ? slot_flag_exec : 0;
        s.usage_requests = 0;
        s.cpu_us = s.rss_kb = -1;
        h.counts = counts;
    });
}

void scoreboard::slot_ready(size_t i) {
    write_manager_view(i, [](worker_slot &s, board_header &) { s.flags |= slot_flag_ready; });
}

void scoreboard::slot_told_to_stop(size_t i) {
    write_manager_view(i, [](worker_slot &s, board_header &) { s.told_to_stop = 1; });
}

void scoreboard::slot_cleared(size_t i) {
    write_manager_view(i, [&](worker_slot &s, board_header &h) {
        // The count the reader stops taking from the slot (a worker's own number:
        // bounded, so that garbage cannot run the total to absurd heights).
        counts.served_by_gone += std::min<uint64_t>(uint64_t{s.requests}, uint64_t(1) << 40);
        s.pid = 0;
        s.told_to_stop = 0;
        h.counts = counts;
    });
}

int64_t scoreboard::idle_ms(size_t i) const {
    if (!header_ || i >= capacity_)
        return -1;
    const worker_slot &s = slots_[i];
    if (!(__atomic_load_n(&s.views, __ATOMIC_RELAXED) & views_written))
        return -1;
    // Two words the worker writes together: a torn pair only misjudges the time,
    // which is bounded below.
    uint64_t start = __atomic_load_n(&s.request_start, __ATOMIC_RELAXED);
    uint64_t duration = __atomic_load_n(&s.last_duration, __ATOMIC_RELAXED);
    if (!start || __atomic_load_n(&s.busy, __ATOMIC_RELAXED))
        return -1;
    uint64_t now = board::ticks(constants_.clock);
    uint64_t end = start + duration;
    if (end > now)
        return 0;
    int64_t mono = mono_ns();
    double ms = static_cast<double>(now - end) *
                board::ns_per_tick(constants_.clock, constants_.clock_ref_ticks, constants_.clock_ref_ns, now, mono) /
                1e6;
    double uptime_ms = static_cast<double>(mono - constants_.start_mono_ns) / 1e6;
    return static_cast<int64_t>(std::max(0.0, std::min(ms, uptime_ms)));
}

bool scoreboard::request_running(size_t i, running_request &out) const {
    if (!header_ || i >= capacity_)
        return false;
    const worker_slot &s = slots_[i];
    if (!(__atomic_load_n(&s.views, __ATOMIC_RELAXED) & views_written) || !__atomic_load_n(&s.busy, __ATOMIC_RELAXED))
        return false;
    worker_slot copy = {};
    constexpr size_t view = sizeof(worker_slot) - offsetof(worker_slot, busy);
    if (!board::read_view(s.wseq, &s.busy, &copy.busy, view, 20) || !copy.busy || !copy.request_start)
        return false;
    uint64_t now = board::ticks(constants_.clock);
    int64_t mono = mono_ns();
    double ms = now > copy.request_start
                    ? static_cast<double>(now - copy.request_start) *
                          board::ns_per_tick(constants_.clock, constants_.clock_ref_ticks, constants_.clock_ref_ns,
                                             now, mono) /
                          1e6
                    : 0.0;
    double uptime_ms = static_cast<double>(mono - constants_.start_mono_ns) / 1e6;
    out.start = copy.request_start;
    out.ms = static_cast<int64_t>(std::max(0.0, std::min(ms, uptime_ms)));
    board::copy_text(out.method, sizeof out.method, copy.method, sizeof copy.method);
    board::copy_text(out.uri, sizeof out.uri, copy.uri, sizeof copy.uri);
    return true;
}

int64_t scoreboard::rss_kb(size_t i) const {
    if (i >= shadow_.size() || shadow_[i].cpu_us < 0)
        return -1;
    return shadow_[i].rss_kb;
}

void scoreboard::sample(const std::vector<pid_t> &live_pids_by_slot, int64_t now) {
    if (!header_)
        return;
    uint64_t live = 0, busy = 0;
    int proc = -1;
    for (size_t i = 0; i < live_pids_by_slot.size() && i < capacity_; ++i) {
        if (!live_pids_by_slot[i])
            continue;
        ++live;
        // The stop protocol's phase (forked workers), or the worker's view (exec'd
        // ones on this library write only that).
        const worker_slot &s = slots_[i];
        bool is_busy = (board::load(s) & board::phase_mask) == board::busy ||
                       __atomic_load_n(&s.busy, __ATOMIC_RELAXED) != 0;
        busy += is_busy;
        // An idle worker's CPU time and memory, read after its count (a request
        // that ends meanwhile leaves the figures with the count it had: a reader
        // then reads /proc itself). Once per request at most: an idle pool costs
        // nothing but the refresh of figures older than usage_refresh_ms.
        manager_view &m = shadow_[i];
        uint64_t served = __atomic_load_n(&s.requests, __ATOMIC_ACQUIRE);
        if (is_busy || !s.initialized || m.pid != live_pids_by_slot[i] ||
            (m.cpu_us >= 0 && m.usage_requests == served && now - m.usage_at_ms < usage_refresh_ms))
            continue;
        if (proc < 0 && (proc = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            continue;
        int64_t cpu_us, rss_kb;
        if (os::proc_usage(proc, m.pid, cpu_us, rss_kb)) {
            m.usage_requests = served;
            m.cpu_us = cpu_us;
            m.rss_kb = rss_kb;
            m.usage_at_ms = now;
        }
    }
    os::close_fd(proc);
    counts.max_busy = std::max(counts.max_busy, busy);
    counts.pool_full += live > 0 && busy == live;
    for (uint32_t k = 0; k < constants_.n_listeners; ++k) {
        sockdiag::listen_queue q;
        const board_listener &l = constants_.listeners[k];
        if (sockdiag::queue_of(static_cast<int>(l.family), l.inode, q))
            counts.max_queue = std::max(counts.max_queue, q.length);
    }
    heal();
}

// What the manager wrote, written again: constants and views a worker may have
// overwritten are right within a second (and their counters even again).
void scoreboard::heal() {
    board_header &h = *header_;
    board::write_begin(h.seq);
    h.magic = constants_.magic;
    h.version = constants_.version;
    h.header_size = constants_.header_size;
    h.slot_size = constants_.slot_size;
    h.capacity = constants_.capacity;
    h.manager_pid = constants_.manager_pid;
    h.clock = constants_.clock;
    h.start_unix_us = constants_.start_unix_us;
    h.start_mono_ns = constants_.start_mono_ns;
    h.clock_ref_ticks = constants_.clock_ref_ticks;
    h.clock_ref_ns = constants_.clock_ref_ns;
    h.n_listeners = constants_.n_listeners;
    std::copy(std::begin(constants_.listeners), std::end(constants_.listeners), std::begin(h.listeners));
    std::copy(std::begin(constants_.title), std::end(constants_.title), std::begin(h.title));
    for (size_t i = 0; i < capacity_; ++i) {
        worker_slot &s = slots_[i];
        const manager_view &m = shadow_[i];
        board::write_begin(s.mseq);
        s.pid = m.pid;
        s.started_unix_us = m.started_unix_us;
        s.told_to_stop = m.told_to_stop;
        s.flags = m.flags;
        s.usage_requests = m.usage_requests;
        s.cpu_us = m.cpu_us;
        s.rss_kb = m.rss_kb;
        board::write_end(s.mseq);
    }
    board::write_end(h.seq);
}

// --- the status socket: hands a read-only descriptor of the memfd to whoever connects

int scoreboard::open_status_socket(const std::string &path, gid_t group, bool with_group, std::string &error) {
    if (fd_ < 0) {
        error = "status_socket: no scoreboard to share (memfd_create failed)";
        return -1;
    }
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        error = "status_socket: " + path + ": path too long";
        return -1;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // Read-only from here: what is handed out cannot write a slot.
    std::string self = "/proc/self/fd/" + std::to_string(fd_);
    read_only_fd_ = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
    int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (read_only_fd_ < 0 || sock < 0) {
        error = "status_socket: " + os::errno_text(errno);
        os::close_fd(sock);
        close_status_socket(false);
        return -1;
    }
    // A socket file left by a manager that was killed (nothing answers on it) is
    // replaced; a live one, or anything else at the path, is not.
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool stale = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 &&
                     errno == ECONNREFUSED;
        os::close_fd(probe);
        if (!stale) {
            error = "status_socket: " + path + ": in use (something answers on it)";
            os::close_fd(sock);
            close_status_socket(false);
            errno = EADDRINUSE;
            return -1;
        }
        ::unlink(path.c_str());
    }
    mode_t old = ::umask(0777);  // no moment with looser permissions than asked
    int rc = ::bind(sock, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0 || (with_group && ::chown(path.c_str(), static_cast<uid_t>(-1), group) != 0) ||
        ::chmod(path.c_str(), with_group ? 0660 : 0600) != 0 || ::listen(sock, 16) != 0) {
        error = "status_socket: " + path + ": " + os::errno_text(errno);
        if (rc == 0)
            ::unlink(path.c_str());
        os::close_fd(sock);
        close_status_socket(false);
        return -1;
    }
    status_sock_ = sock;
    status_path_ = path;
    return sock;
}

bool scoreboard::answer_status() {
    for (;;) {
        int conn = ::accept4(status_sock_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
            // Nothing more to answer now, or a connection that failed on its own;
            // anything else (no descriptor left, a socket shut down) would come
            // back at once, every time the loop waits.
            int err = errno;
            if (err == EAGAIN || err == EINTR || err == ECONNABORTED || err == EPROTO)
                return true;
            close_status_socket(true);
            errno = err;
            return false;
        }
        os::send_fd(conn, status_tag_byte, read_only_fd_);
        os::close_fd(conn);
    }
}

void scoreboard::close_status_socket(bool unlink_path) {
    if (status_sock_ >= 0 && unlink_path && !status_path_.empty())
        ::unlink(status_path_.c_str());
    os::close_fd(status_sock_);
    os::close_fd(read_only_fd_);
    status_sock_ = read_only_fd_ = -1;
    if (unlink_path)
        status_path_.clear();
}

}  // namespace fcgipm
