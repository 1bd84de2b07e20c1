/*
 * test_fault_pool_stop.c -- fault injection on the pool itself: TERM (docs/reliability.md
 * R5, R6, R7), on worker_app run as a real process tree, n = 8.
 *
 *   R5   TERM with all workers idle: exit 0 within 200 ms, pid file removed, no
 *        worker left (not even as a zombie).
 *   R6   TERM during a 2 s request (body=100000&sleep_ms=2000), die_timeout 5: the
 *        response is complete and byte-exact, the manager exits 0 within 2.3 s.
 *   R7   workers block TERM (WORKER_APP_BLOCK_TERM=1), die_timeout 2: the manager
 *        exits 1 at 2 s +- 0.1 s after the TERM, logs "wait timeout", and every worker
 *        pid is gone.
 *
 * Every time is taken from CLOCK_MONOTONIC while polling /proc (or waitpid, for the
 * manager's own exit) every 1 ms, never from log lines. Each figure is printed as
 * "FIGURE <scenario> <name> <value> <unit>" and appended to $PM_FIGURES_FILE when it
 * is set.
 *
 * PM_FAULT_POOL_FILTER=<cmocka pattern> (e.g. "test_r5_*") runs only matching tests.
 *
 * The test process is a child subreaper (pool_fixture.h): workers orphaned by their
 * manager become its children, so a worker left behind is seen (as our child, or our
 * zombie).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault_support.h"
#include "pool_fixture.h"

/* ---- the pass criteria (docs/reliability.md) ---- */
#define R5_BOUND_MS 200.0
#define R6_SLEEP_MS 2000
#define R6_BODY 100000
#define R6_BOUND_MS 2300.0
#define R7_DIE_TIMEOUT_MS 2000.0
#define R7_TOLERANCE_MS 100.0

static void test_r5_term_idle(void **state)
{
    pf_app_t *app = *state;
    pid_t live[N_WORKERS];
    char pid_param[PF_PATH_LEN + 16], line[PF_LINE_LEN];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *params[] = {pid_param, NULL};
    pf_start_pool(app, N_WORKERS, params, NULL, live);
    CHECK(pu_file_exists(app->pid_file), "no pid file");
    pu_sleep_ms(100); /* idle, all of them blocked in accept */

    double sent = pf_now_ms();
    kill(app->pid, SIGTERM);
    double took = pf_wait_manager_exit(app, sent, FS_T_EXIT);
    int left = 0;
    for (int i = 0; i < N_WORKERS; i++)
        left += pu_exists(live[i]);
    pid_t ours[PU_MAX_PIDS];
    int orphans = pu_children(getpid(), ours, PU_MAX_PIDS);

    pf_figure("R5", "exit_after_term", took, "ms");
    pf_figure("R5", "workers_left", left, "count");
    pf_figure("R5", "pid_file_left", pu_file_exists(app->pid_file), "count");

    CHECK(took >= 0, "the manager did not exit after TERM");
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 0,
          "manager's wait status 0x%x, expected exit 0", app->status);
    CHECK(took < R5_BOUND_MS * PF_EXIT_SCALE, "exit %.3f ms after TERM (bound %.0f)", took,
          R5_BOUND_MS * PF_EXIT_SCALE);
    CHECK(!pu_file_exists(app->pid_file), "pid file %s left behind", app->pid_file);
    CHECK(left == 0 && orphans == 0, "%d worker pids still exist, %d orphans are ours", left,
          orphans);
    CHECK(pu_count_lines(app->log, pf_mline(line, app, "dying: safe exit from signal TERM")) == 1,
          "no 'dying: safe exit from signal TERM'");
}

static void test_r6_term_during_request(void **state)
{
    pf_app_t *app = *state;
    pid_t live[N_WORKERS];
    char query[64], after[96], out[PF_PATH_LEN];
    const char *params[] = {"die_timeout=5", NULL};
    pf_start_pool(app, N_WORKERS, params, NULL, live);

    snprintf(query, sizeof query, "body=%d&sleep_ms=%d", R6_BODY, R6_SLEEP_MS);
    snprintf(after, sizeof after, "): begin %s", query);
    snprintf(out, sizeof out, "%s/response", app->dir);
    pu_request_t req;
    double started = pf_now_ms();
    CHECK(pu_request_start(&req, app->sock, query, out) == 0, "cannot run cgi-fcgi");
    pid_t busy = -1;
    while (pu_collect_pids(app->log, "worker_app (pid ", after, &busy, 1) < 1) {
        CHECK(pf_now_ms() - started < FS_T_LINE, "the request never began");
        pf_tick();
    }
    double sent = pf_now_ms();
    kill(app->pid, SIGTERM);
    double took = pf_wait_manager_exit(app, sent, 10000);
    char *resp = NULL;
    size_t len = 0, body_len = 0;
    int rc = pu_request_finish(&req, FS_T_EXIT, &resp, &len);
    double request_ms = pf_now_ms() - started;
    const char *body = pu_response_body(resp, len, &body_len);
    int exact = pu_body_is_pattern(body, body_len, R6_BODY);
    pid_t served = pu_response_pid(resp);
    free(resp);

    pf_figure("R6", "term_after_request_began", sent - started, "ms");
    pf_figure("R6", "exit_after_term", took, "ms");
    pf_figure("R6", "request_duration", request_ms, "ms");
    pf_figure("R6", "body_bytes", (double)body_len, "bytes");
    pf_figure("R6", "body_exact", exact, "bool");

    CHECK(rc == 0, "the client exited with %d", rc);
    CHECK(exact, "body of %zu bytes is not the %d-byte pattern", body_len, R6_BODY);
    CHECK(served == busy, "served by %d, begun by %d", (int)served, (int)busy);
    CHECK(took >= 0, "the manager did not exit within 10 s of TERM");
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 0,
          "manager's wait status 0x%x, expected exit 0", app->status);
    CHECK(took < R6_BOUND_MS, "exit %.3f ms after TERM (bound %.0f)", took, R6_BOUND_MS);
    char line[PF_LINE_LEN];
    snprintf(line, sizeof line, "FastCGI: server (pid %d): safe exit after SIGTERM", (int)busy);
    CHECK(pu_count_lines(app->log, line) == 1, "no '%s'", line);
}

static void test_r7_workers_block_term(void **state)
{
    pf_app_t *app = *state;
    pid_t live[N_WORKERS];
    char line[PF_LINE_LEN];
    const char *params[] = {"die_timeout=2", NULL};
    const char *env[] = {"WORKER_APP_BLOCK_TERM=1", NULL};
    pf_start_pool(app, N_WORKERS, params, env, live);
    CHECK(pu_wait_containing(app->log, "): TERM and HUP blocked", N_WORKERS, FS_T_LINE),
          "not all workers blocked TERM");

    double sent = pf_now_ms();
    kill(app->pid, SIGTERM);
    double took = pf_wait_manager_exit(app, sent, 10000);
    int left = 0;
    for (int i = 0; i < N_WORKERS; i++)
        left += pu_exists(live[i]);
    pid_t ours[PU_MAX_PIDS];
    int orphans = pu_children(getpid(), ours, PU_MAX_PIDS);
    int timeout_lines = pu_count_lines(app->log, pf_mline(line, app, "wait timeout"));

    pf_figure("R7", "exit_after_term", took, "ms");
    pf_figure("R7", "deviation_from_die_timeout", took - R7_DIE_TIMEOUT_MS, "ms");
    pf_figure("R7", "exit_code", WIFEXITED(app->status) ? WEXITSTATUS(app->status) : -1, "code");
    pf_figure("R7", "survivors", left + orphans, "count");

    CHECK(took >= 0, "the manager did not exit within 10 s of TERM");
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 1,
          "manager's wait status 0x%x, expected exit 1", app->status);
    CHECK(took >= R7_DIE_TIMEOUT_MS - R7_TOLERANCE_MS && took <= R7_DIE_TIMEOUT_MS + R7_TOLERANCE_MS,
          "exit %.3f ms after TERM, expected %.0f +- %.0f", took, R7_DIE_TIMEOUT_MS,
          R7_TOLERANCE_MS);
    CHECK(timeout_lines == 1, "%d 'wait timeout' lines", timeout_lines);
    CHECK(left == 0 && orphans == 0, "%d worker pids still exist, %d orphans are ours", left,
          orphans);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_r5_term_idle),
        T(test_r6_term_during_request),
        T(test_r7_workers_block_term),
    };
#undef T
    /* PM_FAULT_POOL_FILTER=pattern runs only the matching tests (e.g. "test_r5*"). */
    pf_filter_from_env("PM_FAULT_POOL_FILTER");
    return cmocka_run_group_tests_name("fault_pool_stop", tests, pf_group_setup, NULL);
}
