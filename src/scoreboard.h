// The pool's shared memory, the scoreboard: a header the manager writes (the pool's
// figures) and one slot per worker, mapped by the manager before it forks and shared
// by every process of the pool. It lives in a memfd: nothing is left behind, and a
// status reader of the manager's user maps it read-only through /proc/PID/fd (or is
// handed it on the status socket).
//
// Each slot has three parts, each with one writer:
// - control: the stop protocol between manager and worker (below), and the
//   worker's "initialized" and "stopped" reports;
// - the manager's view (mseq): the worker's pid and start, whether it was told to
//   stop, and its CPU time and memory as of its last request;
// - the worker's view (wseq): busy or idle, the current or last request (its start,
//   method, URI, remote address), the last one's duration, the requests served.
// A view is written under a sequence counter (odd while a write is under way), so a
// reader copies it and retries if the counter moved: never a torn view. The worker
// writes with plain stores (no system call, no lock); the time is read from the TSC
// where it is invariant and the kernel keeps time by it (x86_64), else from
// CLOCK_MONOTONIC_COARSE (the vDSO's, a tick's resolution).
//
// How a stop reaches a worker without disturbing a request: the manager sets a stop
// flag in the slot's state word, and signals the worker only if the word said it
// was not busy. A worker going busy sets its phase with a compare-and-swap on the
// same word, so it sees any flag set before: then a signal may still be on its way,
// and it blocks TERM and HUP until it exits (a system call on that rare path only).
// A busy worker never gets the manager's signal; it finds the flag at the end of its
// request and exits there. Nor does one waiting in pm_accept on a listening socket
// that the manager shuts down on TERM (phase "accepting"): the shutdown itself ends
// its accept.
//
// Nothing in the mapping is trusted by its readers: a worker can write any byte of
// it. The manager reads only integers from slots; readers bound every count, index
// and string (scoreboard.cpp, status.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <sys/types.h>
#include <vector>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace fcgipm {

constexpr uint32_t board_magic = 0x53504346;  // "FCPS"
constexpr uint32_t board_version = 5;
constexpr size_t board_listeners = 4;       // listening sockets described in the header
constexpr size_t board_title_size = 256;
constexpr size_t board_method_size = 16;
constexpr size_t board_uri_size = 192;
constexpr size_t board_remote_size = 48;

// Clock of the request times in the slots: both read without a system call.
constexpr uint32_t clock_coarse_ns = 0;  // CLOCK_MONOTONIC_COARSE (the vDSO always serves it)
constexpr uint32_t clock_tsc = 1;        // the TSC, where it is invariant and the kernel's clock

struct board_listener {
    uint32_t family;  // AF_UNIX, AF_INET, AF_INET6; 0: none
    uint32_t reserved;
    uint64_t inode;
};

// The pool's counts since the manager's start, kept by the manager.
struct pool_counts {
    uint64_t served_by_gone;  // requests served by workers reaped since the start
    uint64_t spawned;         // workers forked
    uint64_t respawns;        // of them, into a slot that had a worker before
    uint64_t exits;           // workers reaped
    uint64_t crashes;         // of them, early failures (the crash backoff's)
    uint64_t reloads;         // HUPs (and pm_request_reload)
    uint64_t max_busy;        // sampled each second
    uint64_t pool_full;       // samples that found every worker busy
    uint32_t max_queue;       // longest listen queue sampled
    uint32_t reserved;
    uint64_t slow_requests;   // requests that ran past request_slow
    uint64_t deadline_kills;  // workers stopped for a request past request_timeout
    uint64_t recycled;        // workers replaced for their requests, age or memory
};

// Written by the manager only, under seq.
struct alignas(64) board_header {
    uint32_t magic;
    uint32_t version;
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t capacity;  // slots in the mapping
    uint32_t seq;
    int32_t manager_pid;
    uint32_t clock;          // clock_monotonic_ns or clock_tsc
    int64_t start_unix_us;   // the manager's start
    int64_t start_mono_ns;
    uint64_t clock_ref_ticks;  // a (ticks, CLOCK_MONOTONIC ns) pair taken at the start:
    int64_t clock_ref_ns;      // with a reader's own pair, the rate of the ticks
    uint32_t phase;            // manager_phase's order: starting, running, reloading, stopping, done
    uint32_t target;           // n_processes
    uint32_t live;             // workers forked and not yet reaped
    uint32_t ready;            // of them, those that can serve
    uint32_t stopping;         // of them, those told to stop
    uint32_t crash_limited;    // the crash loop backoff is on
    int64_t backoff_until_mono_ns;  // 0, or when the next crashed slot may be refilled
    pool_counts counts;
    uint32_t n_listeners;
    // Set by the manager of a dynamic pool while it would miss a worker going busy
    // (min_idle's floor): the first worker to begin a request takes it (exchange)
    // and wakes the manager. Atomics only.
    uint32_t busy_wake;
    uint32_t mode;  // params "pool": pool_mode's order (static, dynamic, ondemand)
    uint32_t reserved;
    board_listener listeners[board_listeners];
    char title[board_title_size];  // the manager's title
};

struct alignas(64) worker_slot {
    // control
    uint32_t state;                 // phase (low byte) and stop flags; atomics only
    volatile uint32_t initialized;  // pm_manage has returned in it
    volatile uint32_t stopped;      // it received TERM or HUP (also by signal)
    volatile uint32_t views;        // views_written: it writes its view (params::scoreboard);
                                    // views_accepting: it marks its waits in pm_accept;
                                    // views_recycle: it asks to be replaced
    volatile uint64_t requests;     // requests served, for the manager's crash check
    uint64_t deadline_start;        // with stop_deadline: the request it is for (its start); atomics only
    // the manager's view
    uint32_t mseq;
    int32_t pid;                    // 0: free
    int64_t started_unix_us;
    uint32_t told_to_stop;
    uint32_t flags;                 // slot_flag_exec, slot_flag_ready
    // The worker's CPU time and resident memory as the manager last read them (from
    // /proc, each second), while it was idle with usage_requests served; cpu_us -1:
    // not read yet. Current as long as the worker stays idle with that count.
    uint64_t usage_requests;
    int64_t cpu_us;
    int64_t rss_kb;
    // the worker's view
    uint32_t wseq;
    uint32_t busy;
    uint64_t served;
    uint64_t request_start;   // clock ticks (header.clock); 0: no request yet
    uint64_t last_duration;   // ticks, of the last finished request
    char method[board_method_size];
    char remote[board_remote_size];
    char uri[board_uri_size];
};

static_assert(sizeof(worker_slot) % 64 == 0, "slots are whole cache lines");
static_assert(offsetof(worker_slot, pid) % 4 == 0 && offsetof(worker_slot, busy) % 4 == 0 &&
                  (offsetof(worker_slot, wseq) - offsetof(worker_slot, pid)) % 4 == 0 &&
                  (sizeof(worker_slot) - offsetof(worker_slot, busy)) % 4 == 0 && sizeof(board_header) % 4 == 0,
              "views are whole words (board::read_view)");

constexpr uint32_t views_written = 1;
constexpr uint32_t views_accepting = 2;
constexpr uint32_t views_recycle = 4;  // it has served its max_requests: it asks to be replaced

constexpr uint32_t slot_flag_exec = 1;   // an exec'd program: it reports only if it is on this library
constexpr uint32_t slot_flag_ready = 2;  // the manager counts it as able to serve

namespace board {

constexpr uint32_t idle = 0;
constexpr uint32_t busy = 1;
constexpr uint32_t accepting = 2;  // idle, in pm_accept on a socket the manager shuts down on TERM
constexpr uint32_t phase_mask = 0xff;
constexpr uint32_t stop_term = 1u << 8;  // stop: the manager is shutting down
constexpr uint32_t stop_hup = 1u << 9;   // stop: the manager is reloading (or replacing it)
constexpr uint32_t stop_deadline = 1u << 10;  // stop now: its request ran past request_timeout
constexpr uint32_t stop_mask = stop_term | stop_hup | stop_deadline;

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

// Manager: adds a stop flag only if the worker is idle (or accepting) and has none:
// true if it did (the worker cannot go busy after: begin_request sees the flag).
inline bool retire_idle(worker_slot &s, uint32_t flag) {
    uint32_t old = __atomic_load_n(&s.state, __ATOMIC_RELAXED);
    while (((old & phase_mask) == idle || (old & phase_mask) == accepting) && !(old & stop_mask))
        if (__atomic_compare_exchange_n(&s.state, &old, old | flag, true, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return true;
    return false;
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

// --- views under a sequence counter (one writer each) ---

// Writer: the counter odd, then the view's stores, then even again. The fences keep
// the stores inside (on x86_64 they cost nothing: stores are not reordered). The
// parity is set, not flipped: a counter that garbage made odd is healed by the next
// write.
inline void write_begin(uint32_t &seq) {
    __atomic_store_n(&seq, (seq + 1) | 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}
inline void write_end(uint32_t &seq) {
    __atomic_store_n(&seq, (seq + 1) & ~1u, __ATOMIC_RELEASE);
}

// Reader: a string a worker wrote (from_size bytes, perhaps unterminated) into to,
// NUL-terminated, cut to fit, each byte outside printable ASCII shown as '?'.
void copy_text(char *to, size_t to_size, const char *from, size_t from_size);

// Reader: copies n bytes of a view at from (its counter at seq) into to; false if a
// writer kept it changing for all of tries attempts. Views are whole 4-byte words,
// 4-byte aligned.
bool read_view(const uint32_t &seq, const void *from, void *to, size_t n, int tries = 1000);

// The clock of request times: TSC ticks, or ns.
inline uint64_t ticks(uint32_t clock) {
#if defined(__x86_64__)
    if (clock == clock_tsc)
        return __rdtsc();
#endif
    struct timespec t;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return static_cast<uint64_t>(t.tv_sec) * 1000000000u + static_cast<uint64_t>(t.tv_nsec);
}

// Nanoseconds per tick of clock: 1 for ns; for the TSC, the rate between a reference
// (ticks, CLOCK_MONOTONIC ns) pair taken at the manager's start and one taken now,
// bounded to 10 MHz .. 100 GHz whatever the pair says (a header is a worker's word).
inline double ns_per_tick(uint32_t clock, uint64_t ref_ticks, int64_t ref_ns, uint64_t now_ticks, int64_t now_ns) {
    if (clock != clock_tsc)
        return 1.0;
    double rate = now_ticks > ref_ticks && now_ns > ref_ns
                      ? static_cast<double>(now_ns - ref_ns) / static_cast<double>(now_ticks - ref_ticks)
                      : 1.0;
    return rate < 0.01 ? 0.01 : rate > 100.0 ? 100.0 : rate;
}

// clock_tsc if this machine's TSC runs at a constant rate in every state (CPUID's
// invariant TSC bit) and the kernel keeps time by it (its clocksource is tsc, or
// kvm-clock, which is the host's TSC), else clock_coarse_ns.
uint32_t best_clock();

}  // namespace board

// The manager's side: creates the mapping, writes the header and the manager's view
// of each slot, samples the pool each second, and answers the status socket.
class scoreboard {
public:
    static constexpr const char *memfd_name = "fcgi-pm-scoreboard";

    scoreboard() = default;
    ~scoreboard();
    scoreboard(const scoreboard &) = delete;
    scoreboard &operator=(const scoreboard &) = delete;

    // Maps room for n slots (at least; a whole number of pages). false if no memory
    // could be mapped at all; without a memfd it maps anonymous memory, unseen.
    bool create(size_t n, const std::string &title, int64_t start_ms);
    // In a program exec'd as a worker: maps the board behind fd (read-write), if its
    // header is one this library wrote.
    bool attach(int fd);
    void destroy();   // unmaps; in the manager also removes the status socket
    void close_fds(); // in a new worker: the descriptors go, the mapping stays to the end

    bool mapped() const { return header_ != nullptr; }
    worker_slot *slots() const { return slots_; }
    size_t capacity() const { return capacity_; }
    uint32_t clock() const { return header_ ? header_->clock : clock_coarse_ns; }
    // Manager: whether the next worker to begin a request is to wake it.
    void arm_busy_wake(bool on) {
        if (header_)
            __atomic_store_n(&header_->busy_wake, on ? 1u : 0u, __ATOMIC_SEQ_CST);
    }
    // Worker, once it shows busy: true for the one worker that takes the arming. The
    // fence orders its busy stores before the read, as the manager's orders the
    // arming before its reads of the workers' state (watch_busy).
    bool take_busy_wake() {
        if (!header_)
            return false;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return __atomic_load_n(&header_->busy_wake, __ATOMIC_RELAXED) &&
               __atomic_exchange_n(&header_->busy_wake, 0u, __ATOMIC_ACQ_REL);
    }
    int fd() const { return fd_; }

    // The figures the manager keeps in itself, published with the rest.
    struct pool_figures {
        uint32_t phase, target, live, ready, stopping, crash_limited, mode;
        int64_t backoff_until_ms;
    };
    pool_counts counts = {};

    // The header's layout checked against the mapping's size: a board that can be
    // read without going past its end.
    static bool valid_layout(const board_header &h, size_t bytes);
    // fd is a board sealed at its size (as create makes it): mapping it is safe.
    static bool sealed(int fd);

    void set_listeners(const std::vector<int> &fds);
    void publish(const pool_figures &f);
    void reset_slot(size_t i);  // before a fork into it
    void slot_started(size_t i, pid_t pid, bool exec);
    void slot_ready(size_t i);
    void slot_told_to_stop(size_t i);
    void slot_cleared(size_t i);  // its worker reaped: its requests go to served_by_gone
    // How long slot i's worker has been idle since its last request, by its own view
    // (ms, bounded by the manager's uptime); -1 if it has served none or has no view.
    int64_t idle_ms(size_t i) const;
    // The request slot i's worker is in, by its own view.
    struct running_request {
        uint64_t start;  // its start in clock ticks: tells one request from the next
        int64_t ms;      // how long it has run (bounded by the manager's uptime)
        char method[board_method_size];
        char uri[board_uri_size];
    };
    // false if it is not in a request, or has no view.
    bool request_running(size_t i, running_request &out) const;
    // Slot i's worker's resident memory as the manager last read it (KB), or -1.
    int64_t rss_kb(size_t i) const;
    // Each second: busy workers (max_busy, pool_full), the listen queues
    // (max_queue), the CPU time and memory of each idle worker that served a request
    // since it was last read (or was read more than usage_refresh_ms ago); and the
    // header's constants and the manager's views written again from the manager's
    // own copies (a worker may have written over them). live_pids_by_slot: 0 for a
    // free slot; now: os::now_ms().
    void sample(const std::vector<pid_t> &live_pids_by_slot, int64_t now);
    // How old an idle worker's figures may grow (its CPU time can move without a
    // request: a thread of its own, a runtime's collector).
    static constexpr int64_t usage_refresh_ms = 10000;

    // A unix socket at path (mode 0600, or 0660 with group) on which the manager hands
    // a read-only descriptor of the scoreboard to each connection: the way in for a
    // group that /proc/PID/fd keeps out. Returns the socket, or -1 with error set.
    int open_status_socket(const std::string &path, gid_t group, bool with_group, std::string &error);
    // The status socket is readable. false if it failed for good: then the caller
    // takes it out of its epoll set, and it is closed.
    bool answer_status();
    int status_socket() const { return status_sock_; }

    // The byte sent with the descriptor on the status socket (a reader checks it).
    static constexpr char status_tag_byte = 'S';

private:
    void close_status_socket(bool unlink_path);
    void heal();
    template <class F>
    void write_manager_view(size_t i, F &&f);

    board_header *header_ = nullptr;
    worker_slot *slots_ = nullptr;
    size_t bytes_ = 0;
    size_t capacity_ = 0;
    bool owner_ = false;  // the manager that created it: unmapped when destroyed
    // The manager's own copies of what it wrote: the header up to its figures, and
    // each slot's manager view.
    board_header constants_ = {};
    struct manager_view {
        int32_t pid;
        int64_t started_unix_us;
        uint32_t told_to_stop, flags;
        uint64_t usage_requests;
        int64_t cpu_us, rss_kb;
        int64_t usage_at_ms;  // when cpu_us and rss_kb were read
    };
    std::vector<manager_view> shadow_;
    int fd_ = -1;
    int read_only_fd_ = -1;
    int status_sock_ = -1;
    std::string status_path_;
};

}  // namespace fcgipm
