/*
 * test_process_reload.c -- HUP: to the manager of an idle pool, straight to a busy
 * worker, and to the manager during a slow request.
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

/* HUP while idle: TERM to every worker, all replaced; the manager, its pid file and
 * its title stay as they were. */
static void test_hup_idle(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], line[PF_LINE_LEN], title[256], title_after[256];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *params[] = {pid_param, NULL};
    pid_t w[3];
    pf_start_pool(app, 3, params, NULL, w);

    struct stat before, after;
    char *content = pu_read_file(app->pid_file, NULL);
    CHECK(content && stat(app->pid_file, &before) == 0, "no pid file");
    CHECK(pu_cmdline(app->pid, title, sizeof title) == 0, "no manager title");

    kill(app->pid, SIGHUP);
    CHECK(pu_wait_containing(app->log, pf_mline(line, app, "sending TERM to PIDs, "), 1, PF_T_LINE),
          "no 'sending TERM to PIDs' line");
    pid_t listed[8];
    int n = pf_term_list(app, listed, 8);
    CHECK(pu_same_pids(listed, n, w, 3), "TERM list is not the 3 workers");

    pid_t fresh[3];
    for (int i = 0; i < 3; i++) {
        CHECK(pf_wait_exit_line(app, w[i], 0), "old worker %d: no 'exited with status 0'",
              (int)w[i]);
        snprintf(line, sizeof line, "worker_app (pid %d): loop ended", (int)w[i]);
        CHECK(pu_count_lines(app->log, line) == 1, "idle worker's accept loop did not end");
        fresh[i] = pf_wait_started(app, 4 + i);
        CHECK(fresh[i] > 0 && !pu_has_pid(w, 3, fresh[i]), "no replacement %d", i + 1);
    }
    CHECK(pf_wait_children(app, fresh, 3, PF_T_LINE), "the pool is not the 3 new workers");
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
    CHECK(pu_has_pid(fresh, 3, pf_hello_request(app)), "request not served by a new worker");
    pf_stop(app, PF_T_EXIT);
}

/* HUP straight to a busy worker: its request completes byte-exact, then it logs
 * "safe exit after SIGHUP", exits 0, and is replaced. */
static void test_hup_busy_worker(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN], query[64];
    pid_t w;
    pf_start_pool(app, 1, NULL, NULL, &w);

    snprintf(query, sizeof query, "sleep_ms=1000&body=%d", SLOW_BODY);
    pu_request_t req;
    pf_start_request(app, &req, query);
    CHECK(pf_wait_begin(app, query) == w, "the worker did not take the request");
    kill(w, SIGHUP);
    CHECK(pf_finish_request(&req, SLOW_BODY) == w, "served by another worker");

    CHECK(pu_wait_line(app->log, pf_sline(line, w, "safe exit after SIGHUP"), 1, PF_T_LINE),
          "no 'safe exit after SIGHUP'");
    CHECK(pf_wait_exit_line(app, w, 0), "no 'exited with status 0'");
    CHECK(pf_wait_started(app, 2) > 0, "no replacement");
    CHECK(pu_count_containing(app->log, "safe exit after SIGTERM") == 0, "HUP taken for TERM");
    snprintf(line, sizeof line, "worker_app (pid %d): loop ended", (int)w);
    CHECK(pu_count_lines(app->log, line) == 0, "the busy worker left through accept");
    pf_stop(app, PF_T_EXIT);
}

/* HUP to the manager during a slow request: the busy worker (sent TERM) finishes
 * byte-exact and logs "safe exit after SIGTERM"; both workers are replaced. */
static void test_hup_manager_busy(void **state)
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

    kill(app->pid, SIGHUP);
    CHECK(pu_wait_containing(app->log, pf_mline(line, app, "sending TERM to PIDs, "), 1, PF_T_LINE),
          "no 'sending TERM to PIDs' line");
    pid_t listed[8];
    int n = pf_term_list(app, listed, 8);
    CHECK(pu_same_pids(listed, n, w, 2), "TERM list is not the 2 workers");
    CHECK(pf_wait_exit_line(app, idle, 0), "idle worker: no 'exited with status 0'");

    CHECK(pf_finish_request(&req, SLOW_BODY) == busy, "served by another worker");
    CHECK(pu_wait_line(app->log, pf_sline(line, busy, "safe exit after SIGTERM"), 1, PF_T_LINE),
          "busy worker: no 'safe exit after SIGTERM'");
    CHECK(pf_wait_exit_line(app, busy, 0), "busy worker: no 'exited with status 0'");
    pid_t fresh[2] = {pf_wait_started(app, 3), pf_wait_started(app, 4)};
    CHECK(fresh[0] > 0 && fresh[1] > 0, "workers not replaced");
    CHECK(pf_wait_children(app, fresh, 2, PF_T_LINE), "the pool is not the 2 new workers");
    CHECK(pu_alive(app->pid), "the manager died");
    pf_stop(app, PF_T_EXIT);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_hup_idle),
        T(test_hup_busy_worker),
        T(test_hup_manager_busy),
    };
#undef T
    return cmocka_run_group_tests_name("process_reload", tests, pf_group_setup, NULL);
}
