/*
 * test_process.c -- fcgi-pm as a user sees it: worker_app runs as a real process tree,
 * the real client (cgi-fcgi) talks to it, and the tests look only at what is
 * observable: log lines, exit codes, responses, and /proc.
 *
 * This process is a child subreaper, so workers orphaned by a dead manager become our
 * children: a worker the library failed to reap stays visible as a zombie.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proc_util.h"

#ifndef WORKER_APP
#error "WORKER_APP must name the worker_app executable"
#endif

/* Generous upper bounds: the tests assert behaviour, not speed. */
#define T_START 5000   /* the pool is up */
#define T_LINE 3000    /* a log line shows up */
#define T_EXIT 5000    /* a process exits */
#define T_REQUEST 5000 /* a request completes */
/* The one speed requirement: idle workers of a SIGKILLed manager are gone by then. */
#define ORPHAN_BOUND_MS 100

#define LINE_LEN 512
#define SLOW_BODY 100000 /* bytes of a slow response, checked byte by byte */

typedef struct app {
    char dir[PU_PATH_MAX / 2]; /* short, so that paths inside it fit */
    char sock[PU_PATH_MAX];
    char log[PU_PATH_MAX];
    char pid_file[PU_PATH_MAX];
    pid_t pid;  /* worker_app: the manager */
    int reaped; /* 1 once the manager's exit status is in status */
    int status; /* raw wait status */
    int n_requests;
} app_t;

/* The running test's app, whose log a failed check prints. */
static app_t *g_app;

/* ---- failure reports ---- */

static void check_failed(const char *expr, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    print_error("%s:%d: check failed: %s\n  ", file, line, expr);
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    char *log = g_app ? pu_read_file(g_app->log, NULL) : NULL;
    print_error("\n---- %s ----\n%s---- end of log ----\n", g_app ? g_app->log : "(no app)",
                log ? log : "");
    free(log);
    _fail(file, line);
}

/* Like assert_true, with a message, and the application's log on failure. */
#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond))                                                      \
            check_failed(#cond, __FILE__, __LINE__, __VA_ARGS__);          \
    } while (0)

/* ---- log lines ---- */

static void vrole_line(char *buf, const char *role, pid_t pid, const char *fmt, va_list ap)
{
    int n = snprintf(buf, LINE_LEN, "FastCGI: %s (pid %d): ", role, (int)pid);
    vsnprintf(buf + n, LINE_LEN - (size_t)n, fmt, ap);
}

/* "FastCGI: manager (pid P): <msg>" for the app's manager. */
static const char *mline(char *buf, const app_t *app, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrole_line(buf, "manager", app->pid, fmt, ap);
    va_end(ap);
    return buf;
}

/* "FastCGI: server (pid W): <msg>". */
static const char *sline(char *buf, pid_t worker, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrole_line(buf, "server", worker, fmt, ap);
    va_end(ap);
    return buf;
}

/* Pids of the "server (pid W) started" lines, in log order. */
static int started_pids(const app_t *app, pid_t *out, int max)
{
    char before[LINE_LEN];
    mline(before, app, "server (pid ");
    return pu_collect_pids(app->log, before, ") started", out, max);
}

/* Lines "server (pid W) exited with status S" for this worker and status. */
static int exit_lines(const app_t *app, pid_t worker, int status)
{
    char line[LINE_LEN];
    return pu_count_lines(app->log, mline(line, app, "server (pid %d) exited with status %d",
                                          (int)worker, status));
}

static int wait_exit_line(const app_t *app, pid_t worker, int status)
{
    char line[LINE_LEN];
    return pu_wait_line(app->log,
                        mline(line, app, "server (pid %d) exited with status %d", (int)worker,
                              status),
                        1, T_LINE);
}

/* Waits for the n-th started worker (1-based) and its "initialized"; its pid or -1. */
static pid_t wait_started(const app_t *app, int nth)
{
    pid_t pids[PU_MAX_PIDS];
    long long deadline = pu_now_ms() + T_START;
    while (started_pids(app, pids, PU_MAX_PIDS) < nth) {
        if (pu_now_ms() >= deadline)
            return -1;
        pu_sleep_ms(2);
    }
    char line[LINE_LEN];
    if (!pu_wait_line(app->log, sline(line, pids[nth - 1], "initialized"), 1, T_START))
        return -1;
    return pids[nth - 1];
}

/* The pid of the worker that logged "begin <query>" (the first one), or -1. */
static pid_t wait_begin(const app_t *app, const char *query)
{
    char after[LINE_LEN];
    pid_t pid;
    snprintf(after, sizeof after, "): begin %s", query);
    long long deadline = pu_now_ms() + T_REQUEST;
    while (pu_collect_pids(app->log, "worker_app (pid ", after, &pid, 1) < 1) {
        if (pu_now_ms() >= deadline)
            return -1;
        pu_sleep_ms(2);
    }
    return pid;
}

/* The pids listed by the manager's first "sending TERM to PIDs, ..." line; -1 if none. */
static int term_list(const app_t *app, pid_t *out, int max)
{
    char prefix[LINE_LEN];
    char *line;
    mline(prefix, app, "sending TERM to PIDs, ");
    if (pu_lines_with_prefix(app->log, prefix, &line, 1) < 1)
        return -1;
    int count = pu_parse_pid_list(line + strlen(prefix), out, max);
    pu_free_lines(&line, 1);
    return count;
}

/* ---- the application ---- */

/* Starts worker_app on the app's socket, with params ("name=value") and env
 * ("NAME=value"), both NULL-terminated (env may be NULL). */
static void start_app(app_t *app, const char *const params[], const char *const env[])
{
    const char *argv[32] = {WORKER_APP, app->sock};
    int argc = 2;
    for (int i = 0; params[i] && argc < 31; i++)
        argv[argc++] = params[i];
    argv[argc] = NULL;
    app->pid = pu_spawn(argv, env, app->log);
    CHECK(app->pid > 0, "cannot start %s", WORKER_APP);
}

/* Starts worker_app with n_processes=n plus params, and waits for the whole pool:
 * the manager's "initialized", then n workers started and initialized, pids in
 * workers[]. */
static void start_pool(app_t *app, int n, const char *const params[], const char *const env[],
                       pid_t *workers)
{
    char n_param[32];
    const char *all[24] = {n_param};
    int count = 1;
    snprintf(n_param, sizeof n_param, "n_processes=%d", n);
    for (int i = 0; params && params[i] && count < 23; i++)
        all[count++] = params[i];
    all[count] = NULL;
    start_app(app, all, env);

    char line[LINE_LEN];
    CHECK(pu_wait_line(app->log, mline(line, app, "initialized"), 1, T_START),
          "manager %d never logged initialized", (int)app->pid);
    for (int i = 0; i < n; i++) {
        workers[i] = wait_started(app, i + 1);
        CHECK(workers[i] > 0, "worker %d of %d never started and initialized", i + 1, n);
    }
}

/* Waits for the manager to exit; 1 if it did (status in app->status). */
static int wait_app_exit(app_t *app, int timeout_ms)
{
    if (!app->reaped)
        app->reaped = pu_wait_exit(app->pid, timeout_ms, &app->status);
    return app->reaped;
}

static void check_exit_code(const app_t *app, int code)
{
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == code,
          "manager's wait status is %d, expected exit code %d", app->status, code);
}

/* TERM to the manager; it must exit 0. */
static void stop_app(app_t *app)
{
    kill(app->pid, SIGTERM);
    CHECK(wait_app_exit(app, T_EXIT), "manager %d did not exit after TERM", (int)app->pid);
    check_exit_code(app, 0);
}

/* Polls until the manager's children are exactly want[0..n). */
static int wait_children(const app_t *app, const pid_t *want, int n, int timeout_ms)
{
    long long deadline = pu_now_ms() + timeout_ms;
    for (;;) {
        pid_t kids[PU_MAX_PIDS];
        int count = pu_children(app->pid, kids, PU_MAX_PIDS);
        if (count >= 0 && pu_same_pids(kids, count, want, n))
            return 1;
        if (pu_now_ms() >= deadline)
            return 0;
        pu_sleep_ms(2);
    }
}

/* ---- requests ---- */

static void next_response_path(app_t *app, char *path, size_t size)
{
    snprintf(path, size, "%s/response-%d", app->dir, ++app->n_requests);
}

static void start_request(app_t *app, pu_request_t *req, const char *query)
{
    char out[PU_PATH_MAX];
    next_response_path(app, out, sizeof out);
    CHECK(pu_request_start(req, app->sock, query, out) == 0, "cannot run the client");
}

/* Finishes a request that must succeed; the pid of the worker that served it. When
 * body_n >= 0 the body must be exactly body_n pattern bytes, otherwise the hello
 * text of that worker. */
static pid_t finish_request(pu_request_t *req, long body_n)
{
    char *resp = NULL;
    size_t len = 0, body_len = 0;
    int rc = pu_request_finish(req, T_REQUEST, &resp, &len);
    CHECK(rc == 0, "client exit code %d, response: %.200s", rc, resp ? resp : "(none)");
    pid_t pid = pu_response_pid(resp);
    const char *body = pu_response_body(resp, len, &body_len);
    CHECK(pid > 0 && body, "malformed response: %.200s", resp ? resp : "(none)");
    if (body_n >= 0) {
        CHECK(pu_body_is_pattern(body, body_len, (size_t)body_n),
              "body of %zu bytes is not the %ld-byte pattern", body_len, body_n);
    } else {
        char hello[64];
        snprintf(hello, sizeof hello, "Hello from worker %d\n", (int)pid);
        CHECK(body_len == strlen(hello) && memcmp(body, hello, body_len) == 0,
              "body is '%.*s', expected '%s'", (int)body_len, body, hello);
    }
    free(resp);
    return pid;
}

/* One quick request that must succeed; the pid that served it. */
static pid_t hello_request(app_t *app)
{
    pu_request_t req;
    start_request(app, &req, "");
    return finish_request(&req, -1);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    /* Orphaned workers become ours, so leaks show up as our zombies. */
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    app_t *app = calloc(1, sizeof *app);
    if (!app || pu_make_temp_dir(app->dir, sizeof app->dir, "process") < 0) {
        free(app);
        return -1;
    }
    snprintf(app->sock, sizeof app->sock, "%s/sock", app->dir);
    snprintf(app->log, sizeof app->log, "%s/log", app->dir);
    snprintf(app->pid_file, sizeof app->pid_file, "%s/app.pid", app->dir);
    g_app = app;
    *state = app;
    return 0;
}

/* Fails on sanitizer reports in the log, kills whatever the test left running (the
 * app, clients, orphans) and removes its directory. */
static int teardown(void **state)
{
    app_t *app = *state;
    /* Under PM_SANITIZER=address a report in any process of the tree fails the test. */
    int reports = pu_sanitizer_reports(app->log);
    if (reports > 0) {
        char *log = pu_read_file(app->log, NULL);
        print_error("sanitizer reports in %s:\n%s\n", app->log, log ? log : "");
        free(log);
    }
    pu_kill_children();
    pu_remove_temp_dir(app->dir);
    g_app = NULL;
    free(app);
    return reports > 0 ? -1 : 0;
}

/* ---- tests ---- */

/* n=3: the manager logs initialized, then three workers start, initialize, and serve. */
static void test_start_three(void **state)
{
    app_t *app = *state;
    pid_t w[3];
    char line[LINE_LEN];
    start_pool(app, 3, NULL, NULL, w);

    /* The first line is the manager's, before any fork. */
    char *first[1];
    int n = pu_lines_with_prefix(app->log, "FastCGI: ", first, 1);
    CHECK(n == 1 && strcmp(first[0], mline(line, app, "initialized")) == 0,
          "first log line is '%s'", n ? first[0] : "");
    pu_free_lines(first, n);
    CHECK(pu_count_lines(app->log, mline(line, app, "initialized")) == 1, "one initialized");
    for (int i = 0; i < 3; i++)
        CHECK(pu_count_lines(app->log, sline(line, w[i], "initialized")) == 1,
              "worker %d initialized once", (int)w[i]);
    CHECK(wait_children(app, w, 3, T_LINE), "the manager's children are not the 3 workers");

    /* Three slow requests at once need three different workers. */
    pu_request_t req[3];
    pid_t served[3];
    for (int i = 0; i < 3; i++)
        start_request(app, &req[i], "sleep_ms=800");
    for (int i = 0; i < 3; i++)
        served[i] = finish_request(&req[i], -1);
    CHECK(pu_same_pids(served, 3, w, 3), "3 concurrent requests served by %d %d %d",
          (int)served[0], (int)served[1], (int)served[2]);
    for (int i = 0; i < 3; i++)
        CHECK(pu_has_pid(w, 3, hello_request(app)), "a request served by a stranger");

    stop_app(app);
}

/* n=0: pm_manage returns 0, nothing is forked, the process serves by itself. */
static void test_single_process(void **state)
{
    app_t *app = *state;
    const char *params[] = {"n_processes=0", NULL};
    start_app(app, params, NULL);
    char line[LINE_LEN];
    snprintf(line, sizeof line, "worker_app (pid %d): single-process mode", (int)app->pid);
    CHECK(pu_wait_line(app->log, line, 1, T_START), "pm_manage did not return 0");

    for (int i = 0; i < 2; i++)
        CHECK(hello_request(app) == app->pid, "request not served by the process itself");
    pid_t kids[4];
    CHECK(pu_children(app->pid, kids, 4) == 0, "single-process mode forked");
    CHECK(pu_count_containing(app->log, "FastCGI:") == 0, "single-process mode logged");
    CHECK(pu_alive(app->pid), "the process died");
}

/* n=-1: the manager initializes, then dies at once with exit 0, forking nothing. */
static void test_negative_n(void **state)
{
    app_t *app = *state;
    const char *params[] = {"n_processes=-1", NULL};
    start_app(app, params, NULL);
    CHECK(wait_app_exit(app, T_EXIT), "the manager did not exit");
    check_exit_code(app, 0);

    char line[LINE_LEN];
    char *lines[8];
    int n = pu_lines_with_prefix(app->log, "FastCGI: ", lines, 8);
    CHECK(n == 2, "%d FastCGI lines, expected initialized and dying", n);
    CHECK(strcmp(lines[0], mline(line, app, "initialized")) == 0, "first line '%s'", lines[0]);
    mline(line, app, "dying:");
    CHECK(strncmp(lines[1], line, strlen(line)) == 0, "second line '%s'", lines[1]);
    pu_free_lines(lines, n);
    CHECK(pu_count_containing(app->log, "worker_app (pid") == 0, "pm_manage returned");
}

/* A SIGKILLed worker is logged with status 9 and replaced; the pool is 3 again. */
static void test_worker_killed(void **state)
{
    app_t *app = *state;
    pid_t w[3];
    start_pool(app, 3, NULL, NULL, w);

    kill(w[1], SIGKILL);
    CHECK(wait_exit_line(app, w[1], 9), "no 'exited with status 9' for %d", (int)w[1]);
    pid_t fresh = wait_started(app, 4);
    CHECK(fresh > 0 && !pu_has_pid(w, 3, fresh), "no replacement worker");
    const pid_t pool[3] = {w[0], w[2], fresh};
    CHECK(wait_children(app, pool, 3, T_LINE), "the pool is not the 2 survivors plus 1");
    CHECK(exit_lines(app, w[1], 9) == 1, "the death is logged once");
    pid_t started[8];
    CHECK(started_pids(app, started, 8) == 4, "more than one replacement");
    CHECK(pu_has_pid(pool, 3, hello_request(app)), "request not served by the pool");
    stop_app(app);
}

/* HUP while idle: TERM to every worker, all replaced; the manager, its pid file and
 * its title stay as they were. */
static void test_hup_idle(void **state)
{
    app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], line[LINE_LEN], title[256], title_after[256];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *params[] = {pid_param, NULL};
    pid_t w[3];
    start_pool(app, 3, params, NULL, w);

    struct stat before, after;
    char *content = pu_read_file(app->pid_file, NULL);
    CHECK(content && stat(app->pid_file, &before) == 0, "no pid file");
    CHECK(pu_cmdline(app->pid, title, sizeof title) == 0, "no manager title");

    kill(app->pid, SIGHUP);
    CHECK(pu_wait_containing(app->log, mline(line, app, "sending TERM to PIDs, "), 1, T_LINE),
          "no 'sending TERM to PIDs' line");
    pid_t listed[8];
    int n = term_list(app, listed, 8);
    CHECK(pu_same_pids(listed, n, w, 3), "TERM list is not the 3 workers");

    pid_t fresh[3];
    for (int i = 0; i < 3; i++) {
        CHECK(wait_exit_line(app, w[i], 0), "old worker %d: no 'exited with status 0'",
              (int)w[i]);
        snprintf(line, sizeof line, "worker_app (pid %d): loop ended", (int)w[i]);
        CHECK(pu_count_lines(app->log, line) == 1, "idle worker's accept loop did not end");
        fresh[i] = wait_started(app, 4 + i);
        CHECK(fresh[i] > 0 && !pu_has_pid(w, 3, fresh[i]), "no replacement %d", i + 1);
    }
    CHECK(wait_children(app, fresh, 3, T_LINE), "the pool is not the 3 new workers");
    for (int i = 0; i < 3; i++)
        CHECK(!pu_exists(w[i]), "old worker %d still exists", (int)w[i]);

    CHECK(pu_alive(app->pid), "the manager died");
    CHECK(pu_count_containing(app->log, "received signal") == 0, "HUP taken for TERM");
    char *content_after = pu_read_file(app->pid_file, NULL);
    CHECK(content_after && strcmp(content, content_after) == 0, "pid file content changed");
    CHECK(stat(app->pid_file, &after) == 0 && after.st_ino == before.st_ino &&
              after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
              after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
          "pid file was rewritten");
    CHECK(pu_cmdline(app->pid, title_after, sizeof title_after) == 0 &&
              strcmp(title, title_after) == 0,
          "title changed from '%s' to '%s'", title, title_after);
    free(content);
    free(content_after);
    CHECK(pu_has_pid(fresh, 3, hello_request(app)), "request not served by a new worker");
    stop_app(app);
}

/* HUP straight to a busy worker: its request completes byte-exact, then it logs
 * "safe exit after SIGHUP", exits 0, and is replaced. */
static void test_hup_busy_worker(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN], query[64];
    pid_t w;
    start_pool(app, 1, NULL, NULL, &w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    start_request(app, &req, query);
    CHECK(wait_begin(app, query) == w, "the worker did not take the request");
    kill(w, SIGHUP);
    CHECK(finish_request(&req, SLOW_BODY) == w, "served by another worker");

    CHECK(pu_wait_line(app->log, sline(line, w, "safe exit after SIGHUP"), 1, T_LINE),
          "no 'safe exit after SIGHUP'");
    CHECK(wait_exit_line(app, w, 0), "no 'exited with status 0'");
    CHECK(wait_started(app, 2) > 0, "no replacement");
    CHECK(pu_count_containing(app->log, "safe exit after SIGTERM") == 0, "HUP taken for TERM");
    snprintf(line, sizeof line, "worker_app (pid %d): loop ended", (int)w);
    CHECK(pu_count_lines(app->log, line) == 0, "the busy worker left through accept");
    stop_app(app);
}

/* HUP to the manager during a slow request: the busy worker (sent TERM) finishes
 * byte-exact and logs "safe exit after SIGTERM"; both workers are replaced. */
static void test_hup_manager_busy(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN], query[64];
    pid_t w[2];
    start_pool(app, 2, NULL, NULL, w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    start_request(app, &req, query);
    pid_t busy = wait_begin(app, query);
    CHECK(pu_has_pid(w, 2, busy), "no worker took the request");
    pid_t idle = busy == w[0] ? w[1] : w[0];

    kill(app->pid, SIGHUP);
    CHECK(pu_wait_containing(app->log, mline(line, app, "sending TERM to PIDs, "), 1, T_LINE),
          "no 'sending TERM to PIDs' line");
    pid_t listed[8];
    int n = term_list(app, listed, 8);
    CHECK(pu_same_pids(listed, n, w, 2), "TERM list is not the 2 workers");
    CHECK(wait_exit_line(app, idle, 0), "idle worker: no 'exited with status 0'");

    CHECK(finish_request(&req, SLOW_BODY) == busy, "served by another worker");
    CHECK(pu_wait_line(app->log, sline(line, busy, "safe exit after SIGTERM"), 1, T_LINE),
          "busy worker: no 'safe exit after SIGTERM'");
    CHECK(wait_exit_line(app, busy, 0), "busy worker: no 'exited with status 0'");
    pid_t fresh[2] = {wait_started(app, 3), wait_started(app, 4)};
    CHECK(fresh[0] > 0 && fresh[1] > 0, "workers not replaced");
    CHECK(wait_children(app, fresh, 2, T_LINE), "the pool is not the 2 new workers");
    CHECK(pu_alive(app->pid), "the manager died");
    stop_app(app);
}

/* TERM with idle workers: exit 0 within a second, pid file removed, nothing left, and
 * the manager's lines exactly as the original writes them. */
static void test_term_idle(void **state)
{
    app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], prefix[LINE_LEN], line[LINE_LEN];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *params[] = {pid_param, NULL};
    pid_t w[3];
    start_pool(app, 3, params, NULL, w);
    CHECK(pu_file_exists(app->pid_file), "no pid file");

    long long t0 = pu_now_ms();
    kill(app->pid, SIGTERM);
    CHECK(wait_app_exit(app, T_EXIT), "the manager did not exit");
    long long took = pu_now_ms() - t0;
    check_exit_code(app, 0);
    CHECK(took < 1000, "exit took %lld ms", took);
    print_message("    TERM to exit: %lld ms\n", took);
    CHECK(!pu_file_exists(app->pid_file), "pid file left behind");
    for (int i = 0; i < 3; i++)
        CHECK(!pu_exists(w[i]), "worker %d left behind", (int)w[i]);

    /* The manager's lines, in order. */
    char *lines[16];
    mline(prefix, app, "");
    int n = pu_lines_with_prefix(app->log, prefix, lines, 16);
    CHECK(n == 10, "%d manager lines, expected 10", n);
    CHECK(strcmp(lines[0], mline(line, app, "initialized")) == 0, "line 1: %s", lines[0]);
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(lines[1 + i], mline(line, app, "server (pid %d) started", (int)w[i])) == 0,
              "line %d: %s", 2 + i, lines[1 + i]);
    CHECK(strcmp(lines[4], mline(line, app, "received signal TERM")) == 0, "line 5: %s",
          lines[4]);
    pid_t listed[8], exited[3];
    mline(line, app, "sending TERM to PIDs, ");
    int n_listed = strncmp(lines[5], line, strlen(line)) == 0
                       ? pu_parse_pid_list(lines[5] + strlen(line), listed, 8)
                       : -1;
    CHECK(pu_same_pids(listed, n_listed, w, 3), "line 6: %s", lines[5]);
    for (int i = 0; i < 3; i++) {
        char want[LINE_LEN];
        mline(line, app, "server (pid ");
        size_t plen = strlen(line);
        exited[i] = strncmp(lines[6 + i], line, plen) == 0 ? atoi(lines[6 + i] + plen) : -1;
        mline(want, app, "server (pid %d) exited with status 0", (int)exited[i]);
        CHECK(strcmp(lines[6 + i], want) == 0, "line %d: %s", 7 + i, lines[6 + i]);
    }
    CHECK(pu_same_pids(exited, 3, w, 3), "the reaped pids are not the workers");
    CHECK(strcmp(lines[9], mline(line, app, "dying: safe exit from signal TERM")) == 0,
          "line 10: %s", lines[9]);
    pu_free_lines(lines, n);

    /* Each worker said only "initialized"; each accept loop ended. */
    CHECK(pu_count_containing(app->log, "FastCGI: server") == 3, "extra worker lines");
    CHECK(pu_count_containing(app->log, "loop ended") == 3, "accept loops did not end");
}

/* TERM during a 1 s request with die_timeout 5: the response completes byte-exact,
 * the worker exits safely, the manager exits 0 without waiting for the timeout. */
static void test_term_busy(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN], query[64];
    const char *params[] = {"die_timeout=5", NULL};
    pid_t w[2];
    start_pool(app, 2, params, NULL, w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    start_request(app, &req, query);
    pid_t busy = wait_begin(app, query);
    CHECK(pu_has_pid(w, 2, busy), "no worker took the request");

    long long t0 = pu_now_ms();
    kill(app->pid, SIGTERM);
    CHECK(finish_request(&req, SLOW_BODY) == busy, "served by another worker");
    CHECK(wait_app_exit(app, 6000), "the manager did not exit");
    long long took = pu_now_ms() - t0;
    check_exit_code(app, 0);
    print_message("    TERM to exit with a 1 s request: %lld ms\n", took);
    CHECK(took < 4000, "exit took %lld ms: waited for die_timeout?", took);

    CHECK(pu_count_lines(app->log, sline(line, busy, "safe exit after SIGTERM")) == 1,
          "busy worker: no 'safe exit after SIGTERM'");
    CHECK(exit_lines(app, busy, 0) == 1, "busy worker: no 'exited with status 0'");
    CHECK(pu_count_lines(app->log, mline(line, app, "dying: safe exit from signal TERM")) == 1,
          "no 'dying: safe exit from signal TERM'");
    CHECK(pu_count_containing(app->log, "wait timeout") == 0, "die_timeout expired");
    for (int i = 0; i < 2; i++)
        CHECK(!pu_exists(w[i]), "worker %d left behind", (int)w[i]);
}

/* Workers that ignore TERM: after die_timeout the manager SIGKILLs and reaps them,
 * logs "wait timeout" and exits 1. */
static void test_die_timeout(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN];
    const char *params[] = {"die_timeout=1", NULL};
    const char *env[] = {"WORKER_APP_BLOCK_TERM=1", NULL};
    pid_t w[2];
    start_pool(app, 2, params, env, w);
    CHECK(pu_wait_containing(app->log, "): TERM and HUP blocked", 2, T_LINE),
          "the workers did not block TERM");

    long long t0 = pu_now_ms();
    kill(app->pid, SIGTERM);
    CHECK(wait_app_exit(app, T_EXIT), "the manager did not exit");
    long long took = pu_now_ms() - t0;
    /* Right away: an unreaped worker would now be our zombie (we are the subreaper). */
    for (int i = 0; i < 2; i++)
        CHECK(!pu_exists(w[i]), "worker %d left behind (state %c)", (int)w[i],
              pu_proc_state(w[i]));
    check_exit_code(app, 1);
    print_message("    TERM to exit with die_timeout=1: %lld ms\n", took);
    CHECK(took >= 900 && took < 3000, "exit after %lld ms, die_timeout is 1 s", took);
    CHECK(pu_count_lines(app->log, mline(line, app, "wait timeout")) == 1, "no 'wait timeout'");
    CHECK(pu_count_lines(app->log, mline(line, app, "dying: safe exit from signal TERM")) == 0,
          "claims a safe exit");
    CHECK(pu_count_containing(app->log, "safe exit after") == 0, "a worker saw TERM");
}

/* Records, for each pid, when it stops being alive; polls every 2 ms. The largest
 * delay from t0, or -1 if some pid is still alive after timeout_ms. */
static long long wait_all_gone(const pid_t *pids, int n, long long t0, int timeout_ms)
{
    long long worst = 0;
    int left = n;
    char gone[PU_MAX_PIDS] = {0};
    while (left > 0) {
        long long now = pu_now_ms();
        for (int i = 0; i < n; i++) {
            if (!gone[i] && !pu_alive(pids[i])) {
                gone[i] = 1;
                left--;
                worst = now - t0 > worst ? now - t0 : worst;
            }
        }
        if (left > 0 && now - t0 > timeout_ms)
            return -1;
        pu_sleep_ms(2);
    }
    return worst;
}

/* Manager SIGKILLed, workers idle: every worker is gone within 100 ms. */
static void test_manager_killed_idle(void **state)
{
    app_t *app = *state;
    pid_t w[3];
    start_pool(app, 3, NULL, NULL, w);

    long long t0 = pu_now_ms();
    kill(app->pid, SIGKILL);
    long long worst = wait_all_gone(w, 3, t0, 2000);
    CHECK(wait_app_exit(app, T_EXIT) && WIFSIGNALED(app->status), "manager not killed");
    print_message("    last idle orphan gone after %lld ms\n", worst);
    CHECK(worst >= 0, "idle workers of a dead manager live on");
    CHECK(worst <= ORPHAN_BOUND_MS, "last idle worker gone after %lld ms", worst);
}

/* Manager SIGKILLed with one busy worker: the idle one goes within 100 ms, the busy
 * one completes its response, logs "safe exit: manager has died" and exits 0. */
static void test_manager_killed_busy(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN], query[64];
    pid_t w[2];
    start_pool(app, 2, NULL, NULL, w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    start_request(app, &req, query);
    pid_t busy = wait_begin(app, query);
    CHECK(pu_has_pid(w, 2, busy), "no worker took the request");
    pid_t idle = busy == w[0] ? w[1] : w[0];

    long long t0 = pu_now_ms();
    kill(app->pid, SIGKILL);
    long long worst = wait_all_gone(&idle, 1, t0, 2000);
    print_message("    idle orphan gone after %lld ms\n", worst);
    CHECK(worst >= 0 && worst <= ORPHAN_BOUND_MS, "idle worker gone after %lld ms", worst);
    CHECK(pu_alive(busy), "the busy worker died with its manager");

    CHECK(finish_request(&req, SLOW_BODY) == busy, "served by another worker");
    CHECK(pu_wait_line(app->log, sline(line, busy, "safe exit: manager has died"), 1, T_LINE),
          "no 'safe exit: manager has died'");
    int status = 0;
    /* The orphan is our child now (subreaper). */
    CHECK(pu_wait_exit(busy, T_EXIT, &status), "the busy worker did not exit");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "busy worker's wait status %d",
          status);
}

/* max_requests=2, n=1: after two requests the worker leaves and is replaced. */
static void test_max_requests(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN];
    const char *params[] = {"max_requests=2", NULL};
    pid_t w;
    start_pool(app, 1, params, NULL, &w);

    CHECK(hello_request(app) == w, "request 1 not served by the worker");
    CHECK(hello_request(app) == w, "request 2 not served by the same worker");
    CHECK(pu_wait_line(app->log, sline(line, w, "safe exit after max_requests (2)"), 1, T_LINE),
          "no 'safe exit after max_requests (2)'");
    CHECK(wait_exit_line(app, w, 0), "no 'exited with status 0'");
    pid_t fresh = wait_started(app, 2);
    CHECK(fresh > 0 && fresh != w, "no replacement");
    CHECK(hello_request(app) == fresh, "request 3 not served by the replacement");
    CHECK(pu_count_containing(app->log, "safe exit after max_requests") == 1, "extra exits");
    stop_app(app);
}

/* name=value parameters reach pm_parameter: titles show in /proc; a refused one
 * stops the program with exit 2 and a message. */
static void test_parameters(void **state)
{
    app_t *app = *state;
    const char *params[] = {"pm_title=pmtest-manager", "process_name=pmtest-worker",
                            "die_timeout=3", NULL};
    pid_t w[2];
    start_pool(app, 2, params, NULL, w);
    char text[256];
    CHECK(pu_cmdline(app->pid, text, sizeof text) == 0 && strcmp(text, "pmtest-manager") == 0,
          "manager cmdline '%s'", text);
    CHECK(pu_comm(app->pid, text, sizeof text) == 0 && strcmp(text, "pmtest-manager") == 0,
          "manager comm '%s'", text);
    for (int i = 0; i < 2; i++) {
        CHECK(pu_cmdline(w[i], text, sizeof text) == 0 && strcmp(text, "pmtest-worker") == 0,
              "worker cmdline '%s'", text);
        CHECK(pu_comm(w[i], text, sizeof text) == 0 && strcmp(text, "pmtest-worker") == 0,
              "worker comm '%s'", text);
    }
    stop_app(app);

    /* Refused parameters: each run gets its own socket and log. */
    static const char *const refused[] = {"no_such_parameter=1", "n_processes=abc",
                                          "die_timeout=-5x", "start_delay=1.5s"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(app->sock, sizeof app->sock, "%s/sock-%zu", app->dir, i);
        snprintf(app->log, sizeof app->log, "%s/log-%zu", app->dir, i);
        app->reaped = 0;
        const char *bad[] = {"n_processes=1", refused[i], NULL};
        start_app(app, bad, NULL);
        CHECK(wait_app_exit(app, T_EXIT), "'%s' did not stop the program", refused[i]);
        check_exit_code(app, 2);
        CHECK(pu_count_containing(app->log, refused[i]) == 1, "no message naming '%s'",
              refused[i]);
        CHECK(pu_count_containing(app->log, "FastCGI:") == 0, "managed despite '%s'",
              refused[i]);
    }
}

/* pid_fname: the file holds the manager's pid and is written before the first fork
 * (seen in the system calls, traced with strace). */
static void test_pid_file(void **state)
{
#ifndef STRACE
    (void)state;
    skip();
#else
    app_t *app = *state;
    char trace[PU_PATH_MAX + 8], pid_param[PU_PATH_MAX + 16], line[LINE_LEN];
    snprintf(trace, sizeof trace, "%s/trace", app->dir);
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *argv[] = {STRACE, "-f", "-qq", "-s", "256", "-o", trace,
                          "-e", "trace=%file,%process,write,pwrite64",
                          WORKER_APP, app->sock, "n_processes=2", pid_param, NULL};
    /* LeakSanitizer cannot work under ptrace (PM_SANITIZER=address builds). */
    const char *env[] = {"ASAN_OPTIONS=detect_leaks=0", NULL};
    pid_t tracer = pu_spawn(argv, env, app->log);
    CHECK(tracer > 0, "cannot start strace");

    /* The manager is strace's child; its pid comes from its first line. */
    long long deadline = pu_now_ms() + T_START;
    while (pu_collect_pids(app->log, "FastCGI: manager (pid ", "): initialized", &app->pid, 1) <
           1) {
        CHECK(pu_now_ms() < deadline, "the manager never logged initialized");
        pu_sleep_ms(5);
    }
    CHECK(wait_started(app, 2) > 0, "the workers did not start");
    char *content = pu_read_file(app->pid_file, NULL);
    snprintf(line, sizeof line, "%d\n", (int)app->pid);
    CHECK(content && strcmp(content, line) == 0, "pid file holds '%s', expected '%d\\n'",
          content ? content : "(none)", (int)app->pid);
    free(content);

    kill(app->pid, SIGTERM);
    int status = 0;
    CHECK(pu_wait_exit(tracer, T_EXIT, &status), "the manager did not exit");
    /* strace exits with its tracee's status. */
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "manager's wait status %d", status);
    CHECK(!pu_file_exists(app->pid_file), "pid file left behind");

    /* In the trace, before the manager's first fork: the pid file is created (or
     * renamed into place) and the pid is written. */
    char *text = pu_read_file(trace, NULL);
    CHECK(text != NULL, "no trace");
    char quoted_path[PU_PATH_MAX + 4], written[32];
    snprintf(quoted_path, sizeof quoted_path, "\"%s\"", app->pid_file);
    snprintf(written, sizeof written, ", \"%d\\n\", ", (int)app->pid);
    int created = 0, wrote = 0, forked = 0;
    for (char *l = strtok(text, "\n"); l && !forked; l = strtok(NULL, "\n")) {
        if (atoi(l) != app->pid)
            continue;
        const char *call = l + strspn(l, "0123456789 ");
        if (!strncmp(call, "fork(", 5) || !strncmp(call, "vfork(", 6) ||
            !strncmp(call, "clone(", 6) || !strncmp(call, "clone3(", 7))
            forked = 1;
        else if (strstr(call, quoted_path) &&
                 (strstr(call, "O_CREAT") || !strncmp(call, "rename", 6) ||
                  !strncmp(call, "link", 4)))
            created = 1;
        else if ((!strncmp(call, "write(", 6) || !strncmp(call, "pwrite64(", 9)) &&
                 strstr(call, written))
            wrote = 1;
    }
    free(text);
    CHECK(forked, "no fork in the trace");
    CHECK(created, "pid file not created before the first fork");
    CHECK(wrote, "pid not written before the first fork");
#endif
}

/* A worker exiting with code 3 is logged with the raw status 768; the manager lives
 * on, respawning, and still honours TERM. */
static void test_crash_at_start(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN];
    const char *params[] = {"n_processes=2", NULL};
    const char *env[] = {"WORKER_APP_CRASH_AT_START=1", NULL};
    start_app(app, params, env);

    CHECK(pu_wait_containing(app->log, ") exited with status 768", 3, T_START),
          "fewer than 3 'exited with status 768' lines");
    pid_t started[PU_MAX_PIDS], crashed[PU_MAX_PIDS];
    int n_started = started_pids(app, started, PU_MAX_PIDS);
    mline(line, app, "server (pid ");
    int n_crashed = pu_collect_pids(app->log, line, ") exited with status 768", crashed,
                                    PU_MAX_PIDS);
    CHECK(n_crashed >= 3, "%d crash lines", n_crashed);
    for (int i = 0; i < n_crashed; i++)
        CHECK(pu_has_pid(started, n_started, crashed[i]), "%d crashed, never started",
              (int)crashed[i]);
    CHECK(pu_alive(app->pid), "the manager died with its workers");
    stop_app(app);
    CHECK(pu_count_lines(app->log, mline(line, app, "dying: safe exit from signal TERM")) == 1,
          "no 'dying: safe exit from signal TERM'");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_start_three),       T(test_single_process),     T(test_negative_n),
        T(test_worker_killed),     T(test_hup_idle),           T(test_hup_busy_worker),
        T(test_hup_manager_busy),  T(test_term_idle),          T(test_term_busy),
        T(test_die_timeout),       T(test_manager_killed_idle), T(test_manager_killed_busy),
        T(test_max_requests),      T(test_parameters),         T(test_pid_file),
        T(test_crash_at_start),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
