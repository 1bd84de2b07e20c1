/*
 * test_fault_edges_connections.c -- fault injection at the pool's edges: connections
 * in flight when a signal lands (docs/reliability.md R3, and R5 with a kept-alive
 * connection), on worker_app run as a real process tree, n = 8.
 *
 *   R3   HUP to the manager every 20 ms for 10 s while a real nginx, fed by wrk (or a
 *        bounded curl loop), passes requests to the pool: 0 failed requests, exactly n
 *        live workers at the end. A second R3 test makes the one way requests were
 *        seen to fail deterministic: a HUP landing after a worker accepted a unix
 *        connection but before the request's bytes arrived.
 *   R5   (kept alive) TERM while the web server holds its FastCGI connection open
 *        between requests: the manager still exits 0 within 200 ms, on pm_fcgx_accept
 *        and on libfcgi's own loop (unix socket and TCP), and soon after the worker
 *        enters that wait when the TERM came before it.
 *
 * Knobs (environment): PM_EDGES_LOAD=curl (R3's load from curl even when wrk is
 * there), PM_EDGES_R3_UPSTREAM=tcp (diagnostic: R3's pool on TCP, not a unix socket).
 *
 * Every time is taken from CLOCK_MONOTONIC while polling /proc and the logs every
 * 1 ms. Each figure is printed as "FIGURE <scenario> <name> <value> <unit>" and
 * appended to $PM_FIGURES_FILE when it is set. PM_EDGES_FILTER=<cmocka pattern> runs
 * only the matching tests.
 *
 * The test process is a child subreaper (pool_fixture.h): workers orphaned by a
 * killed manager become its children, so their exit statuses are seen and nothing
 * leaks past a test.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "edges_support.h"
#include "fault_support.h"
#include "pool_fixture.h"

/* ---- R3: HUP every 20 ms for 10 s under load through nginx ---- */

#define R3_HUP_PERIOD_MS 20
#define R3_HUPS 500 /* 10 s */

#define MAX_LOG_PIDS 64

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

/* 1 if one of pids was named in any of the manager's "sending TERM to PIDs" lines: a
 * worker a HUP told to stop while it was busy is still alive, and about to go. */
static int any_told_to_stop(const pf_app_t *app, const pid_t *pids, int n)
{
    enum { max_lines = 4096 };
    static char *lines[max_lines];
    char prefix[PF_LINE_LEN];
    pf_mline(prefix, app, "sending TERM to PIDs, ");
    int count = pu_lines_with_prefix(app->log, prefix, lines, max_lines);
    int told = 0;
    for (int i = 0; i < count && !told; i++) {
        pid_t listed[PU_MAX_PIDS];
        int k = pu_parse_pid_list(lines[i] + strlen(prefix), listed, PU_MAX_PIDS);
        for (int j = 0; j < n && !told; j++)
            told = k > 0 && pu_has_pid(listed, k, pids[j]);
    }
    pu_free_lines(lines, count);
    return told;
}

typedef struct load {
    pid_t pid;
    int curl; /* 1: the curl fallback, 0: wrk */
    char out[PF_PATH_LEN];
} load_t;

static void start_load(load_t *load, const pf_app_t *c, int port, int seconds)
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
    pf_app_t *c = *state;
    pf_app_t app;
    char addr[PF_PATH_LEN], upstream[PF_PATH_LEN + 8], log[PF_PATH_LEN], ngdir[PF_PATH_LEN], line[PF_LINE_LEN];
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
    pf_app_at(&app, c->dir, addr, log);
    pf_start_pool(&app, N_WORKERS, NULL, NULL, workers);

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
    double t0 = pf_now_ms() + 500;
    int sent = 0;
    for (int k = 0; k < R3_HUPS; k++) {
        pf_sleep_until_ms(t0 + (double)k * R3_HUP_PERIOD_MS);
        CHECK_LOG(kill(app.pid, SIGHUP) == 0 && pu_alive(app.pid), app.log,
                  "the manager is gone after %d HUPs", sent);
        sent++;
    }
    double t_last = pf_now_ms();

    /* The pool settles (while the load goes on) to exactly n live, initialized
     * workers, and the manager's log agrees with /proc about which they are. */
    pid_t final[N_WORKERS];
    double settle = -1;
    pool_log_t pl;
    for (;;) {
        if (pf_pool_ready(&app, N_WORKERS, final) && !any_told_to_stop(&app, final, N_WORKERS)) {
            read_pool_log(app.log, app.pid, &pl);
            if (pu_same_pids(pl.live, pl.n_live, final, N_WORKERS)) {
                settle = pf_now_ms() - t_last;
                break;
            }
        }
        if (pf_now_ms() - t_last > 10000 || !pu_alive(app.pid))
            break;
        pf_tick();
    }
    long requests = 0, failed = 0;
    double rps = 0;
    finish_load(&load, &requests, &failed, &rps);
    pu_sleep_ms(200); /* and stays so */
    pid_t kids[PU_MAX_PIDS], all[PU_MAX_PIDS];
    int live = pf_children(&app, kids, NULL);
    int any = pu_children(app.pid, all, PU_MAX_PIDS);
    read_pool_log(app.log, app.pid, &pl);
    int after_code = edges_http_get(ng.port, "/", 3000, NULL);
    int upstream_errors = pu_count_containing(ng.error_log, "[error]");

    pf_figure("R3", "hup_window", t_last - t0, "ms");
    pf_figure("R3", "hups_sent", sent, "count");
    pf_figure("R3", "term_rounds",
                 pu_count_containing(app.log, pf_mline(line, &app, "sending TERM to PIDs")),
                 "count");
    pf_figure("R3", "workers_started", pl.started, "count");
    pf_figure("R3", "worker_exits_nonzero", pl.abnormal, "count");
    pf_figure("R3", "requests", (double)requests, "count");
    pf_figure("R3", "failed_requests", (double)failed, "count");
    pf_figure("R3", "nginx_upstream_errors", upstream_errors, "count");
    if (rps > 0)
        pf_figure("R3", "throughput", rps, "req/s");
    pf_figure("R3", "settle_after_last_hup", settle, "ms");
    pf_figure("R3", "workers_at_end", live, "count");
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
        pf_print_log_tail(load.out, 4000);
    CHECK_LOG(failed == 0, ng.error_log, "%ld of %ld requests failed", failed, requests + failed);
    edges_nginx_stop(&ng);
    pf_stop(&app, 3000);
#endif
}

/* Starts the pool with die_timeout=5 on a unix socket (port 0) or on 127.0.0.1:port;
 * with plain, on libfcgi's own accept loop (WORKER_APP_PLAIN_ACCEPT: FCGX_Accept_r
 * alone, as FCGI.pm and most programs run it) instead of pm_fcgx_accept; env: one
 * more variable for worker_app, or NULL. */
static void start_on(pf_app_t *c, pf_app_t *app, int port, int plain, const char *env, pid_t *workers)
{
    char addr[PF_PATH_LEN], log[PF_PATH_LEN];
    if (port > 0)
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    else
        snprintf(addr, sizeof addr, "%s/sock", c->dir);
    snprintf(log, sizeof log, "%s/log", c->dir);
    pf_app_at(app, c->dir, addr, log);
    const char *vars[3] = {NULL, NULL, NULL};
    int n = 0;
    if (plain)
        vars[n++] = "WORKER_APP_PLAIN_ACCEPT=1";
    if (env)
        vars[n++] = env;
    pf_start_pool(app, N_WORKERS, (const char *const[]){"die_timeout=5", NULL}, vars, workers);
}

static int connect_to(const pf_app_t *app, int port)
{
    return port > 0 ? edges_tcp_connect(port) : edges_unix_connect(app->sock);
}

/* A free TCP port for a test on TCP (tcp 1), else 0 (a unix socket). */
static int port_for(int tcp)
{
    int port = tcp ? edges_free_tcp_port() : 0;
    CHECK(port >= 0, "no free TCP port");
    return port;
}

/* The mechanism behind R3's failures, made deterministic: a HUP that reaches a worker
 * after it has accepted a connection but before the request's first bytes arrive.
 * On a unix socket, libfcgi's OS_Accept then waits up to 2 s in poll() for the
 * connection to become readable (is_af_unix_keeper); poll is never restarted after a
 * signal handler, whatever SA_RESTART says, and libfcgi closes a connection whose
 * poll failed: pm_fcgx_accept accepts itself. On TCP libfcgi's own loop reads at
 * once, and the stopping worker must not take the new connection for one kept alive
 * (whose wait a stop ends). Either way the client's request must still be answered. */
static void hup_after_accept_before_request(void **state, int tcp, int plain)
{
    pf_app_t *c = *state;
    pf_app_t app;
    pid_t workers[N_WORKERS];
    int port = port_for(tcp);
    start_on(c, &app, port, plain, NULL, workers);

    int fd = connect_to(&app, port);
    CHECK(fd >= 0, "cannot connect to %s: %s", app.sock, strerror(errno));
    /* The worker that took the connection holds a second socket. */
    pid_t acceptor = -1;
    double t0 = pf_now_ms();
    while (acceptor < 0 && pf_now_ms() - t0 < 2000) {
        for (int i = 0; i < N_WORKERS && acceptor < 0; i++)
            if (edges_socket_count(workers[i]) >= 2)
                acceptor = workers[i];
        pf_tick();
    }
    CHECK_LOG(acceptor > 0, app.log, "no worker accepted the connection");
    pu_sleep_ms(50);
    kill(app.pid, SIGHUP);
    double t_hup = pf_now_ms();
    while (pu_alive(acceptor) && pf_now_ms() - t_hup < 300)
        pf_tick();
    int acceptor_gone = !pu_alive(acceptor);
    double gone_ms = pf_now_ms() - t_hup;

    int sent = edges_fcgi_send(fd, "");
    int send_errno = errno;
    char *out = NULL;
    size_t len = 0;
    int ended = sent == 0 ? edges_fcgi_receive(fd, 3000, &out, &len) : -1;
    close(fd);
    pf_figure("R3", tcp ? "accepted_tcp_connection_served" : "accepted_connection_served", ended == 1 ? 1 : 0,
              "bool");
    CHECK_LOG(sent == 0, app.log,
              "the request could not be sent: %s (the accepting worker %d %s %.1f ms after the HUP, "
              "dropping the connection it had accepted)",
              strerror(send_errno), (int)acceptor, acceptor_gone ? "exited" : "was still alive",
              gone_ms);
    CHECK_LOG(ended == 1 && out && strstr(out, "Hello from worker"), app.log,
              "no complete response (end %d, %zu bytes)", ended, len);
    free(out);
    pf_stop(&app, 3000);
}

static void test_r3_hup_after_accept_before_request(void **state)
{
    hup_after_accept_before_request(state, 0, 0);
}

static void test_r3_hup_after_tcp_accept_before_request_plain_loop(void **state)
{
    hup_after_accept_before_request(state, 1, 1);
}

/* ---- R5 with a kept-alive connection ---- */

/* The web server keeps its FastCGI connection open between requests
 * (FCGI_KEEP_CONN, as nginx's fastcgi_keep_conn does): the idle worker waits on that
 * connection, not in accept, and a TERM must still stop it at once. pm_fcgx_accept
 * waits in ppoll, which a signal ends; libfcgi's own loop (plain, between
 * pm_accept_begin and pm_accept_end) waits in a read, which SA_RESTART restarts: the
 * handler shuts that connection's read side. env, for worker_app: the TERM comes
 * while the worker sleeps in its post-dispatch hook (pm_accept_begin then says
 * stop), or inside the wait before FCGX_Accept_r (the handler's timer finds the read
 * later). */
static void keepalive_term(void **state, int tcp, int plain, const char *env, const char *figure,
                           double allowed_ms)
{
    pf_app_t *c = *state;
    pf_app_t app;
    pid_t workers[N_WORKERS];
    int port = port_for(tcp);
    start_on(c, &app, port, plain, env, workers);
    int fd = connect_to(&app, port);
    CHECK(fd >= 0, "cannot connect to %s: %s", app.sock, strerror(errno));
    char *out = NULL;
    size_t len = 0;
    for (int i = 0; i < (env ? 1 : 2); i++) { /* requests on the one connection */
        CHECK(edges_fcgi_send_request(fd, "", 1) == 0, "send: %s", strerror(errno));
        CHECK_LOG(edges_fcgi_receive(fd, 3000, &out, &len) == 1 && strstr(out, "Hello from worker"),
                  app.log, "no response on the kept connection");
        free(out);
        out = NULL;
    }
    if (env)
        pu_sleep_ms(50); /* well inside the 300 ms sleep */
    double t0 = pf_now_ms();
    int status;
    double ms;
    kill(app.pid, SIGTERM);
    CHECK_LOG((ms = pf_wait_child(app.pid, pf_now_ms(), 3000, &status)) >= 0, app.log,
              "manager did not exit within 3 s of TERM with a kept-alive connection open");
    pf_figure("R5", figure, pf_now_ms() - t0, "ms");
    CHECK_LOG(WIFEXITED(status) && WEXITSTATUS(status) == 0, app.log, "manager exit status 0x%x", status);
    CHECK_LOG(ms < allowed_ms * PF_EXIT_SCALE, app.log, "manager exit took %.1f ms (%.0f ms allowed)", ms,
              allowed_ms * PF_EXIT_SCALE);
    app.pid = -1;
    close(fd);
}

static void test_r5_term_idle_keepalive(void **state)
{
    keepalive_term(state, 0, 0, NULL, "keepalive_term_exit", 200);
}

static void test_r5_term_idle_keepalive_plain_loop(void **state)
{
    keepalive_term(state, 0, 1, NULL, "keepalive_plain_term_exit", 200);
}

static void test_r5_term_idle_keepalive_tcp_plain_loop(void **state)
{
    keepalive_term(state, 1, 1, NULL, "keepalive_tcp_term_exit", 200);
}

/* The post-dispatch hook sleeps 300 ms, from 50 ms before the TERM: then
 * pm_accept_begin says stop. */
static void test_r5_term_before_keepalive_wait_plain_loop(void **state)
{
    keepalive_term(state, 0, 1, "WORKER_APP_POST_SLEEP_MS=300", "keepalive_term_before_wait_exit", 250 + 200);
}

/* Inside the wait, 300 ms before FCGX_Accept_r, from 50 ms before the TERM: the
 * handler's timer (5, 15, 35, ... 315 ms after the TERM) finds the read. */
static void test_r5_term_inside_keepalive_wait_before_read_plain_loop(void **state)
{
    keepalive_term(state, 0, 1, "WORKER_APP_ACCEPT_SLEEP_MS=300", "keepalive_term_inside_wait_exit", 315 + 200);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_r3_hup_storm_under_load),
        T(test_r3_hup_after_accept_before_request),
        T(test_r3_hup_after_tcp_accept_before_request_plain_loop),
        T(test_r5_term_idle_keepalive),
        T(test_r5_term_idle_keepalive_plain_loop),
        T(test_r5_term_idle_keepalive_tcp_plain_loop),
        T(test_r5_term_before_keepalive_wait_plain_loop),
        T(test_r5_term_inside_keepalive_wait_before_read_plain_loop),
    };
#undef T
    /* PM_EDGES_FILTER=pattern runs only the matching tests (e.g. "test_r11*"). */
    pf_filter_from_env("PM_EDGES_FILTER");
    return cmocka_run_group_tests_name("fault_edges_connections", tests, pf_group_setup_no_sigpipe, NULL);
}
