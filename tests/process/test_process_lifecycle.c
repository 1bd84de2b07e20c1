/*
 * test_process_lifecycle.c -- a pool's life as a user sees it: n = 3, 0 and -1,
 * a killed worker replaced, max_requests recycling, a worker crashing at start.
 *
 * worker_app runs as a real process tree, the real client (cgi-fcgi) talks to it, and
 * the tests look only at what is observable: log lines, exit codes, responses, /proc.
 * The fixture (pool_fixture.h) makes this process a child subreaper, so workers
 * orphaned by a dead manager become its children: a worker the library failed to
 * reap stays visible as a zombie.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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

#include "pool_fixture.h"

/* n=3: the manager logs initialized, then three workers start, initialize, and serve. */
static void test_start_three(void **state)
{
    pf_app_t *app = *state;
    pid_t w[3];
    char line[PF_LINE_LEN];
    pf_start_pool(app, 3, NULL, NULL, w);

    /* The first line is the manager's, before any fork. */
    char *first[1];
    int n = pu_lines_with_prefix(app->log, "FastCGI: ", first, 1);
    CHECK(n == 1 && strcmp(first[0], pf_mline(line, app, "initialized")) == 0,
          "first log line is '%s'", n ? first[0] : "");
    pu_free_lines(first, n);
    CHECK(pu_count_lines(app->log, pf_mline(line, app, "initialized")) == 1, "one initialized");
    for (int i = 0; i < 3; i++)
        CHECK(pu_count_lines(app->log, pf_sline(line, w[i], "initialized")) == 1,
              "worker %d initialized once", (int)w[i]);
    CHECK(pf_wait_children(app, w, 3, PF_T_LINE), "the manager's children are not the 3 workers");

    /* Three slow requests at once need three different workers. */
    pu_request_t req[3];
    pid_t served[3];
    for (int i = 0; i < 3; i++)
        pf_start_request(app, &req[i], "sleep_ms=800");
    for (int i = 0; i < 3; i++)
        served[i] = pf_finish_request(&req[i], -1);
    CHECK(pu_same_pids(served, 3, w, 3), "3 concurrent requests served by %d %d %d",
          (int)served[0], (int)served[1], (int)served[2]);
    for (int i = 0; i < 3; i++)
        CHECK(pu_has_pid(w, 3, pf_hello_request(app)), "a request served by a stranger");

    pf_stop(app, PF_T_EXIT);
}

/* n=0: pm_manage returns 0, nothing is forked, the process serves by itself. */
static void test_single_process(void **state)
{
    pf_app_t *app = *state;
    const char *params[] = {"n_processes=0", NULL};
    pf_start_app(app, params, NULL);
    char line[PF_LINE_LEN];
    snprintf(line, sizeof line, "worker_app (pid %d): single-process mode", (int)app->pid);
    CHECK(pu_wait_line(app->log, line, 1, PF_T_START), "pm_manage did not return 0");

    for (int i = 0; i < 2; i++)
        CHECK(pf_hello_request(app) == app->pid, "request not served by the process itself");
    pid_t kids[4];
    CHECK(pu_children(app->pid, kids, 4) == 0, "single-process mode forked");
    CHECK(pu_count_containing(app->log, "FastCGI:") == 0, "single-process mode logged");
    CHECK(pu_alive(app->pid), "the process died");
}

/* n=-1: the manager initializes, then dies at once with exit 0, forking nothing. */
static void test_negative_n(void **state)
{
    pf_app_t *app = *state;
    const char *params[] = {"n_processes=-1", NULL};
    pf_start_app(app, params, NULL);
    CHECK(pf_wait_exit(app, PF_T_EXIT), "the manager did not exit");
    pf_check_exit_code(app, 0);

    char line[PF_LINE_LEN];
    char *lines[8];
    int n = pu_lines_with_prefix(app->log, "FastCGI: ", lines, 8);
    CHECK(n == 2, "%d FastCGI lines, expected initialized and dying", n);
    CHECK(strcmp(lines[0], pf_mline(line, app, "initialized")) == 0, "first line '%s'", lines[0]);
    pf_mline(line, app, "dying:");
    CHECK(strncmp(lines[1], line, strlen(line)) == 0, "second line '%s'", lines[1]);
    pu_free_lines(lines, n);
    CHECK(pu_count_containing(app->log, "worker_app (pid") == 0, "pm_manage returned");
}

/* A SIGKILLed worker is logged with status 9 and replaced; the pool is 3 again. */
static void test_worker_killed(void **state)
{
    pf_app_t *app = *state;
    pid_t w[3];
    pf_start_pool(app, 3, NULL, NULL, w);

    kill(w[1], SIGKILL);
    CHECK(pf_wait_exit_line(app, w[1], 9), "no 'exited with status 9' for %d", (int)w[1]);
    pid_t fresh = pf_wait_started(app, 4);
    CHECK(fresh > 0 && !pu_has_pid(w, 3, fresh), "no replacement worker");
    const pid_t pool[3] = {w[0], w[2], fresh};
    CHECK(pf_wait_children(app, pool, 3, PF_T_LINE), "the pool is not the 2 survivors plus 1");
    CHECK(pf_exit_lines(app, w[1], 9) == 1, "the death is logged once");
    pid_t started[8];
    CHECK(pf_started_pids(app, started, 8) == 4, "more than one replacement");
    CHECK(pu_has_pid(pool, 3, pf_hello_request(app)), "request not served by the pool");
    pf_stop(app, PF_T_EXIT);
}

/* max_requests=2, n=1: after two requests the worker leaves and is replaced. */
static void test_max_requests(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN];
    const char *params[] = {"max_requests=2", NULL};
    pid_t w;
    pf_start_pool(app, 1, params, NULL, &w);

    CHECK(pf_hello_request(app) == w, "request 1 not served by the worker");
    CHECK(pf_hello_request(app) == w, "request 2 not served by the same worker");
    CHECK(pu_wait_line(app->log, pf_sline(line, w, "safe exit after max_requests (2)"), 1, PF_T_LINE),
          "no 'safe exit after max_requests (2)'");
    CHECK(pf_wait_exit_line(app, w, 0), "no 'exited with status 0'");
    pid_t fresh = pf_wait_started(app, 2);
    CHECK(fresh > 0 && fresh != w, "no replacement");
    CHECK(pf_hello_request(app) == fresh, "request 3 not served by the replacement");
    CHECK(pu_count_containing(app->log, "safe exit after max_requests") == 1, "extra exits");
    pf_stop(app, PF_T_EXIT);
}

/* A worker exiting with code 3 is logged with the raw status 768; the manager lives
 * on, respawning, and still honours TERM. */
static void test_crash_at_start(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN];
    const char *params[] = {"n_processes=2", NULL};
    const char *env[] = {"WORKER_APP_CRASH_AT_START=1", NULL};
    pf_start_app(app, params, env);

    CHECK(pu_wait_containing(app->log, ") exited with status 768", 3, PF_T_START),
          "fewer than 3 'exited with status 768' lines");
    pid_t started[PU_MAX_PIDS], crashed[PU_MAX_PIDS];
    int n_started = pf_started_pids(app, started, PU_MAX_PIDS);
    pf_mline(line, app, "server (pid ");
    int n_crashed = pu_collect_pids(app->log, line, ") exited with status 768", crashed,
                                    PU_MAX_PIDS);
    CHECK(n_crashed >= 3, "%d crash lines", n_crashed);
    for (int i = 0; i < n_crashed; i++)
        CHECK(pu_has_pid(started, n_started, crashed[i]), "%d crashed, never started",
              (int)crashed[i]);
    CHECK(pu_alive(app->pid), "the manager died with its workers");
    pf_stop(app, PF_T_EXIT);
    CHECK(pu_count_lines(app->log, pf_mline(line, app, "dying: safe exit from signal TERM")) == 1,
          "no 'dying: safe exit from signal TERM'");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_start_three),
        T(test_single_process),
        T(test_negative_n),
        T(test_worker_killed),
        T(test_max_requests),
        T(test_crash_at_start),
    };
#undef T
    return cmocka_run_group_tests_name("process_lifecycle", tests, pf_group_setup, NULL);
}
