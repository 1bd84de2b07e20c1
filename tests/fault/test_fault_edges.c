/*
 * test_fault_edges.c -- fault injection at the pool's edges (docs/reliability.md R3, R9,
 * R10, R11), on worker_app run as a real process tree, n = 8.
 *
 *   R3   HUP to the manager every 20 ms for 10 s while a real nginx, fed by wrk (or a
 *        bounded curl loop), passes requests to the pool: 0 failed requests, exactly n
 *        live workers at the end. A second R3 test makes the one way requests were
 *        seen to fail deterministic: a HUP landing after a worker accepted a unix
 *        connection but before the request's bytes arrived.
 *   R9   fork fails (LD_PRELOAD fail_fork shim) for 10 s while the pool is being
 *        filled: the manager stays up, logs "fork: Resource temporarily unavailable"
 *        with backoff (a bounded number of lines), and is back to n within 1 s of the
 *        failure lifting.
 *   R10  the manager is SIGKILLed with 7 idle workers and a busy one, on a TCP address:
 *        the idle ones exit within 100 ms; the busy one lets go of the listening
 *        socket at once, finishes its byte-exact response and exits right after it
 *        ("safe exit: manager has died"); a new manager binds the same address at once
 *        and serves while the old busy worker is still finishing.
 *   R11  the pid file: stale pid; live foreign pid (never signalled); a second manager
 *        (refused with a message naming the file and the holder; file unchanged;
 *        first untouched); a symlink (refused, target untouched); a FIFO (refused,
 *        nothing blocks).
 *
 * Every time is taken from CLOCK_MONOTONIC while polling /proc and the logs every
 * 1 ms. Each figure is printed as "FIGURE <scenario> <name> <value> <unit>" and
 * appended to $PM_FIGURES_FILE when it is set.
 *
 * Knobs (environment): PM_FIGURES_FILE (append the figures there), PM_EDGES_FILTER
 * (a cmocka test-name pattern), PM_EDGES_LOAD=curl (R3's load from curl even when wrk
 * is there), PM_EDGES_R3_UPSTREAM=tcp (diagnostic: R3's pool on TCP, not a unix
 * socket).
 *
 * The test process is a child subreaper: workers orphaned by a killed manager become
 * its children, so their exit statuses are seen and nothing leaks past a test.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "edges_support.h"
#include "proc_util.h"

#define N_WORKERS 8
#define PATH_LEN (PU_PATH_MAX + 64)
#define MAX_LOG_PIDS 64

/* ---- per-test context ---- */

typedef struct ctx {
    char dir[PU_PATH_MAX];
} ctx_t;

typedef struct app {
    pid_t pid;
    char addr[PATH_LEN]; /* unix socket path or host:port */
    char log[PATH_LEN];
} app_t;

/* Tail of a log for failure messages: the last max_bytes, from a line start. */
static void print_log_tail(const char *path, size_t max_bytes)
{
    size_t len = 0;
    char *text = pu_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "(no log at %s)\n", path);
        return;
    }
    const char *from = text;
    if (len > max_bytes) {
        from = text + len - max_bytes;
        const char *nl = strchr(from, '\n');
        if (nl)
            from = nl + 1;
    }
    fprintf(stderr, "---- %s%s ----\n%s---- end ----\n", len > max_bytes ? "tail of " : "", path,
            from);
    fflush(stderr);
    free(text);
}

/* Fails the test with a message and the tail of log (may be NULL). */
#define CHECK_LOG(cond, log, ...)                                                       \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                               \
            fprintf(stderr, "\n");                                                      \
            fflush(stderr);                                                             \
            if ((log) != NULL)                                                          \
                print_log_tail((log), 6000);                                            \
            fail();                                                                     \
        }                                                                               \
    } while (0)
#define CHECK(cond, ...) CHECK_LOG(cond, (const char *)NULL, __VA_ARGS__)

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    ctx_t *c = calloc(1, sizeof *c);
    if (!c || pu_make_temp_dir(c->dir, sizeof c->dir, "edges") < 0) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

/* Fails on sanitizer reports in any log of the test, then kills whatever is left
 * (managers, workers, orphans, clients, nginx) and removes the directory. */
static int teardown(void **state)
{
    ctx_t *c = *state;
    int reports = 0;
    char path[PATH_LEN];
    static const char *const logs[] = {"log", "log2", "nginx/nginx.out", "load.out", NULL};
    for (int i = 0; logs[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", c->dir, logs[i]);
        int r = edges_sanitizer_reports(path);
        if (r > 0)
            print_log_tail(path, 20000);
        reports += r;
    }
    pu_kill_children();
    edges_remove_tree(c->dir);
    free(c);
    if (reports > 0)
        print_error("%d sanitizer report line(s)\n", reports);
    return reports > 0 ? -1 : 0;
}

/* ---- running worker_app ---- */

/* Starts worker_app on addr with the given environment and parameters (both
 * NULL-terminated; env may be NULL), its output appended to log. */
static void start_app(app_t *app, const char *addr, const char *log, const char *const env[],
                      const char *const params[])
{
    const char *argv[24];
    int n = 0;
    snprintf(app->addr, sizeof app->addr, "%s", addr);
    snprintf(app->log, sizeof app->log, "%s", log);
    argv[n++] = WORKER_APP;
    argv[n++] = app->addr;
    for (int i = 0; params[i] && n < 23; i++)
        argv[n++] = params[i];
    argv[n] = NULL;
    app->pid = pu_spawn(argv, env, app->log);
    CHECK(app->pid > 0, "cannot spawn %s", WORKER_APP);
}

static char *mline(char *buf, size_t size, pid_t manager, const char *msg)
{
    snprintf(buf, size, "FastCGI: manager (pid %d): %s", (int)manager, msg);
    return buf;
}

/* 1 if text holds the line "FastCGI: server (pid P): initialized". */
static int has_initialized(const char *text, pid_t pid)
{
    char line[96];
    snprintf(line, sizeof line, "FastCGI: server (pid %d): initialized\n", (int)pid);
    return text && strstr(text, line) != NULL;
}

/* 1 if the manager has exactly n live children and each has logged "initialized";
 * their pids in out. */
static int pool_ready(const app_t *app, int n, pid_t *out)
{
    pid_t kids[PU_MAX_PIDS];
    int live = edges_live_children(app->pid, kids, PU_MAX_PIDS);
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

/* Waits (1 ms polling) for pool_ready; the time it took in ms, or -1. */
static double wait_pool(const app_t *app, int n, int timeout_ms, pid_t *out)
{
    double t0 = edges_now_ms();
    for (;;) {
        if (pool_ready(app, n, out))
            return edges_now_ms() - t0;
        if (edges_now_ms() - t0 > timeout_ms || !pu_alive(app->pid))
            return -1;
        edges_tick();
    }
}

static void start_pool(app_t *app, const char *addr, const char *log, const char *const env[],
                       const char *const params[], pid_t *workers)
{
    start_app(app, addr, log, env, params);
    CHECK_LOG(wait_pool(app, N_WORKERS, 10000, workers) >= 0, app->log,
              "the pool of %d did not come up", N_WORKERS);
}

/* Waits (1 ms polling) for pid, a child, to exit: 1 with *status and the time it took
 * in *ms, or 0. */
static int wait_exit_ms(pid_t pid, int timeout_ms, int *status, double *ms)
{
    double t0 = edges_now_ms();
    for (;;) {
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            if (status)
                *status = st;
            if (ms)
                *ms = edges_now_ms() - t0;
            return 1;
        }
        if ((got < 0 && errno != EINTR && errno != ECHILD) || edges_now_ms() - t0 > timeout_ms)
            return 0;
        edges_tick();
    }
}

/* TERM to the manager: it must exit 0 within timeout_ms. */
static void term_and_expect_clean_exit(app_t *app, int timeout_ms)
{
    int status;
    kill(app->pid, SIGTERM);
    CHECK_LOG(wait_exit_ms(app->pid, timeout_ms, &status, NULL), app->log,
              "manager %d did not exit within %d ms of TERM", (int)app->pid, timeout_ms);
    CHECK_LOG(WIFEXITED(status) && WEXITSTATUS(status) == 0, app->log,
              "manager exit status 0x%x, expected exit 0", status);
    app->pid = -1;
}

/* The manager's view of its pool from its log: pids started and not yet reported as
 * exited, the number of starts and of exits with a status other than 0. */
typedef struct pool_log {
    int started, exited, abnormal;
    int n_live;
    pid_t live[MAX_LOG_PIDS];
    int overflow;
} pool_log_t;

static void read_pool_log(const char *log, pid_t manager, pool_log_t *p)
{
    memset(p, 0, sizeof *p);
    char *text = pu_read_file(log, NULL);
    if (!text)
        return;
    char prefix[64];
    int plen = snprintf(prefix, sizeof prefix, "FastCGI: manager (pid %d): server (pid ", (int)manager);
    char *line = text;
    while (*line) {
        char *end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0';
        if (strncmp(line, prefix, (size_t)plen) == 0) {
            int pid, status;
            char rest[32];
            if (sscanf(line + plen, "%d) exited with status %d", &pid, &status) == 2) {
                p->exited++;
                p->abnormal += status != 0;
                for (int i = 0; i < p->n_live; i++) {
                    if (p->live[i] == pid) {
                        p->live[i] = p->live[--p->n_live];
                        break;
                    }
                }
            } else if (sscanf(line + plen, "%d) %31s", &pid, rest) == 2 && strcmp(rest, "started") == 0) {
                p->started++;
                if (p->n_live < MAX_LOG_PIDS)
                    p->live[p->n_live++] = pid;
                else
                    p->overflow = 1;
            }
        }
        line = end + 1;
    }
    free(text);
}

/* "LD_PRELOAD" and friends for the fail_fork shim; ASan must not insist on coming
 * first in the library list. The strings live in buf. */
static void shim_env(char buf[3][PATH_LEN + 128], const char *flag, const char *env[4])
{
    snprintf(buf[0], sizeof buf[0], "FAIL_FORK_WHILE=%s", flag);
    snprintf(buf[1], sizeof buf[1], "LD_PRELOAD=%s", FAIL_FORK_SHIM);
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(buf[2], sizeof buf[2], "ASAN_OPTIONS=%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    env[0] = buf[0];
    env[1] = buf[1];
    env[2] = buf[2];
    env[3] = NULL;
}

/* ---- R3: HUP every 20 ms for 10 s under load through nginx ---- */

#define R3_HUP_PERIOD_MS 20
#define R3_HUPS 500 /* 10 s */

typedef struct load {
    pid_t pid;
    int curl; /* 1: the curl fallback, 0: wrk */
    char out[PATH_LEN];
} load_t;

static void start_load(load_t *load, const ctx_t *c, int port, int seconds)
{
    char url[128];
    snprintf(load->out, sizeof load->out, "%s/load.out", c->dir);
    const char *force = getenv("PM_EDGES_LOAD");
    (void)force;
#ifdef WRK
    load->curl = force && strcmp(force, "curl") == 0;
#else
    load->curl = 1;
#endif
    if (!load->curl) {
#ifdef WRK
        char duration[16];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
        snprintf(duration, sizeof duration, "-d%ds", seconds);
        const char *argv[] = {WRK, "-t1", "-c16", duration, "--timeout", "5s", url, NULL};
        load->pid = pu_spawn(argv, NULL, load->out);
#endif
    } else {
#ifdef CURL
        /* At most 200000 requests, 16 at a time; stopped after the HUP window. */
        (void)seconds;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/?i=[1-200000]", port);
        const char *argv[] = {CURL, "-s", "--parallel", "--parallel-max", "16", "--max-time", "5",
                              "-w", "\\nCODE %{http_code}\\n", url, NULL};
        load->pid = pu_spawn(argv, NULL, load->out);
#else
        (void)seconds;
        load->pid = -1;
#endif
    }
    CHECK(load->pid > 0, "cannot start the load generator (wrk or curl)");
}

/* Stops the load (curl: now; wrk: waits for its own end) and counts. */
static void finish_load(load_t *load, long *requests, long *failed, double *rps)
{
    if (load->curl) {
        kill(load->pid, SIGINT);
        if (!pu_wait_exit(load->pid, 5000, NULL))
            pu_kill_tree(load->pid);
        int ok = pu_count_lines(load->out, "CODE 200");
        int all = pu_count_containing(load->out, "CODE ");
        *requests = ok;
        *failed = all - ok;
        *rps = 0;
        return;
    }
    int status;
    CHECK_LOG(pu_wait_exit(load->pid, 20000, &status), load->out, "wrk did not finish");
    CHECK_LOG(WIFEXITED(status) && WEXITSTATUS(status) == 0, load->out, "wrk failed (status 0x%x)",
              status);
    char *text = pu_read_file(load->out, NULL);
    edges_wrk_t w;
    int parsed = edges_parse_wrk(text, &w);
    free(text);
    CHECK_LOG(parsed == 0, load->out, "cannot parse wrk's report");
    if (w.non2xx_line || w.socket_errors_line)
        print_message("wrk: %ld non-2xx/3xx responses; socket errors: connect %ld, read %ld, "
                      "write %ld, timeout %ld\n",
                      w.non2xx, w.connect_errors, w.read_errors, w.write_errors, w.timeouts);
    *requests = w.requests;
    *failed = w.non2xx + w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
    *rps = w.requests_per_s;
}

static void test_r3_hup_storm_under_load(void **state)
{
#ifndef NGINX
    (void)state;
    print_message("R3 needs nginx (Debian package nginx-light) and wrk or curl: skipped\n");
    skip();
#else
    ctx_t *c = *state;
    app_t app;
    char addr[PATH_LEN], upstream[PATH_LEN + 8], log[PATH_LEN], ngdir[PATH_LEN], line[256];
    /* PM_EDGES_R3_UPSTREAM=tcp (a diagnostic, not the scenario): the pool listens on
     * TCP instead of a unix socket. */
    const char *kind = getenv("PM_EDGES_R3_UPSTREAM");
    if (kind && strcmp(kind, "tcp") == 0) {
        int port = edges_free_tcp_port();
        CHECK(port > 0, "no free TCP port");
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        snprintf(upstream, sizeof upstream, "%s", addr);
    } else {
        snprintf(addr, sizeof addr, "%s/sock", c->dir);
        snprintf(upstream, sizeof upstream, "unix:%s", addr);
    }
    snprintf(log, sizeof log, "%s/log", c->dir);
    snprintf(ngdir, sizeof ngdir, "%s/nginx", c->dir);
    pid_t workers[N_WORKERS];
    start_pool(&app, addr, log, NULL, (const char *const[]){"n_processes=8", NULL}, workers);

    edges_nginx_t ng;
    CHECK_LOG(edges_nginx_start(&ng, NGINX, ngdir, upstream) == 0, ng.out_log, "nginx did not start");
    char *body = NULL;
    int code = edges_http_get(ng.port, "/", 3000, &body);
    CHECK_LOG(code == 200 && body && strstr(body, "Hello from worker"), ng.error_log,
              "warm-up request through nginx: status %d, body '%s'", code, body ? body : "");
    free(body);

    load_t load;
    start_load(&load, c, ng.port, 11);
    /* The load runs 11 s: 0.5 s before the first HUP to 0.5 s after the last. */
    double t0 = edges_now_ms() + 500;
    int sent = 0;
    for (int k = 0; k < R3_HUPS; k++) {
        edges_sleep_until_ms(t0 + (double)k * R3_HUP_PERIOD_MS);
        CHECK_LOG(kill(app.pid, SIGHUP) == 0 && pu_alive(app.pid), app.log,
                  "the manager is gone after %d HUPs", sent);
        sent++;
    }
    double t_last = edges_now_ms();

    /* The pool settles (while the load goes on) to exactly n live, initialized
     * workers, and the manager's log agrees with /proc about which they are. */
    pid_t final[N_WORKERS];
    double settle = -1;
    pool_log_t pl;
    for (;;) {
        if (pool_ready(&app, N_WORKERS, final)) {
            read_pool_log(app.log, app.pid, &pl);
            if (pu_same_pids(pl.live, pl.n_live, final, N_WORKERS)) {
                settle = edges_now_ms() - t_last;
                break;
            }
        }
        if (edges_now_ms() - t_last > 10000 || !pu_alive(app.pid))
            break;
        edges_tick();
    }
    long requests = 0, failed = 0;
    double rps = 0;
    finish_load(&load, &requests, &failed, &rps);
    pu_sleep_ms(200); /* and stays so */
    pid_t kids[PU_MAX_PIDS], all[PU_MAX_PIDS];
    int live = edges_live_children(app.pid, kids, PU_MAX_PIDS);
    int any = pu_children(app.pid, all, PU_MAX_PIDS);
    read_pool_log(app.log, app.pid, &pl);
    int after_code = edges_http_get(ng.port, "/", 3000, NULL);
    int upstream_errors = pu_count_containing(ng.error_log, "[error]");

    edges_figure("R3", "hup_window", t_last - t0, "ms");
    edges_figure("R3", "hups_sent", sent, "count");
    edges_figure("R3", "term_rounds",
                 pu_count_containing(app.log, mline(line, sizeof line, app.pid, "sending TERM to PIDs")),
                 "count");
    edges_figure("R3", "workers_started", pl.started, "count");
    edges_figure("R3", "worker_exits_nonzero", pl.abnormal, "count");
    edges_figure("R3", "requests", (double)requests, "count");
    edges_figure("R3", "failed_requests", (double)failed, "count");
    edges_figure("R3", "nginx_upstream_errors", upstream_errors, "count");
    if (rps > 0)
        edges_figure("R3", "throughput", rps, "req/s");
    edges_figure("R3", "settle_after_last_hup", settle, "ms");
    edges_figure("R3", "workers_at_end", live, "count");
    if (pl.abnormal)
        print_message("R3: %d worker exit(s) with a status other than 0\n", pl.abnormal);

    CHECK_LOG(settle >= 0, app.log, "the pool did not settle to %d workers after the HUPs",
              N_WORKERS);
    CHECK_LOG(live == N_WORKERS && any == N_WORKERS && pu_same_pids(kids, live, final, N_WORKERS),
              app.log, "%d live children (%d in all) at the end, expected exactly %d", live, any,
              N_WORKERS);
    CHECK_LOG(after_code == 200, ng.error_log, "request after the storm: status %d", after_code);
    CHECK_LOG(requests > 0, load.out, "no request completed");
    if (failed != 0)
        print_log_tail(load.out, 4000);
    CHECK_LOG(failed == 0, ng.error_log, "%ld of %ld requests failed", failed, requests + failed);
    edges_nginx_stop(&ng);
    term_and_expect_clean_exit(&app, 3000);
#endif
}

/* The mechanism behind R3's failures, made deterministic: a HUP that reaches a worker
 * after it has accepted a connection on a unix socket but before the request's first
 * bytes arrive. libfcgi's OS_Accept then waits up to 2 s in poll() for the connection
 * to become readable (is_af_unix_keeper); poll is never restarted after a signal
 * handler, whatever SA_RESTART says, and libfcgi closes a connection whose poll
 * failed. The client's request must still be answered. */
static void test_r3_hup_after_accept_before_request(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char sock[PATH_LEN], log[PATH_LEN];
    snprintf(sock, sizeof sock, "%s/sock", c->dir);
    snprintf(log, sizeof log, "%s/log", c->dir);
    pid_t workers[N_WORKERS];
    start_pool(&app, sock, log, NULL, (const char *const[]){"n_processes=8", NULL}, workers);

    int fd = edges_unix_connect(sock);
    CHECK(fd >= 0, "cannot connect to %s: %s", sock, strerror(errno));
    /* The worker that took the connection holds a second socket. */
    pid_t acceptor = -1;
    double t0 = edges_now_ms();
    while (acceptor < 0 && edges_now_ms() - t0 < 2000) {
        for (int i = 0; i < N_WORKERS && acceptor < 0; i++)
            if (edges_socket_count(workers[i]) >= 2)
                acceptor = workers[i];
        edges_tick();
    }
    CHECK_LOG(acceptor > 0, app.log, "no worker accepted the connection");
    pu_sleep_ms(50);
    kill(app.pid, SIGHUP);
    double t_hup = edges_now_ms();
    while (pu_alive(acceptor) && edges_now_ms() - t_hup < 300)
        edges_tick();
    int acceptor_gone = !pu_alive(acceptor);
    double gone_ms = edges_now_ms() - t_hup;

    int sent = edges_fcgi_send(fd, "");
    int send_errno = errno;
    char *out = NULL;
    size_t len = 0;
    int ended = sent == 0 ? edges_fcgi_receive(fd, 3000, &out, &len) : -1;
    close(fd);
    edges_figure("R3", "accepted_connection_served", ended == 1 ? 1 : 0, "bool");
    CHECK_LOG(sent == 0, app.log,
              "the request could not be sent: %s (the accepting worker %d %s %.1f ms after the HUP, "
              "dropping the connection it had accepted)",
              strerror(send_errno), (int)acceptor, acceptor_gone ? "exited" : "was still alive",
              gone_ms);
    CHECK_LOG(ended == 1 && out && strstr(out, "Hello from worker"), app.log,
              "no complete response (end %d, %zu bytes)", ended, len);
    free(out);
    term_and_expect_clean_exit(&app, 3000);
}

/* ---- R5 with a kept-alive connection ---- */

/* The web server keeps its FastCGI connection open between requests
 * (FCGI_KEEP_CONN, as nginx's fastcgi_keep_conn does): the idle worker waits on that
 * connection, not in accept, and a TERM must still stop it at once. */
static void test_r5_term_idle_keepalive(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char sock[PATH_LEN], log[PATH_LEN];
    snprintf(sock, sizeof sock, "%s/sock", c->dir);
    snprintf(log, sizeof log, "%s/log", c->dir);
    pid_t workers[N_WORKERS];
    start_pool(&app, sock, log, NULL, (const char *const[]){"n_processes=8", "die_timeout=5", NULL},
               workers);
    int fd = edges_unix_connect(sock);
    CHECK(fd >= 0, "cannot connect to %s: %s", sock, strerror(errno));
    char *out = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) { /* two requests on the one connection */
        CHECK(edges_fcgi_send_request(fd, "", 1) == 0, "send: %s", strerror(errno));
        CHECK_LOG(edges_fcgi_receive(fd, 3000, &out, &len) == 1 && strstr(out, "Hello from worker"),
                  app.log, "no response on the kept connection");
        free(out);
        out = NULL;
    }
    double t0 = edges_now_ms();
    int status;
    double ms;
    kill(app.pid, SIGTERM);
    CHECK_LOG(wait_exit_ms(app.pid, 3000, &status, &ms), app.log,
              "manager did not exit within 3 s of TERM with a kept-alive connection open");
    edges_figure("R5", "keepalive_term_exit", edges_now_ms() - t0, "ms");
    CHECK_LOG(WIFEXITED(status) && WEXITSTATUS(status) == 0, app.log, "manager exit status 0x%x", status);
    CHECK_LOG(ms < 200, app.log, "manager exit took %.1f ms (200 ms allowed)", ms);
    app.pid = -1;
    close(fd);
}

/* ---- R9: fork fails for 10 s while the pool is being filled ---- */

#define R9_OUTAGE_MS 10000
#define R9_MAX_FAILURES 64

static void test_r9_fork_fails_while_filling(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char sock[PATH_LEN], log[PATH_LEN], flag[PATH_LEN], envbuf[3][PATH_LEN + 128], line[256];
    const char *env[4];
    snprintf(sock, sizeof sock, "%s/sock", c->dir);
    snprintf(log, sizeof log, "%s/log", c->dir);
    snprintf(flag, sizeof flag, "%s/nofork", c->dir);
    shim_env(envbuf, flag, env);
    static const char failure[] = "): fork: Resource temporarily unavailable";

    /* start_delay 0.05: one fork per 50 ms, so the pool is caught half filled. */
    start_app(&app, sock, log, env,
              (const char *const[]){"n_processes=8", "start_delay=0.05", NULL});
    char started[96];
    snprintf(started, sizeof started, "FastCGI: manager (pid %d): server (pid ", (int)app.pid);
    double t_start = edges_now_ms();
    while (pu_count_containing(app.log, started) < N_WORKERS / 2) {
        CHECK_LOG(edges_now_ms() - t_start < 5000 && pu_alive(app.pid), app.log,
                  "the pool did not start filling");
        edges_tick();
    }
    CHECK(edges_write_file(flag, "") == 0, "cannot create %s", flag);
    double t_flag = edges_now_ms();
    int before = pu_count_containing(app.log, started);
    pid_t first[PU_MAX_PIDS];
    int n_first = pu_collect_pids(app.log, started, ") started", first, PU_MAX_PIDS);
    CHECK_LOG(before < N_WORKERS, app.log, "the pool was full (%d) before fork failed", before);

    /* The outage: poll the log every 1 ms, note when each failure line shows up, and
     * check the manager is alive each time. Half way, a request to the workers that
     * did start. */
    double seen[R9_MAX_FAILURES];
    int n_seen = 0;
    pu_request_t req;
    int req_started = 0;
    char out[PATH_LEN];
    snprintf(out, sizeof out, "%s/response", c->dir);
    while (edges_now_ms() - t_flag < R9_OUTAGE_MS) {
        CHECK_LOG(pu_alive(app.pid), app.log, "the manager died %.0f ms into the fork outage",
                  edges_now_ms() - t_flag);
        int n = pu_count_containing(app.log, failure);
        while (n_seen < n && n_seen < R9_MAX_FAILURES)
            seen[n_seen++] = edges_now_ms();
        if (!req_started && edges_now_ms() - t_flag > R9_OUTAGE_MS / 2) {
            CHECK(pu_request_start(&req, sock, "", out) == 0, "cannot start cgi-fcgi");
            req_started = 1;
        }
        edges_tick();
    }
    int failures = pu_count_containing(app.log, failure);
    int during = pu_count_containing(app.log, started);
    int alive_first = 0;
    for (int i = 0; i < n_first; i++)
        alive_first += pu_alive(first[i]);
    CHECK(unlink(flag) == 0, "cannot remove %s", flag);
    double t_lift = edges_now_ms();

    /* Back to n: 8 live workers, each initialized. */
    double back = -1;
    for (;;) {
        if (pool_ready(&app, N_WORKERS, NULL)) {
            back = edges_now_ms() - t_lift;
            break;
        }
        if (edges_now_ms() - t_lift > 5000)
            break;
        edges_tick();
    }

    char *response = NULL;
    size_t len = 0;
    int rc = req_started ? pu_request_finish(&req, 3000, &response, &len) : -1;
    pid_t served = pu_response_pid(response);
    free(response);

    double min_gap = 1e9, max_gap = 0, first_gap = -1, last_gap = -1;
    for (int i = 1; i < n_seen; i++) {
        double gap = seen[i] - seen[i - 1];
        if (gap < min_gap)
            min_gap = gap;
        if (gap > max_gap)
            max_gap = gap;
        if (first_gap < 0)
            first_gap = gap;
        last_gap = gap;
    }
    edges_figure("R9", "workers_before_outage", before, "count");
    edges_figure("R9", "fork_failures_logged", failures, "count");
    if (n_seen > 1) {
        edges_figure("R9", "first_retry_gap", first_gap, "ms");
        edges_figure("R9", "min_retry_gap", min_gap, "ms");
        edges_figure("R9", "max_retry_gap", max_gap, "ms");
        edges_figure("R9", "last_retry_gap", last_gap, "ms");
    }
    edges_figure("R9", "back_to_n_after_lift", back, "ms");

    CHECK_LOG(during == before, app.log, "%d forks succeeded while fork was failing",
              during - before);
    CHECK_LOG(alive_first == n_first, app.log, "%d of the %d workers started before the outage died",
              n_first - alive_first, n_first);
    CHECK_LOG(rc == 0 && pu_has_pid(first, n_first, served), app.log,
              "a request during the outage: client exit %d, served by %d", rc, (int)served);
    /* Retried with backoff (0.1 s doubling, capped at 0.5 s): about 22 lines in 10 s,
     * never a tight loop, never giving up. */
    CHECK_LOG(failures >= 2 && failures <= 1 + R9_OUTAGE_MS / 500 + 4, app.log,
              "%d fork failures logged in %d ms: not bounded by the backoff", failures, R9_OUTAGE_MS);
    CHECK_LOG(n_seen > 1 && min_gap >= 80 && max_gap <= 650 && last_gap > first_gap, app.log,
              "retry gaps: first %.1f, min %.1f, max %.1f, last %.1f ms: no backoff", first_gap,
              min_gap, max_gap, last_gap);
    CHECK_LOG(back >= 0 && back <= 1000, app.log, "back to %d workers %.1f ms after fork works again",
              N_WORKERS, back);
    CHECK_LOG(pu_count_lines(app.log, mline(line, sizeof line, app.pid, "initialized")) == 1, app.log,
              "the manager restarted");
    term_and_expect_clean_exit(&app, 3000);
}

/* ---- R10: the manager SIGKILLed with idle and busy workers ---- */

#define R10_BODY 300000
#define R10_SLEEP_MS 2000

static void test_r10_manager_killed(void **state)
{
    ctx_t *c = *state;
    app_t app, next;
    char addr[64], log[PATH_LEN], log2[PATH_LEN], out[PATH_LEN], query[64], line[256];
    int port = edges_free_tcp_port();
    CHECK(port > 0, "no free TCP port");
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/log", c->dir);
    snprintf(log2, sizeof log2, "%s/log2", c->dir);
    snprintf(out, sizeof out, "%s/busy.response", c->dir);
    pid_t workers[N_WORKERS];
    start_pool(&app, addr, log, NULL, (const char *const[]){"n_processes=8", NULL}, workers);
    unsigned long listen_ino = edges_first_socket_inode(app.pid);
    CHECK(listen_ino != 0, "no listening socket in the manager's descriptors");

    /* One worker busy for 2 s with a large body, half of it sent before the sleep. */
    snprintf(query, sizeof query, "body=%d&sleep_ms=%d", R10_BODY, R10_SLEEP_MS);
    pu_request_t busy_req;
    CHECK(pu_request_start(&busy_req, addr, query, out) == 0, "cannot start cgi-fcgi");
    char begin[96];
    snprintf(begin, sizeof begin, "): begin %s", query);
    double t_req = edges_now_ms();
    while (pu_count_containing(app.log, begin) < 1) {
        CHECK_LOG(edges_now_ms() - t_req < 3000, app.log, "the busy request did not begin");
        edges_tick();
    }
    double t_begin = edges_now_ms();
    pid_t busy;
    CHECK(pu_collect_pids(app.log, "worker_app (pid ", begin, &busy, 1) == 1 &&
              pu_has_pid(workers, N_WORKERS, busy),
          "cannot tell which worker is busy");
    pid_t idle[N_WORKERS];
    int n_idle = 0;
    for (int i = 0; i < N_WORKERS; i++)
        if (workers[i] != busy)
            idle[n_idle++] = workers[i];
    CHECK(edges_holds_socket(busy, listen_ino), "the busy worker does not hold the listening socket");
    pu_sleep_ms(200);

    /* Kill the manager; watch every 1 ms: idle workers exit (they are ours now), the
     * busy one lets go of the listening socket. */
    double t_kill = edges_now_ms();
    CHECK(kill(app.pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    double idle_exit[N_WORKERS];
    int idle_status[N_WORKERS];
    int idle_done = 0, manager_reaped = 0;
    for (int i = 0; i < n_idle; i++)
        idle_exit[i] = -1;
    double released = -1;
    while (edges_now_ms() - t_kill < 3000) {
        int st;
        if (!manager_reaped && waitpid(app.pid, &st, WNOHANG) == app.pid)
            manager_reaped = 1;
        for (int i = 0; i < n_idle; i++) {
            if (idle_exit[i] >= 0)
                continue;
            pid_t got = waitpid(idle[i], &st, WNOHANG);
            if (got == idle[i] || (got < 0 && errno == ECHILD && !pu_exists(idle[i]))) {
                idle_exit[i] = edges_now_ms() - t_kill;
                idle_status[i] = got == idle[i] ? st : -1;
                idle_done++;
            }
        }
        if (released < 0 && !edges_holds_socket(busy, listen_ino))
            released = edges_now_ms() - t_kill;
        if (manager_reaped && idle_done == n_idle && released >= 0)
            break;
        edges_tick();
    }
    double idle_max = 0;
    int idle_clean = 0;
    for (int i = 0; i < n_idle; i++) {
        if (idle_exit[i] > idle_max)
            idle_max = idle_exit[i];
        idle_clean += idle_status[i] != -1 && WIFEXITED(idle_status[i]) && WEXITSTATUS(idle_status[i]) == 0;
    }
    int busy_alive = pu_alive(busy);

    /* A new manager on the same address, at once. */
    double t_next = edges_now_ms();
    start_app(&next, addr, log2, NULL, (const char *const[]){"n_processes=8", NULL});
    pu_request_t hello;
    char hello_out[PATH_LEN];
    snprintf(hello_out, sizeof hello_out, "%s/hello.response", c->dir);
    while (pu_count_containing(next.log, "FastCGI: manager (pid ") < 1) {
        int st = 0;
        CHECK_LOG(waitpid(next.pid, &st, WNOHANG) == 0, next.log,
                  "the new manager exited at once (status 0x%x): address still in use?", st);
        CHECK_LOG(edges_now_ms() - t_next < 5000, next.log, "the new manager did not start");
        edges_tick();
    }
    double bound = edges_now_ms() - t_next;
    CHECK(pu_request_start(&hello, addr, "", hello_out) == 0, "cannot start cgi-fcgi");
    char *response = NULL;
    size_t len = 0;
    int rc = pu_request_finish(&hello, 5000, &response, &len);
    double t_served = edges_now_ms();
    int busy_alive_when_served = pu_alive(busy);
    pid_t served_by = pu_response_pid(response);
    free(response);
    pid_t next_kids[PU_MAX_PIDS];
    int n_next = pu_children(next.pid, next_kids, PU_MAX_PIDS);

    /* The busy request completes; the busy worker exits right after it. */
    double client_done = -1, busy_exit = -1;
    int client_status = -1, busy_status = -1;
    while (edges_now_ms() - t_kill < R10_SLEEP_MS + 5000 && (client_done < 0 || busy_exit < 0)) {
        int st;
        if (client_done < 0 && waitpid(busy_req.pid, &st, WNOHANG) == busy_req.pid) {
            client_done = edges_now_ms();
            client_status = st;
        }
        if (busy_exit < 0) {
            pid_t got = waitpid(busy, &st, WNOHANG);
            if (got == busy || (got < 0 && errno == ECHILD && !pu_exists(busy))) {
                busy_exit = edges_now_ms();
                busy_status = got == busy ? st : -1;
            }
        }
        edges_tick();
    }
    size_t body_len = 0;
    char *busy_response = pu_read_file(busy_req.out_path, &len);
    const char *body = pu_response_body(busy_response, len, &body_len);
    int exact = pu_body_is_pattern(body, body_len, R10_BODY);
    pid_t busy_header = pu_response_pid(busy_response);
    free(busy_response);

    edges_figure("R10", "idle_exit_max", idle_max, "ms");
    edges_figure("R10", "busy_listener_released", released, "ms");
    edges_figure("R10", "new_manager_spawned_after_kill", t_next - t_kill, "ms");
    edges_figure("R10", "new_manager_bound", bound, "ms");
    edges_figure("R10", "new_manager_first_response", t_served - t_next, "ms");
    if (client_done >= 0)
        edges_figure("R10", "busy_request_total", client_done - t_begin, "ms");
    if (client_done >= 0 && busy_exit >= 0)
        edges_figure("R10", "busy_exit_after_response", busy_exit - client_done, "ms");

    CHECK_LOG(manager_reaped, app.log, "the killed manager was not reaped");
    CHECK_LOG(idle_done == n_idle && idle_max <= 100, app.log,
              "%d of %d idle workers exited, the last %.1f ms after the manager's death", idle_done,
              n_idle, idle_max);
    CHECK_LOG(idle_clean == n_idle, app.log, "%d of %d idle workers exited with status 0", idle_clean,
              n_idle);
    CHECK_LOG(busy_alive, app.log, "the busy worker died with the manager");
    CHECK_LOG(released >= 0 && released <= 100, app.log,
              "the busy worker still held the listening socket %.1f ms after the manager's death",
              released);
    CHECK_LOG(rc == 0 && pu_has_pid(next_kids, n_next, served_by), next.log,
              "the new manager did not serve: client exit %d, served by %d", rc, (int)served_by);
    CHECK_LOG(busy_alive_when_served, app.log,
              "the old busy worker was gone before the new manager served (too slow to tell)");
    CHECK_LOG(client_done >= 0 && WIFEXITED(client_status) && WEXITSTATUS(client_status) == 0,
              app.log, "the busy request's client: status 0x%x", client_status);
    CHECK_LOG(exact && busy_header == busy, app.log,
              "the busy response is not byte-exact: %zu body bytes of %d, from %d", body_len,
              R10_BODY, (int)busy_header);
    CHECK_LOG(busy_exit >= 0 && busy_exit - client_done <= 100, app.log,
              "the busy worker exited %.1f ms after its response", busy_exit - client_done);
    CHECK_LOG(busy_status != -1 && WIFEXITED(busy_status) && WEXITSTATUS(busy_status) == 0, app.log,
              "the busy worker's exit status 0x%x", busy_status);
    snprintf(line, sizeof line, "FastCGI: server (pid %d): safe exit: manager has died", (int)busy);
    CHECK_LOG(pu_count_lines(app.log, line) == 1, app.log, "no line '%s'", line);
    for (int i = 0; i < n_idle; i++) {
        snprintf(line, sizeof line, "worker_app (pid %d): loop ended", (int)idle[i]);
        CHECK_LOG(pu_count_lines(app.log, line) == 1, app.log, "idle worker %d: no '%s'", (int)idle[i],
                  line);
    }
    CHECK_LOG(wait_pool(&next, N_WORKERS, 5000, NULL) >= 0, next.log, "the new pool is not full");
    term_and_expect_clean_exit(&next, 3000);
}

/* ---- R11: the pid file ---- */

/* Starts a manager with pid_fname=pid_file. */
static void start_with_pid_file(app_t *app, const ctx_t *c, const char *name, const char *log_name,
                                const char *pid_file, char param[PATH_LEN + 16])
{
    char sock[PATH_LEN], log[PATH_LEN];
    snprintf(sock, sizeof sock, "%s/%s", c->dir, name);
    snprintf(log, sizeof log, "%s/%s", c->dir, log_name);
    snprintf(param, PATH_LEN + 16, "pid_fname=%s", pid_file);
    start_app(app, sock, log, NULL, (const char *const[]){"n_processes=8", param, NULL});
}

/* The manager must be refused: exit non-zero within timeout_ms, having forked
 * nothing; the message names the file. Returns the time it took. */
static double expect_refused(app_t *app, const char *pid_file, const char *reason, int timeout_ms)
{
    int status;
    double ms;
    CHECK_LOG(wait_exit_ms(app->pid, timeout_ms, &status, &ms), app->log,
              "the manager was not refused within %d ms (blocked?)", timeout_ms);
    CHECK_LOG(WIFEXITED(status) && WEXITSTATUS(status) != 0, app->log,
              "refused manager: status 0x%x, expected a non-zero exit", status);
    char expect[PATH_LEN + 128];
    snprintf(expect, sizeof expect, "worker_app: pm_manage: pid file %s %s", pid_file, reason);
    CHECK_LOG(pu_count_containing(app->log, expect) == 1, app->log, "no message '%s'", expect);
    CHECK_LOG(pu_count_containing(app->log, ") started") == 0 &&
                  pu_count_containing(app->log, "): initialized") == 0,
              app->log, "the refused manager initialized or forked");
    app->pid = -1;
    return ms;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mode == b->st_mode && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The pid file names pid, exactly "<pid>\n". */
static void expect_pid_file(const char *path, pid_t pid, const char *log)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d\n", (int)pid);
    char *text = pu_read_file(path, NULL);
    CHECK_LOG(text && strcmp(text, expect) == 0, log, "pid file holds '%s', expected '%d\\n'",
              text ? text : "(none)", (int)pid);
    free(text);
}

static void test_r11_stale_pid(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char pid_file[PATH_LEN], param[PATH_LEN + 16], stale[128];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    CHECK(dead > 0 && waitpid(dead, NULL, 0) == dead, "cannot make a dead pid");
    /* A stale file, longer than any pid: the new one must be written whole. */
    snprintf(stale, sizeof stale, "%d\nleft over by a crashed manager\n", (int)dead);
    CHECK(edges_write_file(pid_file, stale) == 0, "cannot write %s", pid_file);

    double t0 = edges_now_ms();
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    CHECK_LOG(wait_pool(&app, N_WORKERS, 10000, NULL) >= 0, app.log, "no pool with a stale pid file");
    edges_figure("R11", "stale_pid_start_to_pool", edges_now_ms() - t0, "ms");
    expect_pid_file(pid_file, app.pid, app.log);
    term_and_expect_clean_exit(&app, 3000);
    CHECK(!pu_file_exists(pid_file), "the pid file is left after TERM");
}

/* A process of our own that records every signal it receives into a file. */
static int catcher_fd = -1;

static void catcher_handler(int signo)
{
    char buf[16];
    int n = 0;
    char digits[8];
    int d = 0;
    do {
        digits[d++] = (char)('0' + signo % 10);
        signo /= 10;
    } while (signo && d < 7);
    while (d)
        buf[n++] = digits[--d];
    buf[n++] = '\n';
    ssize_t ignored = write(catcher_fd, buf, (size_t)n);
    (void)ignored;
}

static pid_t start_catcher(const char *record)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    catcher_fd = open(record, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = catcher_handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ssize_t ignored = write(catcher_fd, "ready\n", 6);
    (void)ignored;
    for (;;)
        pause();
}

static void test_r11_live_foreign_pid(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char pid_file[PATH_LEN], param[PATH_LEN + 16], record[PATH_LEN], text[32];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    snprintf(record, sizeof record, "%s/signals", c->dir);
    pid_t foreign = start_catcher(record);
    CHECK(foreign > 0, "cannot fork");
    CHECK(pu_wait_line(record, "ready", 1, 3000), "the catcher did not start");
    snprintf(text, sizeof text, "%d\n", (int)foreign);
    CHECK(edges_write_file(pid_file, text) == 0, "cannot write %s", pid_file);

    /* The manager's whole life: start, HUP (all workers replaced), TERM. */
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    pid_t before[N_WORKERS], after[N_WORKERS];
    CHECK_LOG(wait_pool(&app, N_WORKERS, 10000, before) >= 0, app.log,
              "no pool with a live foreign pid in the pid file");
    expect_pid_file(pid_file, app.pid, app.log);
    kill(app.pid, SIGHUP);
    double t_hup = edges_now_ms();
    for (;;) {
        int fresh = pool_ready(&app, N_WORKERS, after);
        for (int i = 0; fresh && i < N_WORKERS; i++)
            fresh = !pu_has_pid(before, N_WORKERS, after[i]);
        if (fresh)
            break;
        CHECK_LOG(edges_now_ms() - t_hup < 5000, app.log, "the pool was not replaced after HUP");
        edges_tick();
    }
    expect_pid_file(pid_file, app.pid, app.log);
    term_and_expect_clean_exit(&app, 3000);
    CHECK(!pu_file_exists(pid_file), "the pid file is left after TERM");

    /* Never signalled: alive, not stopped, nothing recorded. */
    pu_sleep_ms(50);
    char st = pu_proc_state(foreign);
    char *got = pu_read_file(record, NULL);
    CHECK(st == 'S' || st == 'R', "the foreign process is in state '%c'", st ? st : '?');
    CHECK(got && strcmp(got, "ready\n") == 0, "the foreign process received signals:\n%s",
          got ? got + strlen("ready\n") : "");
    free(got);
    /* The recorder works: a signal of our own shows up. */
    kill(foreign, SIGUSR1);
    snprintf(text, sizeof text, "%d", SIGUSR1);
    CHECK(pu_wait_line(record, text, 1, 2000), "the catcher does not record signals");
    edges_figure("R11", "foreign_signals_received", 0, "count");
    kill(foreign, SIGKILL);
    waitpid(foreign, NULL, 0);
}

static void test_r11_second_manager_refused(void **state)
{
    ctx_t *c = *state;
    app_t first, second;
    char pid_file[PATH_LEN], param1[PATH_LEN + 16], param2[PATH_LEN + 16], reason[96];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    start_with_pid_file(&first, c, "sock", "log", pid_file, param1);
    pid_t workers[N_WORKERS], now[N_WORKERS];
    CHECK_LOG(wait_pool(&first, N_WORKERS, 10000, workers) >= 0, first.log, "no first pool");
    expect_pid_file(pid_file, first.pid, first.log);
    struct stat st_before, st_after;
    CHECK(lstat(pid_file, &st_before) == 0, "no pid file");
    size_t log_before = 0;
    free(pu_read_file(first.log, &log_before));

    /* Same pid file, its own socket (libfcgi would take over a unix socket path). */
    start_with_pid_file(&second, c, "sock2", "log2", pid_file, param2);
    snprintf(reason, sizeof reason, "is held by another manager (pid %d)", (int)first.pid);
    double ms = expect_refused(&second, pid_file, reason, 3000);
    edges_figure("R11", "second_manager_refused", ms, "ms");

    pu_sleep_ms(100);
    CHECK(lstat(pid_file, &st_after) == 0 && same_file(&st_before, &st_after),
          "the pid file changed (inode, size, mode or times)");
    expect_pid_file(pid_file, first.pid, first.log);
    size_t log_after = 0;
    free(pu_read_file(first.log, &log_after));
    CHECK_LOG(log_after == log_before, first.log, "the first manager logged something meanwhile");
    CHECK_LOG(pool_ready(&first, N_WORKERS, now) && pu_same_pids(now, N_WORKERS, workers, N_WORKERS),
              first.log, "the first manager's pool changed");
    char out[PATH_LEN];
    snprintf(out, sizeof out, "%s/response", c->dir);
    char *response = NULL;
    size_t len;
    int rc = pu_request(first.addr, "", out, 3000, &response, &len);
    pid_t served = pu_response_pid(response);
    free(response);
    CHECK_LOG(rc == 0 && pu_has_pid(workers, N_WORKERS, served), first.log,
              "the first manager does not serve: client exit %d", rc);
    term_and_expect_clean_exit(&first, 3000);
    CHECK(!pu_file_exists(pid_file), "the pid file is left after TERM");
}

static void test_r11_symlink_refused(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char pid_file[PATH_LEN], target[PATH_LEN], missing[PATH_LEN], param[PATH_LEN + 16];
    char link[PATH_LEN];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    snprintf(target, sizeof target, "%s/precious", c->dir);
    snprintf(missing, sizeof missing, "%s/nothing-here", c->dir);
    CHECK(edges_write_file(target, "precious contents\n") == 0, "cannot write %s", target);
    struct stat before, after;
    CHECK(lstat(target, &before) == 0, "no target");
    CHECK(symlink(target, pid_file) == 0, "symlink: %s", strerror(errno));

    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    double ms = expect_refused(&app, pid_file, "is a symbolic link: refused", 3000);
    edges_figure("R11", "symlink_refused", ms, "ms");
    char *text = pu_read_file(target, NULL);
    CHECK(text && strcmp(text, "precious contents\n") == 0, "the symlink's target was changed: '%s'",
          text ? text : "(gone)");
    free(text);
    CHECK(lstat(target, &after) == 0 && same_file(&before, &after), "the target's inode or times changed");
    ssize_t n = readlink(pid_file, link, sizeof link - 1);
    CHECK(n > 0 && (link[n] = '\0', strcmp(link, target) == 0), "the symlink itself was changed");

    /* A dangling symlink: refused, and nothing created where it points. */
    CHECK(unlink(pid_file) == 0 && symlink(missing, pid_file) == 0, "symlink: %s", strerror(errno));
    unlink(app.log);
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    expect_refused(&app, pid_file, "is a symbolic link: refused", 3000);
    CHECK(!pu_file_exists(missing), "a file was created through the dangling symlink");
}

static void test_r11_fifo_refused(void **state)
{
    ctx_t *c = *state;
    app_t app;
    char pid_file[PATH_LEN], param[PATH_LEN + 16];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    CHECK(mkfifo(pid_file, 0644) == 0, "mkfifo: %s", strerror(errno));
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    /* Nothing blocks: refused as fast as the program starts. */
    double ms = expect_refused(&app, pid_file, "is not a regular file: refused", 1000);
    edges_figure("R11", "fifo_refused", ms, "ms");
    struct stat st;
    CHECK(lstat(pid_file, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced or removed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_r3_hup_storm_under_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r3_hup_after_accept_before_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r5_term_idle_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r9_fork_fails_while_filling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r10_manager_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r11_stale_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r11_live_foreign_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r11_second_manager_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r11_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r11_fifo_refused, setup, teardown),
    };
    /* PM_EDGES_FILTER=pattern runs only the matching tests (e.g. "test_r11*"). */
    const char *filter = getenv("PM_EDGES_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("fault_edges", tests, group_setup, NULL);
}
