// The pool's size as a decision: what the manager sees of its pool in, how many
// workers it should have and which idle ones to retire out. Pure: no process, no
// clock of its own, so every rule is tested without forking (tests/unit).
//
// Modes (params "pool"):
// - fixed (CLI "static"): n_processes workers, always;
// - dynamic: start with n_processes; keep at least min_idle workers idle, and retire
//   idle ones beyond max_idle once they have been idle idle_timeout; at most
//   max_workers;
// - ondemand: no worker until a connection waits; each one idle for idle_timeout
//   retires, down to none; at most max_workers.
// The manager asks on events (a connection arriving on a listening socket, a worker
// reaped) and at the deadline the last answer gave, never on a polling tick: a burst
// is met as soon as its connections queue, and idle workers leave when their time is
// up. Spawning is paced by a token bucket (spawn_rate a second, as many at once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fcgipm {

enum class pool_mode { fixed, dynamic, ondemand };

struct pool_settings {
    pool_mode mode = pool_mode::fixed;
    size_t start = 0;  // n_processes: the fixed size, or a dynamic pool's first
    size_t min_idle = 0;
    size_t max_idle = 0;
    size_t max_workers = 0;
    int64_t idle_timeout_ms = 10000;
    int64_t spawn_rate = 1000;  // forks a second at most, and in one go
};

// One worker that can serve and is not told to stop.
struct worker_look {
    size_t slot;
    bool idle;                  // not on a request (known: a worker on this library)
    int64_t idle_since_ms;      // since when, if idle
};

struct pool_look {
    int64_t now_ms;
    size_t live;      // workers not told to stop, ready or starting
    size_t starting;  // of them, not ready yet: idle soon
    std::vector<worker_look> ready;
    size_t waiting;   // connections in the listen queues, not yet accepted
};

struct pool_decision {
    size_t target;                // workers the pool should have (the manager forks up to it)
    std::vector<size_t> retire;   // idle workers' slots to stop, longest idle first
    int64_t next_check_ms;        // when to ask again without an event (INT64_MAX: never)
};

class pool_policy {
public:
    // How soon to look again while connections wait (and workers could be added).
    static constexpr int64_t recheck_ms = 1;
    // The soonest look for workers that may go idle (idle_timeout 0 would spin).
    static constexpr int64_t min_wait_ms = 100;

    explicit pool_policy(const pool_settings &s = {}) : s_(s) {}
    const pool_settings &settings() const { return s_; }
    void update(const pool_settings &s) { s_ = s; }  // limits changed at run time
    bool adaptive() const { return s_.mode != pool_mode::fixed; }
    // The size to start with.
    size_t initial_target() const;
    // The pool as it is now, and what to do about it (the spawn tokens are taken
    // here: the manager forks what the decision's target asks for).
    pool_decision decide(const pool_look &look);

private:
    void refill(int64_t now_ms);
    pool_settings s_;
    int64_t tokens_ = -1;  // thousandths of a fork; -1: full (set on the first decision)
    int64_t tokens_at_ms_ = 0;
};

}  // namespace fcgipm
