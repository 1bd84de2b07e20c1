#include "pool_policy.h"

#include <algorithm>

namespace fcgipm {

size_t pool_policy::initial_target() const {
    switch (s_.mode) {
    case pool_mode::fixed:
        return s_.start;
    case pool_mode::dynamic:
        return std::min(std::max(s_.start, s_.min_idle), s_.max_workers);
    case pool_mode::ondemand:
        break;
    }
    return 0;
}

// Tokens in thousandths: spawn_rate a second is spawn_rate thousandths a millisecond.
void pool_policy::refill(int64_t now_ms) {
    int64_t rate = std::max<int64_t>(s_.spawn_rate, 1), capacity = rate * 1000;
    if (tokens_ < 0)
        tokens_ = capacity;
    else if (now_ms > tokens_at_ms_)
        tokens_ = std::min(capacity, tokens_ + (now_ms - tokens_at_ms_) * rate);
    tokens_at_ms_ = std::max(tokens_at_ms_, now_ms);
}

pool_decision pool_policy::decide(const pool_look &look) {
    if (s_.mode == pool_mode::fixed)
        return {s_.start, {}, INT64_MAX};
    int64_t now = look.now_ms;
    refill(now);
    pool_decision d{look.live, {}, INT64_MAX};

    size_t idle = 0;
    for (const worker_look &w : look.ready)
        idle += w.idle;
    // Growth: every waiting connection wants a worker, and a dynamic pool keeps
    // min_idle more; the idle ones and those still starting will take them.
    size_t floor_idle = s_.mode == pool_mode::dynamic ? s_.min_idle : 0;
    size_t need = look.waiting + floor_idle;
    size_t coming = idle + look.starting;
    size_t room = look.live < s_.max_workers ? s_.max_workers - look.live : 0;
    size_t wanted = std::min(need > coming ? need - coming : 0, room);
    size_t add = std::min(wanted, static_cast<size_t>(tokens_ / 1000));
    tokens_ -= static_cast<int64_t>(add) * 1000;
    d.target = look.live + add;
    if (add < wanted) {
        // Out of tokens: when the next whole one is there.
        int64_t rate = std::max<int64_t>(s_.spawn_rate, 1), missing = 1000 - tokens_ % 1000;
        d.next_check_ms = now + std::max<int64_t>(1, (missing + rate - 1) / rate);
    }
    if (look.waiting > 0 && d.target < s_.max_workers)
        d.next_check_ms = std::min(d.next_check_ms, now + recheck_ms);  // while connections wait
    size_t keep = s_.mode == pool_mode::dynamic ? s_.max_idle : 0;
    if (add > 0 || look.waiting > 0) {
        // No shrinking while connections wait; the busy workers that may go idle
        // after are looked at again within a timeout.
        if (d.target > keep)
            d.next_check_ms = std::min(d.next_check_ms, now + std::max(s_.idle_timeout_ms, min_wait_ms));
        return d;
    }

    // Shrinking, when nothing waits: the idle workers beyond the pool's resting
    // number (max_idle, or none on demand), longest idle first, each once it has been
    // idle idle_timeout.
    std::vector<const worker_look *> idle_ones;
    idle_ones.reserve(idle);
    for (const worker_look &w : look.ready)
        if (w.idle)
            idle_ones.push_back(&w);
    std::sort(idle_ones.begin(), idle_ones.end(), [](const worker_look *a, const worker_look *b) {
        return a->idle_since_ms < b->idle_since_ms || (a->idle_since_ms == b->idle_since_ms && a->slot < b->slot);
    });
    size_t excess = idle > keep ? idle - keep : 0;
    for (const worker_look *w : idle_ones) {
        if (d.retire.size() >= excess)
            break;
        int64_t due = w->idle_since_ms + s_.idle_timeout_ms;
        if (due > now) {
            d.next_check_ms = std::min(d.next_check_ms, due);
            break;  // the rest have been idle for less
        }
        d.retire.push_back(w->slot);
    }
    d.target = look.live - d.retire.size();
    // Busy workers may go idle, and starting ones become idle (a worker does not
    // tell): by the time one of them is due, the manager looks again.
    if (d.target > keep && (look.ready.size() > idle || look.starting > 0))
        d.next_check_ms = std::min(d.next_check_ms, now + std::max(s_.idle_timeout_ms, min_wait_ms));
    return d;
}

}  // namespace fcgipm
