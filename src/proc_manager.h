// The object behind a pm_t: parameters, hooks, logging, and the role-specific state.
// The manager side lives in manager.cpp, the worker side in worker.cpp.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>
#include <string_view>
#include <deque>
#include <list>
#include <vector>

#include "fcgi_pm.h"
#include "manager_phase.h"
#include "os.h"
#include "params.h"
#include "pid_table.h"
#include "pidfile.h"
#include "scoreboard.h"
#include "service_notify.h"
#include "title.h"

namespace fcgipm {

// One place in the pool: a live worker, or a free place waiting to be filled.
struct slot {
    pid_t pid = 0;          // 0: free
    int64_t started_ms = 0;
    int early_deaths = 0;   // consecutive deaths before min_uptime
    int64_t not_before_ms = 0;  // a free slot is refilled from then on
    bool told_to_stop = false;  // sent TERM by the manager: its death is no crash
    bool ready = false;         // it can serve (counted in ready_)
    bool signal_now = false;    // stop_workers: not busy, so signalled
    bool was_accepting = false; // stop_workers: accepting, so perhaps spared
    bool spared = false;        // told to stop, not signalled: accepting on a socket shut down
    int exec_pipe = -1;         // exec mode: read end of its close-on-exec pipe, until the exec
    bool used = false;          // has had a worker: the next is a respawn
    int64_t ready_ms = 0;       // when it could serve
    int64_t idle_seen_ms = -1;  // adaptive pools: idle since then, as last seen (-1: not idle)
    uint64_t idle_seen_requests = 0;  // with this many served
    bool seen_accepting = false;      // seen waiting in pm_accept: idle alone is not free
    // Limits (manager_limits.cpp).
    uint64_t slow_start = 0;          // the request the slow log has told (its start)
    int64_t kill_at_ms = -1;          // stopped for its deadline: KILL then (INT64_MAX: sent)
    uint64_t deadline_start = 0;      // the request it was stopped for (its start)
    const char *recycle = nullptr;    // marked to be replaced: why (a limit's name)
};

// A listening socket an adaptive pool watches for connections that wait.
struct pool_listener {
    int fd;
    int family;
    uint64_t inode;
};

class proc_manager {
public:
    explicit proc_manager(pm_t *handle);
    ~proc_manager();
    proc_manager(const proc_manager &) = delete;
    proc_manager &operator=(const proc_manager &) = delete;

    params &parameters() { return params_; }
    const std::string &role() const { return params_.role; }
    void set_hook(pm_hook_t which, pm_hook_fn fn, void *user);
    void set_notify_hook(pm_notify_fn fn, void *user);
    void set_end_hook(pm_end_fn fn, void *user);

    // Logging, as pm_notify. A line that fits in a few hundred bytes is formatted on
    // the stack: the manager logs every reap and fork, and allocates for neither.
    void notify(std::string_view msg);

    // pm_manage has started in this process (as manager or worker): the parameters
    // fixed from then on are refused.
    bool started() const { return managing_ || is_worker_; }

    // --- manager side (manager.cpp) ---
    // PM_SINGLE_PROCESS, PM_WORKER (in the child), or throws (error, exit_request).
    int manage();
    // pm_request_stop / pm_request_reload: async-signal-safe, from any thread.
    int request_stop(int signo);
    int request_reload();
    [[noreturn]] void die(const std::string &msg, int status);  // throws exit_request
    [[noreturn]] void exit_process(const std::string &msg, int status);  // throws exit_request
    // In a worker, how the library ends the process: with "worker_exit" "_exit" or
    // "_exit_unflushed".
    bool quick_exit() const { return is_worker_ && params_.worker_exit != params::worker_end::exit; }
    pid_t wait_one();
    int write_pid_file(const std::string &path);
    int remove_pid_file(const std::string &path);

    // --- worker side (worker.cpp) ---
    void set_exec(int listen_fd, std::vector<std::string> argv, bool own_env, std::vector<std::string> env);
    int accept(int listen_fd);
    bool must_stop() const;  // pm_worker_stopping
    bool accept_begin();     // pm_accept_begin: true if the worker must stop
    void accept_end();
    int wait_connection(int fd);
    void pre_dispatch();
    void post_dispatch();  // may throw exit_request
    // pm_set_request: what the next request is, for the scoreboard (copied, cut to fit).
    void set_request(const char *method, const char *uri, const char *remote);
    void set_request_params(const char *const *envp);  // from FastCGI's params
    static int received_signal(int signo);
    static void count_signal(int signo);

    // The exit a no_exit caller has yet to carry out, or -1; and how many exits were
    // asked for so far (a hook that asks for one is told from one that does not).
    int pending_exit = -1;
    int exit_requests = 0;

private:
    // manager.cpp
    void check_can_manage();
    void managing_init();
    void undo_managing_init();
    void install_manager_signals();
    void restore_host_signals();
    void close_manager_fds(bool in_child);
    void leave_manager_role();
    void discard_late_signals();
    bool spawn_due();
    void start_worker_in_slot(size_t index, pid_t pid, int exec_pipe);
    void wait_event(int64_t deadline_ms, bool spawning, pid_t *reaped);
    void handle_signal(const os::signal_event &e);
    void handle_requests();
    void enter(phase_event e);
    void reload();
    void start_stopping(const std::string &why_line, const std::string &dying_msg, int status);
    [[noreturn]] void fatal_loop_error(const std::string &what, int err);
    void reap_blocking_until(int64_t deadline_ms);
    void watch_exec(size_t index, int read_fd);
    void exec_settled(size_t index);
    void note_ready(size_t index);
    void check_start_timeout(int64_t now);
    void reset_crash_backoff();
    void release_pid_files(size_t keep = 0);  // all but the first keep
    pid_t reap_exited(pid_t sender);
    static bool sigchld_ignored();
    pid_t reap_slot(size_t index);
    bool crashed(size_t index, int status) const;
    void clear_slot(size_t index, int status);
    void kill_and_reap_all();
    void stop_workers(uint32_t reason, bool shut_down, bool spare = false);
    void signal_spared();
    int64_t next_deadline(bool spawning) const;
    int64_t slot_due_ms(const slot &s) const;
    void note_early_death(int64_t now);
    void update_crash_limit(int64_t now);
    void update_service_state();
    std::string pool_status() const;
    void publish_status();
    void open_status_socket();
    void sample_status(int64_t now);
    // Adaptive pools (manager_pool.cpp).
    static constexpr uint64_t listen_tag = UINT64_MAX - 3;  // epoll tag of the listening sockets
    static constexpr int64_t exec_report_ms = 1000;  // an exec'd program on this library has reported by then
    static constexpr int64_t settle_ms = 2;  // after an arrival, the next look (manager_pool.cpp)
    static constexpr int64_t reload_look_ms = 100;  // the looks while a HUP replaces the pool
    void watch_listeners_for_pool();
    void arm_listeners(bool on);
    size_t wanted() const;  // workers the pool should have now
    size_t connections_waiting(bool arrival);
    void adapt(int64_t now);
    void watch_busy(const pool_look &look);
    bool retire_worker(size_t index, int64_t now);
    void resize(long size, const char *why);  // TTIN, TTOU: a static pool's size now
    size_t resize_ceiling() const;
    // Limits (manager_limits.cpp).
    // slot::recycle for a worker that leaves by itself (an inline array: one address
    // in every file, which slot::recycle is compared by)
    static constexpr char recycle_max_requests[] = "max_requests";
    size_t recycles_pending(bool leaving_only = false) const;  // marked, not yet told to stop
    size_t spawn_target() const;  // wanted(), and a replacement for each worker to recycle
    void mark_for_recycling(size_t index, const char *why, const std::string &detail);
    bool able_to_serve(size_t index, int64_t now) const;
    void recycle_due(int64_t now);
    void recycle_one();
    void stop_for_recycling(size_t index);
    void check_limits(int64_t now);
    void check_memory();

    // worker.cpp
    void forget_manager_state();
    void become_worker(pid_t manager_pid, size_t index, bool forked);  // forked: by this manager, just now
    bool adopt_exec_worker();
    void arm_parent_death(pid_t manager_pid);
    bool watch_listener(int fd);
    static void find_worker_listeners();  // in the manager, for the workers it forks
    bool shut_down_listeners();           // in the manager, on TERM
    bool shut_on_stop(int fd) const;
    bool size_limits_exceeded() const;
    [[noreturn]] void exec_worker(pid_t manager_pid, size_t index, int exec_pipe);
    int take_scoreboard_variable(size_t &index, int &wake);
    int request_worker_stop(int signo);
    void run_exec_child_hook(pm_hook_t which);
    void worker_exit(const std::string &msg);
    void report_ready();
    uint32_t board_stop() const;
    void begin_request();
    int64_t request_limit() const;

    void call_hook(pm_hook_t which);
    void call_end_hook(int how, const std::string &msg, int status);

    pm_t *handle_;
    params params_;
    struct hook {
        pm_hook_fn fn = nullptr;
        void *user = nullptr;
    } hooks_[8];
    pm_notify_fn notify_fn_ = nullptr;
    void *notify_user_ = nullptr;
    pm_end_fn end_fn_ = nullptr;
    void *end_user_ = nullptr;
    unsigned in_end_hooks_ = 0;  // bit 1 << how: the end hook runs for that, not called again for it

    // Manager state.
    bool managing_ = false;
    phase phase_ = phase::starting;
    int stop_status_ = 0;          // what the manager exits with once stopped
    std::string dying_msg_;        // its last line then ("dying: ...")
    int64_t start_ms_ = 0;         // pm_manage's start, for start_timeout
    std::vector<slot> slots_;
    std::vector<size_t> free_;  // indexes of free slots
    std::vector<size_t> candidates_;  // spawn_due's: free_ as it was when it began
    pid_table slot_of_pid_;  // live workers (and unreaped ones)
    bool exits_unchecked_ = false;  // a SIGCHLD was read, not every exit behind it reaped yet
    scoreboard board_;               // the shared memory, and the manager's side of it
    worker_slot *reports_ = nullptr;  // board_'s slots, up to reports_capacity_
    size_t reports_capacity_ = 0;
    int64_t next_sample_ms_ = 0;     // the scoreboard's next sample of the pool
    std::vector<pid_t> sample_pids_; // sample_status's (no allocation each second)
    bool in_notify_ = false;    // the notify hook is running: the loop must not re-enter
    // The host's code has run (a hook) since stdio was last flushed: only it can have
    // left output in stdio's buffers in the manager, which a fork would duplicate.
    bool host_ran_ = true;
    size_t live_ = 0;
    int epoll_fd_ = -1;
    int signal_fd_ = -1;
    // pm_request_stop/reload from a handler or thread: flags, and an eventfd that
    // wakes the loop (kept until the handle is destroyed: a late writer never hits a
    // reused descriptor). Forked workers that report readiness write it too.
    int wake_fd_ = -1;
    volatile sig_atomic_t stop_requested_ = 0;    // 1 + the signal that asked
    volatile sig_atomic_t reload_requested_ = 0;
    bool ready_reports_ = false;  // forked workers tell the loop when they are ready
    size_t ready_ = 0;            // live workers that can serve
    int64_t next_fork_ms_ = 0;  // start_delay, and the retry after a failed fork
    int fork_failures_ = 0;     // consecutive failed forks
    // Pool-wide crash budget: early deaths within crash_window; past crash_budget of
    // them, crashed slots are refilled one per second, pool-wide.
    std::deque<int64_t> early_deaths_;
    bool crash_limited_ = false;
    int64_t next_crash_fork_ms_ = 0;
    // An adaptive pool's backoff after early deaths (its forks go to any free slot).
    int pool_early_deaths_ = 0;
    int64_t pool_not_before_ms_ = 0;
    std::list<pid_file> pid_files_;  // pid files this process holds
    size_t pid_files_before_ = 0;    // how many it held when pm_manage began
    // The service manager (systemd), when it asked to be told.
    service_notifier service_;
    size_t stopping_ = 0;       // live workers sent TERM (by HUP or shutdown)
    size_t spared_ = 0;         // live workers told to stop without a signal (slot::spared)
    std::vector<int> listeners_;  // the listening sockets the workers inherit
    pool_policy policy_;          // the pool's size (fixed unless params "pool" says)
    size_t target_ = 0;           // an adaptive pool's size now
    size_t resize_ceiling_ = 0;   // a static pool's largest size (resize)
    std::vector<pool_listener> pool_listeners_;
    bool listeners_armed_ = false;
    bool adapt_due_ = false;             // an event the policy must see
    bool connection_arrived_ = false;    // that event: a listening socket's
    bool worker_woke_ = false;           // or the eventfd: a worker may have gone busy
    int64_t next_adapt_ms_ = INT64_MAX;  // the policy's next look without one
    bool limits_due_ = true;             // check_limits at the next turn of the loop
    int64_t next_limits_ms_ = 0;         // else then
    // The host's signal state, saved by pm_manage and given back to workers.
    bool signals_saved_ = false;
    saved_title saved_title_;  // given back if pm_manage fails
    sigset_t host_mask_;
    sigset_t manager_mask_;
    struct sigaction host_chld_;

    // Worker state.
    bool is_worker_ = false;
    // Exec mode: the program each worker runs, its environment, its listening socket.
    std::vector<std::string> exec_argv_;
    bool exec_own_env_ = false;
    std::vector<std::string> exec_env_;
    int exec_listen_fd_ = -1;
    int64_t requests_ = 0;
    worker_slot *report_ = nullptr;  // this worker's own
    bool views_ = false;             // it writes its requests into report_ (params::scoreboard)
    uint32_t clock_ = 0;             // the scoreboard's clock
    bool request_named_ = false;     // pm_set_request since the last request
    bool on_board_ = false;  // stops reach it through report_ (forked, with the library's handler)
    bool holding_stops_ = false;  // TERM and HUP blocked until the exit (begin_request)
    uint64_t jitter_draw_ = 0;    // this worker's own random number: its max_requests_jitter
    bool recycle_asked_ = false;  // it has asked the manager for its replacement
    // It keeps the manager's eventfd after it is ready: to ask for its replacement
    // (max_requests), and to tell it went busy (board::take_busy_wake).
    bool keep_wake_ = false;
};

}  // namespace fcgipm
