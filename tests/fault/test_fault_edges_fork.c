/*
 * test_fault_edges_fork.c -- fault injection at the pool's edges: fork failing while
 * the pool is being filled (docs/reliability.md R9), on worker_app run as a real process
 * tree, n = 8.
 *
 *   R9   fork fails (LD_PRELOAD fail_fork shim) for 10 s while the pool is being
 *        filled: the manager stays up, logs "fork: Resource temporarily unavailable"
 *        with backoff (a bounded number of lines), and is back to n within 1 s of the
 *        failure lifting.
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

/* "LD_PRELOAD" and friends for the fail_fork shim; ASan must not insist on coming
 * first in the library list. The strings live in buf. */
static void shim_env(char buf[3][PF_PATH_LEN + 128], const char *flag, const char *env[4])
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

/* ---- R9: fork fails for 10 s while the pool is being filled ---- */

#define R9_OUTAGE_MS 10000
#define R9_MAX_FAILURES 64

static void test_r9_fork_fails_while_filling(void **state)
{
    pf_app_t *c = *state;
    pf_app_t app;
    char sock[PF_PATH_LEN], log[PF_PATH_LEN], flag[PF_PATH_LEN], envbuf[3][PF_PATH_LEN + 128], line[PF_LINE_LEN];
    const char *env[4];
    snprintf(sock, sizeof sock, "%s/sock", c->dir);
    snprintf(log, sizeof log, "%s/log", c->dir);
    snprintf(flag, sizeof flag, "%s/nofork", c->dir);
    shim_env(envbuf, flag, env);
    static const char failure[] = "): fork: Resource temporarily unavailable";

    /* start_delay 0.05: one fork per 50 ms, so the pool is caught half filled. */
    pf_app_at(&app, c->dir, sock, log);
    pf_start_app(&app, (const char *const[]){"n_processes=8", "start_delay=0.05", NULL}, env);
    char started[96];
    snprintf(started, sizeof started, "FastCGI: manager (pid %d): server (pid ", (int)app.pid);
    double t_start = pf_now_ms();
    while (pu_count_containing(app.log, started) < N_WORKERS / 2) {
        CHECK_LOG(pf_now_ms() - t_start < 5000 && pu_alive(app.pid), app.log,
                  "the pool did not start filling");
        pf_tick();
    }
    CHECK(edges_write_file(flag, "") == 0, "cannot create %s", flag);
    double t_flag = pf_now_ms();
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
    char out[PF_PATH_LEN];
    snprintf(out, sizeof out, "%s/response", c->dir);
    while (pf_now_ms() - t_flag < R9_OUTAGE_MS) {
        CHECK_LOG(pu_alive(app.pid), app.log, "the manager died %.0f ms into the fork outage",
                  pf_now_ms() - t_flag);
        int n = pu_count_containing(app.log, failure);
        while (n_seen < n && n_seen < R9_MAX_FAILURES)
            seen[n_seen++] = pf_now_ms();
        if (!req_started && pf_now_ms() - t_flag > R9_OUTAGE_MS / 2) {
            CHECK(pu_request_start(&req, sock, "", out) == 0, "cannot start cgi-fcgi");
            req_started = 1;
        }
        pf_tick();
    }
    int failures = pu_count_containing(app.log, failure);
    int during = pu_count_containing(app.log, started);
    int alive_first = 0;
    for (int i = 0; i < n_first; i++)
        alive_first += pu_alive(first[i]);
    CHECK(unlink(flag) == 0, "cannot remove %s", flag);
    double t_lift = pf_now_ms();

    /* Back to n: 8 live workers, each initialized. */
    double back = -1;
    for (;;) {
        if (pf_pool_ready(&app, N_WORKERS, NULL)) {
            back = pf_now_ms() - t_lift;
            break;
        }
        if (pf_now_ms() - t_lift > 5000)
            break;
        pf_tick();
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
    pf_figure("R9", "workers_before_outage", before, "count");
    pf_figure("R9", "fork_failures_logged", failures, "count");
    if (n_seen > 1) {
        pf_figure("R9", "first_retry_gap", first_gap, "ms");
        pf_figure("R9", "min_retry_gap", min_gap, "ms");
        pf_figure("R9", "max_retry_gap", max_gap, "ms");
        pf_figure("R9", "last_retry_gap", last_gap, "ms");
    }
    pf_figure("R9", "back_to_n_after_lift", back, "ms");

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
    CHECK_LOG(pu_count_lines(app.log, pf_mline(line, &app, "initialized")) == 1, app.log,
              "the manager restarted");
    pf_stop(&app, 3000);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_r9_fork_fails_while_filling),
    };
#undef T
    /* PM_EDGES_FILTER=pattern runs only the matching tests (e.g. "test_r11*"). */
    pf_filter_from_env("PM_EDGES_FILTER");
    return cmocka_run_group_tests_name("fault_edges_fork", tests, pf_group_setup_no_sigpipe, NULL);
}
