/*
 * fcgi_pm.h -- a pre-forking FastCGI process manager behind a C ABI.
 *
 * Conventions
 * - Return codes: 0 (or a positive value, where documented) on success, a negative
 *   PM_E* code on failure. pm_strerror() names a code; pm_errmsg() gives the detailed
 *   message of the last failure on that handle. A failing call changes nothing.
 * - Strings passed in are copied; strings returned are owned by the library and stay
 *   valid until the next call on the same handle (pm_strerror/pm_version: forever).
 * - Calls that may end the process: pm_manage (in the manager), pm_pre_dispatch and
 *   pm_post_dispatch (from a hook), pm_die, pm_exit, pm_abort; with "worker_exit"
 *   "_exit" or "_exit_unflushed" also pm_accept, pm_wait_connection,
 *   pm_accept_begin and pm_worker_stopping in a stopping worker (exit 0). They call exit(3) (in a worker:
 *   as "worker_exit" says: "_exit" flushes stdio and calls _exit(2),
 *   "_exit_unflushed" calls _exit(2) alone) unless the parameter "no_exit" is 1: then
 *   they return PM_EXIT + status (pm_manage: PM_MANAGER_DONE), and pm_exit_status()
 *   tells the status too, so that a binding exits through its own runtime. No other function
 *   exits, aborts or lets an exception escape.
 * - Processes: pm_manage turns the caller into the manager, which forks the workers
 *   ("servers"); it returns 1 in each worker. Hooks say which process runs them.
 *   Signals are blocked across every fork; a worker gets the caller's signal mask and
 *   dispositions back (TERM and HUP excepted, which the library handles unless
 *   "no_signals" is 1, and a POSIX timer sending TERM after pm_accept_begin), no
 *   descriptor the manager opened (an exec'd one: but the scoreboard's and, with
 *   max_requests or a dynamic pool's min_idle, the manager's eventfd, see
 *   FCGI_PM_SCOREBOARD), and it exits when the manager dies. Output the
 *   caller left in stdio's buffers (before pm_manage, or in a hook) is flushed
 *   before the next fork, so no worker writes it again.
 * - Log lines read "FastCGI: <role> (pid <pid>): <msg>" and go to stderr, or to the
 *   notify hook. The notify hook runs inside the manager's loop: it may log, or end
 *   the process (pm_exit); pm_wait there returns PM_ESTATE.
 * - Threads and process-wide state: one handle per process manages (pm_manage).
 *   Call pm_manage while the process has one thread (it refuses otherwise: a signal
 *   meant for the manager could reach another thread); the handle is then used from
 *   that thread only, except pm_request_stop and pm_request_reload, which any thread
 *   or signal handler may call. What the library changes of the process: the signal
 *   mask and the dispositions of TERM, HUP and CHLD (see pm_manage; none of them
 *   with "no_signals" 1, but CHLD is blocked in the manager), the process title
 *   (argv's memory), NOTIFY_SOCKET (taken out of the environment by the manager) and
 *   FCGI_PM_MANAGER_PID and FCGI_PM_SCOREBOARD (set for exec'd workers, taken out in an
 *   adopted one: the latter names a descriptor of the pool's scoreboard, sealed at
 *   its size, which an adopted worker maps for its slot and closes).
 *   A failing pm_manage leaves all of these as they were.
 * - The request path (pm_pre_dispatch, pm_post_dispatch) makes no system call in
 *   steady state.
 */
#ifndef FCGI_PM_H
#define FCGI_PM_H

#ifdef __cplusplus
extern "C" {
#endif

#define PM_VERSION_MAJOR 0
#define PM_VERSION_MINOR 2
#define PM_VERSION_PATCH 0
#define PM_VERSION_NUMBER (PM_VERSION_MAJOR * 10000 + PM_VERSION_MINOR * 100 + PM_VERSION_PATCH)

#if defined(__GNUC__)
#define PM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PM_PRINTF(fmt, args)
#endif

/* Error codes: XX(name, value, text). Values are fixed forever. */
#define PM_ERRNO_MAP(XX)                                                          \
    XX(EINVAL, -1, "invalid argument")                                            \
    XX(ENOMEM, -2, "out of memory")                                               \
    XX(EUNKNOWN, -3, "unknown parameter")                                         \
    XX(EBADVALUE, -4, "value is not valid for this parameter")                    \
    XX(ERANGE, -5, "value out of range")                                          \
    XX(ETOOLONG, -6, "string too long")                                           \
    XX(ESTATE, -7, "not allowed in this process or state")                        \
    XX(ECHILD, -8, "no worker to wait for")                                       \
    XX(ELOCKED, -9, "pid file is held by another manager")                        \
    XX(EPIDFILE, -10, "pid file path is not a regular file")                      \
    XX(ESYS, -11, "system call failed")                                           \
    XX(EINTERNAL, -12, "internal error")                                          \
    XX(ESTOPPED, -13, "the worker is stopping: no more requests")

typedef enum {
    PM_OK = 0,
#define PM_XX_ENUM(name, value, text) PM_##name = value,
    PM_ERRNO_MAP(PM_XX_ENUM)
#undef PM_XX_ENUM
    PM_E_LAST_ = -14 /* not a code: one past the last */
} pm_error_t;

/* pm_manage's return values besides errors. */
#define PM_SINGLE_PROCESS 0 /* n_processes is 0: nothing is managed */
#define PM_WORKER 1         /* returned in each worker */
#define PM_MANAGER_DONE 2   /* "no_exit" is 1 and the manager finished: see pm_exit_status */

/* With "no_exit" 1, a call that would have ended the process returns PM_EXIT plus the
 * status to exit with (0-255): the caller exits now, through its own runtime. */
#define PM_EXIT 256
#define PM_IS_EXIT(rc) ((rc) >= PM_EXIT)
#define PM_EXIT_STATUS(rc) ((rc) - PM_EXIT)

typedef struct pm_manager pm_t;

/* The library is built with hidden visibility; what is declared below is its ABI. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* A new manager with every parameter at its default (the Constrained ones read
 * PM_MAX_REQUESTS, PM_MAX_SIZE and PM_SIZECHECK_NUM_REQUESTS). NULL if out of memory. */
pm_t *pm_create(void);
/* Frees the handle; releases a pid file it holds. NULL is a no-op. Never exits. */
void pm_destroy(pm_t *pm);

/* Sets a parameter by name, the value as text (see README, or pm_parameter_info).
 * 0, or PM_EINVAL (NULL argument), PM_EUNKNOWN, PM_EBADVALUE, PM_ERANGE, PM_ETOOLONG,
 * PM_ESTATE (a parameter fixed once pm_manage has started); nothing changes on error. */
int pm_parameter(pm_t *pm, const char *name, const char *value);
/* Whether the parameters make a pool together (pm_manage checks the same first): 0,
 * or PM_EBADVALUE with a message naming the parameters (min_idle above max_idle, a
 * dynamic pool without max_workers, a limit of one pool mode set on another), or
 * PM_EINVAL (NULL). */
int pm_check_parameters(pm_t *pm);
/* The current value as text, or NULL for an unknown name or NULL argument.
 * Valid until the next call on pm. */
const char *pm_get_parameter(pm_t *pm, const char *name);

/* Becomes the manager and forks n_processes workers. Returns PM_WORKER in each
 * worker, PM_SINGLE_PROCESS when n_processes is 0, a negative code if it failed
 * before anything was forked (PM_ELOCKED: another manager holds the pid file;
 * PM_EPIDFILE: the pid file path is a symlink, FIFO or other non-regular file;
 * PM_ESTATE: called twice, in a worker, with more than one thread, or with SIGCHLD
 * ignored (SIG_IGN or SA_NOCLDWAIT) where the library may not change that: with
 * "no_signals" 1, or set so by the manager_init hook; PM_EBADVALUE: "stop_signal"
 * other than TERM without exec mode, "status_group" unknown or without a
 * "status_socket"; PM_ESYS, with pm_errno: also a "status_socket" that cannot be
 * made). A
 * failure leaves the process as it was: no pid file, the environment, title,
 * signal mask and dispositions unchanged. In the manager it does not return: it
 * exits 0 after TERM (or pm_request_stop), 1 after a wait timeout, a start timeout
 * or a failure of its own event loop (logged; the workers are stopped and reaped).
 * On TERM the manager shuts down the listening sockets the workers inherited (so
 * that new connections are refused at once; with "stop_listening" 0, and for those
 * systemd handed over by socket activation, LISTEN_PID/LISTEN_FDS, they are left
 * alone: systemd queues connections for the next start), lets busy workers finish
 * (idle ones waiting in pm_accept on a socket it shut down are not even signalled:
 * the shutdown ends their wait), and keeps the pid file locked until the last
 * worker is reaped; workers SIGKILLed at die_timeout are logged like any other.
 * With "no_exit" 1 it returns PM_MANAGER_DONE instead, with the host's signal mask
 * and dispositions as they were (also in a worker whose init hook asked to exit);
 * pm_exit_status() then tells the status.
 * A process exec'd by a manager in exec mode (FCGI_PM_MANAGER_PID in its
 * environment names its parent) is made a worker at once: PM_WORKER, no fork, no
 * pid file, no MANAGER_INIT hook; it should serve the socket on descriptor 0.
 * Until that call a TERM ends it as the default action would, also after libfcgi's
 * FCGX_Init (which takes over a SIGTERM left at SIG_DFL, and would swallow it): the
 * library, loaded into such a process, puts its own handler in place first (with
 * "no_signals" 1, pm_manage puts SIG_DFL back: call FCGX_Init after it to have
 * libfcgi's).
 * With NOTIFY_SOCKET set (systemd, Type=notify), the manager takes it out of the
 * environment and sends READY=1 once every worker can serve (in a forked worker:
 * pm_manage is returning in it, after its SERVER_INIT hook; in exec mode: its exec
 * succeeded), RELOADING=1 and MONOTONIC_USEC on HUP (READY=1 again when all are
 * replaced and ready), STOPPING=1 on TERM, and STATUS= with the pool's size. With
 * "start_timeout" set, a pool not ready that long after the start gives up: logged,
 * workers stopped, exit 1. A HUP clears the crash backoff: failed slots are refilled
 * at once. */
int pm_manage(pm_t *pm);
/* Exec mode (what the fcgi-pm program uses): each worker execs argv[0] (looked up in
 * PATH when it has no '/') with argv, and envp (NULL: the manager's environment),
 * instead of returning from pm_manage; listen_fd becomes its descriptor 0, as
 * FastCGI programs expect. The worker gets default dispositions for TERM, HUP, PIPE,
 * CHLD and the parameter "stop_signal" (TERM unless set: the signal that stops an
 * exec'd worker, on TERM and HUP), the host's signal mask, no other descriptor of
 * the library's, and the stop signal when the manager dies. The SERVER_INIT hook runs in it just before the exec (to
 * drop privileges, say; it may pm_exit). A failed exec is logged ("exec: <program>: <reason>") and
 * the worker exits 127, which the crash backoff paces. Only a failure (non-zero
 * exit, core-dumping signal) soon after start counts as a crash for an exec'd worker.
 * Each worker finds the manager's pid in FCGI_PM_MANAGER_PID (a program on this
 * library then becomes a worker in its own pm_manage). Arrays are copied. 0, PM_EINVAL (NULL or empty argv, negative listen_fd),
 * PM_ESTATE (after pm_manage). */
int pm_set_exec(pm_t *pm, int listen_fd, char *const argv[], char *const envp[]);

/* Top of each request: marks the worker busy and runs the pre-dispatch hook. No
 * system call. From then until pm_post_dispatch the manager's TERM and HUP reach a
 * forked worker with the library's handler (not "no_signals", not exec'd) through
 * memory only, never as a signal: none of the request's system calls is interrupted
 * (sleep, poll, select included). 0, or PM_EXIT + status (no_exit: the hook asked to
 * exit). */
int pm_pre_dispatch(pm_t *pm);
/* End of each request: exits 0 (logging why) after max_requests, when max_size is
 * exceeded, after TERM/HUP (or pm_request_stop), or when the manager has died;
 * otherwise marks the worker idle and runs the post-dispatch hook. No system call
 * (with "no_signals" 1: one getppid; with max_size, a read of /proc/self/statm every
 * sizecheck_num_requests requests). 0, or PM_EXIT + status with "no_exit" 1. */
int pm_post_dispatch(pm_t *pm);

/* Accepts the next connection on listen_fd for a worker's request loop and returns
 * its descriptor (close-on-exec); the worker counts as busy from then on. It waits
 * across signals, and fails with PM_ESTOPPED once the worker must stop (TERM, HUP,
 * pm_request_stop, the manager's death), at once if it is idle; with "worker_exit"
 * "_exit" or "_exit_unflushed" (and "no_exit" 0) the worker then exits 0 here. PM_ESYS for other accept
 * errors. Use it instead of letting libfcgi
 * accept on a unix socket: libfcgi then waits for the first bytes in a select that
 * any signal interrupts, and drops the connection (see fcgi_pm_fcgx.h). */
int pm_accept(pm_t *pm, int listen_fd);

/* 1 if this worker must stop (TERM, HUP, pm_request_stop, the manager's stop or
 * death), else 0 (also in the manager); PM_EINVAL for NULL. For a request loop whose
 * own accept failed: with "worker_exit" "_exit" (and "no_exit" 0) a stopping worker
 * exits 0 here. No system call. */
int pm_worker_stopping(pm_t *pm);

/* Waits until fd, a kept-alive FastCGI connection, has the next request: 0; or
 * PM_ESTOPPED once the worker must stop (the connection is then the caller's to
 * close). Three system calls; a TERM or HUP is never missed. With "worker_exit"
 * "_exit" (and "no_exit" 0) a stopping worker exits 0 here instead. */
int pm_wait_connection(pm_t *pm, int fd);

/* Around a wait for the next request that the host makes itself, where it cannot
 * use pm_fcgx_accept: libfcgi's FCGX_Accept_r called bare, FCGI.pm's Accept (the
 * Perl binding wraps it so). pm_accept_begin returns 1 if the worker must stop: skip
 * the wait (finish the previous request) and end the loop; with "worker_exit" "_exit"
 * (and "no_exit" 0) the worker exits 0 here instead. Else 0, and until pm_accept_end a
 * stop ends even a wait on a connection the web server keeps alive (FCGI_KEEP_CONN),
 * which libfcgi waits on in a read that SA_RESTART restarts: the handler shuts down the
 * read side of that connection (accepted from a listening socket, nothing unread, on
 * TCP one already sent on), so that libfcgi sees it end, closes it, and fails on the
 * released listening socket. The handler finds the connection in its signal frame (the
 * interrupted read, or the write of the last reply) on x86_64; elsewhere such a wait
 * lasts until the web server closes the connection. A worker's first pm_accept_begin
 * creates a POSIX timer (TERM, to look again when the stop found the worker between
 * system calls); no other system call. 0 from pm_accept_end; PM_EINVAL for NULL. */
int pm_accept_begin(pm_t *pm);
int pm_accept_end(pm_t *pm);

typedef enum {
    PM_HOOK_MANAGER_INIT = 0,  /* in the manager, before the first fork (managing_init) */
    PM_HOOK_SERVER_INIT = 1,   /* in each worker, before pm_manage returns (handling_init) */
    PM_HOOK_PRE_DISPATCH = 2,  /* after the library's own pre_dispatch work */
    PM_HOOK_POST_DISPATCH = 3, /* after the library's own post_dispatch checks */
    /* Around each fork, for runtimes that must keep their state sane across it
     * (CPython's os.register_at_fork, Perl, Ruby): */
    PM_HOOK_PRE_FORK = 4,      /* in the manager, just before each fork */
    PM_HOOK_PARENT_AFTER_FORK = 5, /* in the manager, just after each fork (also a failed one) */
    PM_HOOK_CHILD_AFTER_FORK = 6,  /* in the new child first, every signal still blocked,
                                      before its SERVER_INIT hook (and before an exec) */
    /* In the manager, when its wait was cut short by a signal the host handles itself
     * (a handler of the program's ran): a runtime whose handlers only note a signal
     * (Perl's %SIG, Python's signal module) runs them here. pm_request_stop,
     * pm_request_reload, pm_die and pm_exit act from it as from anywhere. */
    PM_HOOK_MANAGER_SIGNAL = 7
    /* more may be added at the end; never renumbered */
} pm_hook_t;
/* Hooks must not throw C++ exceptions (the library carries its own C++ runtime). */
typedef void (*pm_hook_fn)(pm_t *pm, void *user);
typedef void (*pm_notify_fn)(pm_t *pm, const char *line, void *user);

/* The manager's own decisions to end, for a host whose pm_die / pm_abort may be
 * overridden (Perl's FCGI::ProcManager subclasses): how is PM_END_DIE when a stop
 * begins (TERM, pm_request_stop; msg "safe exit from signal TERM", after the
 * "received signal" line, before the workers are told), PM_END_ABORT at the die
 * timeout (msg "wait timeout", status 1, before the workers are killed). From the
 * hook, pm_die or pm_abort end the manager as that call says (the hook is not
 * called again for the same how meanwhile: a pm_die from it may still meet the
 * die timeout, and the hook is then told of that); if it returns, the library goes
 * on as it would. */
#define PM_END_DIE 0
#define PM_END_ABORT 1
typedef void (*pm_end_fn)(pm_t *pm, int how, const char *msg, int status, void *user);
int pm_set_end_hook(pm_t *pm, pm_end_fn fn, void *user);

/* Installs (fn non-NULL) or removes (fn NULL) a hook. 0 or PM_EINVAL. */
int pm_set_hook(pm_t *pm, pm_hook_t which, pm_hook_fn fn, void *user);
/* Every log line (whole, without the newline) goes to fn instead of stderr.
 * fn NULL restores stderr. 0 or PM_EINVAL. */
int pm_set_notify_hook(pm_t *pm, pm_notify_fn fn, void *user);

/* In the manager: TERM to every worker, wait for them (at most die_timeout, then
 * SIGKILL and exit 1 with "wait timeout"), log "dying: <msg>" and exit with status.
 * In a worker: log "dying: <msg>" and exit with status. With "no_exit" 1 these three
 * return PM_EXIT + status (also in pm_exit_status); otherwise they do not return. */
int pm_die(pm_t *pm, const char *msg, int status);
/* SIGKILL any remaining workers (reaped), log msg, exit with status. */
int pm_exit(pm_t *pm, const char *msg, int status);
/* As pm_exit, with status 1 when status is 0. */
int pm_abort(pm_t *pm, const char *msg, int status);

/* Ask the manager to stop as on TERM, or to reload as on HUP, from anywhere: a
 * signal handler (async-signal-safe), another thread, a hook, or before pm_manage
 * (then acted on as soon as it runs). This is how a "no_signals" manager, or one in
 * a runtime that owns the signals (Perl, Go, Python), is driven. signo names the
 * signal that asked, for the log ("received signal INT"; 0: "stop requested"). In
 * a worker, pm_request_stop stops it as a TERM would: at once if idle, after its
 * request if busy (from the worker's own thread or a signal handler: an accept
 * blocked in another thread is not woken). 0, or PM_EINVAL (NULL handle, bad signo); PM_ESTATE for a reload
 * in a worker. Never exits. */
int pm_request_stop(pm_t *pm, int signo);
int pm_request_reload(pm_t *pm);
/* The original's pm_wait: in the manager, waits for one worker to exit, reaps and
 * logs it, and returns its pid. Here the manager's own loop does the waiting, so
 * the only callers are hooks: PM_ESTATE from the notify hook, in a worker or before
 * pm_manage; PM_ECHILD with no worker (the MANAGER_INIT hook). Never exits. */
int pm_wait(pm_t *pm);
/* Writes this process's pid to fname (NULL: pid_fname; none set: 0) and holds it
 * locked until it is removed or the process ends. 0, PM_ELOCKED, PM_EPIDFILE,
 * PM_ETOOLONG, PM_ESYS (logged as "open: <file>: <reason>"). */
int pm_write_pid_file(pm_t *pm, const char *fname);
/* Removes fname (NULL: pid_fname) if it is still this process's own. 0 or PM_ESYS
 * (logged as "unlink: <file>: <reason>"). */
int pm_remove_pid_file(pm_t *pm, const char *fname);
/* Sets the process title (ps, /proc/PID/cmdline; comm via PR_SET_NAME).
 * 0, PM_EINVAL, PM_ETOOLONG (over 255 bytes). */
int pm_change_process_name(pm_t *pm, const char *name);
/* How many times signo was received in this process (TERM and HUP are counted). */
int pm_received_signal(pm_t *pm, int signo);
/* Logs one line, printf-style. pm_warn is the same (as in the original). */
void pm_notify(pm_t *pm, const char *fmt, ...) PM_PRINTF(2, 3);
void pm_warn(pm_t *pm, const char *fmt, ...) PM_PRINTF(2, 3);
/* "manager" or "server"; NULL for a NULL handle. */
const char *pm_role(pm_t *pm);

/* Status the process was asked to exit with when "no_exit" is 1 (after
 * pm_post_dispatch, pm_die, pm_exit, pm_abort, or pm_manage's PM_MANAGER_DONE),
 * or PM_ESTATE while no exit is pending. */
int pm_exit_status(pm_t *pm);
/* Detailed message of the last failure on pm ("" if none). */
const char *pm_errmsg(pm_t *pm);
/* The errno behind the last failure on pm when it was PM_ESYS, else 0. */
int pm_errno(pm_t *pm);

/* What the next request is, for the live status (the scoreboard): its method, URI
 * and client address, copied and cut to fit (15, 191 and 47 bytes); NULL for one not
 * known. Call it between accepting a request and pm_pre_dispatch (pm_fcgx_accept
 * does, from the request's params); a request without it shows none. No system
 * call; a no-op outside a worker or with "scoreboard" 0. 0, or PM_EINVAL. */
int pm_set_request(pm_t *pm, const char *method, const char *uri, const char *remote);
/* The same from FastCGI's params (FCGX_Request's envp: "NAME=value" strings, NULL
 * ended): REQUEST_METHOD, REQUEST_URI and REMOTE_ADDR. */
int pm_set_request_params(pm_t *pm, char *const *envp);

/* Live status: a reader's view of a running pool, from the scoreboard the manager
 * shares with its workers (a memfd: /proc/PID/fd, so the manager's user and root
 * only; or handed out on the manager's "status_socket", to "status_group" too).
 *
 *     pm_status_t *st = pm_status_new();
 *     long long busy, pid;
 *     if (pm_status_open(st, "/run/app.pid") < 0 || pm_status_read(st, PM_STATUS_PROC) < 0)
 *         fprintf(stderr, "%s\n", pm_status_errmsg(st));
 *     pm_status_value(st, PM_STATUS_POOL, PM_POOL_BUSY, &busy);
 *     for (int i = 0; i < pm_status_workers(st); i++)
 *         pm_status_value(st, i, PM_SLOT_PID, &pid);
 *     pm_status_close(st);
 *
 * Each read is a consistent snapshot: the pool's figures and the set of workers at
 * one moment of the manager's, each worker's own view whole (never torn). Nothing in
 * the scoreboard is trusted: counts, states and strings are bounded as read. Fields
 * are numbered, never renumbered; later versions add them at the end
 * (pm_status_field_info tells a binding what there is). */
typedef struct pm_status pm_status_t;

typedef enum {
    PM_WORKER_STARTING = 0, /* forked, pm_manage not yet returned in it (or not yet exec'd) */
    PM_WORKER_IDLE = 1,
    PM_WORKER_BUSY = 2,
    PM_WORKER_STOPPING = 3, /* told to stop (HUP, TERM): finishing its request, or leaving */
    PM_WORKER_RUNNING = 4   /* an exec'd program that does not report (not on this library) */
} pm_worker_state_t;

/* The pool's figures. Times in microseconds (since the epoch for a time of day);
 * -1 where unknown. */
typedef enum {
    PM_POOL_MANAGER_PID = 0,
    PM_POOL_START_TIME_US = 1,   /* the manager's start */
    PM_POOL_UPTIME_US = 2,
    PM_POOL_TARGET = 3,          /* n_processes */
    PM_POOL_WORKERS = 4,         /* live workers: pm_status_workers */
    PM_POOL_READY = 5,           /* of them, able to serve (the manager's count) */
    PM_POOL_IDLE = 6,
    PM_POOL_BUSY = 7,            /* in a request (also while stopping) */
    PM_POOL_STARTING = 8,
    PM_POOL_STOPPING = 9,
    PM_POOL_CRASH_BACKOFF = 10,  /* 1 while crashed slots are refilled one per second */
    PM_POOL_BACKOFF_US = 11,     /* then: until the next refill (0 if due) */
    PM_POOL_ACCEPTED = 12,       /* requests served, plus those in progress */
    PM_POOL_REQUESTS = 13,       /* requests served, by live workers and those gone */
    PM_POOL_SPAWNED = 14,        /* workers forked */
    PM_POOL_RESPAWNS = 15,       /* of them, into a slot that had a worker before */
    PM_POOL_EXITS = 16,          /* workers reaped */
    PM_POOL_CRASHES = 17,        /* of them, early failures (the crash backoff's) */
    PM_POOL_RELOADS = 18,        /* HUPs */
    PM_POOL_MAX_BUSY = 19,       /* most workers busy at once (the manager samples it each second) */
    PM_POOL_POOL_FULL = 20,      /* samples (one a second) that found every worker busy */
    PM_POOL_LISTEN_QUEUE = 21,   /* connections waiting to be accepted */
    PM_POOL_LISTEN_QUEUE_MAX = 22, /* the most seen waiting (sampled each second) */
    PM_POOL_LISTEN_BACKLOG = 23, /* the most that may wait (listen(2)'s backlog) */
    PM_POOL_TITLE = 24,          /* text: the manager's title (program and socket) */
    PM_POOL_PHASE = 25,          /* text: "starting", "running", "reloading", "stopping", "done" */
    PM_POOL_SLOW_REQUESTS = 26,  /* requests that ran past request_slow */
    PM_POOL_DEADLINE_KILLS = 27, /* workers stopped for a request past request_timeout */
    PM_POOL_RECYCLED = 28,       /* workers replaced for max_requests, max_age or max_rss */
    PM_POOL_MODE = 29,           /* text: the "pool" parameter: "static", "dynamic", "ondemand" */
    PM_POOL_FIELDS_ = 30         /* not a field: how many there are */
} pm_pool_field_t;

/* A worker's figures (its slot in the pool's scoreboard). */
typedef enum {
    PM_SLOT_PID = 0,
    PM_SLOT_INDEX = 1,           /* its place in the pool, from 0 */
    PM_SLOT_STATE = 2,           /* pm_worker_state_t */
    PM_SLOT_BUSY = 3,            /* 1 in a request (also while stopping) */
    PM_SLOT_REQUESTS = 4,        /* requests served */
    PM_SLOT_START_TIME_US = 5,   /* its start */
    PM_SLOT_REQUEST_START_US = 6, /* the current (busy) or last request's start; -1: none yet */
    PM_SLOT_REQUEST_US = 7,      /* busy: the current request's time so far; else the last
                                    one's duration; -1: none yet */
    PM_SLOT_CPU_US = 8,          /* CPU time used (user + system); -1 unknown or not read */
    PM_SLOT_RSS_KB = 9,          /* resident memory; -1 unknown or not read */
    PM_SLOT_METHOD = 10,         /* text: the current or last request's, when it was told */
    PM_SLOT_URI = 11,            /* text */
    PM_SLOT_REMOTE = 12,         /* text: the client's address */
    PM_SLOT_FIELDS_ = 13         /* not a field: how many there are */
} pm_slot_field_t;

#define PM_STATUS_PROC 1    /* pm_status_read: every worker's CPU and memory (/proc where
                             * the manager's figures do not hold: see pm_status_read) */
#define PM_STATUS_POOL (-1) /* pm_status_value and pm_status_text: the pool, not a worker */

/* A new reader, NULL if out of memory. */
pm_status_t *pm_status_new(void);
/* Finds the manager: target is its pid ("1234"), its pid file, its FastCGI socket (a
 * unix socket path, "unix:PATH", "tcp:HOST:PORT" or "HOST:PORT": the manager that
 * holds the listener), or its status socket. 0; PM_ESYS (errno ESRCH: no such
 * process, or the pid file names one that is gone; EACCES: another user's;
 * ENOENT: no such file or socket), PM_EINVAL (not an fcgi-pm manager, or not one
 * that shares a scoreboard), PM_EBADVALUE (a scoreboard of another layout); the
 * message names the target. */
int pm_status_open(pm_status_t *st, const char *target);
/* A snapshot of the pool now. A worker's CPU time and memory are the manager's
 * figures (it reads /proc each second for idle workers that served a request since)
 * while the worker stays idle on the same count; with flags PM_STATUS_PROC, the other
 * workers' are read from /proc now (in a few short-lived threads of the caller's for
 * a big pool); without, they are -1. 0; PM_ESYS (ESRCH: the
 * manager is gone), PM_EBADVALUE (its scoreboard kept changing for 200 ms),
 * PM_ESTATE (not open), PM_EINVAL (NULL, unknown flags). After a failure the last
 * snapshot stays readable. */
int pm_status_read(pm_status_t *st, int flags);
/* Live workers in the last snapshot (0 or more), PM_ESTATE before one, PM_EINVAL
 * for NULL. */
int pm_status_workers(pm_status_t *st);
/* A number of the last snapshot: worker PM_STATUS_POOL and a pm_pool_field_t, or a
 * worker from 0 (below pm_status_workers) and a pm_slot_field_t. 0 with *value set;
 * PM_EINVAL (NULL), PM_ESTATE (no snapshot), PM_ERANGE (no such worker or field, or a
 * text field). */
int pm_status_value(pm_status_t *st, int worker, int field, long long *value);
/* A text field of the last snapshot, as pm_status_value addresses it; NULL for none.
 * Valid until the next read or close. */
const char *pm_status_text(pm_status_t *st, int worker, int field);
/* Field number field of the pool (slot 0) or of a worker (slot 1): its name
 * ("busy", "request_us", ...) and whether it is text (1) or a number (0). Either
 * pointer may be NULL. 0, or PM_ERANGE past the last. */
int pm_status_field_info(int slot, int field, const char **name, int *is_text);
/* Names a pm_worker_state_t: "starting", "idle", "busy", "stopping", "running". */
const char *pm_worker_state_name(int state);
/* The last failure's message on st ("" if none). */
const char *pm_status_errmsg(pm_status_t *st);
/* The errno behind the last PM_ESYS failure on st, else 0. */
int pm_status_errno(pm_status_t *st);
/* Unmaps and frees the reader (st is invalid after it); NULL is a no-op. */
void pm_status_close(pm_status_t *st);

/* The parameters, for bindings: number index (from 0, in a fixed order) gives its
 * name, its type (PM_PARAM_*), its bounds as text ("-100000..100000"; seconds
 * "0..100000000"; text: length "0..4095"; a choice "manager|server"; boolean "0|1"),
 * and whether it may still be set once pm_manage has started (1), or is then
 * refused with PM_ESTATE (0). Any pointer may be NULL; the strings are static.
 * 0, or PM_ERANGE past the last parameter. Defaults: pm_get_parameter on a new
 * handle. */
typedef enum {
    PM_PARAM_INTEGER = 0,
    PM_PARAM_SECONDS = 1, /* decimal seconds, up to three decimals */
    PM_PARAM_BOOLEAN = 2, /* "0" or "1" */
    PM_PARAM_TEXT = 3,
    PM_PARAM_CHOICE = 4   /* one of the words in its bounds */
} pm_param_type_t;
int pm_parameter_info(int index, const char **name, int *type, const char **bounds, int *settable_when_running);
/* Text for a PM_E* code. */
const char *pm_strerror(int code);
/* "MAJOR.MINOR.PATCH" of the library in use (the header's: PM_VERSION_*). */
const char *pm_version(void);
/* PM_VERSION_NUMBER of the library in use, to check against the header's. */
int pm_version_number(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* FCGI_PM_H */
