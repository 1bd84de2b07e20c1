// The manager's parameters, named as in FCGI::ProcManager (and ::Constrained),
// set and read as text. Every value is validated before anything changes.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>

#include "pool_policy.h"

namespace fcgipm {

// Durations are kept in milliseconds; the text form is seconds ("60", "0.25").
struct params {
    long n_processes = 0;
    int64_t die_timeout_ms = 60000;  // 0: wait for the workers forever
    int64_t start_delay_ms = 0;      // pause after every fork
    std::string pid_fname;           // empty: no pid file
    std::string pm_title;            // manager's title; default set from the program name
    std::string process_name;        // worker's title; likewise
    bool process_name_set = false;   // set by the host: an exec'd program adopted as a worker takes it
    bool no_signals = false;         // never touch signal dispositions or masks
    std::string role = "manager";    // "manager" or "server"
    bool no_exit = false;            // return instead of exit (for bindings)
    // FCGI::ProcManager::Constrained
    int64_t max_requests = 0;            // exit after this many requests; 0: never
    int64_t max_size = 0;                // KB of virtual size; 0: no limit
    int64_t sizecheck_num_requests = 0;  // check max_size every this many requests
    // FCGI::Engine::ProcManager::Constrained, checked with max_size (when the shared
    // size is known, as the original does): KB
    int64_t min_share_size = 0;          // a worker sharing less than this exits
    int64_t max_unshared_size = 0;       // a worker with more unshared than this exits
    // Crash-loop backoff (fcgi-pm's own): a worker that fails (exits non-zero, or dies
    // of a core-dumping signal) within min_uptime of its start is respawned after
    // backoff_min, doubling per consecutive early failure up to backoff_max. Any other
    // ending (a longer run, SIGKILL, a TERM from the manager) is respawned at once.
    int64_t min_uptime_ms = 1000;
    int64_t backoff_min_ms = 100;
    int64_t backoff_max_ms = 30000;
    // Pool-wide: once crash_budget early deaths (0: n_processes) fall within
    // crash_window, crashed slots are refilled at most one per second in all.
    int64_t crash_budget = 0;
    int64_t crash_window_ms = 10000;
    // Readiness: a pool not ready this long after the start gives up (0: never).
    int64_t start_timeout_ms = 0;
    // How a worker ends when the library ends it: exit(3); or stdio flushed and
    // _exit(2) (no atexit handlers, no static destructors; an idle worker that must
    // stop then ends in pm_accept); or _exit(2) alone, for a host that leaves nothing
    // in stdio's buffers (a flush runs code and writes a page that a forked worker
    // that never used stdio has not got: page faults at every stop).
    enum class worker_end { exit, flushed_exit, unflushed_exit };
    worker_end worker_exit = worker_end::exit;
    // On TERM, shut down the listening sockets the workers inherited.
    bool stop_listening = true;
    // The signal that stops an exec'd worker (TERM; another for programs that stop
    // gracefully on it).
    int stop_signal = SIGTERM;
    // Live status: the workers write their requests into the scoreboard (0: only the
    // stop protocol and the pool's figures are kept there).
    bool scoreboard = true;
    // A unix socket on which the manager hands the scoreboard to readers, and the
    // group allowed to connect (empty: the manager's user only).
    std::string status_socket;
    std::string status_group;
    // The pool's size (pool_policy.h): fixed at n_processes, dynamic (n_processes to
    // start, min_idle..max_idle idle, max_workers at most) or on demand (none until a
    // connection waits, max_workers at most). Idle workers beyond the resting number
    // retire after idle_timeout; at most spawn_rate forks a second.
    pool_mode pool = pool_mode::fixed;
    int64_t min_idle = 1;
    int64_t max_idle = 0;  // 0: the larger of min_idle and n_processes
    int64_t max_workers = 0;
    int64_t idle_timeout_ms = 10000;
    int64_t spawn_rate = 1000;
    // Request limits (manager_limits.cpp), read from each worker's scoreboard slot: a
    // request running request_timeout is stopped (TERM, KILL request_timeout_grace
    // later) and its worker replaced; one running request_slow is logged and counted.
    // 0: no limit.
    int64_t request_timeout_ms = 0;
    int64_t request_timeout_grace_ms = 1000;
    int64_t request_slow_ms = 0;
    // Recycling: each worker's max_requests is raised by a random 0..jitter of its
    // own; a worker older than max_age, or with more than max_rss KB resident, is
    // replaced, the new one ready before the old one stops after its request.
    int64_t max_requests_jitter = 0;
    int64_t max_age_ms = 0;
    int64_t max_rss_kb = 0;
};

// The pool's settings and limits, checked together: "" if they make a pool, else
// what is wrong (one line, naming the parameters).
std::string check_pool(const params &p);
// The settings the policy decides with (after check_pool).
pool_settings pool_settings_of(const params &p);

constexpr size_t max_title_length = 255;
constexpr size_t max_path_length = 4095;

// Defaults, with the Constrained parameters read from PM_MAX_REQUESTS, PM_MAX_SIZE and
// PM_SIZECHECK_NUM_REQUESTS. An unusable environment value is left at 0 and described
// in `warnings` (one line each).
params default_params(std::string &warnings);

// Sets one parameter from text. Returns PM_OK, or a PM_E* code with `message` naming
// the problem; `p` is untouched on error. Once `running` (pm_manage has started),
// the parameters that cannot change any more are refused with PM_ESTATE.
int set_param(params &p, const std::string &name, const std::string &value, std::string &message,
              bool running = false);

// Parameter number index: its name, PM_PARAM_* type, bounds as text, and whether it
// may be set while running. False past the last.
struct param_info {
    const char *name;
    int type;
    const char *bounds;
    bool settable_when_running;
};
bool describe_param(int index, param_info &info);

// "TERM" for SIGTERM, and so on, for the signals a manager names in its log.
const char *signal_name(int signo);

// Milliseconds as the text of seconds: "60", "0.25".
std::string seconds_text(int64_t ms);

// The current value as text; false for an unknown name.
bool get_param(const params &p, const std::string &name, std::string &value);

}  // namespace fcgipm
