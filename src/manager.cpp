// The manager: forks the pool, keeps it at its size (n_processes, or what an adaptive
// pool's policy says: manager_pool.cpp), and handles HUP and TERM.
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
#include <cstring>
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

constexpr uint64_t signal_tag = UINT64_MAX;    // epoll tag of the signalfd
constexpr uint64_t wake_tag = UINT64_MAX - 1;  // of the eventfd; others are slot indexes (exec pipes)
constexpr uint64_t status_tag = UINT64_MAX - 2;  // of the status socket
constexpr int64_t sample_interval_ms = 1000;  // the scoreboard's samples of the pool
constexpr int64_t fork_retry_max_ms = 500;    // a failed fork is retried at least this often
constexpr int64_t crash_fork_interval_ms = 1000;  // pool-wide pace of refills once over budget
constexpr int64_t spared_grace_ms = 50;  // at a stop, a pause in exits after which spared workers are signalled

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
    std::string pool_error = check_pool(params_);
    if (!pool_error.empty())
        throw error(PM_EBADVALUE, "pm_manage: " + pool_error);
    if (params_.n_processes == 0 && params_.pool == pool_mode::fixed)
        return PM_SINGLE_PROCESS;
    check_can_manage();
    params_.role = "manager";
    managing_ = true;  // from here on, leaving restores the host's state (exit_process)
    phase_ = phase::starting;
    try {
        managing_init();
    } catch (...) {
        // A refusal, or the manager_init hook asking to exit: either way the process
        // is left as it was (pid file, environment, title, signals).
        undo_managing_init();
        throw;
    }
    notify("initialized");
    start_ms_ = os::now_ms();
    for (;;) {
        try {
            if (params_.n_processes <= 0 && !policy_.adaptive())
                die("", 0);
            handle_requests();
            int64_t now = os::now_ms();
            if (adapt_due_ || now >= next_adapt_ms_)
                adapt(now);
            if (limits_due_ || now >= next_limits_ms_)
                check_limits(now);
            if (spawn_due())
                return PM_WORKER;
            update_service_state();
            check_start_timeout(os::now_ms());
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

// Every check pm_manage makes before it changes anything.
void proc_manager::check_can_manage() {
    if (pending_exit >= 0)
        throw error(PM_ESTATE, "pm_manage: this manager has finished");
    int threads = os::thread_count();
    if (threads > 1)
        throw error(PM_ESTATE, "pm_manage: the process has " + std::to_string(threads) +
                                   " threads; call it before starting any (signals would reach the others)");
    if (params_.no_signals && sigchld_ignored())
        throw error(PM_ESTATE, "pm_manage: SIGCHLD is ignored and no_signals forbids changing that; the kernel "
                               "would reap the workers unseen");
    gid_t group;
    if (!params_.status_group.empty() && params_.status_socket.empty())
        throw error(PM_EBADVALUE, "status_group: '" + params_.status_group + "' needs a status_socket to apply to");
    if (!params_.status_group.empty() && !os::group_id(params_.status_group, group))
        throw error(PM_EBADVALUE, "status_group: no group '" + params_.status_group + "'");
    if (exec_argv_.empty() && params_.stop_signal != SIGTERM)
        throw error(PM_EBADVALUE, std::string("stop_signal: ") + signal_name(params_.stop_signal) +
                                      ": only exec'd workers can be stopped by another signal than TERM");
}

// Each step is undone by undo_managing_init if a later one fails.
void proc_manager::managing_init() {
    host_ran_ = true;  // the host's own code ran before pm_manage
    pid_files_before_ = pid_files_.size();  // the host's own, taken before pm_manage
    saved_title_ = save_process_title();
    install_manager_signals();
    // Without a scoreboard, crashes are told by exit status alone.
    policy_ = pool_policy(pool_settings_of(params_));
    target_ = policy_.initial_target();
    // Slots for every worker an adaptive pool may have, or for a static pool to grow
    // to twice its size, 64 at least (TTIN, fcgi-pm resize).
    size_t start = static_cast<size_t>(std::max(params_.n_processes, 1L));
    size_t most = policy_.adaptive() ? std::max(start, policy_.settings().max_workers)
                                     : std::max<size_t>(2 * start, 64);
    resize_ceiling_ = most;
    // And spare slots, for the replacements of workers being recycled (manager_limits.cpp).
    if (board_.create(most + std::max<size_t>(1, most / 8), params_.pm_title, os::now_ms())) {
        reports_ = board_.slots();
        reports_capacity_ = board_.capacity();
    }
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
    service_.take_from_environment();  // before any fork: workers never see it
    // Workers tell the loop when they can serve only if someone is waiting for it.
    // Recycling waits for each replacement's report (manager_limits.cpp).
    ready_reports_ = service_.active() || params_.start_timeout_ms > 0 || params_.max_requests > 0 ||
                     params_.max_age_ms > 0 || params_.max_rss_kb > 0;
    set_process_title(params_.pm_title);
    call_hook(PM_HOOK_MANAGER_INIT);
    if (sigchld_ignored())
        throw error(PM_ESTATE, "pm_manage: the manager_init hook made SIGCHLD ignored; the kernel would reap the "
                               "workers unseen");
    // The listening sockets the workers will inherit, found once (the host's code
    // has run by now); each worker checks them by identity before it touches one.
    find_worker_listeners();
    board_.set_listeners(os::listening_fds());
    watch_listeners_for_pool();
    // After the pid file (a manager refused for it touches nothing of the running
    // one's) and after the listeners are known (it is not one the workers serve).
    if (!params_.status_socket.empty())
        open_status_socket();
    next_sample_ms_ = os::now_ms() + sample_interval_ms;
}

// A pm_manage that failed leaves the process as it found it.
void proc_manager::undo_managing_init() {
    release_pid_files(pid_files_before_);
    service_.give_back_to_environment();
    restore_process_title(saved_title_);
    leave_manager_role();
    phase_ = phase::starting;
}

void proc_manager::install_manager_signals() {
    ::pthread_sigmask(SIG_SETMASK, nullptr, &host_mask_);
    ::sigaction(SIGCHLD, nullptr, &host_chld_);
    signals_saved_ = true;

    epoll_fd_ = os::epoll_create();
    if (epoll_fd_ < 0)
        throw error(PM_ESYS, "epoll_create1: " + os::errno_text(errno), errno);

    // SIGCHLD is always read from the signalfd (blocking a signal changes no
    // disposition): it is how the manager learns that workers exited.
    sigset_t watched;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    if (!params_.no_signals) {
        sigaddset(&watched, SIGTERM);
        sigaddset(&watched, SIGHUP);
        sigaddset(&watched, SIGTTIN);  // one worker more (manager_pool.cpp)
        sigaddset(&watched, SIGTTOU);  // one fewer
        // A host that ignores SIGCHLD would have the kernel reap our workers.
        struct sigaction dfl = {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGCHLD, &dfl, nullptr);
    }
    manager_mask_ = host_mask_;
    for (int s : {SIGCHLD, SIGTERM, SIGHUP, SIGTTIN, SIGTTOU})
        if (sigismember(&watched, s))
            sigaddset(&manager_mask_, s);
    // A log reader that goes away must not kill the manager: its writes get EPIPE.
    sigaddset(&manager_mask_, SIGPIPE);
    signal_fd_ = os::signalfd_create(watched);
    if (signal_fd_ < 0 || os::epoll_add(epoll_fd_, signal_fd_, signal_tag) < 0)
        throw error(PM_ESYS, "signalfd: " + os::errno_text(errno), errno);
    if (wake_fd_ < 0)
        wake_fd_ = os::eventfd_create();
    if (wake_fd_ < 0 || os::epoll_add(epoll_fd_, wake_fd_, wake_tag) < 0)
        throw error(PM_ESYS, "eventfd: " + os::errno_text(errno), errno);
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
    if (in_child) {
        board_.close_fds();  // the mapping stays; the status socket is the manager's to remove
        return;  // exec pipes are close-on-exec, and only exec'd workers have them
    }
    for (slot &s : slots_) {
        os::close_fd(s.exec_pipe);
        s.exec_pipe = -1;
    }
    slot_of_pid_.clear();
}

// Everything the manager set up, undone: descriptors, shared memory, signal state.
void proc_manager::leave_manager_role() {
    close_manager_fds(false);
    board_.destroy();
    reports_ = nullptr;
    reports_capacity_ = 0;
    restore_host_signals();
    managing_ = false;
}

// Forks every worker that is due. Returns true in a new worker.
bool proc_manager::spawn_due() {
    if (phase_ == phase::stopping)
        return false;
    size_t want = spawn_target();
    // An adaptive pool's slots are all its max_workers; its workers told to stop (a
    // HUP, a retirement) are replaced at once, while they finish. Beyond them, the
    // replacements of workers being recycled.
    size_t room = policy_.adaptive() ? policy_.settings().max_workers + (want - wanted()) : want;
    size_t counted = policy_.adaptive() ? live_ - stopping_ : live_;
    if (slots_.size() < room) {
        // Room for the whole pool now: reaping and forking then allocate nothing.
        slots_.reserve(room);
        free_.reserve(room);
        candidates_.reserve(room);
        slot_of_pid_.reserve(room);
        for (size_t i = slots_.size(); i < room; ++i) {
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
        if (counted >= want || index >= room || slot_due_ms(slots_[index]) > now || next_fork_ms_ > now) {
            free_.push_back(index);  // kept in order, so workers start in slot order
            continue;
        }
        board_.reset_slot(index);
        call_hook(PM_HOOK_PRE_FORK);
        // An exec'd worker's exec is known to have succeeded when the write end of
        // its close-on-exec pipe closes with nothing written.
        int exec_pipe[2] = {-1, -1};
        if (!exec_argv_.empty() && ready_reports_ && !os::cloexec_pipe(exec_pipe))
            exec_pipe[0] = exec_pipe[1] = -1;  // then the exec counts as settled at once
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
                exec_worker(self, index, exec_pipe[1]);
            become_worker(self, index, true);
            return true;
        }
        int err = errno;
        ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
        os::close_fd(exec_pipe[1]);
        if (pid < 0) {
            os::close_fd(exec_pipe[0]);
            // Nothing else can be forked now either: retry the pool after a pause that
            // doubles, but stays short enough to refill quickly once forks work again.
            free_.insert(free_.end(), candidates.begin() + static_cast<long>(k), candidates.end());
            next_fork_ms_ = now + std::min(backoff_ms(params_, ++fork_failures_), fork_retry_max_ms);
            notify("fork: " + os::errno_text(err));
            call_hook(PM_HOOK_PARENT_AFTER_FORK);
            return false;
        }
        fork_failures_ = 0;
        if ((slots_[index].early_deaths > 0 || policy_.adaptive()) && crash_limited_)
            next_crash_fork_ms_ = now + crash_fork_interval_ms;
        start_worker_in_slot(index, pid, exec_pipe[0]);
        ++counted;
        call_hook(PM_HOOK_PARENT_AFTER_FORK);
        if (params_.start_delay_ms > 0) {
            now = os::now_ms();
            next_fork_ms_ = now + params_.start_delay_ms;
        }
    }
    return false;
}

// exec_pipe: the read end of its exec pipe, or -1.
void proc_manager::start_worker_in_slot(size_t index, pid_t pid, int exec_pipe) {
    try {
        slot_of_pid_.set(pid, index);
    } catch (...) {
        // Out of memory: a worker the manager cannot find must not live on.
        ::kill(pid, SIGKILL);
        int status;
        os::reap_blocking(pid, status);
        os::close_fd(exec_pipe);
        throw;
    }
    slot &s = slots_[index];
    ++board_.counts.spawned;
    board_.counts.respawns += s.used;
    board_.slot_started(index, pid, !exec_argv_.empty());
    s.used = true;
    s.pid = pid;
    s.started_ms = os::now_ms();
    s.told_to_stop = false;
    s.spared = false;
    s.ready = false;
    s.idle_seen_ms = -1;
    s.seen_accepting = false;
    s.slow_start = 0;
    s.kill_at_ms = -1;
    s.recycle = nullptr;
    ++live_;
    // Before the log line: a notify hook that ends the manager leaves nothing open.
    if (exec_pipe >= 0)
        watch_exec(index, exec_pipe);
    else if (!ready_reports_ || !exec_argv_.empty())
        note_ready(index);  // nobody waits for its report, or its exec cannot be watched
    notify((short_text() << "server (pid " << pid << ") started").view());
}

int64_t proc_manager::next_deadline(bool spawning) const {
    int64_t due = board_.mapped() ? next_sample_ms_ : INT64_MAX;
    if (phase_ == phase::starting && params_.start_timeout_ms > 0)
        due = start_ms_ + params_.start_timeout_ms;  // (a HUP while starting stays starting)
    if (phase_ != phase::stopping)
        due = std::min({due, next_adapt_ms_, next_limits_ms_});
    size_t want = spawn_target();
    size_t room = policy_.adaptive() ? policy_.settings().max_workers + (want - wanted()) : want;
    size_t counted = policy_.adaptive() ? live_ - stopping_ : live_;
    if (spawning && phase_ != phase::stopping && counted < want) {
        int64_t respawn = INT64_MAX;
        for (size_t index : free_)
            if (index < room)
                respawn = std::min(respawn, slot_due_ms(slots_[index]));
        if (respawn != INT64_MAX)
            due = std::min(due, std::max(respawn, next_fork_ms_));
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
    bool interrupted = false;
    int n = os::epoll_wait_tags(epoll_fd_, tags, 4, timeout, interrupted);
    if (n < 0)
        fatal_loop_error("epoll_wait", errno);
    sample_status(os::now_ms());
    if (interrupted)
        call_hook(PM_HOOK_MANAGER_SIGNAL);  // the host's own handler ran
    for (int k = 0; k < n; ++k) {
        if (tags[k] == status_tag) {
            int fd = board_.status_socket();
            if (!board_.answer_status()) {
                os::epoll_del(epoll_fd_, fd);
                notify("status_socket: " + os::errno_text(errno) + "; no longer answered");
            }
            continue;
        }
        if (tags[k] == listen_tag) {
            adapt_due_ = connection_arrived_ = true;  // are there workers for it?
            continue;
        }
        if (tags[k] == wake_tag) {
            if (os::drain_eventfd(wake_fd_) < 0)
                fatal_loop_error("read: eventfd", errno);
            // A worker asking for its replacement (marked before its exit is reaped),
            // reporting ready, or gone busy at a dynamic pool's idle floor.
            check_limits(os::now_ms());
            if (policy_.adaptive())
                adapt_due_ = worker_woke_ = true;
            if (ready_ < live_)  // workers that were starting may have reported
                for (size_t i = 0; i < slots_.size(); ++i)
                    if (slots_[i].pid && !slots_[i].ready && i < reports_capacity_ && reports_[i].initialized)
                        note_ready(i);
            continue;
        }
        if (tags[k] != signal_tag) {
            if (tags[k] < slots_.size())
                exec_settled(static_cast<size_t>(tags[k]));
            continue;
        }
        os::signal_event events[8];
        ssize_t count = os::read_signals(signal_fd_, events, 8);
        if (count < 0)
            fatal_loop_error("read: signalfd", errno);
        // Exits first: a TERM runs the shutdown from here and never returns to this
        // batch, and a SIGCHLD read is not signalled again.
        for (ssize_t i = 0; i < count; ++i) {
            if (events[i].signo != SIGCHLD)
                continue;
            pid_t pid = reap_exited(events[i].pid);
            if (pid > 0 && reaped)
                *reaped = pid;
        }
        for (ssize_t i = 0; i < count; ++i)
            if (events[i].signo != SIGCHLD)
                handle_signal(events[i]);
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
// An adaptive pool forks into any free slot, so its backoff is the pool's: after an
// early death no slot is filled before the pause, and in a crash loop one a second.
int64_t proc_manager::slot_due_ms(const slot &s) const {
    if (policy_.adaptive())
        return std::max({s.not_before_ms, pool_not_before_ms_, crash_limited_ ? next_crash_fork_ms_ : 0});
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
    int64_t budget = params_.crash_budget > 0 ? params_.crash_budget
                     : std::max<int64_t>(policy_.adaptive() ? static_cast<int64_t>(policy_.settings().max_workers) : params_.n_processes, 1);
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

// A worker that can serve: a forked one has returned from pm_manage, an exec'd one
// has exec'd.
void proc_manager::note_ready(size_t index) {
    slot &s = slots_[index];
    if (!s.pid || s.ready)
        return;
    s.ready = true;
    s.ready_ms = os::now_ms();
    adapt_due_ = true;  // one fewer starting
    ++ready_;
    board_.slot_ready(index);
    recycle_due(s.ready_ms);
}

void proc_manager::watch_exec(size_t index, int read_fd) {
    if (os::epoll_add(epoll_fd_, read_fd, index) < 0) {
        os::close_fd(read_fd);
        note_ready(index);  // cannot be watched: counted as ready, as before
        return;
    }
    slots_[index].exec_pipe = read_fd;
}

// The exec pipe of slot index is readable: closed with nothing written (the exec
// succeeded), or holding the errno of a failed exec (the worker exits 127).
void proc_manager::exec_settled(size_t index) {
    slot &s = slots_[index];
    if (s.exec_pipe < 0)
        return;
    int failure = 0;
    int failed = os::read_exec_failure(s.exec_pipe, failure);
    if (failed < 0)
        return;  // nothing yet
    // Out of the epoll set first: children forked since hold copies until their exec,
    // and the set watches the pipe as long as any copy is open.
    os::epoll_del(epoll_fd_, s.exec_pipe);
    os::close_fd(s.exec_pipe);
    s.exec_pipe = -1;
    if (!failed)
        note_ready(index);
}

// Phase changes that follow from the pool's state, and what the service manager
// (systemd) is told: READY=1 once every worker of the pool can serve (at start, and
// again when a HUP has replaced them all), and the pool's state as STATUS=.
void proc_manager::update_service_state() {
    size_t want = wanted();
    if ((phase_ == phase::starting || phase_ == phase::reloading) && stopping_ == 0 && ready_ >= want)
        enter(phase_event::ready);
    if (service_.active())
        service_.status(pool_status());
    publish_status();
}

// The pool's figures, for status readers.
void proc_manager::publish_status() {
    size_t want = wanted();
    board_.publish({static_cast<uint32_t>(phase_), static_cast<uint32_t>(want), static_cast<uint32_t>(live_),
                    static_cast<uint32_t>(ready_), static_cast<uint32_t>(stopping_), crash_limited_,
                    static_cast<uint32_t>(params_.pool), crash_limited_ ? next_crash_fork_ms_ : 0});
}

void proc_manager::sample_status(int64_t now) {
    if (!board_.mapped() || now < next_sample_ms_)
        return;
    next_sample_ms_ = now + sample_interval_ms;
    adapt_due_ = true;  // an adaptive pool's look once a second too: limits changed at run time
    sample_pids_.resize(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i)
        sample_pids_[i] = slots_[i].pid;
    board_.sample(sample_pids_, now);
    check_memory();
    limits_due_ = true;  // exec'd workers' asks for replacement are seen here
    publish_status();
}

void proc_manager::open_status_socket() {
    gid_t group = 0;
    bool with_group = !params_.status_group.empty();
    if (with_group && !os::group_id(params_.status_group, group))
        throw error(PM_EBADVALUE, "status_group: no group '" + params_.status_group + "'");
    std::string why;
    int fd = board_.open_status_socket(params_.status_socket, group, with_group, why);
    if (fd < 0)
        throw error(PM_ESYS, why, errno);
    if (os::epoll_add(epoll_fd_, fd, status_tag) < 0)
        throw error(PM_ESYS, "status_socket: epoll: " + os::errno_text(errno), errno);
}

void proc_manager::check_start_timeout(int64_t now) {
    if (phase_ != phase::starting || params_.start_timeout_ms <= 0 || now < start_ms_ + params_.start_timeout_ms)
        return;
    notify("start timeout: " + std::to_string(ready_) + " of " + std::to_string(wanted()) +
           " workers ready after " + seconds_text(params_.start_timeout_ms) + " s");
    die("start timeout", 1);
}

// The one place where the phase changes, and what entering a phase does.
void proc_manager::enter(phase_event e) {
    phase from = phase_;
    phase_ = next_phase(from, e);
    if (phase_ != from)
        publish_status();
    if (!service_.active())
        return;
    switch (phase_) {
    case phase::running:
        if (from != phase::running)
            service_.send("READY=1");
        break;
    case phase::reloading:
        if (e == phase_event::reload)
            service_.send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(service_notifier::monotonic_usec()),
                          "reloading: replacing " + std::to_string(live_) + " workers");
        break;
    case phase::stopping:
        if (from != phase::stopping)
            service_.send("STOPPING=1", "stopping: " + std::to_string(live_) + " workers to stop");
        break;
    default:
        break;
    }
}

std::string proc_manager::pool_status() const {
    std::string text = std::to_string(live_ - stopping_) + " of " + std::to_string(wanted()) +
                       " workers running";
    if (stopping_ > 0)
        text += ", " + std::to_string(stopping_) + " stopping";
    if (crash_limited_)
        text += "; crash loop: respawning at most one per second";
    return text;
}

void proc_manager::handle_signal(const os::signal_event &e) {
    int signo = e.signo;
    count_signal(signo);
    if (phase_ == phase::stopping)
        return;  // a second TERM, or a HUP, cannot disturb the shutdown
    if (signo == SIGTTIN || signo == SIGTTOU) {
        // kill(2)'s TTIN and TTOU, or a TTIN sigqueue'd with the size (fcgi-pm
        // resize); not the kernel's (a terminal's TTOU to a background group).
        bool sized = e.code == SI_QUEUE && signo == SIGTTIN && e.value > 0;
        if (e.code != SI_USER && !sized) {
            notify(std::string("ignored ") + (signo == SIGTTIN ? "TTIN" : "TTOU") +
                   " not sent by kill or fcgi-pm resize");
            return;
        }
        resize(sized ? e.value : static_cast<long>(wanted()) + (signo == SIGTTIN ? 1 : -1),
               sized ? "resize" : signo == SIGTTIN ? "TTIN" : "TTOU");
        return;
    }
    if (signo == SIGTERM) {
        notify("received signal TERM");
        call_end_hook(PM_END_DIE, "safe exit from signal TERM", 0);
        die("safe exit from signal TERM", 0);
    } else if (signo == SIGHUP) {
        reload();
    }
}

// pm_request_stop and pm_request_reload, as the loop acts on them.
void proc_manager::handle_requests() {
    if (int asked = stop_requested_) {
        stop_requested_ = 0;
        reload_requested_ = 0;
        if (phase_ == phase::stopping)
            return;
        int signo = asked - 1;
        const char *name = signo > 0 ? ::sigabbrev_np(signo) : nullptr;
        std::string msg = name ? std::string("safe exit from signal ") + name : "safe exit on request";
        notify(name ? std::string("received signal ") + name : std::string("stop requested"));
        call_end_hook(PM_END_DIE, msg, 0);
        die(msg, 0);
    }
    if (reload_requested_) {
        reload_requested_ = 0;
        if (phase_ != phase::stopping)
            reload();
    }
}

// HUP: every worker is replaced; slots that were backing off after crashes are
// refilled at once (the operator may have fixed what made them fail).
void proc_manager::reload() {
    enter(phase_event::reload);
    ++board_.counts.reloads;
    reset_crash_backoff();
    stop_workers(board::stop_hup, false);
}

void proc_manager::reset_crash_backoff() {
    for (slot &s : slots_) {
        s.early_deaths = 0;
        s.not_before_ms = 0;
    }
    early_deaths_.clear();
    next_crash_fork_ms_ = 0;
    pool_early_deaths_ = 0;
    pool_not_before_ms_ = 0;
    if (crash_limited_) {
        crash_limited_ = false;
        notify("crash loop over: respawning normally");
    }
}

int proc_manager::request_stop(int signo) {
    if (is_worker_)
        return request_worker_stop(signo);
    stop_requested_ = 1 + signo;
    os::wake(wake_fd_);
    return PM_OK;
}

int proc_manager::request_reload() {
    if (is_worker_)
        return PM_ESTATE;
    reload_requested_ = 1;
    os::wake(wake_fd_);
    return PM_OK;
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
    const worker_slot &r = reports_[index];
    if (r.requests > 0 || r.stopped || (board::load(r) & board::stop_mask))
        return false;
    return WIFEXITED(status) || !r.initialized;
}

// Takes a reaped worker out of its slot, and logs it.
void proc_manager::clear_slot(size_t index, int status) {
    slot &s = slots_[index];
    pid_t pid = s.pid;
    slot_of_pid_.erase(pid);
    s.pid = 0;
    --live_;
    if (s.ready) {
        s.ready = false;
        --ready_;
    }
    if (s.exec_pipe >= 0) {
        os::epoll_del(epoll_fd_, s.exec_pipe);
        os::close_fd(s.exec_pipe);
        s.exec_pipe = -1;
    }
    if (s.told_to_stop)
        --stopping_;
    else if (s.recycle == recycle_max_requests)
        ++board_.counts.recycled;  // it left after its last request, its replacement asked for before
    if (s.spared) {
        s.spared = false;
        --spared_;
    }
    free_.push_back(index);
    adapt_due_ = true;  // an adaptive pool may want it replaced, or not
    board_.slot_cleared(index);
    ++board_.counts.exits;
    publish_status();  // served_by_gone and the slot change together for readers
    notify((short_text() << "server (pid " << pid << ") exited with status " << status).view());
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
    bool told = s.told_to_stop;
    clear_slot(index, status);
    int64_t now = os::now_ms();
    if (!told && now - s.started_ms < params_.min_uptime_ms && crashed(index, status)) {
        s.not_before_ms = now + backoff_ms(params_, ++s.early_deaths);
        pool_not_before_ms_ = now + backoff_ms(params_, ++pool_early_deaths_);
        ++board_.counts.crashes;
        note_early_death(now);
    } else {
        s.early_deaths = 0;
        s.not_before_ms = now;
        pool_early_deaths_ = 0;
    }
    return pid;
}

// SIGKILLs the workers still alive, and reaps and logs each.
void proc_manager::kill_and_reap_all() {
    for (const slot &s : slots_)
        if (s.pid)
            ::kill(s.pid, SIGKILL);
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].pid)
            continue;
        int status = -1;
        if (os::reap_blocking(slots_[i].pid, status) < 0)
            status = -1;
        clear_slot(i, status);
    }
}

// TERM (HUP: reason stop_hup) to every worker. A forked worker with the library's
// handler is told through its slot, and signalled only if it is not busy: a request
// in progress is never interrupted. Others get the stop signal. With shut_down, the
// listening sockets are shut down between the two: a worker woken by that finds its
// flag already set. With spare too, a worker accepting on one of them is not
// signalled either (spared: the shutdown has ended its wait; see die).
void proc_manager::stop_workers(uint32_t reason, bool shut_down, bool spare) {
    if (!live_) {
        if (shut_down)
            shut_down_listeners();
        return;
    }
    int signo = exec_argv_.empty() ? SIGTERM : params_.stop_signal;
    bool through_board = exec_argv_.empty() && !params_.no_signals;
    std::string pids;
    for (const slot &s : slots_)
        if (s.pid)
            pids += (pids.empty() ? "" : " ") + std::to_string(s.pid);
    notify(std::string("sending ") + signal_name(signo) + " to PIDs, " + pids);
    for (size_t i = 0; i < slots_.size(); ++i) {
        slot &s = slots_[i];
        if (!s.pid)
            continue;
        uint32_t was = through_board && i < reports_capacity_ ? board::flag_stop(reports_[i], reason) : board::idle;
        s.signal_now = was != board::busy;
        s.was_accepting = was == board::accepting;
        if (!s.told_to_stop)
            ++stopping_;
        s.told_to_stop = true;
        board_.slot_told_to_stop(i);
    }
    bool all_shut = shut_down && shut_down_listeners();
    for (slot &s : slots_) {
        if (!s.pid || !s.signal_now)
            continue;
        if (spare && all_shut && s.was_accepting) {
            spared_ += !s.spared;
            s.spared = true;
        } else {
            ::kill(s.pid, signo);
        }
    }
}

// The spared workers still alive, signalled after all (unless busy by now): one may
// wait on a socket of its own under an inherited number, which no shutdown ends.
void proc_manager::signal_spared() {
    for (size_t i = 0; i < slots_.size() && spared_ > 0; ++i) {
        slot &s = slots_[i];
        if (!s.pid || !s.spared)
            continue;
        s.spared = false;
        --spared_;
        if (board::flag_stop(reports_[i], board::stop_term) != board::busy)
            ::kill(s.pid, SIGTERM);
    }
}

void proc_manager::release_pid_files(size_t keep) {
    while (pid_files_.size() > keep) {
        std::string message;
        if (pid_files_.back().release(message) != PM_OK)
            notify(message);
        pid_files_.pop_back();
    }
}

// TERM's shutdown: stop listening, let every worker finish, and only then give up
// the pid file (a second manager cannot start beside the workers of this one).
void proc_manager::die(const std::string &msg, int status) {
    if (!managing_)
        exit_process("dying: " + msg, status);
    enter(phase_event::stop);
    int64_t deadline = params_.die_timeout_ms > 0 ? os::now_ms() + params_.die_timeout_ms : -1;
    stop_workers(board::stop_term, true, true);
    // Spared workers (stop_workers) leave as the shutdown wakes them: once none has
    // been reaped for spared_grace_ms, those left are signalled after all.
    int64_t nudge = os::now_ms() + spared_grace_ms;
    while (live_ > 0) {
        int64_t now = os::now_ms();
        if (deadline >= 0 && now >= deadline) {
            call_end_hook(PM_END_ABORT, "wait timeout", 1);
            kill_and_reap_all();
            release_pid_files();
            exit_process("wait timeout", 1);
        }
        if (spared_ > 0 && now >= nudge)
            signal_spared();
        if (limits_due_ || now >= next_limits_ms_)
            check_limits(now);  // a request's deadline holds during the shutdown too
        size_t before = live_;
        service_.status(pool_status());
        int64_t wake = spared_ > 0 && (deadline < 0 || nudge < deadline) ? nudge : deadline;
        if (next_limits_ms_ != INT64_MAX)
            wake = wake < 0 ? next_limits_ms_ : std::min(wake, next_limits_ms_);
        wait_event(wake, false, nullptr);
        if (live_ < before)
            nudge = os::now_ms() + spared_grace_ms;
    }
    enter(phase_event::reaped);
    release_pid_files();
    exit_process("dying: " + msg, status);
}

// The manager's own wait failed (a hook closed its descriptors, say): nothing more
// can be learnt from the loop. Logged; the workers are stopped, waited for with
// sigtimedwait on SIGCHLD (blocked in the manager) up to die_timeout, killed after
// it, all reaped; exit 1.
void proc_manager::fatal_loop_error(const std::string &what, int err) {
    notify(what + ": " + os::errno_text(err));
    enter(phase_event::stop);
    stop_workers(board::stop_term, true);
    int64_t deadline = params_.die_timeout_ms > 0 ? os::now_ms() + params_.die_timeout_ms : -1;
    while (live_ > 0) {
        for (size_t i = 0; i < slots_.size(); ++i)
            reap_slot(i);
        if (!live_)
            break;
        int64_t now = os::now_ms();
        if (deadline >= 0 && now >= deadline) {
            kill_and_reap_all();
            break;
        }
        os::wait_for_sigchld(deadline < 0 ? 1000 : std::min<int64_t>(1000, deadline - now));
    }
    enter(phase_event::reaped);
    release_pid_files();
    exit_process("dying: the manager's event loop failed", 1);
}

void proc_manager::exit_process(const std::string &msg, int status) {
    if (live_ > 0)
        kill_and_reap_all();  // still here at the end: none is left behind
    // The last line is written while SIGPIPE is still blocked: stderr may be gone.
    try {
        notify(msg);
    } catch (...) {
        if (managing_)
            leave_manager_role();
        throw;
    }
    if (managing_) {
        discard_late_signals();
        leave_manager_role();
    }
    throw exit_request{status};
}

// A stop, reload or resize that came too late to be acted on (a HUP as the manager
// exits) was the manager's: taken here, it does not end the process by its default
// action once the host's mask is back.
void proc_manager::discard_late_signals() {
    if (!signals_saved_ || params_.no_signals)
        return;
    sigset_t ours;
    sigemptyset(&ours);
    for (int s : {SIGTERM, SIGHUP, SIGTTIN, SIGTTOU})
        if (!sigismember(&host_mask_, s))
            sigaddset(&ours, s);
    struct timespec none = {0, 0};
    while (::sigtimedwait(&ours, nullptr, &none) > 0) {
    }
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
        int err = rc == PM_ESYS ? errno : 0;
        if (!file.held())
            pid_files_.remove_if([](const pid_file &f) { return !f.held(); });
        notify(message);
        throw error(rc, message, err);
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
        errno = 0;
        // Not held (never written, or written by another pm_t of this process): only
        // a file naming this process is removed, and a missing one is reported.
        if (::unlink(path.c_str()) < 0) {
            message = "unlink: " + path + ": " + os::errno_text(errno);
            rc = PM_ESYS;
        }
    }
    if (rc != PM_OK) {
        int err = errno;
        notify(message);
        throw error(rc, message, err);
    }
    return PM_OK;
}

}  // namespace fcgipm
