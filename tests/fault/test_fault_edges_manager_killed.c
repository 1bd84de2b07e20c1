/*
 * test_fault_edges_manager_killed.c -- fault injection at the pool's edges: the
 * manager SIGKILLed with idle and busy workers (docs/reliability.md R10), on worker_app
 * run as a real process tree, n = 8.
 *
 *   R10  the manager is SIGKILLed with 7 idle workers and a busy one, on a TCP address:
 *        the idle ones exit within 100 ms; the busy one lets go of the listening
 *        socket at once, finishes its byte-exact response and exits right after it
 *        ("safe exit: manager has died"); a new manager binds the same address at once
 *        and serves while the old busy worker is still finishing.
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

/* ---- R10: the manager SIGKILLed with idle and busy workers ---- */

#define R10_BODY 300000
#define R10_SLEEP_MS 2000

static void test_r10_manager_killed(void **state)
{
    pf_app_t *c = *state;
    pf_app_t app, next;
    char addr[64], log[PF_PATH_LEN], log2[PF_PATH_LEN], out[PF_PATH_LEN], query[64], line[PF_LINE_LEN];
    int port = edges_free_tcp_port();
    CHECK(port > 0, "no free TCP port");
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/log", c->dir);
    snprintf(log2, sizeof log2, "%s/log2", c->dir);
    snprintf(out, sizeof out, "%s/busy.response", c->dir);
    pid_t workers[N_WORKERS];
    pf_app_at(&app, c->dir, addr, log);
    pf_start_pool(&app, N_WORKERS, NULL, NULL, workers);
    unsigned long listen_ino = edges_first_socket_inode(app.pid);
    CHECK(listen_ino != 0, "no listening socket in the manager's descriptors");

    /* One worker busy for 2 s with a large body, half of it sent before the sleep. */
    snprintf(query, sizeof query, "body=%d&sleep_ms=%d", R10_BODY, R10_SLEEP_MS);
    pu_request_t busy_req;
    CHECK(pu_request_start(&busy_req, addr, query, out) == 0, "cannot start cgi-fcgi");
    char begin[96];
    snprintf(begin, sizeof begin, "): begin %s", query);
    double t_req = pf_now_ms();
    while (pu_count_containing(app.log, begin) < 1) {
        CHECK_LOG(pf_now_ms() - t_req < 3000, app.log, "the busy request did not begin");
        pf_tick();
    }
    double t_begin = pf_now_ms();
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
    double t_kill = pf_now_ms();
    CHECK(kill(app.pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    double idle_exit[N_WORKERS];
    int idle_status[N_WORKERS];
    int idle_done = 0, manager_reaped = 0;
    for (int i = 0; i < n_idle; i++)
        idle_exit[i] = -1;
    double released = -1;
    while (pf_now_ms() - t_kill < 3000) {
        int st;
        if (!manager_reaped && waitpid(app.pid, &st, WNOHANG) == app.pid)
            manager_reaped = 1;
        for (int i = 0; i < n_idle; i++) {
            if (idle_exit[i] >= 0)
                continue;
            pid_t got = waitpid(idle[i], &st, WNOHANG);
            if (got == idle[i] || (got < 0 && errno == ECHILD && !pu_exists(idle[i]))) {
                idle_exit[i] = pf_now_ms() - t_kill;
                idle_status[i] = got == idle[i] ? st : -1;
                idle_done++;
            }
        }
        if (released < 0 && !edges_holds_socket(busy, listen_ino))
            released = pf_now_ms() - t_kill;
        if (manager_reaped && idle_done == n_idle && released >= 0)
            break;
        pf_tick();
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
    double t_next = pf_now_ms();
    pf_app_at(&next, c->dir, addr, log2);
    pf_start_app(&next, (const char *const[]){"n_processes=8", NULL}, NULL);
    pu_request_t hello;
    char hello_out[PF_PATH_LEN];
    snprintf(hello_out, sizeof hello_out, "%s/hello.response", c->dir);
    while (pu_count_containing(next.log, "FastCGI: manager (pid ") < 1) {
        int st = 0;
        CHECK_LOG(waitpid(next.pid, &st, WNOHANG) == 0, next.log,
                  "the new manager exited at once (status 0x%x): address still in use?", st);
        CHECK_LOG(pf_now_ms() - t_next < 5000, next.log, "the new manager did not start");
        pf_tick();
    }
    double bound = pf_now_ms() - t_next;
    CHECK(pu_request_start(&hello, addr, "", hello_out) == 0, "cannot start cgi-fcgi");
    char *response = NULL;
    size_t len = 0;
    int rc = pu_request_finish(&hello, 5000, &response, &len);
    double t_served = pf_now_ms();
    int busy_alive_when_served = pu_alive(busy);
    pid_t served_by = pu_response_pid(response);
    free(response);
    pid_t next_kids[PU_MAX_PIDS];
    int n_next = pu_children(next.pid, next_kids, PU_MAX_PIDS);

    /* The busy request completes; the busy worker exits right after it. */
    double client_done = -1, busy_exit = -1;
    int client_status = -1, busy_status = -1;
    while (pf_now_ms() - t_kill < R10_SLEEP_MS + 5000 && (client_done < 0 || busy_exit < 0)) {
        int st;
        if (client_done < 0 && waitpid(busy_req.pid, &st, WNOHANG) == busy_req.pid) {
            client_done = pf_now_ms();
            client_status = st;
        }
        if (busy_exit < 0) {
            pid_t got = waitpid(busy, &st, WNOHANG);
            if (got == busy || (got < 0 && errno == ECHILD && !pu_exists(busy))) {
                busy_exit = pf_now_ms();
                busy_status = got == busy ? st : -1;
            }
        }
        pf_tick();
    }
    size_t body_len = 0;
    char *busy_response = pu_read_file(busy_req.out_path, &len);
    const char *body = pu_response_body(busy_response, len, &body_len);
    int exact = pu_body_is_pattern(body, body_len, R10_BODY);
    pid_t busy_header = pu_response_pid(busy_response);
    free(busy_response);

    pf_figure("R10", "idle_exit_max", idle_max, "ms");
    pf_figure("R10", "busy_listener_released", released, "ms");
    pf_figure("R10", "new_manager_spawned_after_kill", t_next - t_kill, "ms");
    pf_figure("R10", "new_manager_bound", bound, "ms");
    pf_figure("R10", "new_manager_first_response", t_served - t_next, "ms");
    if (client_done >= 0)
        pf_figure("R10", "busy_request_total", client_done - t_begin, "ms");
    if (client_done >= 0 && busy_exit >= 0)
        pf_figure("R10", "busy_exit_after_response", busy_exit - client_done, "ms");

    CHECK_LOG(manager_reaped, app.log, "the killed manager was not reaped");
    CHECK_LOG(idle_done == n_idle && idle_max <= 100 * PF_EXIT_SCALE, app.log,
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
    CHECK_LOG(pf_wait_ready(&next, N_WORKERS, 5000, NULL) >= 0, next.log, "the new pool is not full");
    pf_stop(&next, 3000);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_r10_manager_killed),
    };
#undef T
    /* PM_EDGES_FILTER=pattern runs only the matching tests (e.g. "test_r11*"). */
    pf_filter_from_env("PM_EDGES_FILTER");
    return cmocka_run_group_tests_name("fault_edges_manager_killed", tests, pf_group_setup_no_sigpipe, NULL);
}
