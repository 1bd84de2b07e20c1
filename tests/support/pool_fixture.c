/*
 * pool_fixture.c -- see pool_fixture.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool_fixture.h"

#ifndef WORKER_APP
#error "WORKER_APP must name the worker_app executable"
#endif

/* The running test's app, whose log a failed check shows. */
static pf_app_t *current;

/* ---- cmocka fixtures ---- */

int pf_group_setup(void **state)
{
    (void)state;
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

int pf_group_setup_no_sigpipe(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    return pf_group_setup(state);
}

int pf_setup(void **state)
{
    pf_app_t *app = calloc(1, sizeof *app);
    if (!app || pu_make_temp_dir(app->dir, sizeof app->dir, program_invocation_short_name) < 0) {
        free(app);
        return -1;
    }
    char sock[PF_PATH_LEN], log[PF_PATH_LEN];
    pf_app_at(app, app->dir, pf_path(sock, app, "sock"), pf_path(log, app, "log"));
    current = app;
    *state = app;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

int pf_teardown(void **state)
{
    pf_app_t *app = *state;
    /* Under PM_SANITIZER=address a report in any process of the tree fails the test. */
    static const char *const others[] = {"log2", "nginx/nginx.out", "load.out", NULL};
    int reports = pu_sanitizer_reports(app->log);
    if (reports > 0)
        pf_print_log_tail(app->log, 20000);
    for (int i = 0; others[i]; i++) {
        char path[PF_PATH_LEN];
        int r = pu_sanitizer_reports(pf_path(path, app, others[i]));
        if (r > 0 && strcmp(path, app->log) != 0) {
            pf_print_log_tail(path, 20000);
            reports += r;
        }
    }
    if (reports > 0)
        print_error("%d sanitizer report line(s)\n", reports);
    pu_kill_children();
    nftw(app->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    current = NULL;
    free(app);
    return reports > 0 ? -1 : 0;
}

void pf_filter_from_env(const char *env_name)
{
    const char *filter = getenv(env_name);
    if (filter && *filter)
        cmocka_set_test_filter(filter);
}

/* ---- checks ---- */

void pf_print_log_tail(const char *path, size_t max_bytes)
{
    size_t len = 0;
    char *text = path ? pu_read_file(path, &len) : NULL;
    if (!text) {
        print_error("(no log at %s)\n", path ? path : "(none)");
        return;
    }
    const char *from = text;
    if (len > max_bytes) {
        from = text + len - max_bytes;
        const char *nl = strchr(from, '\n');
        if (nl)
            from = nl + 1;
    }
    print_error("---- %s%s ----\n%s---- end of log ----\n", from != text ? "tail of " : "", path,
                from);
    free(text);
}

void pf_check_failed(const char *expr, const char *log, const char *file, int line,
                     const char *fmt, ...)
{
    va_list ap;
    print_error("%s:%d: check failed: %s\n  ", file, line, expr);
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    if (!log && current)
        log = current->log;
    if (log)
        pf_print_log_tail(log, 8000);
    _fail(file, line);
}

/* ---- time and figures ---- */

double pf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void pf_sleep_until_ms(double t)
{
    struct timespec until;
    until.tv_sec = (time_t)(t / 1000.0);
    until.tv_nsec = (long)((t - (double)until.tv_sec * 1000.0) * 1e6);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (until.tv_nsec < 0)
        until.tv_nsec = 0;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
    }
}

void pf_tick(void)
{
    struct timespec ts = {0, 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void pf_figure(const char *scenario, const char *name, double value, const char *unit)
{
    char line[256];
    if (fabs(value - rint(value)) < 1e-9 && fabs(value) < 1e15)
        snprintf(line, sizeof line, "FIGURE %s %s %.0f %s\n", scenario, name, value, unit);
    else
        snprintf(line, sizeof line, "FIGURE %s %s %.3f %s\n", scenario, name, value, unit);
    fputs(line, stdout);
    fflush(stdout);
    const char *path = getenv("PM_FIGURES_FILE");
    if (path && *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t ignored = write(fd, line, strlen(line));
            (void)ignored;
            close(fd);
        }
    }
}

/* ---- the application ---- */

void pf_app_at(pf_app_t *app, const char *dir, const char *addr, const char *log)
{
    char sock[PF_PATH_LEN], log_copy[PF_PATH_LEN];
    /* addr and log may point into app itself */
    snprintf(sock, sizeof sock, "%s", addr);
    snprintf(log_copy, sizeof log_copy, "%s", log);
    if (app->dir != dir)
        snprintf(app->dir, sizeof app->dir, "%s", dir);
    snprintf(app->sock, sizeof app->sock, "%s", sock);
    snprintf(app->log, sizeof app->log, "%s", log_copy);
    snprintf(app->pid_file, sizeof app->pid_file, "%s/app.pid", app->dir);
    app->program = NULL;
    app->pid = -1;
    app->reaped = 0;
    app->status = 0;
    app->n_requests = 0;
}

char *pf_path(char *buf, const pf_app_t *app, const char *name)
{
    snprintf(buf, PF_PATH_LEN, "%s/%s", app->dir, name);
    return buf;
}

void pf_start_app(pf_app_t *app, const char *const params[], const char *const env[])
{
    const char *program = app->program ? app->program : WORKER_APP;
    const char *argv[32] = {program, app->sock};
    int argc = 2;
    for (int i = 0; params && params[i] && argc < 31; i++)
        argv[argc++] = params[i];
    argv[argc] = NULL;
    app->reaped = 0;
    app->pid = pu_spawn(argv, env, app->log);
    CHECK_LOG(app->pid > 0, app->log, "cannot start %s", program);
}

void pf_start_pool(pf_app_t *app, int n, const char *const params[], const char *const env[],
                   pid_t *workers)
{
    char n_param[32], line[PF_LINE_LEN];
    const char *all[24] = {n_param};
    int count = 1;
    snprintf(n_param, sizeof n_param, "n_processes=%d", n);
    for (int i = 0; params && params[i] && count < 23; i++)
        all[count++] = params[i];
    all[count] = NULL;
    pf_start_app(app, all, env);

    CHECK_LOG(pu_wait_line(app->log, pf_mline(line, app, "initialized"), 1, PF_T_START),
              app->log, "manager %d never logged initialized", (int)app->pid);
    for (int i = 0; i < n; i++) {
        workers[i] = pf_wait_started(app, i + 1);
        CHECK_LOG(workers[i] > 0, app->log, "worker %d of %d never started and initialized",
                  i + 1, n);
    }
    CHECK_LOG(pf_wait_children(app, workers, n, PF_T_START), app->log,
              "the manager's children are not the %d workers", n);
}

int pf_children(const pf_app_t *app, pid_t *live, int *zombies)
{
    pid_t kids[PU_MAX_PIDS];
    int n = pu_children(app->pid, kids, PU_MAX_PIDS);
    if (n < 0)
        return -1;
    int alive = 0, dead = 0;
    for (int i = 0; i < n; i++) {
        char st = pu_proc_state(kids[i]);
        if (st == 'Z' || st == 'X')
            dead++;
        else if (st != 0) {
            if (live)
                live[alive] = kids[i];
            alive++;
        }
    }
    if (zombies)
        *zombies = dead;
    return alive;
}

int pf_wait_children(const pf_app_t *app, const pid_t *want, int n, int timeout_ms)
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

double pf_wait_pool(const pf_app_t *app, int n, const pid_t *excluded, int n_excl, double since,
                    double timeout_ms, pid_t *live, double *dead_ms)
{
    pid_t kids[PU_MAX_PIDS];
    double dead_at = -1;
    for (;;) {
        int zombies = 0;
        if (dead_ms && dead_at < 0) {
            int running = 0;
            for (int i = 0; i < n_excl && !running; i++)
                running = pu_alive(excluded[i]);
            if (!running)
                dead_at = pf_now_ms();
        }
        int alive = pf_children(app, kids, &zombies);
        double t = pf_now_ms();
        if (alive == n && zombies == 0) {
            int clean = 1;
            for (int i = 0; i < alive && clean; i++)
                clean = !pu_has_pid(excluded, n_excl, kids[i]);
            if (clean) {
                if (live)
                    memcpy(live, kids, sizeof(pid_t) * (size_t)n);
                if (dead_ms)
                    *dead_ms = (dead_at < 0 ? t : dead_at) - since;
                return t - since;
            }
        }
        if (t - since > timeout_ms)
            return -1;
        pf_tick();
    }
}

/* 1 if text holds the line "FastCGI: server (pid P): initialized". */
static int has_initialized(const char *text, pid_t pid)
{
    char line[96];
    snprintf(line, sizeof line, "FastCGI: server (pid %d): initialized\n", (int)pid);
    return text && strstr(text, line) != NULL;
}

int pf_pool_ready(const pf_app_t *app, int n, pid_t *out)
{
    pid_t kids[PU_MAX_PIDS];
    int live = pf_children(app, kids, NULL);
    if (live != n)
        return 0;
    char *text = pu_read_file(app->log, NULL);
    int ready = 1;
    for (int i = 0; i < live && ready; i++)
        ready = has_initialized(text, kids[i]);
    free(text);
    if (ready && out)
        memcpy(out, kids, sizeof(pid_t) * (size_t)n);
    return ready;
}

double pf_wait_ready(const pf_app_t *app, int n, int timeout_ms, pid_t *out)
{
    double t0 = pf_now_ms();
    for (;;) {
        if (pf_pool_ready(app, n, out))
            return pf_now_ms() - t0;
        if (pf_now_ms() - t0 > timeout_ms || !pu_alive(app->pid))
            return -1;
        pf_tick();
    }
}

double pf_wait_child(pid_t pid, double since, double timeout_ms, int *status)
{
    for (;;) {
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        double t = pf_now_ms();
        if (got == pid) {
            if (status)
                *status = st;
            return t - since;
        }
        if (got < 0 && errno != EINTR)
            return -1;
        if (t - since > timeout_ms)
            return -1;
        pf_tick();
    }
}

double pf_wait_manager_exit(pf_app_t *app, double since, double timeout_ms)
{
    double ms = pf_wait_child(app->pid, since, timeout_ms, &app->status);
    if (ms >= 0)
        app->reaped = 1;
    return ms;
}

int pf_wait_exit(pf_app_t *app, int timeout_ms)
{
    if (!app->reaped)
        pf_wait_manager_exit(app, pf_now_ms(), timeout_ms);
    return app->reaped;
}

void pf_check_exit_code(const pf_app_t *app, int code)
{
    CHECK_LOG(WIFEXITED(app->status) && WEXITSTATUS(app->status) == code, app->log,
              "manager's wait status is 0x%x, expected exit code %d", app->status, code);
}

void pf_stop(pf_app_t *app, int timeout_ms)
{
    kill(app->pid, SIGTERM);
    CHECK_LOG(pf_wait_exit(app, timeout_ms), app->log,
              "manager %d did not exit within %d ms of TERM", (int)app->pid, timeout_ms);
    pf_check_exit_code(app, 0);
}

/* ---- log lines ---- */

static void vrole_line(char *buf, const char *role, pid_t pid, const char *fmt, va_list ap)
{
    int n = snprintf(buf, PF_LINE_LEN, "FastCGI: %s (pid %d): ", role, (int)pid);
    vsnprintf(buf + n, PF_LINE_LEN - (size_t)n, fmt, ap);
}

const char *pf_mline(char *buf, const pf_app_t *app, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrole_line(buf, "manager", app->pid, fmt, ap);
    va_end(ap);
    return buf;
}

const char *pf_sline(char *buf, pid_t worker, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrole_line(buf, "server", worker, fmt, ap);
    va_end(ap);
    return buf;
}

int pf_started_pids(const pf_app_t *app, pid_t *out, int max)
{
    char before[PF_LINE_LEN];
    pf_mline(before, app, "server (pid ");
    return pu_collect_pids(app->log, before, ") started", out, max);
}

int pf_exit_lines(const pf_app_t *app, pid_t worker, int status)
{
    char line[PF_LINE_LEN];
    return pu_count_lines(app->log, pf_mline(line, app, "server (pid %d) exited with status %d",
                                             (int)worker, status));
}

int pf_wait_exit_line(const pf_app_t *app, pid_t worker, int status)
{
    char line[PF_LINE_LEN];
    return pu_wait_line(app->log,
                        pf_mline(line, app, "server (pid %d) exited with status %d", (int)worker,
                                 status),
                        1, PF_T_LINE);
}

pid_t pf_wait_started(const pf_app_t *app, int nth)
{
    pid_t pids[PU_MAX_PIDS];
    long long deadline = pu_now_ms() + PF_T_START;
    while (pf_started_pids(app, pids, PU_MAX_PIDS) < nth) {
        if (pu_now_ms() >= deadline)
            return -1;
        pu_sleep_ms(2);
    }
    char line[PF_LINE_LEN];
    if (!pu_wait_line(app->log, pf_sline(line, pids[nth - 1], "initialized"), 1, PF_T_START))
        return -1;
    return pids[nth - 1];
}

pid_t pf_wait_begin(const pf_app_t *app, const char *query)
{
    char after[PF_LINE_LEN];
    pid_t pid;
    snprintf(after, sizeof after, "): begin %s", query);
    long long deadline = pu_now_ms() + PF_T_REQUEST;
    while (pu_collect_pids(app->log, "worker_app (pid ", after, &pid, 1) < 1) {
        if (pu_now_ms() >= deadline)
            return -1;
        pu_sleep_ms(2);
    }
    return pid;
}

int pf_term_list(const pf_app_t *app, pid_t *out, int max)
{
    char prefix[PF_LINE_LEN];
    char *line;
    pf_mline(prefix, app, "sending TERM to PIDs, ");
    if (pu_lines_with_prefix(app->log, prefix, &line, 1) < 1)
        return -1;
    int count = pu_parse_pid_list(line + strlen(prefix), out, max);
    pu_free_lines(&line, 1);
    return count;
}

/* ---- requests ---- */

void pf_start_request(pf_app_t *app, pu_request_t *req, const char *query)
{
    char out[PF_PATH_LEN + 16];
    snprintf(out, sizeof out, "%s/response-%d", app->dir, ++app->n_requests);
    CHECK(pu_request_start(req, app->sock, query, out) == 0, "cannot run the client");
}

pid_t pf_finish_request(pu_request_t *req, long body_n)
{
    char *resp = NULL;
    size_t len = 0, body_len = 0;
    int rc = pu_request_finish(req, PF_T_REQUEST, &resp, &len);
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

pid_t pf_hello_request(pf_app_t *app)
{
    pu_request_t req;
    pf_start_request(app, &req, "");
    return pf_finish_request(&req, -1);
}
