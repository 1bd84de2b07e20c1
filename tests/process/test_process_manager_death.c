/*
 * test_process_manager_death.c -- the manager SIGKILLed: idle workers are gone within
 * 100 ms, a busy one finishes its response first.
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

/* The one speed requirement: idle workers of a SIGKILLed manager are gone by then
 * (under ASan, each exit also runs LeakSanitizer's scan: PF_EXIT_SCALE). */
#define ORPHAN_BOUND_MS ((long long)(100 * PF_EXIT_SCALE))
#define SLOW_BODY 100000 /* bytes of a slow response, checked byte by byte */

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
    pf_app_t *app = *state;
    pid_t w[3];
    pf_start_pool(app, 3, NULL, NULL, w);

    long long t0 = pu_now_ms();
    kill(app->pid, SIGKILL);
    long long worst = wait_all_gone(w, 3, t0, 2000);
    CHECK(pf_wait_exit(app, PF_T_EXIT) && WIFSIGNALED(app->status), "manager not killed");
    print_message("    last idle orphan gone after %lld ms\n", worst);
    CHECK(worst >= 0, "idle workers of a dead manager live on");
    CHECK(worst <= ORPHAN_BOUND_MS, "last idle worker gone after %lld ms", worst);
}

/* Manager SIGKILLed with one busy worker: the idle one goes within 100 ms, the busy
 * one completes its response, logs "safe exit: manager has died" and exits 0. */
static void test_manager_killed_busy(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN], query[64];
    pid_t w[2];
    pf_start_pool(app, 2, NULL, NULL, w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    pf_start_request(app, &req, query);
    pid_t busy = pf_wait_begin(app, query);
    CHECK(pu_has_pid(w, 2, busy), "no worker took the request");
    pid_t idle = busy == w[0] ? w[1] : w[0];

    long long t0 = pu_now_ms();
    kill(app->pid, SIGKILL);
    long long worst = wait_all_gone(&idle, 1, t0, 2000);
    print_message("    idle orphan gone after %lld ms\n", worst);
    CHECK(worst >= 0 && worst <= ORPHAN_BOUND_MS, "idle worker gone after %lld ms", worst);
    CHECK(pu_alive(busy), "the busy worker died with its manager");

    CHECK(pf_finish_request(&req, SLOW_BODY) == busy, "served by another worker");
    CHECK(pu_wait_line(app->log, pf_sline(line, busy, "safe exit: manager has died"), 1, PF_T_LINE),
          "no 'safe exit: manager has died'");
    int status = 0;
    /* The orphan is our child now (subreaper). */
    CHECK(pu_wait_exit(busy, PF_T_EXIT, &status), "the busy worker did not exit");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "busy worker's wait status %d",
          status);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_manager_killed_idle),
        T(test_manager_killed_busy),
    };
#undef T
    return cmocka_run_group_tests_name("process_manager_death", tests, pf_group_setup, NULL);
}
