// The manager: forks the pool, keeps it at n_processes, and handles HUP and TERM.
//
// One loop does everything. Signals are never handled in a handler: TERM, HUP and
// CHLD are blocked and read from a signalfd. On SIGCHLD the kernel is asked which
// child has exited without reaping it (waitid WNOWAIT); only workers, found by pid
// in a hash table, are then reaped, so only pids this library forked are ever
// waited for or signalled. The manager holds no descriptor per worker: a fork copies
// none, and a new worker has two to close, whatever the pool size (a pidfd per
// worker made each fork and each new worker pay for all n of them). Timers (respawn
// backoff, start_delay, die_timeout) are deadlines on the monotonic clock, passed to
// epoll_wait.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "os.h"
#include "proc_manager.h"
#include "title.h"

namespace fcgipm {

namespace {

constexpr uint64_t signal_tag = UINT64_MAX;  // epoll tag of the signalfd; others are slot indexes
constexpr int64_t fork_retry_max_ms = 500;    // a failed fork is retried at least this often
constexpr int64_t crash_fork_interval_ms = 1000;  // pool-wide pace of refills once over budget

// A failure, as opposed to an ending: a non-zero exit, or death by a signal whose
// default action dumps core (SEGV, ABRT, ...). SIGKILL or SIGTERM from an operator or
// the OOM killer ends a worker without making it a crash.
bool is_failure(int status) {
    if (status == -1)
        return false;  // unknown
    if (WIFEXITED(status))
        return WEXITSTATUS(status) != 0;
    switch (WTERMSIG(status)) {
    case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGBUS:
    case SIGFPE: case SIGSEGV: case SIGXCPU: case SIGXFSZ: case SIGSYS:
        return true;
    default:
        return false;
    }
}

int64_t backoff_ms(const params &p, int early_deaths) {
    int64_t delay = p.backoff_min_ms;
    for (int i = 1; i < early_deaths && delay < p.backoff_max_ms; ++i)
        delay *= 2;
    return std::min(delay, p.backoff_max_ms);
}

}  // namespace

int proc_manager::manage() {
    if (params_.role == "server")
        throw error(PM_ESTATE, "pm_manage: this process is a worker");
    if (managing_)
        throw error(PM_ESTATE, "pm_manage: already managing");
    if (adopt_exec_worker())
        return PM_WORKER;
    if (params_.n_processes == 0)
        return PM_SINGLE_PROCESS;
    if (pending_exit >= 0)
        throw error(PM_ESTATE, "pm_manage: this manager has finished");
    int threads = os::thread_count();
    if (threads > 1)
        throw error(PM_ESTATE, "pm_manage: the process has " + std::to_string(threads) +
                                   " threads; call it before starting any (signals would reach the others)");
    if (params_.no_signals && sigchld_ignored())
        throw error(PM_ESTATE, "pm_manage: SIGCHLD is ignored and no_signals forbids changing that; the kernel "
                               "would reap the workers unseen");
    params_.role = "manager";
    managing_ = true;  // from here on, leaving restores the host's state (exit_process)
    try {
        managing_init();
    } catch (const error &) {
        leave_manager_role();
        throw;
    }
    notify("initialized");
    for (;;) {
        try {
            if (params_.n_processes <= 0)
                die("", 0);
            if (spawn_due())
                return PM_WORKER;
            update_service_state();
            wait_event(-1, true, nullptr);
        } catch (const exit_request &) {
            throw;
        } catch (const std::exception &e) {
            // Workers are running: an internal failure ends in an orderly shutdown,
            // never in an early return that would leave them behind.
            notify(std::string("internal error: ") + e.what());
            die("internal error", 1);
        }
    }
}

void proc_manager::managing_init() {
    host_ran_ = true;  // the host's own code ran before pm_manage
    service_.take_from_environment();  // before any fork: workers never see it
    install_manager_signals();
    size_t want = static_cast<size_t>(std::max(params_.n_processes, 1L));
    reports_capacity_ = std::max(want, static_cast<size_t>(::sysconf(_SC_PAGESIZE)) / sizeof(worker_report));
    reports_ = static_cast<worker_report *>(os::map_shared(reports_capacity_ * sizeof(worker_report)));
    if (!reports_)
        reports_capacity_ = 0;  // crashes are then told by exit status alone
    if (!params_.pid_fname.empty()) {
        try {
            write_pid_file(params_.pid_fname);
        } catch (const error &e) {
            // As in the original, a pid file that cannot be opened is logged and the
            // manager carries on; one held by another manager, or a symlink, stops it.
            if (e.code() != PM_ESYS)
                throw;
        }
    }
    set_process_title(params_.pm_title);
    call_hook(PM_HOOK_MANAGER_INIT);
    if (sigchld_ignored())
        throw error(PM_ESTATE, "pm_manage: the manager_init hook made SIGCHLD ignored; the kernel would reap the "
                               "workers unseen");
    // The listening sockets the workers will inherit, found once (the host's code
    // has run by now); each worker checks them by identity before it touches one.
    find_worker_listeners();
}

void proc_manager::install_manager_signals() {
    ::pthread_sigmask(SIG_SETMASK, nullptr, &host_mask_);
    ::sigaction(SIGCHLD, nullptr, &host_chld_);
    signals_saved_ = true;

    epoll_fd_ = os::epoll_create();
    if (epoll_fd_ < 0)
        throw error(PM_ESYS, "epoll_create1: " + os::errno_text(errno));

    // SIGCHLD is always read from the signalfd (blocking a signal changes no
    // disposition): it is how the manager learns that workers exited.
    sigset_t watched;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    if (!params_.no_signals) {
        sigaddset(&watched, SIGTERM);
        sigaddset(&watched, SIGHUP);
        // A host that ignores SIGCHLD would have the kernel reap our workers.
        struct sigaction dfl = {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGCHLD, &dfl, nullptr);
    }
    manager_mask_ = host_mask_;
    for (int s : {SIGCHLD, SIGTERM, SIGHUP})
        if (sigismember(&watched, s))
            sigaddset(&manager_mask_, s);
    // A log reader that goes away must not kill the manager: its writes get EPIPE.
    sigaddset(&manager_mask_, SIGPIPE);
    signal_fd_ = os::signalfd_create(watched);
    if (signal_fd_ < 0 || os::epoll_add(epoll_fd_, signal_fd_, signal_tag) < 0)
        throw error(PM_ESYS, "signalfd: " + os::errno_text(errno));
    ::pthread_sigmask(SIG_SETMASK, &manager_mask_, nullptr);
}

void proc_manager::restore_host_signals() {
    if (!signals_saved_)
        return;
    // A SIGPIPE from a log write to a vanished reader is still pending: drop it
    // rather than have the host's disposition act on it now.
    if (!sigismember(&host_mask_, SIGPIPE)) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        struct timespec no_wait = {0, 0};
        while (::sigtimedwait(&pipe_only, nullptr, &no_wait) > 0) {
        }
    }
    if (!params_.no_signals)
        ::sigaction(SIGCHLD, &host_chld_, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &host_mask_, nullptr);
    signals_saved_ = false;
}

// In a new worker (in_child), the manager's tables are only read: writing them would
// copy their pages (copy-on-write) just before they are dropped.
void proc_manager::close_manager_fds(bool in_child) {
    os::close_fd(signal_fd_);
    os::close_fd(epoll_fd_);
    signal_fd_ = epoll_fd_ = -1;
    if (!in_child)
        slot_of_pid_.clear();
}

// Everything the manager set up, undone: descriptors, shared memory, signal state.
void proc_manager::leave_manager_role() {
    close_manager_fds(false);
    os::unmap_shared(reports_, reports_capacity_ * sizeof(worker_report));
    reports_ = nullptr;
    reports_capacity_ = 0;
    restore_host_signals();
    managing_ = false;
}

// Forks every worker that is due. Returns true in a new worker.
bool proc_manager::spawn_due() {
    if (shutting_down_)
        return false;
    size_t want = static_cast<size_t>(std::max(params_.n_processes, 0L));
    if (slots_.size() < want) {
        // Room for the whole pool now: reaping and forking then allocate nothing.
        slots_.reserve(want);
        free_.reserve(want);
        candidates_.reserve(want);
        slot_of_pid_.reserve(want);
        for (size_t i = slots_.size(); i < want; ++i) {
            slots_.emplace_back();
            free_.push_back(i);
        }
    }
    int64_t now = os::now_ms();
    update_crash_limit(now);
    // Taken out of free_ while forking: a hook run by notify() may reap and refill it.
    // (A hook cannot re-enter the loop, nor this: in_notify_.)
    std::vector<size_t> &candidates = candidates_;
    candidates.assign(free_.begin(), free_.end());
    free_.clear();
    for (size_t k = 0; k < candidates.size(); ++k) {
        size_t index = candidates[k];
        if (live_ >= want || index >= want || slot_due_ms(slots_[index]) > now || next_fork_ms_ > now) {
            free_.push_back(index);  // kept in order, so workers start in slot order
            continue;
        }
        if (index < reports_capacity_)
            reports_[index] = worker_report{};
        if (host_ran_) {
            // Else each worker would write the host's pending output again. Only the
            // host's code writes through stdio here (the library writes with write(2);
            // stdio is not async-signal-safe, and another thread's output races any
            // flush), so after its hooks alone: a flush writes (copies) stdio's pages.
            std::fflush(nullptr);
            host_ran_ = false;
        }
        pid_t self = ::getpid();
        sigset_t all, saved;
        sigfillset(&all);
        ::pthread_sigmask(SIG_SETMASK, &all, &saved);  // nothing may run between fork and init
        pid_t pid = ::fork();
        if (pid == 0) {
            if (!exec_argv_.empty())
                exec_worker(self);
            become_worker(self, index);
            return true;
        }
        int err = errno;
        ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
        if (pid < 0) {
            // Nothing else can be forked now either: retry the pool after a pause that
            // doubles, but stays short enough to refill quickly once forks work again.
            free_.insert(free_.end(), candidates.begin() + static_cast<long>(k), candidates.end());
            next_fork_ms_ = now + std::min(backoff_ms(params_, ++fork_failures_), fork_retry_max_ms);
            notify("fork: " + os::errno_text(err));
            return false;
        }
        fork_failures_ = 0;
        if (slots_[index].early_deaths > 0 && crash_limited_)
            next_crash_fork_ms_ = now + crash_fork_interval_ms;
        start_worker_in_slot(index, pid);
        if (params_.start_delay_ms > 0) {
            now = os::now_ms();
            next_fork_ms_ = now + params_.start_delay_ms;
        }
    }
    return false;
}

void proc_manager::start_worker_in_slot(size_t index, pid_t pid) {
    try {
        slot_of_pid_.set(pid, index);
    } catch (...) {
        // Out of memory: a worker the manager cannot find must not live on.
        ::kill(pid, SIGKILL);
        int status;
        os::reap_blocking(pid, status);
        throw;
    }
    slot &s = slots_[index];
    s.pid = pid;
    s.started_ms = os::now_ms();
    s.told_to_stop = false;
    ++live_;
    notify((short_text() << "server (pid " << pid << ") started").view());
}

int64_t proc_manager::next_deadline(bool spawning) const {
    int64_t due = INT64_MAX;
    size_t want = static_cast<size_t>(std::max(params_.n_processes, 0L));
    if (spawning && !shutting_down_ && live_ < want) {
        for (size_t index : free_)
            if (index < want)
                due = std::min(due, slot_due_ms(slots_[index]));
        if (due != INT64_MAX)
            due = std::max(due, next_fork_ms_);
    }
    return due;
}

// Waits for one batch of events (or deadline_ms, or a due respawn when spawning)
// and handles it. A reaped worker's pid goes to *reaped.
void proc_manager::wait_event(int64_t deadline_ms, bool spawning, pid_t *reaped) {
    if (exits_unchecked_) {
        // The last check for exits was cut short (a hook ended the manager from
        // notify): its SIGCHLD is gone, so finish it before waiting for another.
        pid_t pid = reap_exited(0);
        if (pid > 0 && reaped)
            *reaped = pid;
        return;
    }
    int64_t due = next_deadline(spawning);
    if (deadline_ms >= 0)
        due = std::min(due, deadline_ms);
    int64_t timeout = due == INT64_MAX ? -1 : std::max<int64_t>(0, due - os::now_ms());
    // Small buffers: the epoll set holds the signalfd alone, and a signal pending
    // twice is pending once; whatever does not fit is read on the next call. (The
    // stack they are on is shared with the workers until written: each page is a copy.)
    uint64_t tags[4];
    int n = os::epoll_wait_tags(epoll_fd_, tags, 4, timeout);
    for (int k = 0; k < n; ++k) {
        if (tags[k] != signal_tag)
            continue;
        os::signal_event events[8];
        size_t count = os::read_signals(signal_fd_, events, 8);
        // Exits first: a TERM runs the shutdown from here and never returns to this
        // batch, and a SIGCHLD read is not signalled again.
        for (size_t i = 0; i < count; ++i) {
            if (events[i].signo != SIGCHLD)
                continue;
            pid_t pid = reap_exited(events[i].pid);
            if (pid > 0 && reaped)
                *reaped = pid;
        }
        for (size_t i = 0; i < count; ++i)
            if (events[i].signo != SIGCHLD)
                handle_signal(events[i].signo);
    }
}

// After a SIGCHLD from child sender: reaps every worker that has exited, and returns
// the last pid reaped (0 if none). One SIGCHLD may stand for several exits (a pending
// signal is not queued twice), hence the loop. A child of the host's that has exited
// is left for the host; while it waits unreaped it is the one the kernel names, so
// the workers are then looked at one by one.
pid_t proc_manager::reap_exited(pid_t sender) {
    exits_unchecked_ = true;  // until the check is complete (see wait_event)
    pid_t last = 0;
    bool sweep = false;
    for (pid_t pid; (pid = os::exited_child()) > 0;) {
        size_t index = slot_of_pid_.find(pid);
        if (index == pid_table::npos) {
            sweep = true;
            break;
        }
        last = reap_slot(index);
    }
    // The sender still listed: it was stopped or continued (reap finds it running),
    // it exited just now, or something else in this process reaped it (reap fails,
    // status unknown), and maybe other workers with it: then every one is checked.
    size_t index = sweep ? pid_table::npos : slot_of_pid_.find(sender);
    if (index != pid_table::npos)
        if (pid_t p = reap_slot(index)) {
            last = p;
            sweep = true;
        }
    for (size_t i = 0; sweep && i < slots_.size(); ++i)
        if (pid_t p = reap_slot(i))
            last = p;
    exits_unchecked_ = false;
    return last;
}

// Whether the kernel would reap our children itself: SIGCHLD ignored, or SA_NOCLDWAIT.
bool proc_manager::sigchld_ignored() {
    struct sigaction current;
    ::sigaction(SIGCHLD, nullptr, &current);
    return current.sa_handler == SIG_IGN || (current.sa_flags & SA_NOCLDWAIT);
}

// When a free slot may be refilled: its own backoff, and the pool's pace for crashed
// slots once the crash budget is spent.
int64_t proc_manager::slot_due_ms(const slot &s) const {
    if (crash_limited_ && s.early_deaths > 0)
        return std::max(s.not_before_ms, next_crash_fork_ms_);
    return s.not_before_ms;
}

void proc_manager::note_early_death(int64_t now) {
    early_deaths_.push_back(now);
    update_crash_limit(now);
}

void proc_manager::update_crash_limit(int64_t now) {
    while (!early_deaths_.empty() && early_deaths_.front() <= now - params_.crash_window_ms)
        early_deaths_.pop_front();
    int64_t budget = params_.crash_budget > 0 ? params_.crash_budget : std::max(params_.n_processes, 1L);
    if (!crash_limited_ && static_cast<int64_t>(early_deaths_.size()) >= budget) {
        crash_limited_ = true;
        size_t failed = early_deaths_.size();
        notify("crash loop: " + std::to_string(failed) + (failed == 1 ? " worker" : " workers") + " failed within " +
               seconds_text(params_.min_uptime_ms) + " s of starting in the last " +
               seconds_text(params_.crash_window_ms) + " s; respawning at most one per second");
    } else if (crash_limited_ && early_deaths_.empty()) {
        crash_limited_ = false;
        notify("crash loop over: respawning normally");
    }
}

// For the service manager: READY=1 once every worker of the pool is running (at
// start, and again when a HUP has replaced them all), and the pool's state as STATUS=.
void proc_manager::update_service_state() {
    if (!service_.active())
        return;
    size_t want = static_cast<size_t>(std::max(params_.n_processes, 0L));
    if (!ready_sent_ && stopping_ == 0 && live_ >= want) {
        ready_sent_ = true;
        service_.send("READY=1");
    }
    service_.status(pool_status());
}

std::string proc_manager::pool_status() const {
    std::string text = std::to_string(live_ - stopping_) + " of " + std::to_string(params_.n_processes) +
                       " workers running";
    if (stopping_ > 0)
        text += ", " + std::to_string(stopping_) + " stopping";
    if (crash_limited_)
        text += "; crash loop: respawning at most one per second";
    return text;
}

void proc_manager::handle_signal(int signo) {
    count_signal(signo);
    if (shutting_down_)
        return;  // a second TERM, or a HUP, cannot disturb the shutdown
    if (signo == SIGTERM) {
        notify("received signal TERM");
        die("safe exit from signal TERM", 0);
    } else if (signo == SIGHUP) {
        if (service_.active()) {
            ready_sent_ = false;
            service_.send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(service_notifier::monotonic_usec()),
                          "reloading: replacing " + std::to_string(live_) + " workers");
        }
        send_term_to_all();
    }
}

// A crash, as opposed to an ending: a failure (see is_failure), or a worker that
// neither served a request nor was told to stop and exited 0 (nothing to serve: the
// application could not start) or was killed before pm_manage returned in it.
bool proc_manager::crashed(size_t index, int status) const {
    if (is_failure(status))
        return true;
    // An exec'd program does not report; its exit 0 may be a planned one (php-cgi's
    // PHP_FCGI_MAX_REQUESTS), so only its failures count.
    if (!exec_argv_.empty() || index >= reports_capacity_ || status == -1)
        return false;
    const worker_report &r = reports_[index];
    if (r.requests > 0 || r.stopped)
        return false;
    return WIFEXITED(status) || !r.initialized;
}

pid_t proc_manager::reap_slot(size_t index) {
    if (index >= slots_.size() || !slots_[index].pid)
        return 0;
    slot &s = slots_[index];
    int status = 0;
    pid_t r = os::reap(s.pid, status);
    if (r == 0)
        return 0;
    if (r < 0)
        status = -1;  // reaped behind our back: Perl's $? says -1 too
    pid_t pid = s.pid;
    slot_of_pid_.erase(pid);
    s.pid = 0;
    --live_;
    free_.push_back(index);
    notify((short_text() << "server (pid " << pid << ") exited with status " << status).view());
    int64_t now = os::now_ms();
    if (s.told_to_stop)
        --stopping_;
    if (!s.told_to_stop && now - s.started_ms < params_.min_uptime_ms && crashed(index, status)) {
        s.not_before_ms = now + backoff_ms(params_, ++s.early_deaths);
        note_early_death(now);
    } else {
        s.early_deaths = 0;
        s.not_before_ms = now;
    }
    return pid;
}

void proc_manager::reap_all_children() {
    for (size_t i = 0; i < slots_.size(); ++i) {
        slot &s = slots_[i];
        if (!s.pid)
            continue;
        int status;
        os::reap_blocking(s.pid, status);
        slot_of_pid_.erase(s.pid);
        s.pid = 0;
        free_.push_back(i);
    }
    live_ = 0;
    stopping_ = 0;
}

void proc_manager::send_term_to_all() {
    if (!live_)
        return;
    std::string pids;
    for (const slot &s : slots_)
        if (s.pid)
            pids += (pids.empty() ? "" : " ") + std::to_string(s.pid);
    notify("sending TERM to PIDs, " + pids);
    for (slot &s : slots_) {
        if (s.pid) {
            ::kill(s.pid, SIGTERM);
            if (!s.told_to_stop)
                ++stopping_;
            s.told_to_stop = true;
        }
    }
}

void proc_manager::die(const std::string &msg, int status) {
    if (!managing_)
        exit_process("dying: " + msg, status);
    shutting_down_ = true;
    if (!params_.pid_fname.empty()) {
        try {
            remove_pid_file(params_.pid_fname);
        } catch (const error &) {
            // logged as "unlink: ..."; the shutdown goes on
        }
    }
    int64_t deadline = params_.die_timeout_ms > 0 ? os::now_ms() + params_.die_timeout_ms : -1;
    if (service_.active())
        service_.send("STOPPING=1", "stopping: " + std::to_string(live_) + " workers to stop");
    send_term_to_all();
    while (live_ > 0) {
        if (deadline >= 0 && os::now_ms() >= deadline)
            exit_process("wait timeout", 1);
        service_.status(pool_status());
        wait_event(deadline, false, nullptr);
    }
    exit_process("dying: " + msg, status);
}

void proc_manager::exit_process(const std::string &msg, int status) {
    if (live_ > 0) {
        // Still here at the end: SIGKILL them, and reap them so none is left behind.
        for (const slot &s : slots_)
            if (s.pid)
                ::kill(s.pid, SIGKILL);
        reap_all_children();
    }
    // The last line is written while SIGPIPE is still blocked: stderr may be gone.
    try {
        notify(msg);
    } catch (...) {
        if (managing_)
            leave_manager_role();
        throw;
    }
    if (managing_)
        leave_manager_role();
    throw exit_request{status};
}

pid_t proc_manager::wait_one() {
    if (in_notify_)
        throw error(PM_ESTATE, "pm_wait: not from the notify hook (the manager's loop is running)");
    if (!managing_)
        throw error(PM_ESTATE, "pm_wait: only the manager waits, once pm_manage runs");
    if (!live_)
        throw error(PM_ECHILD, "pm_wait: no worker is running");
    pid_t reaped = 0;
    while (!reaped)
        wait_event(-1, false, &reaped);
    return reaped;
}

int proc_manager::write_pid_file(const std::string &path) {
    if (path.size() > max_path_length)
        throw error(PM_ETOOLONG, "pid file path longer than " + std::to_string(max_path_length) + " bytes");
    if (path.empty())
        throw error(PM_EINVAL, "pid file path is empty");
    auto it = std::find_if(pid_files_.begin(), pid_files_.end(), [&](const pid_file &f) { return f.path() == path; });
    pid_file &file = it != pid_files_.end() ? *it : pid_files_.emplace_back();
    std::string message;
    int rc = file.acquire(path, ::getpid(), message);
    if (rc != PM_OK) {
        if (!file.held())
            pid_files_.remove_if([](const pid_file &f) { return !f.held(); });
        notify(message);
        throw error(rc, message);
    }
    return PM_OK;
}

int proc_manager::remove_pid_file(const std::string &path) {
    std::string message;
    int rc = PM_OK;
    auto it = std::find_if(pid_files_.begin(), pid_files_.end(), [&](const pid_file &f) { return f.path() == path; });
    if (it != pid_files_.end()) {
        rc = it->release(message);
        pid_files_.erase(it);
    } else if (read_pid_file(path) == ::getpid() || ::access(path.c_str(), F_OK) != 0) {
        // Not held (never written, or written by another pm_t of this process): only
        // a file naming this process is removed, and a missing one is reported.
        if (::unlink(path.c_str()) < 0) {
            message = "unlink: " + path + ": " + os::errno_text(errno);
            rc = PM_ESYS;
        }
    }
    if (rc != PM_OK) {
        notify(message);
        throw error(rc, message);
    }
    return PM_OK;
}

}  // namespace fcgipm
