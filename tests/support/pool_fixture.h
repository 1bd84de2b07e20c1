/*
 * pool_fixture.h -- the fixture the process and fault test programs share: a test's
 * directory and the application under test in it (worker_app unless the test names
 * another program); the cmocka set-up and tear-down
 * around each test, with this process a child subreaper; starting a pool and waiting
 * for its n workers; the manager's exit and exit code; the manager's and workers'
 * log lines; requests through cgi-fcgi; a millisecond clock and FIGURE lines.
 *
 * Built on proc_util.h. Unlike proc_util, the CHECK macros and the functions marked
 * "fails the test" end the running test on failure, with the tail of a log.
 * Include it after <cmocka.h>.
 */
#ifndef POOL_FIXTURE_H
#define POOL_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#include "proc_util.h"

#define PF_PATH_LEN (PU_PATH_MAX + 64)
#define PF_LINE_LEN 512

/* Bounds of the helpers below that wait without a timeout argument: generous, the
 * tests that use them assert behaviour, not speed. */
#define PF_T_START 10000  /* the manager or a worker is up */
#define PF_T_LINE 3000    /* a log line shows up */
#define PF_T_EXIT 5000    /* a process exits */
#define PF_T_REQUEST 5000 /* a request begins or completes */

/* 1 when built with AddressSanitizer (PM_SANITIZER=address). */
#if defined(__SANITIZE_ADDRESS__)
#define PF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PF_ASAN 1
#endif
#endif
#ifndef PF_ASAN
#define PF_ASAN 0
#endif

/* How much longer a bound on processes' exits is under ASan: each process's exit runs
 * LeakSanitizer's scan (tens of ms on a slow VM: 8 workers on 2 cores took ~200 ms,
 * before and after issue 13's changes). The criteria themselves are the normal
 * build's (docs/reliability.md); under ASan (R16) what counts is 0 reports. */
#define PF_EXIT_SCALE (PF_ASAN ? 4.0 : 1.0)

/* An application run: its program, its manager and where it lives. */
typedef struct pf_app {
    const char *program;        /* the executable pf_start_app runs; NULL: worker_app */
    char dir[PU_PATH_MAX];      /* the test's directory */
    char sock[PF_PATH_LEN];     /* where it listens: a unix socket path or host:port */
    char log[PF_PATH_LEN];      /* stdout and stderr of the whole process tree */
    char pid_file[PF_PATH_LEN]; /* for tests that pass pid_fname */
    pid_t pid;                  /* the manager; -1 before it is started */
    int reaped;                 /* 1 once the manager's wait status is in status */
    int status;
    int n_requests;             /* responses stored so far (names their files) */
} pf_app_t;

/* ---- cmocka fixtures ---- */

/* Group set-up: this process becomes a child subreaper, so workers orphaned by a
 * dead manager become its children and one left behind shows (as a child or a
 * zombie). 0 or -1. */
int pf_group_setup(void **state);
/* The same, with SIGPIPE ignored: for tests whose own clients write to sockets a
 * worker may have dropped. */
int pf_group_setup_no_sigpipe(void **state);

/* Per test: a fresh directory /tmp/fcgi-pm-<program>-XXXXXX and a pf_app_t in *state
 * whose paths are dir/sock, dir/log and dir/app.pid. It is the current app: the one
 * whose log CHECK shows. */
int pf_setup(void **state);
/* Fails (-1) if the app's log, or dir/log2, dir/nginx/nginx.out or dir/load.out,
 * holds a sanitizer report; kills every child of this process with its descendants
 * (managers, workers, orphans, clients) and removes the directory tree. */
int pf_teardown(void **state);

/* Runs only the tests matching the cmocka pattern in the environment variable
 * env_name, when it is set and not empty. */
void pf_filter_from_env(const char *env_name);

/* ---- checks ---- */

void pf_check_failed(const char *expr, const char *log, const char *file, int line,
                     const char *fmt, ...);
/* The last max_bytes of the file at path (from a line start) to stderr. */
void pf_print_log_tail(const char *path, size_t max_bytes);

/* Fails the test unless cond holds: the printf-style message, then the tail of log
 * (the current app's log when log is NULL). */
#define CHECK_LOG(cond, log, ...)                                                 \
    do {                                                                          \
        if (!(cond))                                                              \
            pf_check_failed(#cond, (log), __FILE__, __LINE__, __VA_ARGS__);        \
    } while (0)
#define CHECK(cond, ...) CHECK_LOG(cond, (const char *)NULL, __VA_ARGS__)

/* ---- time and figures ---- */

/* CLOCK_MONOTONIC in milliseconds, with microsecond resolution. */
double pf_now_ms(void);
/* Sleeps until the monotonic time t (pf_now_ms scale), whatever signals arrive. */
void pf_sleep_until_ms(double t);
/* The polling period of every measurement: 1 ms. */
void pf_tick(void);

/* Prints "FIGURE <scenario> <name> <value> <unit>" to stdout and appends the same
 * line to the file named by $PM_FIGURES_FILE, if set. Integral values print without
 * decimals, others with three. */
void pf_figure(const char *scenario, const char *name, double value, const char *unit);

/* ---- the application ---- */

/* Points app at dir: sock is addr (a path or host:port), log is log; the pid file is
 * dir/app.pid; the program is worker_app (program NULL); no manager yet. A second app
 * in the same test, or other paths. */
void pf_app_at(pf_app_t *app, const char *dir, const char *addr, const char *log);
/* dir/name into buf (PF_PATH_LEN bytes); buf. */
char *pf_path(char *buf, const pf_app_t *app, const char *name);

/* Starts app->program (worker_app if NULL) as "<program> <app->sock> <params...>",
 * with params ("name=value") and env ("NAME=value") both NULL-terminated, either may
 * be NULL; its output is appended to app->log. Fails the test if it cannot be
 * spawned. */
void pf_start_app(pf_app_t *app, const char *const params[], const char *const env[]);
/* pf_start_app with n_processes=n first, then waits for the whole pool: the manager's
 * "initialized", n workers started and initialized (their pids in workers[], in log
 * order), and exactly these n as the manager's children. Fails the test otherwise. */
void pf_start_pool(pf_app_t *app, int n, const char *const params[], const char *const env[],
                   pid_t *workers);

/* The manager's children: the live ones into live[] (at most PU_MAX_PIDS; may be
 * NULL), zombies counted into *zombies (may be NULL). The number of live children, or
 * -1 if the manager's /proc entry is gone. */
int pf_children(const pf_app_t *app, pid_t *live, int *zombies);
/* Polls (2 ms) until the manager's children are exactly want[0..n): 1, or 0 after
 * timeout_ms. */
int pf_wait_children(const pf_app_t *app, const pid_t *want, int n, int timeout_ms);
/* Polls (1 ms) until the manager has exactly n live children, no zombie, none of them
 * in excluded[0..n_excl); their pids into live[] when non-NULL. The ms it took from
 * `since`, or -1 after timeout_ms. When dead_ms is non-NULL it gets the ms from `since`
 * until every excluded process had finished (a zombie or gone): the dying processes'
 * own part of the time, before the manager can know of it. */
double pf_wait_pool(const pf_app_t *app, int n, const pid_t *excluded, int n_excl, double since,
                    double timeout_ms, pid_t *live, double *dead_ms);
/* 1 if the manager has exactly n live children and each has logged "initialized";
 * their pids into out when non-NULL. */
int pf_pool_ready(const pf_app_t *app, int n, pid_t *out);
/* Polls (1 ms) for pf_pool_ready: the ms it took, or -1 after timeout_ms or as soon as
 * the manager is gone. */
double pf_wait_ready(const pf_app_t *app, int n, int timeout_ms, pid_t *out);

/* Polls (1 ms) for pid, a child of this process, to exit, and reaps it: the ms from
 * `since` (its status in *status when non-NULL), or -1 if it has not exited within
 * timeout_ms of `since`. */
double pf_wait_child(pid_t pid, double since, double timeout_ms, int *status);
/* pf_wait_child for the manager, its status into app->status. */
double pf_wait_manager_exit(pf_app_t *app, double since, double timeout_ms);
/* Waits up to timeout_ms for the manager's exit, unless it is reaped already: 1 if it
 * has exited (status in app->status), 0 if not. */
int pf_wait_exit(pf_app_t *app, int timeout_ms);
/* Fails the test unless the manager exited with code. */
void pf_check_exit_code(const pf_app_t *app, int code);
/* TERM to the manager: it must exit 0 within timeout_ms, or the test fails. */
void pf_stop(pf_app_t *app, int timeout_ms);

/* ---- log lines ---- */

/* "FastCGI: manager (pid P): <msg>" for app's manager into buf (PF_LINE_LEN bytes). */
const char *pf_mline(char *buf, const pf_app_t *app, const char *fmt, ...);
/* "FastCGI: server (pid W): <msg>" into buf (PF_LINE_LEN bytes). */
const char *pf_sline(char *buf, pid_t worker, const char *fmt, ...);
/* Pids of the manager's "server (pid W) started" lines, in log order, at most max. */
int pf_started_pids(const pf_app_t *app, pid_t *out, int max);
/* Number of "server (pid W) exited with status S" lines for this worker and status. */
int pf_exit_lines(const pf_app_t *app, pid_t worker, int status);
/* Waits up to PF_T_LINE for that line: 1, or 0. */
int pf_wait_exit_line(const pf_app_t *app, pid_t worker, int status);
/* Waits up to PF_T_START for the nth started worker (from 1) and its "initialized";
 * its pid, or -1. */
pid_t pf_wait_started(const pf_app_t *app, int nth);
/* The pid of the first worker that logged "begin <query>", waiting up to
 * PF_T_REQUEST; -1 if none did. */
pid_t pf_wait_begin(const pf_app_t *app, const char *query);
/* The pids of the manager's first "sending TERM to PIDs, ..." line into out; their
 * count, or -1 if there is no such line. */
int pf_term_list(const pf_app_t *app, pid_t *out, int max);

/* ---- requests through cgi-fcgi ---- */

/* Starts a request with QUERY_STRING=query; its response goes to a fresh file of the
 * app's directory. Fails the test if the client cannot run. */
void pf_start_request(pf_app_t *app, pu_request_t *req, const char *query);
/* Finishes a request that must succeed within PF_T_REQUEST (or the test fails): the
 * pid of the worker that served it. When body_n >= 0 the body must be exactly body_n
 * pattern bytes, otherwise the hello text of that worker. */
pid_t pf_finish_request(pu_request_t *req, long body_n);
/* One quick request that must succeed; the pid that served it. */
pid_t pf_hello_request(pf_app_t *app);

#endif /* POOL_FIXTURE_H */
