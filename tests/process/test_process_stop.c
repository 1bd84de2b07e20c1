/*
 * test_process_stop.c -- TERM: with idle workers, during a request, and with workers
 * that ignore it (die_timeout).
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

#define SLOW_BODY 100000 /* bytes of a slow response, checked byte by byte */

/* TERM with idle workers: exit 0 within a second, pid file removed, nothing left, and
 * the manager's lines exactly as the original writes them. */
static void test_term_idle(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], prefix[PF_LINE_LEN], line[PF_LINE_LEN];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *params[] = {pid_param, NULL};
    pid_t w[3];
    pf_start_pool(app, 3, params, NULL, w);
    CHECK(pu_file_exists(app->pid_file), "no pid file");

    long long t0 = pu_now_ms();
    kill(app->pid, SIGTERM);
    CHECK(pf_wait_exit(app, PF_T_EXIT), "the manager did not exit");
    long long took = pu_now_ms() - t0;
    pf_check_exit_code(app, 0);
    CHECK(took < 1000, "exit took %lld ms", took);
    print_message("    TERM to exit: %lld ms\n", took);
    CHECK(!pu_file_exists(app->pid_file), "pid file left behind");
    for (int i = 0; i < 3; i++)
        CHECK(!pu_exists(w[i]), "worker %d left behind", (int)w[i]);

    /* The manager's lines, in order. */
    char *lines[16];
    pf_mline(prefix, app, "");
    int n = pu_lines_with_prefix(app->log, prefix, lines, 16);
    CHECK(n == 10, "%d manager lines, expected 10", n);
    CHECK(strcmp(lines[0], pf_mline(line, app, "initialized")) == 0, "line 1: %s", lines[0]);
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(lines[1 + i], pf_mline(line, app, "server (pid %d) started", (int)w[i])) == 0,
              "line %d: %s", 2 + i, lines[1 + i]);
    CHECK(strcmp(lines[4], pf_mline(line, app, "received signal TERM")) == 0, "line 5: %s",
          lines[4]);
    pid_t listed[8], exited[3];
    pf_mline(line, app, "sending TERM to PIDs, ");
    int n_listed = strncmp(lines[5], line, strlen(line)) == 0
                       ? pu_parse_pid_list(lines[5] + strlen(line), listed, 8)
                       : -1;
    CHECK(pu_same_pids(listed, n_listed, w, 3), "line 6: %s", lines[5]);
    for (int i = 0; i < 3; i++) {
        char want[PF_LINE_LEN];
        pf_mline(line, app, "server (pid ");
        size_t plen = strlen(line);
        exited[i] = strncmp(lines[6 + i], line, plen) == 0 ? atoi(lines[6 + i] + plen) : -1;
        pf_mline(want, app, "server (pid %d) exited with status 0", (int)exited[i]);
        CHECK(strcmp(lines[6 + i], want) == 0, "line %d: %s", 7 + i, lines[6 + i]);
    }
    CHECK(pu_same_pids(exited, 3, w, 3), "the reaped pids are not the workers");
    CHECK(strcmp(lines[9], pf_mline(line, app, "dying: safe exit from signal TERM")) == 0,
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
    pf_app_t *app = *state;
    char line[PF_LINE_LEN], query[64];
    const char *params[] = {"die_timeout=5", NULL};
    pid_t w[2];
    pf_start_pool(app, 2, params, NULL, w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    pf_start_request(app, &req, query);
    pid_t busy = pf_wait_begin(app, query);
    CHECK(pu_has_pid(w, 2, busy), "no worker took the request");

    long long t0 = pu_now_ms();
    kill(app->pid, SIGTERM);
    CHECK(pf_finish_request(&req, SLOW_BODY) == busy, "served by another worker");
    CHECK(pf_wait_exit(app, 6000), "the manager did not exit");
    long long took = pu_now_ms() - t0;
    pf_check_exit_code(app, 0);
    print_message("    TERM to exit with a 1 s request: %lld ms\n", took);
    CHECK(took < 4000, "exit took %lld ms: waited for die_timeout?", took);

    CHECK(pu_count_lines(app->log, pf_sline(line, busy, "safe exit after SIGTERM")) == 1,
          "busy worker: no 'safe exit after SIGTERM'");
    CHECK(pf_exit_lines(app, busy, 0) == 1, "busy worker: no 'exited with status 0'");
    CHECK(pu_count_lines(app->log, pf_mline(line, app, "dying: safe exit from signal TERM")) == 1,
          "no 'dying: safe exit from signal TERM'");
    CHECK(pu_count_containing(app->log, "wait timeout") == 0, "die_timeout expired");
    for (int i = 0; i < 2; i++)
        CHECK(!pu_exists(w[i]), "worker %d left behind", (int)w[i]);
}

/* Workers that ignore TERM: after die_timeout the manager SIGKILLs and reaps them,
 * logs "wait timeout" and exits 1. */
static void test_die_timeout(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN];
    const char *params[] = {"die_timeout=1", NULL};
    const char *env[] = {"WORKER_APP_BLOCK_TERM=1", NULL};
    pid_t w[2];
    pf_start_pool(app, 2, params, env, w);
    CHECK(pu_wait_containing(app->log, "): TERM and HUP blocked", 2, PF_T_LINE),
          "the workers did not block TERM");

    long long t0 = pu_now_ms();
    kill(app->pid, SIGTERM);
    CHECK(pf_wait_exit(app, PF_T_EXIT), "the manager did not exit");
    long long took = pu_now_ms() - t0;
    /* Right away: an unreaped worker would now be our zombie (we are the subreaper). */
    for (int i = 0; i < 2; i++)
        CHECK(!pu_exists(w[i]), "worker %d left behind (state %c)", (int)w[i],
              pu_proc_state(w[i]));
    pf_check_exit_code(app, 1);
    print_message("    TERM to exit with die_timeout=1: %lld ms\n", took);
    CHECK(took >= 900 && took < 3000, "exit after %lld ms, die_timeout is 1 s", took);
    CHECK(pu_count_lines(app->log, pf_mline(line, app, "wait timeout")) == 1, "no 'wait timeout'");
    CHECK(pu_count_lines(app->log, pf_mline(line, app, "dying: safe exit from signal TERM")) == 0,
          "claims a safe exit");
    CHECK(pu_count_containing(app->log, "safe exit after") == 0, "a worker saw TERM");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_term_idle),
        T(test_term_busy),
        T(test_die_timeout),
    };
#undef T
    return cmocka_run_group_tests_name("process_stop", tests, pf_group_setup, NULL);
}
