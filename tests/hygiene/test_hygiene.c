/* What a worker inherits from the host, and what the manager leaves alone: the
 * host's signal mask and dispositions come back (SIGCHLD ignored or handled by the
 * host included), no descriptor of the manager's leaks into a worker, the host's own
 * child is never reaped or signalled (not even once it has exited, when it is the
 * exited child the kernel names first), and the init hooks run where they should. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_util.h"

/* The line of text starting with prefix, copied into out. */
static void field(const char *text, const char *prefix, char *out, size_t size)
{
    const char *p = strstr(text, prefix);
    assert_non_null(p);
    size_t n = strcspn(p, "\n");
    assert_true(n < size);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Waits until the manager has `children` children of which `reports` wrote a report. */
static int wait_for_workers(const char *dir, pid_t manager, int children, int reports, pid_t *workers)
{
    for (int tries = 0; tries < 300; tries++) {
        int count = pu_children(manager, workers, PU_MAX_PIDS);
        int reported = 0;
        for (int i = 0; i < count; i++) {
            char path[PU_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/worker.%d", dir, (int)workers[i]);
            reported += pu_file_exists(path);
        }
        if (count == children && reported == reports)
            return 1;
        pu_sleep_ms(10);
    }
    return 0;
}

static pid_t running_manager; /* killed by teardown if a test stops early */

static int teardown(void **state)
{
    (void)state;
    if (running_manager > 0)
        pu_kill_tree(running_manager);
    running_manager = 0;
    return 0;
}

/* host_child_exits: the host's child is killed before a worker is, and stays a
 * zombie the manager must step around. */
static void run_host(const char *chld_mode, int host_child_exits)
{
    char dir[PU_PATH_MAX], path[PU_PATH_MAX + 32], log_path[PU_PATH_MAX + 32];
    assert_int_equal(pu_make_temp_dir(dir, sizeof dir, "hygiene"), 0);
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    const char *argv[] = {HOST_APP, dir, "2", chld_mode, NULL};
    const char *env[] = {"HOST_APP_NOTIFY_STDIO=1", NULL}; /* log lines through stdio */
    pid_t manager = pu_spawn(argv, env, log_path);
    assert_true(manager > 0);
    running_manager = manager;
    pid_t workers[PU_MAX_PIDS];
    assert_true(wait_for_workers(dir, manager, 3, 2, workers)); /* 2 workers + the host's child */

    snprintf(path, sizeof path, "%s/host", dir);
    char *host = pu_read_file(path, NULL);
    assert_non_null(host);
    char host_fds[256], host_mask[256], child_line[64];
    field(host, "fds:", host_fds, sizeof host_fds);
    field(host, "SigBlk:", host_mask, sizeof host_mask);
    field(host, "child:", child_line, sizeof child_line);
    pid_t host_child = atoi(child_line + strlen("child:"));
    assert_true(pu_alive(host_child));

    int checked = 0;
    for (int i = 0; i < 3; i++) {
        if (workers[i] == host_child)
            continue;
        snprintf(path, sizeof path, "%s/worker.%d", dir, (int)workers[i]);
        char *report = pu_read_file(path, NULL);
        char fds[256], mask[256], chld[64], usr2[64], expect[64];
        field(report, "fds:", fds, sizeof fds);
        field(report, "SigBlk:", mask, sizeof mask);
        field(report, "chld:", chld, sizeof chld);
        field(report, "usr2:", usr2, sizeof usr2);
        assert_string_equal(fds, host_fds);   /* R12: only the host's descriptors */
        assert_string_equal(mask, host_mask); /* R13: the host's signal mask */
        snprintf(expect, sizeof expect, "chld: %s", chld_mode);
        assert_string_equal(chld, expect);    /* B12: the host's SIGCHLD disposition */
        assert_string_equal(usr2, "usr2: handler");
        free(report);
        checked++;
    }
    assert_int_equal(checked, 2);

    /* Hooks: manager_init once in the manager, server_init in each worker. */
    snprintf(path, sizeof path, "%s/hooks", dir);
    char line[160];
    snprintf(line, sizeof line, "manager_init %d", (int)manager);
    assert_int_equal(pu_count_lines(path, line), 1);
    assert_int_equal(pu_count_containing(path, "server_init "), 2);

    if (host_child_exits) {
        kill(host_child, SIGKILL);
        for (int tries = 0; tries < 300 && pu_proc_state(host_child) != 'Z'; tries++)
            pu_sleep_ms(10);
        assert_int_equal(pu_proc_state(host_child), 'Z');
    }
    /* A worker killed: reaped with its real status even when the host ignores
     * SIGCHLD (or its exited child is the one the kernel reports), and replaced. */
    pid_t victim = workers[0] == host_child ? workers[1] : workers[0];
    kill(victim, SIGKILL);
    snprintf(line, sizeof line, "FastCGI: manager (pid %d): server (pid %d) exited with status 9",
             (int)manager, (int)victim);
    if (!pu_wait_line(log_path, line, 1, 3000)) {
        char *log = pu_read_file(log_path, NULL);
        fail_msg("missing \"%s\" in:\n%s", line, log);
    }
    pid_t now_running[PU_MAX_PIDS];
    assert_true(wait_for_workers(dir, manager, 3, 2, now_running)); /* replaced */
    /* R14: never reaped, never signalled */
    if (host_child_exits)
        assert_int_equal(pu_proc_state(host_child), 'Z');
    else
        assert_true(pu_alive(host_child));

    kill(manager, SIGTERM);
    int status;
    assert_true(pu_wait_exit(manager, 5000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* Stopping a worker released only its inherited listeners still open as such:
     * the file that took the admin socket's number is untouched. */
    for (int i = 0; i < 3; i++) {
        if (workers[i] == host_child || workers[i] == victim)
            continue;
        snprintf(path, sizeof path, "%s/worker.%d", dir, (int)workers[i]);
        assert_int_equal(pu_count_lines(path, "fd 11 after stop: file"), 1);
    }
    /* Host output buffered before pm_manage is written once, not once per worker;
     * so is the notify hook's, buffered in the manager when the victim's
     * replacement was forked. */
    assert_int_equal(pu_count_lines(log_path, "host output"), 1);
    assert_int_equal(pu_count_lines(log_path, line), 1);
    /* The host's child outlives the manager untouched (now a child of init). */
    if (!host_child_exits)
        assert_true(pu_alive(host_child));
    kill(host_child, SIGKILL);
    free(host);
    assert_int_equal(pu_sanitizer_reports(log_path), 0);
    pu_remove_temp_dir(dir);
}

static void test_host_handles_sigchld(void **state)
{
    (void)state;
    run_host("handler", 0);
}

static void test_host_ignores_sigchld(void **state)
{
    (void)state;
    run_host("ign", 0);
}

static void test_host_child_exits(void **state)
{
    (void)state;
    run_host("handler", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_host_handles_sigchld, teardown),
        cmocka_unit_test_teardown(test_host_ignores_sigchld, teardown),
        cmocka_unit_test_teardown(test_host_child_exits, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
