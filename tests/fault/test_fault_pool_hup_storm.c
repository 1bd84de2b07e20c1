/*
 * test_fault_pool_hup_storm.c -- fault injection on the pool itself: a HUP storm
 * (docs/reliability.md R4), on worker_app run as a real process tree, n = 8.
 *
 *   R4   1000 HUPs within 1 s: the manager survives and settles at exactly n live
 *        workers, no zombie; it still serves and stops cleanly.
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
#define R4_HUPS 1000
#define R4_WINDOW_MS 1000

static void test_r4_hup_storm(void **state)
{
    pf_app_t *app = *state;
    pid_t live[N_WORKERS];
    char line[PF_LINE_LEN];
    pf_start_pool(app, N_WORKERS, NULL, NULL, live);

    double t0 = pf_now_ms();
    int sent = 0;
    for (int i = 0; i < R4_HUPS; i++) {
        pf_sleep_until_ms(t0 + (double)i * R4_WINDOW_MS / R4_HUPS);
        sent += kill(app->pid, SIGHUP) == 0;
    }
    double storm = pf_now_ms() - t0;
    CHECK(sent == R4_HUPS, "only %d HUPs could be sent: the manager died", sent);
    CHECK(pu_alive(app->pid), "the manager died during the HUP storm");

    /* Settled: exactly n live children, no zombie, the same set for 500 ms. */
    double settled = -1, t_end = pf_now_ms();
    pid_t set[N_WORKERS];
    double stable_since = -1;
    while (pf_now_ms() - t_end < 10000) {
        pid_t kids[N_WORKERS];
        int ok = pf_wait_pool(app, N_WORKERS, NULL, 0, pf_now_ms(), 10000, kids, NULL) >= 0;
        CHECK(ok, "the pool did not settle at %d after the storm", N_WORKERS);
        if (stable_since < 0 || !pu_same_pids(kids, N_WORKERS, set, N_WORKERS)) {
            memcpy(set, kids, sizeof set);
            stable_since = pf_now_ms();
        } else if (pf_now_ms() - stable_since >= 500) {
            settled = stable_since - t_end;
            break;
        }
        pu_sleep_ms(5);
    }
    CHECK(settled >= 0, "the manager's children never stayed the same %d for 500 ms", N_WORKERS);
    CHECK(pu_alive(app->pid), "the manager died after the HUP storm");
    int zombies = 0;
    int alive = pf_children(app, NULL, &zombies);
    int term_lines = pu_count_containing(app->log, pf_mline(line, app, "sending TERM to PIDs, "));
    int started = pu_count_containing(app->log, ") started");

    pf_figure("R4", "hups_sent", sent, "count");
    pf_figure("R4", "storm_duration", storm, "ms");
    pf_figure("R4", "sending_term_lines", term_lines, "count");
    pf_figure("R4", "workers_started", started, "count");
    pf_figure("R4", "settle_after_storm", settled, "ms");
    pf_figure("R4", "live_workers_at_end", alive, "count");
    pf_figure("R4", "zombies_at_end", zombies, "count");

    CHECK(alive == N_WORKERS && zombies == 0, "at the end: %d live children, %d zombies", alive,
          zombies);
    CHECK(term_lines >= 1 && term_lines <= R4_HUPS, "%d 'sending TERM' lines", term_lines);
    /* Every worker of the final set is a fully working one. */
    char out[PF_PATH_LEN];
    snprintf(out, sizeof out, "%s/response", app->dir);
    char *resp = NULL;
    size_t len = 0;
    int rc = pu_request(app->sock, "", out, FS_T_EXIT, &resp, &len);
    pid_t served = pu_response_pid(resp);
    free(resp);
    CHECK(rc == 0 && pu_has_pid(set, N_WORKERS, served),
          "after the storm a request got rc %d, served by %d", rc, (int)served);
    pf_stop(app, FS_T_EXIT);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_r4_hup_storm),
    };
#undef T
    /* PM_FAULT_POOL_FILTER=pattern runs only the matching tests (e.g. "test_r5*"). */
    pf_filter_from_env("PM_FAULT_POOL_FILTER");
    return cmocka_run_group_tests_name("fault_pool_hup_storm", tests, pf_group_setup, NULL);
}
