// The pool's shared memory: one slot per worker, mapped by the manager before it
// forks and shared by every process of the pool. A worker writes its own slot with
// plain stores and atomics (no system call on the request path); the manager reads
// it, and tells a worker to stop through it.
//
// How a stop reaches a worker without disturbing a request: the manager sets a stop
// flag in the slot's state word, and signals the worker only if the word said it
// was not busy. A worker going busy sets its phase with a compare-and-swap on the
// same word, so it sees any flag set before: then a signal may still be on its way,
// and it blocks TERM and HUP until it exits (a system call on that rare path only).
// A busy worker never gets the manager's signal; it finds the flag at the end of its
// request and exits there. Nor does one waiting in pm_accept on a listening socket
// that the manager shuts down on TERM (phase "accepting"): the shutdown itself ends
// its accept. The slot is the first stone of the live status scoreboard: what a
// status reader will show comes from here.
#pragma once

#include <cstdint>

namespace fcgipm {

struct worker_slot {
    uint32_t state;                 // phase (low byte) and stop flags; atomics only
    volatile uint32_t initialized;  // pm_manage has returned in it
    volatile uint32_t stopped;      // it received TERM or HUP (also by signal)
    uint32_t reserved;
    volatile uint64_t requests;     // requests served
};

namespace board {

constexpr uint32_t idle = 0;
constexpr uint32_t busy = 1;
constexpr uint32_t accepting = 2;  // idle, in pm_accept on a socket the manager shuts down on TERM
constexpr uint32_t phase_mask = 0xff;
constexpr uint32_t stop_term = 1u << 8;  // stop: the manager is shutting down
constexpr uint32_t stop_hup = 1u << 9;   // stop: the manager is reloading
constexpr uint32_t stop_mask = stop_term | stop_hup;

inline uint32_t load(const worker_slot &s) {
    return __atomic_load_n(&s.state, __ATOMIC_ACQUIRE);
}

// Manager: adds a stop flag and returns the worker's phase before it. One that was
// not busy may be waiting anywhere outside a request: it must also be signalled,
// unless it was accepting and its socket is shut down after this.
inline uint32_t flag_stop(worker_slot &s, uint32_t flag) {
    return __atomic_fetch_or(&s.state, flag, __ATOMIC_ACQ_REL) & phase_mask;
}

// Worker: from idle to accepting (now true), or back (a worker in another phase
// stays in it).
inline void set_accepting(worker_slot &s, bool now) {
    uint32_t from = now ? idle : accepting, to = now ? accepting : idle;
    uint32_t old = __atomic_load_n(&s.state, __ATOMIC_RELAXED);
    while ((old & phase_mask) == from &&
           !__atomic_compare_exchange_n(&s.state, &old, (old & ~phase_mask) | to, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
    }
}

// Worker: from idle (or accepting) to busy. Returns the stop flags already set (non-zero: the
// manager may have signalled it, and the signal may still arrive).
inline uint32_t begin_request(worker_slot &s) {
    uint32_t old = __atomic_load_n(&s.state, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&s.state, &old, (old & ~phase_mask) | busy, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
    }
    return old & stop_mask;
}

// Worker: from busy back to idle, unless a stop flag is set (returned: it must exit,
// and stays busy so that no signal is sent to it).
inline uint32_t end_request(worker_slot &s) {
    uint32_t old = __atomic_load_n(&s.state, __ATOMIC_RELAXED);
    for (;;) {
        if (old & stop_mask)
            return old & stop_mask;
        if (__atomic_compare_exchange_n(&s.state, &old, (old & ~phase_mask) | idle, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            return 0;
    }
}

}  // namespace board

}  // namespace fcgipm
