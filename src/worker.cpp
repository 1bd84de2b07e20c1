// The worker side: set-up after fork, the TERM/HUP handler, and the request path.
//
// The handler is installed once, with SA_RESTART (and SA_ONSTACK, which Go requires
// of every handler in its process), and never changed again, so pm_pre_dispatch and
// pm_post_dispatch make no system call. What the original got
// from toggling SA_RESTART around each request follows from what the handler does:
// it counts the signal and puts /dev/null over every listening socket of this
// process. A request in progress is untouched (its reads and writes are restarted,
// never see EINTR, and its connection is another descriptor), and pm_post_dispatch
// exits after it. An idle worker's accept, blocked (restarted by SA_RESTART) or yet
// to come, fails at once with ENOTSOCK, so the application's accept loop ends: no
// window is left in which a TERM can be lost, and a worker about to exit never holds
// the listening socket that a new manager may want to bind. A worker waiting in the
// host's own accept (pm_accept_begin) for the next request on a kept-alive connection
// has that connection's read side shut (end_kept_alive_wait).
// The manager's own TERM and HUP do not even reach a busy worker as a signal (which
// would cut short a sleep, poll or select of the request's): it tells the worker
// through its scoreboard slot and signals it only when it is not busy (scoreboard.h),
// nor, on TERM, while it waits in pm_accept on a socket the manager shuts down.
// The manager's death arrives as SIGTERM through PR_SET_PDEATHSIG; the handler
// tells it from a real TERM because the parent pid has changed by then.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "os.h"
#include "proc_manager.h"
#include "title.h"

namespace fcgipm {

namespace {

constexpr int max_listeners = 64;
constexpr const char *manager_pid_variable = "FCGI_PM_MANAGER_PID";
// "<fd>:<slot>": the scoreboard, for a program on this library exec'd as a worker.
constexpr const char *scoreboard_variable = "FCGI_PM_SCOREBOARD";

// A listening socket the worker inherited, by descriptor and by identity: the
// application may have closed it and reused the number since.
struct listener {
    int fd;
    dev_t dev;
    ino_t ino;
};

// Everything the handler touches: written by it or read by it, nothing else.
struct handler_state {
    volatile sig_atomic_t manager_died;
    volatile sig_atomic_t requested;  // pm_request_stop without a signal's name
    volatile sig_atomic_t counts[_NSIG];
    volatile sig_atomic_t waiting;  // between pm_accept_begin and pm_accept_end
    pid_t worker_pid;
    pid_t manager_pid;
    worker_slot *report;
    listener listeners[max_listeners];
    int n_listeners;
    int n_inherited;   // the first of them, found by the manager, which shuts them down on TERM
    int accepting_fd;  // pm_accept's socket while it waits (-1: none); also released
    // The names of every listener above, kept after their release: a connection
    // accepted from one of them has the same local address.
    os::socket_name names[max_listeners];
    int n_names;
    timer_t recheck;  // sends TERM, with this struct's address as its value
    bool has_timer;
    volatile sig_atomic_t timer_armed;
    int64_t recheck_ms;
};
handler_state worker_signals;

void add_listener(int fd) {
    struct stat st;
    if (worker_signals.n_listeners < max_listeners && ::fstat(fd, &st) == 0)
        worker_signals.listeners[worker_signals.n_listeners++] = {fd, st.st_dev, st.st_ino};
    if (worker_signals.n_names < max_listeners && os::name_of(fd, worker_signals.names[worker_signals.n_names]))
        ++worker_signals.n_names;
}

// Puts /dev/null over each inherited listening socket still open under its number.
// Only async-signal-safe calls.
void release_listeners() {
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int source = null_fd >= 0 ? null_fd : STDERR_FILENO;  // any non-listening descriptor will do
    for (int i = 0; i < worker_signals.n_listeners; ++i) {
        const listener &l = worker_signals.listeners[i];
        struct stat st;
        if (::fstat(l.fd, &st) == 0 && st.st_dev == l.dev && st.st_ino == l.ino)
            ::dup3(source, l.fd, O_CLOEXEC);
    }
    // The socket pm_accept waits on, if still listening: one of the application's
    // own under a number it reused (the manager's shutdown cannot end that wait).
    int listening = 0;
    socklen_t len = sizeof listening;
    int fd = worker_signals.accepting_fd;
    if (fd >= 0 && ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
        ::dup3(source, fd, O_CLOEXEC);
    worker_signals.n_listeners = worker_signals.n_inherited = 0;
    if (null_fd >= 0)
        ::close(null_fd);
}

// A stopping worker inside the host's own wait for the next request (between
// pm_accept_begin and pm_accept_end: FCGI.pm's Accept, a bare FCGX_Accept_r) may be
// reading it from a connection the web server keeps alive (nginx's
// fastcgi_keep_conn): a read that SA_RESTART restarts and no listener's release
// ends. Or it may still be writing the end of the last reply there (libfcgi finishes
// the previous request first). If the interrupted call is either, on a connection
// accepted from one of the listeners with nothing unread (on TCP also one we have
// sent on: not a new connection whose first request is on its way), its read side is
// shut down: the read sees the connection end, and libfcgi closes it and goes back
// to accept on the released listener, which fails. The reply is not affected (only
// reading is shut). When the worker is between system calls, the check is made again
// by a TERM from a timer (told by its value; not counted) 5 ms later, then at
// doubling intervals up to 0.5 s, until pm_accept_end. Nothing in another process
// (a child of the worker's own, which has its handler).
void end_kept_alive_wait(const void *context) {
    if (!worker_signals.waiting || ::getpid() != worker_signals.worker_pid)
        return;
    int fd = -1;
    os::blocked_call call = os::interrupted_call(context, fd);
    if (call == os::blocked_call::unknown || call == os::blocked_call::accept)
        return;  // an accept ends as its listener is released
    if (call == os::blocked_call::read || call == os::blocked_call::write) {
        if (os::answered_and_quiet(fd, worker_signals.names, worker_signals.n_names)) {
            ::shutdown(fd, SHUT_RD);
            return;
        }
        if (call == os::blocked_call::read)
            return;  // a request arriving, or a new connection's first: it is served
    }
    if (!worker_signals.has_timer)
        return;
    int64_t ms = worker_signals.recheck_ms;
    worker_signals.recheck_ms = ms < 500 ? ms * 2 : ms;
    struct itimerspec once = {};
    once.it_value.tv_sec = static_cast<time_t>(ms / 1000);
    once.it_value.tv_nsec = static_cast<long>(ms % 1000) * 1000000;
    worker_signals.timer_armed = ::timer_settime(worker_signals.recheck, 0, &once, nullptr) == 0;
}

void disarm_recheck() {
    if (!worker_signals.timer_armed)
        return;
    struct itimerspec off = {};
    ::timer_settime(worker_signals.recheck, 0, &off, nullptr);
    worker_signals.timer_armed = 0;
}

void end_as_default(int signo);

void on_signal(int signo, siginfo_t *info, void *context) {
    int saved_errno = errno;
    // The manager stopped this worker for a request past its deadline: now, not after
    // it, if that request is still the one it is in.
    worker_slot *own = worker_signals.report;
    if (signo == SIGTERM && own && (__atomic_load_n(&own->state, __ATOMIC_ACQUIRE) & board::stop_deadline) &&
        __atomic_load_n(&own->busy, __ATOMIC_RELAXED) &&
        __atomic_load_n(&own->request_start, __ATOMIC_RELAXED) == __atomic_load_n(&own->deadline_start, __ATOMIC_ACQUIRE))
        end_as_default(SIGTERM);
    if (info && info->si_code == SI_TIMER && info->si_value.sival_ptr == &worker_signals) {
        end_kept_alive_wait(context);
        errno = saved_errno;
        return;
    }
    if (signo == SIGTERM && worker_signals.manager_pid > 0 && ::getppid() != worker_signals.manager_pid) {
        worker_signals.manager_died = 1;
    } else {
        worker_signals.counts[signo] = worker_signals.counts[signo] + 1;
        if (worker_signals.report)
            worker_signals.report->stopped = 1;
    }
    end_kept_alive_wait(context);
    release_listeners();
    errno = saved_errno;
}

void find_listeners() {
    worker_signals.n_listeners = worker_signals.n_names = 0;
    for (int fd : os::listening_fds())
        add_listener(fd);
}

// The timer end_kept_alive_wait arms, made at a worker's first pm_accept_begin (none
// if the system gives none: then a worker between system calls when the stop came
// may wait on until the connection closes).
void create_recheck_timer() {
    struct sigevent ev = {};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGTERM;
    ev.sigev_value.sival_ptr = &worker_signals;
    worker_signals.has_timer = ::timer_create(CLOCK_MONOTONIC, &ev, &worker_signals.recheck) == 0;
    worker_signals.recheck_ms = 5;
}

void install_worker_handler() {
    struct sigaction sa = {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
}

bool stop_requested() {
    return worker_signals.counts[SIGTERM] || worker_signals.counts[SIGHUP] || worker_signals.manager_died ||
           worker_signals.requested;
}

// A stop flagged in the worker's slot while it went busy: the manager's signal may
// still be on its way, and must not reach the request. Held back until the exit.
void hold_stop_signals() {
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &stops, nullptr);
}

// The pid in FCGI_PM_MANAGER_PID if it names this process's parent, else 0.
pid_t manager_in_environment() {
    const char *value = ::getenv(manager_pid_variable);
    if (!value)
        return 0;
    char *end = nullptr;
    long pid = std::strtol(value, &end, 10);
    return *value && !*end && pid > 1 && pid == ::getppid() ? static_cast<pid_t>(pid) : 0;
}

// Ends the process by signo's default action (put back here, so that a handler
// installed later and chaining to this one ends it too).
void end_as_default(int signo) {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(signo, &dfl, nullptr);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signo);
    ::raise(signo);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);  // delivered here at the latest
}

// A program exec'd by a manager may get TERM before its pm_manage. The default
// action the manager left it is right then (it serves nothing yet), but libfcgi's
// FCGX_Init takes over a SIGTERM still at SIG_DFL with a handler that only notes it:
// a TERM between FCGX_Init and pm_manage was lost, and the worker served on. So a
// program on this library, exec'd by a manager, has this handler in place before its
// main runs; it ends the process as the default action would, until pm_manage
// installs the worker's handler.
__attribute__((constructor)) void keep_term_fatal_until_adopted() {
    struct sigaction current;
    if (!manager_in_environment() || ::sigaction(SIGTERM, nullptr, &current) != 0 ||
        current.sa_handler != SIG_DFL)
        return;
    struct sigaction sa = {};
    sa.sa_handler = end_as_default;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

// A listening socket the manager did not see (opened by a hook, say) is added to
// those the handler releases, the first time it is accepted on: a user-space lookup
// after that. False if the worker is already stopping.
bool proc_manager::watch_listener(int fd) {
    for (int i = 0; i < worker_signals.n_listeners; ++i)
        if (worker_signals.listeners[i].fd == fd)
            return true;
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &stops, &old);
    bool stopping = stop_requested();
    if (!stopping)
        add_listener(fd);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return !stopping;
}

// Sockets systemd handed over (socket activation: LISTEN_PID is this process, fds
// 3 to 3 + LISTEN_FDS - 1): systemd keeps them and queues connections for the next
// start, so a stop leaves them alone.
static int activated_fds_end = 0;

void proc_manager::find_worker_listeners() {
    find_listeners();
    const char *pid = ::getenv("LISTEN_PID"), *fds = ::getenv("LISTEN_FDS");
    long n = fds ? std::strtol(fds, nullptr, 10) : 0;
    activated_fds_end = pid && std::strtol(pid, nullptr, 10) == ::getpid() && n > 0 && n < 4096
                            ? 3 + static_cast<int>(n)
                            : 0;
}

// In the manager, on TERM: each listening socket the workers inherited, still open
// under its number, is shut down. The socket is shared by every process that holds
// it: new connections are refused at once (a load balancer moves on), and an idle
// worker's accept fails at once (EINVAL); connections already accepted are untouched.
// True if there was one to shut down and every one of them was.
bool proc_manager::shut_down_listeners() {
    if (!params_.stop_listening)
        return false;
    bool any = false, all = true;
    for (int i = 0; i < worker_signals.n_listeners; ++i) {
        const listener &l = worker_signals.listeners[i];
        struct stat st;
        if (l.fd >= 3 && l.fd < activated_fds_end)
            continue;
        any = true;
        all &= ::fstat(l.fd, &st) == 0 && st.st_dev == l.dev && st.st_ino == l.ino &&
               ::shutdown(l.fd, SHUT_RDWR) == 0;
    }
    return any && all;
}

// In a worker: fd is the number of a listening socket the manager found, and shuts
// down on TERM.
bool proc_manager::shut_on_stop(int fd) const {
    if (!params_.stop_listening || (fd >= 3 && fd < activated_fds_end))
        return false;
    for (int i = 0; i < worker_signals.n_inherited; ++i)
        if (worker_signals.listeners[i].fd == fd)
            return true;
    return false;
}

// pm_request_stop in a worker: as the handler would for TERM or HUP; otherwise a
// stop of its own ("safe exit on request"). Async-signal-safe.
int proc_manager::request_worker_stop(int signo) {
    if (signo == SIGTERM || signo == SIGHUP) {
        on_signal(signo, nullptr, nullptr);
        return PM_OK;
    }
    worker_signals.requested = 1;
    release_listeners();
    return PM_OK;
}

bool proc_manager::must_stop() const {
    return is_worker_ && (stop_requested() || board_stop());
}

// pm_accept_begin: marked as waiting first, then the checks, so that a stop comes
// either before them (seen) or while marked (end_kept_alive_wait).
bool proc_manager::accept_begin() {
    if (!is_worker_)
        return false;
    if (!worker_signals.worker_pid && !params_.no_signals) {  // this worker's first
        worker_signals.worker_pid = ::getpid();
        create_recheck_timer();
    }
    worker_signals.waiting = 1;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (!must_stop())
        return false;
    accept_end();
    return true;
}

void proc_manager::accept_end() {
    worker_signals.waiting = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    disarm_recheck();
}

// The manager's stop flags in this worker's slot (none if it is not on the board).
uint32_t proc_manager::board_stop() const {
    return on_board_ ? board::load(*report_) & board::stop_mask : 0;
}

void proc_manager::begin_request() {
    bool flagged = on_board_ && !holding_stops_ && board::begin_request(*report_);
    // Nor may the recheck timer's TERM, if a handler armed it as pm_accept_end
    // disarmed it (end_kept_alive_wait).
    if (!holding_stops_ && (flagged || worker_signals.timer_armed)) {
        hold_stop_signals();
        holding_stops_ = true;
    }
}

int proc_manager::received_signal(int signo) {
    return signo > 0 && signo < _NSIG ? worker_signals.counts[signo] : 0;
}

void proc_manager::count_signal(int signo) {
    if (signo > 0 && signo < _NSIG)
        worker_signals.counts[signo] = worker_signals.counts[signo] + 1;
}

// Runs in the child right after fork, with every signal blocked.
// In a new child: nothing of the manager's is its to use, close or signal.
void proc_manager::forget_manager_state() {
    close_manager_fds(true);
    for (pid_file &f : pid_files_)
        f.forget();  // the manager's lock stays the manager's
    pid_files_.clear();
    slots_.clear();
    free_.clear();
    live_ = 0;
    // slot_of_pid_ is left as it is: clearing it would write (copy) every page it is on.
    managing_ = false;
    params_.role = "server";
    is_worker_ = true;
}

// SIGTERM when the manager dies; if it died already, that TERM now.
void proc_manager::arm_parent_death(pid_t manager_pid) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (::getppid() != manager_pid)
        ::kill(::getpid(), SIGTERM);
}

void proc_manager::become_worker(pid_t manager_pid, size_t index, bool forked) {
    report_ = index < reports_capacity_ ? &reports_[index] : nullptr;
    views_ = report_ && params_.scoreboard;
    if (forked)  // an exec'd program kept the descriptor if it was given one (adopt_exec_worker)
        keep_wake_ = report_ && (params_.max_requests > 0 || (params_.pool == pool_mode::dynamic && params_.min_idle > 0));
    if (views_)
        report_->views = views_written;  // readers take its view from now on
    clock_ = board_.clock();
    request_named_ = false;
    forget_manager_state();
    requests_ = 0;
    recycle_asked_ = false;
    // A number of its own, for max_requests_jitter: pid and clock, mixed (splitmix64).
    uint64_t z = (static_cast<uint64_t>(::getpid()) << 32) ^ static_cast<uint64_t>(os::now_ms()) ^
                 reinterpret_cast<uintptr_t>(&z);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    jitter_draw_ = z ^ (z >> 31);

    for (auto &count : worker_signals.counts)
        count = 0;
    worker_signals.manager_died = 0;
    worker_signals.requested = 0;
    worker_signals.waiting = 0;
    worker_signals.timer_armed = 0;
    worker_signals.has_timer = false;  // a timer is not inherited across fork
    worker_signals.worker_pid = 0;     // set by the first pm_accept_begin
    // The stop protocol is for forked workers: an exec'd one is stopped by signal.
    on_board_ = report_ && !params_.no_signals && forked;
    holding_stops_ = false;
    if (!ready_reports_ && !keep_wake_) {
        os::close_fd(wake_fd_);  // else kept to tell the manager this worker is ready
        wake_fd_ = -1;
    }
    if (forked) {  // not in an exec'd program adopted as a worker
        try {
            call_hook(PM_HOOK_CHILD_AFTER_FORK);
        } catch (...) {
            ::pthread_sigmask(SIG_SETMASK, &host_mask_, nullptr);  // leaving as from any hook
            throw;
        }
    }
    worker_signals.manager_pid = manager_pid;
    worker_signals.report = report_;
    // worker_signals.listeners came from the manager (find_worker_listeners): reading
    // /proc/self/fd here would cost each start, and each reap too (its dentries).
    worker_signals.n_inherited = worker_signals.n_listeners;
    worker_signals.accepting_fd = -1;

    if (!params_.no_signals) {
        ::sigaction(SIGCHLD, &host_chld_, nullptr);
        install_worker_handler();
    }
    signals_saved_ = false;
    // An exec'd program keeps its own name, unless the host named its workers.
    if (forked || params_.process_name_set)
        set_process_title(params_.process_name);
    // From here on signals are handled: the host's mask is back before its hook runs.
    ::pthread_sigmask(SIG_SETMASK, &host_mask_, nullptr);
    arm_parent_death(manager_pid);
    call_hook(PM_HOOK_SERVER_INIT);
    arm_parent_death(manager_pid);  // again: a hook that changed uid or gid cleared it
    // Ready in the slot before the line says so: a worker killed once its line is out
    // was up, never a crash at start (the manager reads the slot).
    report_ready();
    notify("initialized");
}

// Tells the manager this worker can serve: its slot, and a wake-up when the manager
// waits for readiness (then the worker's last descriptor of the manager's is closed).
void proc_manager::report_ready() {
    if (report_)
        report_->initialized = 1;
    if (wake_fd_ >= 0) {
        os::wake(wake_fd_);
        if (!keep_wake_) {
            os::close_fd(wake_fd_);  // else kept (keep_wake_)
            wake_fd_ = -1;
        }
    }
}

// A program exec'd by a manager in exec mode finds the manager's pid in
// FCGI_PM_MANAGER_PID: if that is its parent, pm_manage makes it a worker in place
// (handler, PR_SET_PDEATHSIG, request path) instead of managing a pool of its own.
bool proc_manager::adopt_exec_worker() {
    const char *value = ::getenv(manager_pid_variable);
    if (!value)
        return false;
    size_t index = 0;
    int wake = -1;
    int board = take_scoreboard_variable(index, wake);
    if (!exec_argv_.empty()) {  // a manager in exec mode (fcgi-pm run by fcgi-pm)
        ::unsetenv(manager_pid_variable);
        os::close_fd(board);  // the outer pool's: a manager of its own makes its own
        os::close_fd(wake);
        return false;
    }
    pid_t pid = manager_in_environment();
    ::unsetenv(manager_pid_variable);  // the application's own children are not ours
    if (!pid) {
        os::close_fd(board);
        os::close_fd(wake);
        return false;
    }
    ::pthread_sigmask(SIG_SETMASK, nullptr, &host_mask_);
    ::sigaction(SIGCHLD, nullptr, &host_chld_);
    // The guard against a TERM before adoption has done its work: with "no_signals"
    // the disposition is the host's to set, and starts at the default.
    struct sigaction term;
    if (::sigaction(SIGTERM, nullptr, &term) == 0 && term.sa_handler == end_as_default) {
        term.sa_handler = SIG_DFL;
        term.sa_flags = 0;
        ::sigaction(SIGTERM, &term, nullptr);
    }
    find_listeners();
    bool mapped = board >= 0 && board_.attach(board) && index < board_.capacity();
    os::close_fd(board);
    if (mapped) {
        reports_ = board_.slots();
        reports_capacity_ = board_.capacity();
    } else {
        board_.destroy();
        index = 0;
    }
    keep_wake_ = mapped && wake >= 0;  // given by the manager only to be kept (exec_worker)
    if (keep_wake_)
        wake_fd_ = wake;
    else
        os::close_fd(wake);
    become_worker(pid, index, false);
    return true;
}

// FCGI_PM_SCOREBOARD ("<fd>:<slot>[:<eventfd>]") taken out of the environment: the
// descriptor it names if that is a scoreboard (a memfd of the library's name;
// anything else under that number is left alone), with the slot in index, and the
// manager's eventfd in wake if it names one (close-on-exec from here; else -1); or -1.
int proc_manager::take_scoreboard_variable(size_t &index, int &wake) {
    wake = -1;
    const char *value = ::getenv(scoreboard_variable);
    if (!value)
        return -1;
    std::string text = value;
    ::unsetenv(scoreboard_variable);
    char *end = nullptr;
    long fd = std::strtol(text.c_str(), &end, 10);
    if (end == text.c_str() || *end != ':' || fd < 3 || fd > INT_MAX)
        return -1;
    const char *index_text = end + 1;
    unsigned long slot = std::strtoul(index_text, &end, 10);
    if (!*index_text || (*end && *end != ':'))
        return -1;
    if (*end == ':') {
        const char *wake_text = end + 1;
        long w = std::strtol(wake_text, &end, 10);
        char target[64];
        std::string where = "/proc/self/fd/" + std::to_string(w);
        ssize_t k = *wake_text && !*end && w >= 3 && w <= INT_MAX ? ::readlink(where.c_str(), target, sizeof target - 1) : -1;
        if (k > 0 && std::string(target, static_cast<size_t>(k)) == "anon_inode:[eventfd]" &&
            ::fcntl(static_cast<int>(w), F_SETFD, FD_CLOEXEC) == 0)
            wake = static_cast<int>(w);
    }
    char link[128];
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
    std::string want = std::string("/memfd:") + scoreboard::memfd_name;
    if (n <= 0 || std::string(link, static_cast<size_t>(n)).compare(0, want.size(), want) != 0)
        return -1;
    index = slot;
    return static_cast<int>(fd);
}

void proc_manager::set_exec(int listen_fd, std::vector<std::string> argv, bool own_env,
                            std::vector<std::string> env) {
    if (managing_ || is_worker_)
        throw error(PM_ESTATE, "pm_set_exec: only before pm_manage");
    exec_listen_fd_ = listen_fd;
    exec_argv_ = std::move(argv);
    exec_own_env_ = own_env;
    exec_env_ = std::move(env);
}

// A hook in a child about to exec: one that ends the child ends it here, so that it
// never returns into the host's code.
void proc_manager::run_exec_child_hook(pm_hook_t which) {
    try {
        call_hook(which);
    } catch (const exit_request &x) {
        std::fflush(nullptr);  // the hook's own output
        _exit(x.status & 0xff);
    } catch (...) {
        _exit(127);
    }
}

// Runs in the child right after fork, with every signal blocked; never returns.
// A failure before the exec is written to exec_pipe (when there is one) for the
// manager; a successful exec closes it (close-on-exec) with nothing written.
void proc_manager::exec_worker(pid_t manager_pid, size_t index, int exec_pipe) {
    // The scoreboard goes along, under a number of its own (not close-on-exec); with
    // max_requests or a dynamic pool's min_idle, the manager's eventfd too, for the
    // ask for a replacement and the word of going busy.
    int board_fd = board_.fd() >= 0 ? ::fcntl(board_.fd(), F_DUPFD, 3) : -1;
    bool wakes = params_.max_requests > 0 || (params_.pool == pool_mode::dynamic && params_.min_idle > 0);
    int wake_copy = board_fd >= 0 && wakes && wake_fd_ >= 0 ? ::fcntl(wake_fd_, F_DUPFD, 3) : -1;
    std::string board_entry =
        board_fd >= 0 ? std::string(scoreboard_variable) + "=" + std::to_string(board_fd) + ":" + std::to_string(index) +
                            (wake_copy >= 0 ? ":" + std::to_string(wake_copy) : std::string())
                      : std::string();
    forget_manager_state();
    run_exec_child_hook(PM_HOOK_CHILD_AFTER_FORK);
    if (exec_listen_fd_ != 0) {
        if (::dup2(exec_listen_fd_, 0) < 0) {
            os::write_exec_failure(exec_pipe, errno);
            _exit(127);
        }
        ::close(exec_listen_fd_);
    }
    ::fcntl(0, F_SETFD, 0);  // FastCGI's socket stays open across exec
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    // The stop signal too: the program must act on it (an ignored one stays ignored
    // across exec). The manager's death sends the same signal as its stop does.
    for (int s : {SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, params_.stop_signal})
        ::sigaction(s, &dfl, nullptr);
    ::prctl(PR_SET_PDEATHSIG, params_.stop_signal, 0, 0, 0);
    if (::getppid() != manager_pid)
        _exit(0);  // the manager is already gone
    // Tells a program built on this library that it is a worker (adopt_exec_worker).
    std::string pid_entry = std::string(manager_pid_variable) + "=" + std::to_string(manager_pid);
    if (!exec_own_env_) {
        ::setenv(manager_pid_variable, pid_entry.c_str() + pid_entry.find('=') + 1, 1);
        if (!board_entry.empty())
            ::setenv(scoreboard_variable, board_entry.c_str() + board_entry.find('=') + 1, 1);
        else
            ::unsetenv(scoreboard_variable);  // none of this pool's to pass on
    }
    std::vector<char *> argv, envp;
    for (std::string &a : exec_argv_)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string &e : exec_env_)
        if (e.compare(0, 14, "NOTIFY_SOCKET=") != 0 &&  // the manager's to use, not the workers'
            e.compare(0, pid_entry.find('=') + 1, pid_entry, 0, pid_entry.find('=') + 1) != 0 &&
            e.compare(0, std::strlen(scoreboard_variable) + 1, std::string(scoreboard_variable) + "=") != 0)
            envp.push_back(e.data());
    envp.push_back(pid_entry.data());
    if (!board_entry.empty())
        envp.push_back(board_entry.data());
    envp.push_back(nullptr);
    ::pthread_sigmask(SIG_SETMASK, &host_mask_, nullptr);
    run_exec_child_hook(PM_HOOK_SERVER_INIT);  // e.g. the fcgi-pm program drops privileges here
    // A change of uid or gid clears the parent-death signal: set it again, last.
    ::prctl(PR_SET_PDEATHSIG, params_.stop_signal, 0, 0, 0);
    if (::getppid() != manager_pid)
        _exit(0);
    if (exec_own_env_)
        ::execvpe(argv[0], argv.data(), envp.data());
    else
        ::execvp(argv[0], argv.data());
    // The library's descriptors are all close-on-exec: only the failure is left to tell.
    int err = errno;
    os::write_exec_failure(exec_pipe, err);
    notify("exec: " + exec_argv_[0] + ": " + os::errno_text(err));
    _exit(127);
}

int proc_manager::accept(int listen_fd) {
    if (is_worker_ && !params_.no_signals && !watch_listener(listen_fd))
        return PM_ESTOPPED;
    // While it waits: the handler releases this socket too, and on a socket the
    // manager shuts down on TERM the slot says "accepting", so that the manager need
    // not signal (the shutdown ends the wait; scoreboard.h). Both are set before the
    // stop checks: a stop that comes before them is seen by the checks.
    struct waiting {
        worker_slot *slot;
        ~waiting() {
            worker_signals.accepting_fd = -1;
            if (slot)
                board::set_accepting(*slot, false);  // no-op once busy
        }
    };
    // An exec'd worker's phase is for the manager's eyes only (its stops come by
    // signal): an adaptive pool counts the workers accepting as the ones free.
    bool marked = on_board_ ? !holding_stops_ && shut_on_stop(listen_fd) : views_;
    waiting wait{marked ? report_ : nullptr};
    if (marked && !(report_->views & views_accepting))
        report_->views |= views_accepting;  // from now on, idle outside pm_accept is not free
    worker_signals.accepting_fd = listen_fd;
    if (wait.slot)
        board::set_accepting(*wait.slot, true);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (board_stop() || (is_worker_ && stop_requested()))
        return PM_ESTOPPED;
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        // Not busy yet: a connection that brings no request (a probe) must not leave
        // the worker marked busy; pm_pre_dispatch marks it. Until then a signal finds
        // only reads, which SA_RESTART restarts.
        if (fd >= 0)
            return fd;
        // The handler has put /dev/null over the socket (ENOTSOCK), or the manager
        // has shut it down (EINVAL: not listening any more; its flag is set before).
        // Returned, not thrown: a stopping worker's last steps should be few (unwinding
        // is not; nor is errno, whose page a worker that never failed has not touched).
        if (stop_requested() || board_stop())
            return PM_ESTOPPED;
        int err = errno;
        if (err == EINVAL)
            return PM_ESTOPPED;
        // EINTR comes only from the host's own handlers (no_signals): its loop decides.
        bool transient = (err == EINTR && !params_.no_signals) || err == ECONNABORTED || err == EPROTO;
        if (!transient)
            throw error(PM_ESYS, "accept: " + os::errno_text(err));
    }
}

int proc_manager::wait_connection(int fd) {
    // TERM and HUP are held back while the stop flags are read, and let in only
    // inside ppoll, which they then end (ppoll is never restarted): none is missed.
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &stops, &old);
    int rc = 0, err = 0;
    for (;;) {
        if (stop_requested() || board_stop()) {
            rc = PM_ESTOPPED;
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int n = ::ppoll(&p, 1, nullptr, &old);
        if (n > 0)
            break;
        // EINTR comes from the host's own handlers only with no_signals: its loop decides.
        if (n < 0 && (errno != EINTR || params_.no_signals)) {
            err = errno;
            rc = PM_ESYS;
            break;
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (rc == PM_ESTOPPED)
        return PM_ESTOPPED;
    if (rc == PM_ESYS)
        throw error(PM_ESYS, "ppoll: " + os::errno_text(err));
    return 0;
}

// The Constrained classes' size check: the virtual size above max_size; with the
// shared size known (non-zero), less of it than min_share_size or more unshared
// than max_unshared_size.
bool proc_manager::size_limits_exceeded() const {
    if (!params_.max_size && !params_.min_share_size && !params_.max_unshared_size)
        return false;
    int64_t size = 0, share = 0;
    if (!os::process_size_kb(size, share))
        return false;
    if (params_.max_size && size > params_.max_size)
        return true;
    if (!share)
        return false;
    return (params_.min_share_size && share < params_.min_share_size) ||
           (params_.max_unshared_size && size - share > params_.max_unshared_size);
}

// max_requests, raised by this worker's own share of max_requests_jitter.
int64_t proc_manager::request_limit() const {
    int64_t jitter = params_.max_requests_jitter;  // both at most INT64_MAX / 2 (params.cpp)
    return params_.max_requests + (jitter > 0 ? static_cast<int64_t>(jitter_draw_ % static_cast<uint64_t>(jitter + 1)) : 0);
}

void proc_manager::pre_dispatch() {
    begin_request();
    // The last request before max_requests: the manager is asked for a replacement
    // now (views_recycle, and a wake-up: one system call in the worker's life), to
    // be ready by the time this worker exits after it (manager_limits.cpp).
    if (params_.max_requests > 0 && !recycle_asked_ && report_ && requests_ + 1 >= request_limit()) {
        recycle_asked_ = true;
        __atomic_fetch_or(&report_->views, views_recycle, __ATOMIC_RELEASE);
        if (wake_fd_ >= 0)
            os::wake(wake_fd_);
    }
    if (views_) {
        worker_slot &s = *report_;
        board::write_begin(s.wseq);
        s.busy = 1;
        s.request_start = board::ticks(clock_);
        if (!request_named_)
            s.method[0] = s.uri[0] = s.remote[0] = '\0';
        board::write_end(s.wseq);
        request_named_ = false;
    }
    // Busy now (its state word, and its view): a dynamic pool's manager that armed
    // busy_wake is to hear of it, as an arrival an idle worker accepted first never
    // woke it (manager_pool.cpp's watch_busy). A system call once per arming at most.
    if (keep_wake_ && wake_fd_ >= 0 && board_.take_busy_wake())
        os::wake(wake_fd_);
    call_hook(PM_HOOK_PRE_DISPATCH);
}

namespace {

void copy_field(char *to, size_t size, const char *from) {
    size_t n = from ? ::strnlen(from, size - 1) : 0;
    std::memcpy(to, from ? from : "", n);
    to[n] = '\0';
}

}  // namespace

void proc_manager::set_request(const char *method, const char *uri, const char *remote) {
    if (!views_)
        return;
    worker_slot &s = *report_;
    board::write_begin(s.wseq);
    copy_field(s.method, sizeof s.method, method);
    copy_field(s.uri, sizeof s.uri, uri);
    copy_field(s.remote, sizeof s.remote, remote);
    board::write_end(s.wseq);
    request_named_ = true;
}

// One pass over the request's params for the three the scoreboard shows.
void proc_manager::set_request_params(const char *const *envp) {
    if (!views_ || !envp)
        return;
    const char *method = nullptr, *uri = nullptr, *remote = nullptr;
    for (; *envp && !(method && uri && remote); ++envp) {
        const char *e = *envp;
        if (!method && std::strncmp(e, "REQUEST_METHOD=", 15) == 0)
            method = e + 15;
        else if (!uri && std::strncmp(e, "REQUEST_URI=", 12) == 0)
            uri = e + 12;
        else if (!remote && std::strncmp(e, "REMOTE_ADDR=", 12) == 0)
            remote = e + 12;
    }
    set_request(method, uri, remote);
}

void proc_manager::post_dispatch() {
    ++requests_;
    if (views_) {
        // The count with the end of the request, in one view: a reader never sees a
        // request both served and in progress.
        worker_slot &s = *report_;
        uint64_t now = board::ticks(clock_);
        board::write_begin(s.wseq);
        s.busy = 0;
        s.served = static_cast<uint64_t>(requests_);
        s.requests = static_cast<uint64_t>(requests_);
        s.last_duration = now > s.request_start ? now - s.request_start : 0;
        board::write_end(s.wseq);
        request_named_ = false;  // a name given after pre_dispatch is not the next request's
    } else if (report_) {
        report_->requests = static_cast<uint64_t>(requests_);
    }
    if (params_.max_requests > 0 && requests_ >= request_limit())
        worker_exit("safe exit after max_requests (" + std::to_string(requests_) + ")");
    if (params_.sizecheck_num_requests > 0 && requests_ % params_.sizecheck_num_requests == 0 &&
        size_limits_exceeded())
        worker_exit("safe exit due to memory limits exceeded after " + std::to_string(requests_) + " requests");
    // TERM and HUP mean "stop" only to a worker (in a manager they were the loop's);
    // the manager's come through the slot, and from a busy worker's slot only.
    // (The manager stops a worker with TERM, on HUP as on TERM: so its flags read.)
    if (is_worker_ && (worker_signals.counts[SIGTERM] || board_stop()))
        worker_exit("safe exit after SIGTERM");
    if (is_worker_ && worker_signals.counts[SIGHUP])
        worker_exit("safe exit after SIGHUP");
    if (worker_signals.requested)
        worker_exit("safe exit on request");
    if (worker_signals.manager_died ||
        (params_.no_signals && worker_signals.manager_pid > 0 && ::getppid() != worker_signals.manager_pid))
        worker_exit("safe exit: manager has died");
    // Idle again, unless a stop was flagged meanwhile: then no signal comes.
    if (on_board_ && board::end_request(*report_))
        worker_exit("safe exit after SIGTERM");
    call_hook(PM_HOOK_POST_DISPATCH);
}

void proc_manager::worker_exit(const std::string &msg) {
    exit_process(msg, 0);
}

}  // namespace fcgipm
