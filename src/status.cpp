#include "status.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <dirent.h>
#include <system_error>
#include <thread>
#include <fcntl.h>
#include <netdb.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "os.h"
#include "pidfile.h"
#include "scoreboard.h"
#include "sockdiag.h"

namespace fcgipm {

namespace {

const char *const phase_names[] = {"starting", "running", "reloading", "stopping", "done"};
const char *const mode_names[] = {"static", "dynamic", "ondemand"};  // pool_mode's order

int64_t clock_ns(clockid_t id) {
    struct timespec t;
    ::clock_gettime(id, &t);
    return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// A string field of the board, cut at its size whatever was written there, and
// printable ASCII (any other byte becomes '?': a URI is sent percent-encoded, and
// nothing a worker wrote reaches a terminal as a control sequence).
bool is_number(const std::string &s) {
    return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string fd_link(int pid, const char *fd) {
    char link[256];
    std::string path = "/proc/" + std::to_string(pid) + "/fd/" + fd;
    ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
    return n > 0 ? std::string(link, static_cast<size_t>(n)) : std::string();
}

// The descriptor number of the scoreboard in process pid, or "" if it holds none;
// err is the errno of a /proc/PID/fd that could not be read (0 if it could).
std::string board_fd_of(int pid, int &err) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR *d = ::opendir(dir.c_str());
    err = d ? 0 : errno;
    if (!d)
        return "";
    std::string want = std::string("/memfd:") + scoreboard::memfd_name + " (deleted)";
    std::string found;
    while (struct dirent *e = ::readdir(d))
        if (e->d_name[0] != '.' && fd_link(pid, e->d_name) == want) {
            found = e->d_name;
            break;
        }
    ::closedir(d);
    return found;
}

bool holds_socket(int pid, uint64_t ino) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR *d = ::opendir(dir.c_str());
    if (!d)
        return false;
    std::string want = "socket:[" + std::to_string(ino) + "]";
    bool found = false;
    while (struct dirent *e = ::readdir(d))
        if (e->d_name[0] != '.' && fd_link(pid, e->d_name) == want) {
            found = true;
            break;
        }
    ::closedir(d);
    return found;
}

std::string command_of(int pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/comm";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "";
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    std::string s = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!s.empty() && s.back() == '\n')
        s.pop_back();
    return s;
}

uid_t owner_of(int pid) {
    struct stat st;
    std::string path = "/proc/" + std::to_string(pid);
    return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

// The CPU time and memory of the workers whose figures the scoreboard does not hold
// current (busy, starting, stopping, not on this library, or served a request since
// the manager's last look), from /proc. About 10 us a file: shared among a few
// threads (one per CPU, at most 4) from 64 workers on.
void read_proc(std::vector<worker_status> &all) {
    std::vector<worker_status *> workers;
    for (worker_status &w : all)
        if (w.cpu_us < 0)
            workers.push_back(&w);
    if (workers.empty())
        return;
    int proc = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (proc < 0)
        return;
    size_t n = workers.size();
    auto range = [&](size_t from, size_t step) {
        for (size_t i = from; i < n; i += step) {
            int64_t cpu_us, rss_kb;
            if (os::proc_usage(proc, workers[i]->pid, cpu_us, rss_kb)) {
                workers[i]->cpu_us = cpu_us;
                workers[i]->rss_kb = rss_kb;
            }
        }
    };
    size_t threads = n >= 64 ? std::min<size_t>(4, std::max(1u, std::thread::hardware_concurrency())) : 1;
    std::vector<std::thread> helpers;
    try {
        for (size_t t = 1; t < threads; ++t)
            helpers.emplace_back(range, t, threads);
    } catch (const std::system_error &) {
        // No thread to be had: this one does their share too.
        for (size_t t = helpers.size() + 1; t < threads; ++t)
            range(t, threads);
    }
    range(0, threads);
    for (std::thread &h : helpers)
        h.join();
    ::close(proc);
}

}  // namespace

status_reader::~status_reader() {
    close();
}

void status_reader::close() {
    if (header_)
        ::munmap(const_cast<board_header *>(header_), bytes_);
    header_ = nullptr;
    bytes_ = 0;
    pid_ = 0;
    have_ = false;
    workers_.clear();
}

void status_reader::open(const std::string &target) {
    close();
    if (target.empty())
        throw error(PM_EINVAL, "status: no manager given (a pid, pid file or socket)");
    if (is_number(target))
        return open_pid(std::stoi(target), "pid " + target);
    if (target.compare(0, 5, "unix:") == 0 || target.compare(0, 4, "tcp:") == 0)
        return open_socket(target);
    struct stat st;
    if (::stat(target.c_str(), &st) == 0) {
        if (S_ISSOCK(st.st_mode))
            return open_socket(target);
        if (S_ISREG(st.st_mode))
            return open_pid_file(target);
        throw error(PM_EINVAL, target + ": not a pid file or socket");
    }
    if (errno == ENOENT && target.find('/') == std::string::npos && target.rfind(':') != std::string::npos)
        return open_socket(target);  // HOST:PORT
    throw error(PM_ESYS, target + ": " + os::errno_text(errno), errno);
}

void status_reader::open_pid_file(const std::string &path) {
    pid_t pid = read_pid_file(path);
    if (pid <= 0)
        throw error(PM_EINVAL, path + ": no pid in it");
    std::string what = "pid " + std::to_string(pid) + " (from " + path + ")";
    if (::kill(pid, 0) != 0 && errno == ESRCH)
        throw error(PM_ESYS, what + ": the manager is gone (no such process)", ESRCH);
    open_pid(pid, what);
}

void status_reader::open_pid(int pid, const std::string &what) {
    if (pid <= 0)
        throw error(PM_EINVAL, what + ": not a process id");
    std::string proc = "/proc/" + std::to_string(pid);
    if (::access(proc.c_str(), F_OK) != 0)
        throw error(PM_ESYS, what + ": no such process", ESRCH);
    int err = 0;
    std::string fd = board_fd_of(pid, err);
    if (err == EACCES || err == EPERM) {
        uid_t uid = owner_of(pid);
        throw error(PM_ESYS,
                    what + ": belongs to another user (uid " + std::to_string(uid) +
                        "): permission denied (run as that user, or use the manager's status_socket)",
                    EACCES);
    }
    if (err)
        throw error(PM_ESYS, what + ": " + os::errno_text(err), err);
    if (fd.empty())
        throw error(PM_EINVAL, what + " (" + command_of(pid) + ") is not an fcgi-pm manager (no scoreboard)");
    int board = ::open((proc + "/fd/" + fd).c_str(), O_RDONLY | O_CLOEXEC);
    if (board < 0) {
        int e = errno;
        throw error(PM_ESYS, what + ": scoreboard: " + os::errno_text(e), e);
    }
    map(board, pid, what);
}

// A FastCGI listener (the manager that holds it), or else a status socket.
void status_reader::open_socket(const std::string &target) {
    std::string spec = target;
    bool tcp = false;
    if (spec.compare(0, 5, "unix:") == 0) {
        spec = spec.substr(5);
    } else if (spec.compare(0, 4, "tcp:") == 0) {
        spec = spec.substr(4);
        tcp = true;
    } else {
        struct stat st;
        tcp = ::stat(spec.c_str(), &st) != 0;
    }
    uint64_t ino = 0;
    if (tcp) {
        size_t colon = spec.rfind(':');
        if (colon == std::string::npos)
            throw error(PM_EINVAL, target + ": not HOST:PORT");
        std::string host = spec.substr(0, colon), port = spec.substr(colon + 1);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        struct addrinfo hints = {}, *res = nullptr;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
        if (rc != 0)
            throw error(PM_EINVAL, target + ": " + ::gai_strerror(rc));
        bool found = false;
        for (struct addrinfo *a = res; a && !found; a = a->ai_next)
            found = sockdiag::find_tcp_listener(a->ai_addr, a->ai_addrlen, ino);
        ::freeaddrinfo(res);
        if (!found)
            throw error(PM_ESYS, target + ": nothing listens there", ENOENT);
    } else if (!sockdiag::find_unix_listener(spec, ino)) {
        if (errno != ENOENT)
            throw error(PM_ESYS, target + ": socket diagnostics: " + os::errno_text(errno), errno);
        if (open_status_socket(spec))
            return;
        throw error(PM_ESYS, target + ": nothing listens there", ENOENT);
    }
    // The manager among the processes that hold the listener: the one holding a
    // scoreboard that names it (workers hold the listener, not the board).
    DIR *d = ::opendir("/proc");
    if (!d)
        throw error(PM_ESYS, std::string("/proc: ") + os::errno_text(errno), errno);
    std::vector<int> holders, managers;
    bool denied = false;
    while (struct dirent *e = ::readdir(d)) {
        if (!is_number(e->d_name))
            continue;
        int pid = std::atoi(e->d_name);
        std::string dir = std::string("/proc/") + e->d_name + "/fd";
        if (::access(dir.c_str(), R_OK | X_OK) != 0) {
            denied = true;
            continue;
        }
        if (!holds_socket(pid, ino))
            continue;
        holders.push_back(pid);
        int err = 0;
        if (!board_fd_of(pid, err).empty())
            managers.push_back(pid);
    }
    ::closedir(d);
    for (int pid : managers) {
        try {
            open_pid(pid, "pid " + std::to_string(pid) + " (on " + target + ")");
            if (header_->manager_pid == pid)
                return;
        } catch (const error &) {
        }
        close();
    }
    // None seen: perhaps it is a manager's status socket, or held by another user.
    if (holders.empty() && !tcp && open_status_socket(spec))
        return;
    if (holders.empty() && denied)
        throw error(PM_ESYS, target + ": held by processes of another user: permission denied", EACCES);
    throw error(PM_EINVAL, target + ": no fcgi-pm manager holds this socket");
}

// The manager's status socket: it hands over the scoreboard's descriptor.
bool status_reader::open_status_socket(const std::string &path) {
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return false;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return false;
    struct timeval limit = {2, 0};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (::connect(sock, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        int e = errno;
        ::close(sock);
        if (e == EACCES)
            throw error(PM_ESYS, path + ": permission denied (not the manager's user or status_group)", e);
        if (e == ECONNREFUSED)
            throw error(PM_ESYS, path + ": the manager is gone (connection refused)", ESRCH);
        return false;
    }
    char tag = 0;
    int fd = os::receive_fd(sock, tag);
    ::close(sock);
    if (fd < 0 || tag != scoreboard::status_tag_byte) {
        if (fd >= 0)
            ::close(fd);
        throw error(PM_EINVAL, path + ": not an fcgi-pm status socket");
    }
    map(fd, 0, path);
    return true;
}

// Maps the board behind fd (closed here) and checks its layout; pid 0: whichever
// manager it names.
void status_reader::map(int fd, int pid, const std::string &what) {
    struct stat st;
    if (!scoreboard::sealed(fd)) {
        ::close(fd);
        throw error(PM_EBADVALUE, what + ": not a scoreboard sealed at its size");
    }
    // The most a pool can have (n_processes' bound), with room: nothing bigger is mapped.
    constexpr off_t max_bytes = sizeof(board_header) + 200000 * static_cast<off_t>(sizeof(worker_slot));
    if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(board_header)) || st.st_size > max_bytes) {
        ::close(fd);
        throw error(PM_EBADVALUE, what + ": a scoreboard of an impossible size");
    }
    size_t bytes = static_cast<size_t>(st.st_size);
    void *p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    int e = errno;
    ::close(fd);
    if (p == MAP_FAILED)
        throw error(PM_ESYS, what + ": mmap: " + os::errno_text(e), e);
    header_ = static_cast<const board_header *>(p);
    bytes_ = bytes;
    if (!scoreboard::valid_layout(*header_, bytes)) {
        bool other = header_->magic == board_magic;
        close();
        throw error(PM_EBADVALUE, what + (other ? ": a scoreboard of another fcgi-pm version (layout)"
                                                : ": not an fcgi-pm scoreboard"));
    }
    if (pid && header_->manager_pid != pid) {
        int manager = header_->manager_pid;
        close();
        throw error(PM_EINVAL, what + " is a worker, not a manager (its manager: pid " + std::to_string(manager) + ")");
    }
    pid_ = pid ? pid : header_->manager_pid;
    what_ = pid ? what : what + " (manager pid " + std::to_string(pid_) + ")";
}

void status_reader::read(int flags) {
    if (!header_)
        throw error(PM_ESTATE, "status: no manager open");
    if (::kill(pid_, 0) != 0 && errno == ESRCH)
        throw error(PM_ESYS, what_ + ": the manager is gone", ESRCH);
    // The header's counter brackets the whole copy: the manager moves it whenever it
    // changes the set of workers (a fork, a reap, a slot reset), so a snapshot that
    // it did not move across has each slot's views from the same worker, and the
    // header's figures from that moment. Workers never move it.
    const board_header &live = *header_;
    size_t capacity = std::min<size_t>(live.capacity, (bytes_ - sizeof(board_header)) / sizeof(worker_slot));
    const worker_slot *slots = reinterpret_cast<const worker_slot *>(reinterpret_cast<const char *>(header_) +
                                                                      sizeof(board_header));
    constexpr size_t manager_view = offsetof(worker_slot, wseq) - offsetof(worker_slot, pid);
    constexpr size_t worker_view = sizeof(worker_slot) - offsetof(worker_slot, busy);
    board_header h;
    std::vector<worker_status> &workers = next_;
    workers.reserve(capacity);  // at once: growing it step by step costs a first read more than the copy
    int64_t mono = 0, now_us = 0, uptime_us = 0;
    uint64_t now_ticks = 0;
    double ns_per_tick = 1.0;
    // Ticks as microseconds, between 0 and the manager's uptime (a time a worker wrote
    // is a worker's word).
    auto ticks_us = [&](uint64_t t) -> long long {
        double us = static_cast<double>(t) * ns_per_tick / 1000;
        return us >= static_cast<double>(uptime_us) ? uptime_us : static_cast<long long>(us);
    };
    auto ticks_ago_us = [&](uint64_t t) -> long long { return t <= now_ticks ? ticks_us(now_ticks - t) : 0; };
    // One worker of the snapshot, from its slot's copy c (view: its own view is whole).
    auto add_worker = [&](const worker_slot &c, bool view, size_t i) {
        uint32_t state = c.state;
        worker_status w = {};
        w.pid = c.pid;
        w.slot = static_cast<int>(i);
        w.started_us = c.started_unix_us;
        w.request_start_us = w.request_us = -1;
        w.cpu_us = w.rss_kb = -1;
        // The count as the manager adds it to served_by_gone when it reaps the worker
        // (so the total neither misses nor doubles it across a reap), bounded as it
        // is there; from the worker's view, with the request's end, when it is whole.
        uint64_t served = view ? c.served : uint64_t{c.requests};
        w.requests = std::min<uint64_t>(served, uint64_t(1) << 40);
        w.busy = (state & board::phase_mask) == board::busy;
        if (view) {
            w.busy = c.busy != 0;
            if (c.request_start) {
                long long ago = ticks_ago_us(c.request_start);
                w.request_start_us = now_us - ago;
                w.request_us = w.busy ? ago : ticks_us(c.last_duration);
            }
            board::copy_text(w.method, sizeof w.method, c.method, sizeof c.method);
            board::copy_text(w.uri, sizeof w.uri, c.uri, sizeof c.uri);
            board::copy_text(w.remote, sizeof w.remote, c.remote, sizeof c.remote);
        }
        if (c.told_to_stop || (state & board::stop_mask))
            w.state = PM_WORKER_STOPPING;
        else if (c.initialized)
            w.state = w.busy ? PM_WORKER_BUSY : PM_WORKER_IDLE;
        else if ((c.flags & slot_flag_exec) && (c.flags & slot_flag_ready))
            w.state = PM_WORKER_RUNNING;  // exec'd, and not reporting (yet)
        else
            w.state = PM_WORKER_STARTING;
        // CPU time and memory as the manager read them, while they are current: the
        // worker is idle and has served nothing since (bounded: a worker's word too).
        if (w.state == PM_WORKER_IDLE && c.cpu_us >= 0 && c.rss_kb >= 0 && c.usage_requests == served) {
            w.cpu_us = std::min<long long>(c.cpu_us, 1LL << 52);
            w.rss_kb = std::min<long long>(c.rss_kb, 1LL << 40);
        }
        workers.push_back(w);
    };
    constexpr int32_t pid_max = 4194304;  // the kernel's limit (PID_MAX_LIMIT)
    bool consistent = false;
    // A deadline rather than a count: a worker that keeps a counter moving (or odd)
    // costs a reader this much at most.
    int64_t give_up = clock_ns(CLOCK_MONOTONIC) + 200 * 1000000LL;
    for (int attempt = 0; !consistent && (attempt < 3 || clock_ns(CLOCK_MONOTONIC) < give_up); ++attempt) {
        uint32_t before = __atomic_load_n(&live.seq, __ATOMIC_ACQUIRE);
        if (!board::read_view(live.seq, &live, &h, sizeof h))
            continue;
        mono = clock_ns(CLOCK_MONOTONIC);
        now_us = clock_ns(CLOCK_REALTIME) / 1000;
        now_ticks = board::ticks(h.clock);
        ns_per_tick = board::ns_per_tick(h.clock, h.clock_ref_ticks, h.clock_ref_ns, now_ticks, mono);
        uptime_us = std::max<long long>(0, (mono - h.start_mono_ns) / 1000);
        workers.clear();
        for (size_t i = 0; i < capacity; ++i) {
            worker_slot c{};
            // A manager's view that stays mid-write was written over (by a worker
            // gone wrong): that slot is left out until the manager writes it again.
            if (!board::read_view(slots[i].mseq, &slots[i].pid, &c.pid, manager_view, 20) || c.pid <= 0 ||
                c.pid > pid_max)
                continue;
            c.initialized = slots[i].initialized;
            c.views = slots[i].views;
            c.requests = slots[i].requests;  // one aligned word: never torn
            c.state = board::load(slots[i]);
            // The worker's own view: whole, or left out of this snapshot's detail.
            bool view = (c.views & views_written) && board::read_view(slots[i].wseq, &slots[i].busy, &c.busy, worker_view, 20);
            add_worker(c, view, i);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        consistent = __atomic_load_n(&live.seq, __ATOMIC_RELAXED) == before;
    }
    if (!consistent)
        throw error(PM_EBADVALUE, what_ + ": the scoreboard kept changing (corrupt?)");

    pool_status p = {};
    p.manager_pid = pid_;
    board::copy_text(p.title, sizeof p.title, h.title, sizeof h.title);
    std::snprintf(p.phase, sizeof p.phase, "%s", h.phase < 5 ? phase_names[h.phase] : "?");
    std::snprintf(p.mode, sizeof p.mode, "%s", h.mode < 3 ? mode_names[h.mode] : "?");
    p.started_us = h.start_unix_us;
    p.uptime_us = uptime_us;
    p.target = static_cast<int>(std::min<uint32_t>(h.target, 1000000));
    p.crash_backoff = h.crash_limited != 0;
    p.backoff_us = h.crash_limited && h.backoff_until_mono_ns > mono ? (h.backoff_until_mono_ns - mono) / 1000 : 0;
    p.requests = h.counts.served_by_gone;
    p.spawned = h.counts.spawned;
    p.respawns = h.counts.respawns;
    p.exits = h.counts.exits;
    p.crashes = h.counts.crashes;
    p.reloads = h.counts.reloads;
    p.pool_full = h.counts.pool_full;
    p.slow_requests = h.counts.slow_requests;
    p.deadline_kills = h.counts.deadline_kills;
    p.recycled = h.counts.recycled;
    p.workers = static_cast<int>(workers.size());
    for (worker_status &w : workers) {
        p.requests += w.requests;
        p.busy += w.busy && w.state != PM_WORKER_STARTING;
        p.idle += w.state == PM_WORKER_IDLE;
        p.starting += w.state == PM_WORKER_STARTING;
        p.stopping += w.state == PM_WORKER_STOPPING;
    }
    if (flags & PM_STATUS_PROC)
        read_proc(workers);
    p.ready = static_cast<int>(std::min<uint32_t>(h.ready, 1000000));
    p.accepted = p.requests + static_cast<unsigned long long>(p.busy);
    // The manager's own maxima, sampled once a second: a reader's momentary count
    // mixed in would be forgotten by the next reader (a maximum that goes down).
    p.max_busy = h.counts.max_busy;
    p.listen_queue = p.listen_backlog = -1;
    for (uint32_t k = 0; k < std::min<uint32_t>(h.n_listeners, board_listeners); ++k) {
        sockdiag::listen_queue q;
        if (!sockdiag::queue_of(static_cast<int>(h.listeners[k].family), h.listeners[k].inode, q))
            continue;
        p.listen_queue = std::max<long long>(p.listen_queue, 0) + q.length;
        p.listen_backlog = std::max<long long>(p.listen_backlog, 0) + q.backlog;
    }
    p.listen_queue_max = p.listen_queue < 0 ? -1 : static_cast<long long>(h.counts.max_queue);
    pool_ = p;
    workers_.swap(workers);
    have_ = true;
}

namespace {

// The fields' names, as pm_status_field_info gives them, in pm_pool_field_t's and
// pm_slot_field_t's order; text fields marked.
struct field_name {
    const char *name;
    bool text;
};
const field_name pool_fields[] = {
    {"manager_pid", false}, {"start_time_us", false}, {"uptime_us", false}, {"target", false},
    {"workers", false}, {"ready", false}, {"idle", false}, {"busy", false}, {"starting", false},
    {"stopping", false}, {"crash_backoff", false}, {"backoff_us", false}, {"accepted", false},
    {"requests", false}, {"spawned", false}, {"respawns", false}, {"exits", false}, {"crashes", false},
    {"reloads", false}, {"max_busy", false}, {"pool_full", false}, {"listen_queue", false},
    {"listen_queue_max", false}, {"listen_backlog", false}, {"title", true}, {"phase", true},
    {"slow_requests", false}, {"deadline_kills", false}, {"recycled", false}, {"mode", true},
};
const field_name slot_fields[] = {
    {"pid", false}, {"slot", false}, {"state", false}, {"busy", false}, {"requests", false},
    {"start_time_us", false}, {"request_start_us", false}, {"request_us", false}, {"cpu_us", false},
    {"rss_kb", false}, {"method", true}, {"uri", true}, {"remote", true},
};
static_assert(sizeof pool_fields / sizeof pool_fields[0] == PM_POOL_FIELDS_, "a name for each pool field");
static_assert(sizeof slot_fields / sizeof slot_fields[0] == PM_SLOT_FIELDS_, "a name for each slot field");

long long count(unsigned long long n) {
    return static_cast<long long>(std::min<unsigned long long>(n, INT64_MAX));
}

}  // namespace

bool status_reader::field_info(int slot, int field, const char *&name, bool &is_text) {
    const field_name *table = slot ? slot_fields : pool_fields;
    int n = slot ? static_cast<int>(PM_SLOT_FIELDS_) : static_cast<int>(PM_POOL_FIELDS_);
    if ((slot != 0 && slot != 1) || field < 0 || field >= n)
        return false;
    name = table[field].name;
    is_text = table[field].text;
    return true;
}

bool status_reader::pool_value(int field, long long &value) const {
    const pool_status &p = pool_;
    switch (field) {
    case PM_POOL_MANAGER_PID: value = p.manager_pid; return true;
    case PM_POOL_START_TIME_US: value = p.started_us; return true;
    case PM_POOL_UPTIME_US: value = p.uptime_us; return true;
    case PM_POOL_TARGET: value = p.target; return true;
    case PM_POOL_WORKERS: value = p.workers; return true;
    case PM_POOL_READY: value = p.ready; return true;
    case PM_POOL_IDLE: value = p.idle; return true;
    case PM_POOL_BUSY: value = p.busy; return true;
    case PM_POOL_STARTING: value = p.starting; return true;
    case PM_POOL_STOPPING: value = p.stopping; return true;
    case PM_POOL_CRASH_BACKOFF: value = p.crash_backoff; return true;
    case PM_POOL_BACKOFF_US: value = p.backoff_us; return true;
    case PM_POOL_ACCEPTED: value = count(p.accepted); return true;
    case PM_POOL_REQUESTS: value = count(p.requests); return true;
    case PM_POOL_SPAWNED: value = count(p.spawned); return true;
    case PM_POOL_RESPAWNS: value = count(p.respawns); return true;
    case PM_POOL_EXITS: value = count(p.exits); return true;
    case PM_POOL_CRASHES: value = count(p.crashes); return true;
    case PM_POOL_RELOADS: value = count(p.reloads); return true;
    case PM_POOL_MAX_BUSY: value = count(p.max_busy); return true;
    case PM_POOL_POOL_FULL: value = count(p.pool_full); return true;
    case PM_POOL_LISTEN_QUEUE: value = p.listen_queue; return true;
    case PM_POOL_LISTEN_QUEUE_MAX: value = p.listen_queue_max; return true;
    case PM_POOL_LISTEN_BACKLOG: value = p.listen_backlog; return true;
    case PM_POOL_SLOW_REQUESTS: value = count(p.slow_requests); return true;
    case PM_POOL_DEADLINE_KILLS: value = count(p.deadline_kills); return true;
    case PM_POOL_RECYCLED: value = count(p.recycled); return true;
    default: return false;
    }
}

const char *status_reader::pool_text(int field) const {
    switch (field) {
    case PM_POOL_TITLE: return pool_.title;
    case PM_POOL_PHASE: return pool_.phase;
    case PM_POOL_MODE: return pool_.mode;
    default: return nullptr;
    }
}

bool status_reader::worker_value(const worker_status &w, int field, long long &value) {
    switch (field) {
    case PM_SLOT_PID: value = w.pid; return true;
    case PM_SLOT_INDEX: value = w.slot; return true;
    case PM_SLOT_STATE: value = w.state; return true;
    case PM_SLOT_BUSY: value = w.busy; return true;
    case PM_SLOT_REQUESTS: value = count(w.requests); return true;
    case PM_SLOT_START_TIME_US: value = w.started_us; return true;
    case PM_SLOT_REQUEST_START_US: value = w.request_start_us; return true;
    case PM_SLOT_REQUEST_US: value = w.request_us; return true;
    case PM_SLOT_CPU_US: value = w.cpu_us; return true;
    case PM_SLOT_RSS_KB: value = w.rss_kb; return true;
    default: return false;
    }
}

const char *status_reader::worker_text(const worker_status &w, int field) {
    switch (field) {
    case PM_SLOT_METHOD: return w.method;
    case PM_SLOT_URI: return w.uri;
    case PM_SLOT_REMOTE: return w.remote;
    default: return nullptr;
    }
}

}  // namespace fcgipm
