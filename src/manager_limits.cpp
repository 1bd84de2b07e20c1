// The manager's limits on requests and workers (params request_timeout,
// request_slow, max_requests, max_age, max_rss), read from the scoreboard outside
// the request path.
//
// Request limits: each worker's slot tells whether it is in a request and since
// when (its worker writes that without a system call). The manager looks at the
// moment the next limit can pass: the soonest of each running request's, and
// "now + the limit" for requests yet to begin; so it wakes once per limit at most
// while nothing runs long, and fires within its timer's resolution. A request past
// request_slow is logged once, with its worker, method, URI and run time, and
// counted. A request past request_timeout has its worker stopped: the stop flag
// stop_deadline in its state word, then TERM, on which the library's handler ends
// the process at once (the request's connection closes: its client alone gets an
// error); KILL follows request_timeout_grace later if it is still there. Its slot
// is refilled as after any stop.
//
// Recycling: a worker beginning its last request before max_requests (plus its
// jitter) asks to be replaced (views_recycle in its slot, and a wake-up), and exits
// after that request as the original does; its replacement is forked meanwhile,
// into a spare slot. A worker older than max_age or with more than max_rss KB
// resident (the manager reads that once a second, scoreboard::sample) is marked;
// its replacement is forked first, and once that is ready (past its crash window,
// or serving), the marked worker is told to stop as on HUP: at once if idle, else
// after its request. So the pool never has fewer workers able to serve than it had.
#include <algorithm>
#include <csignal>

#include "log.h"
#include "os.h"
#include "proc_manager.h"

namespace fcgipm {


size_t proc_manager::recycles_pending(bool leaving_only) const {
    size_t n = 0;
    for (const slot &s : slots_)
        n += s.pid && s.recycle && !s.told_to_stop && (!leaving_only || s.recycle == recycle_max_requests);
    return n;
}

// Workers to fork up to: a static pool's size, and a replacement for each marked
// worker while there is a spare slot for it on the scoreboard: each one on its last
// request before max_requests (it leaves anyway), and of those marked for their age
// or memory an eighth of the pool at once at most (workers started together age
// together: not all replaced at once). An adaptive pool's policy replaces its
// workers itself (mark_for_recycling).
size_t proc_manager::spawn_target() const {
    size_t want = wanted();
    if (policy_.adaptive())
        return want;
    size_t pending = recycles_pending();
    if (!pending)
        return want;
    size_t leaving = recycles_pending(true);
    size_t spare = reports_capacity_ > want ? reports_capacity_ - want : 0;
    return want + std::min(spare, leaving + std::min(pending - leaving, std::max<size_t>(1, want / 8)));
}

void proc_manager::mark_for_recycling(size_t index, const char *why, const std::string &detail) {
    slot &s = slots_[index];
    if (!s.pid || s.told_to_stop || s.recycle || phase_ == phase::stopping)
        return;
    s.recycle = why;
    if (why == recycle_max_requests)
        return;  // its own "safe exit after max_requests" tells it, as the original's does
    if (policy_.adaptive()) {
        // The policy counts the workers not told to stop: one told now (it finishes
        // its request) is replaced at the next look, while it finishes.
        notify((short_text() << "server (pid " << s.pid << ") to be recycled: " << detail).view());
        stop_for_recycling(index);
        return;
    }
    notify((short_text() << "server (pid " << s.pid << ") to be recycled: " << detail << "; its replacement first")
               .view());
}

// A worker that can serve, for a replacement: ready (an exec'd program on this
// library initialized too; one that is not is taken after exec_report_ms), and past
// the crash window (min_uptime) or with a request served: one that fails at its
// start never takes the place of one that serves.
bool proc_manager::able_to_serve(size_t index, int64_t now) const {
    const slot &s = slots_[index];
    if (!s.pid || !s.ready || s.told_to_stop)
        return false;
    bool on_board = index < reports_capacity_;
    if (exec_argv_.empty() || !on_board) {
        if (!on_board || !reports_[index].initialized)
            return !on_board && now - s.started_ms >= params_.min_uptime_ms;
    } else if (!reports_[index].initialized && now - s.ready_ms < exec_report_ms) {
        return false;
    }
    return now - s.started_ms >= params_.min_uptime_ms || (on_board && reports_[index].requests > 0);
}

// While workers wait to be recycled: one more able to serve than the pool's size
// lets one of them (the longest running) go.
void proc_manager::recycle_due(int64_t now) {
    if (!recycles_pending())
        return;
    size_t able = 0;
    for (size_t i = 0; i < slots_.size(); ++i)
        able += able_to_serve(i, now);
    if (able > wanted())
        recycle_one();
}

void proc_manager::recycle_one() {
    size_t pick = slots_.size();
    for (size_t i = 0; i < slots_.size(); ++i) {
        const slot &s = slots_[i];
        // (One at max_requests leaves by itself, after its last request.)
        if (s.pid && s.recycle && s.recycle != recycle_max_requests && !s.told_to_stop &&
            (pick == slots_.size() || s.started_ms < slots_[pick].started_ms))
            pick = i;
    }
    if (pick != slots_.size())
        stop_for_recycling(pick);
}

// Told to stop as on HUP: at once if idle, else after its request.
void proc_manager::stop_for_recycling(size_t pick) {
    slot &s = slots_[pick];
    bool through_board = exec_argv_.empty() && !params_.no_signals && pick < reports_capacity_;
    uint32_t was = through_board ? board::flag_stop(reports_[pick], board::stop_hup) : board::idle;
    s.told_to_stop = true;
    ++stopping_;
    board_.slot_told_to_stop(pick);
    ++board_.counts.recycled;
    if (was != board::busy)
        ::kill(s.pid, exec_argv_.empty() ? SIGTERM : params_.stop_signal);
    if (!policy_.adaptive())
        notify((short_text() << "server (pid " << s.pid << ") recycled (" << s.recycle << "): its replacement is ready")
                   .view());
}

void proc_manager::check_limits(int64_t now) {
    limits_due_ = false;
    next_limits_ms_ = INT64_MAX;
    int64_t timeout = params_.request_timeout_ms, slow = params_.request_slow_ms;
    auto soon = [&](int64_t at) { next_limits_ms_ = std::min(next_limits_ms_, std::max(at, now + 1)); };
    // A request beginning after now passes a limit no sooner than this.
    int64_t first = std::min(timeout > 0 ? timeout : INT64_MAX, slow > 0 ? slow : INT64_MAX);
    if (first != INT64_MAX)
        soon(now + first);
    if (params_.max_age_ms > 0)
        soon(now + params_.max_age_ms);  // the workers forked after now
    for (size_t i = 0; i < slots_.size(); ++i) {
        slot &s = slots_[i];
        if (!s.pid)
            continue;
        if (s.kill_at_ms >= 0) {
            // Stopped for its deadline: KILL once the grace is over.
            if (s.kill_at_ms == INT64_MAX)
                continue;  // KILLed: nothing more until it is reaped
            if (now >= s.kill_at_ms) {
                scoreboard::running_request q;
                if (!board_.request_running(i, q) || q.start != s.deadline_start) {
                    s.kill_at_ms = -1;  // out of that request: it leaves after the one it is in, if any
                    continue;
                }
                ::kill(s.pid, SIGKILL);
                s.kill_at_ms = INT64_MAX;
                notify((short_text() << "server (pid " << s.pid << ") still there "
                                     << seconds_text(params_.request_timeout_grace_ms) << " s after its TERM: KILL")
                           .view());
            } else {
                soon(s.kill_at_ms);
            }
            continue;
        }
        if (i >= reports_capacity_)
            continue;
        worker_slot &r = reports_[i];
        if (!s.told_to_stop && !s.recycle && (r.views & views_recycle))
            mark_for_recycling(i, recycle_max_requests, "");
        if (!s.told_to_stop && !s.recycle && params_.max_age_ms > 0) {
            if (now - s.started_ms >= params_.max_age_ms)
                mark_for_recycling(i, "max_age", "max_age (" + seconds_text(params_.max_age_ms) + " s) reached");
            else
                soon(s.started_ms + params_.max_age_ms);
        }
        // A worker told to stop (HUP, TERM, recycling) finishes its request first,
        // within the same limits.
        if (first == INT64_MAX)
            continue;
        scoreboard::running_request q;
        if (!board_.request_running(i, q))
            continue;
        if (timeout > 0 && q.ms >= timeout) {
            // For this request only: a worker that has begun another by the time the
            // TERM arrives takes it as a plain stop, and leaves after that one.
            s.deadline_start = q.start;
            __atomic_store_n(&r.deadline_start, q.start, __ATOMIC_RELEASE);
            board::flag_stop(r, board::stop_deadline);
            if (!s.told_to_stop)
                ++stopping_;
            s.told_to_stop = true;
            board_.slot_told_to_stop(i);
            ++board_.counts.deadline_kills;
            s.kill_at_ms = now + params_.request_timeout_grace_ms;
            soon(s.kill_at_ms);
            ::kill(s.pid, SIGTERM);
            notify((short_text() << "server (pid " << s.pid << ") request past its deadline ("
                                 << seconds_text(timeout) << " s): " << q.method << " " << q.uri << " ran "
                                 << seconds_text(q.ms) << " s; TERM")
                       .view());
            continue;
        }
        if (slow > 0 && s.slow_start != q.start) {
            if (q.ms >= slow) {
                s.slow_start = q.start;
                ++board_.counts.slow_requests;
                notify((short_text() << "server (pid " << s.pid << ") slow request: " << q.method << " " << q.uri
                                     << " running " << seconds_text(q.ms) << " s")
                           .view());
            } else {
                soon(now + (slow - q.ms));
            }
        }
        if (timeout > 0)
            soon(now + (timeout - q.ms));
    }
    recycle_due(now);
    if (recycles_pending())
        for (const slot &s : slots_) {
            int64_t able_at = std::max(s.started_ms + params_.min_uptime_ms, s.ready_ms + exec_report_ms);
            if (s.pid && !s.told_to_stop && !s.recycle && able_at > now)
                soon(able_at);  // a replacement able to serve by then
        }
}

// After each second's sample: workers over max_rss, by their figures just read.
void proc_manager::check_memory() {
    if (params_.max_rss_kb <= 0)
        return;
    for (size_t i = 0; i < slots_.size() && i < reports_capacity_; ++i) {
        slot &s = slots_[i];
        if (!s.pid || s.told_to_stop || s.recycle)
            continue;
        int64_t rss = board_.rss_kb(i);
        if (rss > params_.max_rss_kb)
            mark_for_recycling(i, "max_rss",
                               "resident " + std::to_string(rss) + " KB, over max_rss (" +
                                   std::to_string(params_.max_rss_kb) + " KB)");
    }
}

}  // namespace fcgipm
