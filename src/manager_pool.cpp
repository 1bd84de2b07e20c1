// The manager's side of an adaptive pool (params "pool" dynamic or ondemand; the
// decisions are pool_policy's): what it sees of its workers, the listening sockets it
// watches for connections that wait, and the retiring of idle workers.
//
// The manager watches its listening sockets edge-triggered: a connection arriving at
// a quiet pool wakes it. It then counts the workers idle (from each slot's phase,
// written by the worker without a system call) and the connections waiting (the
// kernel's socket diagnostics), and the policy says how many to add. The sockets are
// then left unwatched for settle_ms, and looked at once more: by then the worker that
// took the connection shows busy (it does not tell), and further arrivals are seen
// together. Only a look that finds nothing waiting watches the sockets again. So a
// pool under load costs the manager one look per settle_ms at most, whatever the
// request rate; while connections wait and the pool may still grow it looks every
// millisecond; a pool at max_workers is not woken by connections at all.
//
// An arrival that an idle worker accepts before the manager's epoll_wait is not
// reported at all (epoll polls the socket again as it delivers). For a dynamic pool,
// whose min_idle that worker's going busy may break, each look arms the board's
// busy_wake while the sockets are watched: the next worker to begin a request takes
// it and writes the eventfd, which counts as traffic.
//
// Idle workers are retired at the policy's deadline: each one is taken out of "idle"
// with a compare-and-swap on its slot's state word, so a worker that has just taken a
// connection is never stopped (the swap fails, and it stays).
#include <algorithm>
#include <cerrno>
#include <csignal>

#include "error.h"
#include "log.h"
#include "os.h"
#include "proc_manager.h"
#include "sockdiag.h"

namespace fcgipm {

void proc_manager::watch_listeners_for_pool() {
    if (!policy_.adaptive())
        return;
    for (int fd : os::listening_fds()) {
        pool_listener l{fd, 0, 0};
        if (!os::socket_identity(fd, l.family, l.inode))
            continue;
        if (os::epoll_add(epoll_fd_, fd, listen_tag, true) < 0)
            throw error(PM_ESYS, "epoll_ctl: " + os::errno_text(errno));
        pool_listeners_.push_back(l);
    }
    if (pool_listeners_.empty())
        throw error(PM_ESTATE, "pm_manage: an adaptive pool grows on its listening socket's connections, and this "
                               "process has no listening socket open");
    listeners_armed_ = true;
    next_adapt_ms_ = os::now_ms();  // a first look: a dynamic pool may be above its resting size
}

// The listening sockets wake the loop only while the pool can grow.
void proc_manager::arm_listeners(bool on) {
    if (on == listeners_armed_)
        return;
    for (const pool_listener &l : pool_listeners_)
        os::epoll_rearm(epoll_fd_, l.fd, listen_tag, on);  // re-armed: reported at once if a connection waits
    listeners_armed_ = on;
}

size_t proc_manager::wanted() const {
    if (policy_.adaptive())
        return target_;
    return static_cast<size_t>(std::max(params_.n_processes, 0L));
}

// The connections in the listen queues; a queue the kernel does not tell (no socket
// diagnostics here) counts as one connection when one has just arrived.
size_t proc_manager::connections_waiting(bool arrival) {
    size_t waiting = 0;
    for (const pool_listener &l : pool_listeners_) {
        sockdiag::listen_queue q;
        if (sockdiag::queue_of(l.family, l.inode, q))
            waiting += q.length;
        else
            waiting += arrival;
    }
    return waiting;
}

void proc_manager::adapt(int64_t now) {
    adapt_due_ = false;
    bool arrival = connection_arrived_, traffic = arrival || worker_woke_;
    connection_arrived_ = worker_woke_ = false;
    if (!policy_.adaptive())
        return;
    if (phase_ == phase::stopping) {
        arm_listeners(false);  // shut down, they would report HUP for ever
        board_.arm_busy_wake(false);
        next_adapt_ms_ = INT64_MAX;
        return;
    }
    board_.arm_busy_wake(false);  // armed again below, after the count, if the sockets are watched
    policy_.update(pool_settings_of(params_));  // limits set since apply now
    pool_look look{now, 0, 0, {}, 0};
    look.ready.reserve(live_);
    bool exec = !exec_argv_.empty();
    for (size_t i = 0; i < slots_.size(); ++i) {
        slot &s = slots_[i];
        if (!s.pid || s.told_to_stop)
            continue;
        ++look.live;
        const worker_slot *r = i < reports_capacity_ ? &reports_[i] : nullptr;
        // An exec'd program reports once it has mapped its slot (a program on this
        // library, soon after its exec: until then it counts as starting); one that
        // does not within exec_report_ms is not on the library: its phase unknown,
        // never idle to the policy, so never retired.
        uint32_t views = r ? r->views : 0;
        bool reports = r && (!exec || (views & views_written));
        bool starting = reports ? !r->initialized : !s.ready || (exec && now - s.ready_ms < exec_report_ms);
        if (starting) {
            ++look.starting;
            continue;
        }
        // Free: waiting in pm_accept ("accepting"). A worker once seen accepting that
        // is merely idle has taken a connection and not yet begun its request; one
        // never seen so (a loop on libfcgi's own accept) is free whenever idle.
        bool idle = false;
        if (reports) {
            uint32_t phase = board::load(*r) & board::phase_mask;
            bool not_busy = exec ? __atomic_load_n(&r->busy, __ATOMIC_RELAXED) == 0 : phase != board::busy;
            s.seen_accepting |= phase == board::accepting || (views & views_accepting);
            idle = not_busy && (phase == board::accepting || !s.seen_accepting);
        }
        int64_t since = now;
        if (idle) {
            // Its own view tells since when; else the manager's first sight of it idle.
            int64_t for_ms = board_.idle_ms(i);
            uint64_t served = r ? __atomic_load_n(&r->requests, __ATOMIC_RELAXED) : 0;
            if (for_ms >= 0)
                since = std::max(now - for_ms, s.ready_ms);
            else if (served == 0)
                since = s.ready_ms;  // idle since it could serve
            else if (s.idle_seen_ms >= 0 && s.idle_seen_requests == served)
                since = s.idle_seen_ms;
            s.idle_seen_ms = since;
            s.idle_seen_requests = served;
        } else {
            s.idle_seen_ms = -1;
        }
        look.ready.push_back({i, idle, since});
    }
    // After the phases: a connection taken meanwhile is then counted neither waiting
    // nor idle (too few workers, put right at the next look), never both.
    look.waiting = connections_waiting(arrival);
    pool_decision d = policy_.decide(look);
    if (phase_ == phase::starting)
        d.target = std::max(d.target, target_);  // the pool's first workers (-F), not yet forked
    if (phase_ == phase::reloading) {
        // A HUP replaces the pool at its size: nothing retired, nothing let go, until
        // the new workers are all up.
        d.target = std::max(d.target, target_);
        d.retire.clear();
        d.next_check_ms = std::min(d.next_check_ms, now + reload_look_ms);
    }
    size_t retired = 0;
    for (size_t index : d.retire)
        retired += retire_worker(index, now);
    // A worker that turned busy before it could be retired stays, and counts.
    target_ = d.target + (d.retire.size() - retired);
    next_adapt_ms_ = d.next_check_ms;
    bool can_grow = target_ < policy_.settings().max_workers;
    if (can_grow && (traffic || look.waiting > 0)) {
        // Traffic: look again once it settles, the sockets unwatched meanwhile.
        arm_listeners(false);
        next_adapt_ms_ = std::min(next_adapt_ms_, now + settle_ms);
    } else {
        arm_listeners(can_grow);
    }
    watch_busy(look);
}

// A dynamic pool's min_idle, while the sockets are watched (the pool can grow, and no
// look is due yet): the busy_wake flag armed, then the workers counted idle looked at
// again. One that went busy before the arming is seen here (another look at once); one
// after it takes the flag and writes the eventfd. A look made for either is traffic,
// after which the sockets and the flag rest for settle_ms.
void proc_manager::watch_busy(const pool_look &look) {
    if (params_.pool != pool_mode::dynamic || params_.min_idle <= 0 || !listeners_armed_)
        return;
    board_.arm_busy_wake(true);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  // the arming before the reads (the worker's side: take_busy_wake)
    bool exec = !exec_argv_.empty();
    for (const worker_look &w : look.ready) {
        if (!w.idle || w.slot >= reports_capacity_)
            continue;
        const worker_slot &r = reports_[w.slot];
        bool busy = exec ? __atomic_load_n(&r.busy, __ATOMIC_RELAXED) != 0
                         : (board::load(r) & board::phase_mask) == board::busy;
        if (busy) {
            adapt_due_ = worker_woke_ = true;
            return;
        }
    }
}

bool proc_manager::retire_worker(size_t index, int64_t now) {
    slot &s = slots_[index];
    bool exec = !exec_argv_.empty();
    if (!exec) {
        // Out of idle (or accepting) with the stop flag, unless it went busy.
        if (index >= reports_capacity_ || !board::retire_idle(reports_[index], board::stop_hup))
            return false;
    }
    int64_t idle_for = s.idle_seen_ms >= 0 ? now - s.idle_seen_ms : 0;
    ++stopping_;
    s.told_to_stop = true;
    board_.slot_told_to_stop(index);
    // A program on this library (the only kind retired) finishes a request on TERM,
    // whatever stop_signal says for the others.
    ::kill(s.pid, SIGTERM);
    notify((short_text() << "server (pid " << s.pid << ") retired: idle " << seconds_text(idle_for) << " s, "
                         << static_cast<long long>(live_ - stopping_) << " workers left")
               .view());
    return true;
}

// The most workers a static pool may be resized to: the scoreboard's slots, made at
// the start for twice its size, 64 at least (the spare ones beyond are recycling's).
size_t proc_manager::resize_ceiling() const {
    return resize_ceiling_;
}

// A static pool's size, changed while it runs (TTIN, TTOU, fcgi-pm resize): more are
// forked at once; of fewer, the workers beyond the size are told to stop, the idle
// ones first (at once), then busy ones (after their request).
void proc_manager::resize(long size, const char *why) {
    if (policy_.adaptive()) {
        notify(std::string(why) + ": pool " + (params_.pool == pool_mode::dynamic ? "dynamic" : "ondemand") +
               " sizes itself (max_workers " + std::to_string(params_.max_workers) + "); ignored");
        return;
    }
    long ceiling = static_cast<long>(resize_ceiling());
    if (size < 1 || size > ceiling) {
        notify(std::string(why) + ": size " + std::to_string(size) + " refused: this pool has 1 to " +
               std::to_string(ceiling) + " workers (its scoreboard's slots)");
        return;
    }
    long from = params_.n_processes;
    params_.n_processes = size;
    notify(std::string(why) + ": pool size " + std::to_string(from) + " -> " + std::to_string(size));
    size_t running = live_ - stopping_;
    size_t extra = running > static_cast<size_t>(size) ? running - static_cast<size_t>(size) : 0;
    bool through_board = exec_argv_.empty() && !params_.no_signals;
    int signo = exec_argv_.empty() ? SIGTERM : params_.stop_signal;
    // Two passes, from the last slot down: idle workers, then any.
    for (int pass = 0; pass < 2 && extra > 0; ++pass) {
        for (size_t i = slots_.size(); i-- > 0 && extra > 0;) {
            slot &s = slots_[i];
            if (!s.pid || s.told_to_stop)
                continue;
            bool on_board = through_board && i < reports_capacity_;
            uint32_t was = board::idle;
            if (pass == 0) {
                // Idle: by the stop protocol's swap; an exec'd program on this library
                // by its view (others never say: the second pass's).
                const worker_slot *r = i < reports_capacity_ ? &reports_[i] : nullptr;
                bool idle = on_board ? board::retire_idle(reports_[i], board::stop_hup)
                                     : s.ready && r && (r->views & views_written) &&
                                           !__atomic_load_n(&r->busy, __ATOMIC_RELAXED);
                if (!idle)
                    continue;
            } else if (on_board) {
                was = board::flag_stop(reports_[i], board::stop_hup);
            }
            s.told_to_stop = true;
            ++stopping_;
            board_.slot_told_to_stop(i);
            if (was != board::busy)
                ::kill(s.pid, signo);
            --extra;
        }
    }
    publish_status();
}

}  // namespace fcgipm
