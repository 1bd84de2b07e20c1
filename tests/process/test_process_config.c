/*
 * test_process_config.c -- configuration: name=value parameters (titles, refused
 * values) and the pid file (written before the first fork, seen with strace).
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

/* name=value parameters reach pm_parameter: titles show in /proc; a refused one
 * stops the program with exit 2 and a message. */
static void test_parameters(void **state)
{
    pf_app_t *app = *state;
    const char *params[] = {"pm_title=pmtest-manager", "process_name=pmtest-worker",
                            "die_timeout=3", NULL};
    pid_t w[2];
    pf_start_pool(app, 2, params, NULL, w);
    char text[256];
    CHECK(pu_cmdline(app->pid, text, sizeof text) == 0 && strcmp(text, "pmtest-manager") == 0,
          "manager cmdline '%s'", text);
    CHECK(pu_comm(app->pid, text, sizeof text) == 0 && strcmp(text, "pmtest-manager") == 0,
          "manager comm '%s'", text);
    for (int i = 0; i < 2; i++) {
        CHECK(pu_cmdline(w[i], text, sizeof text) == 0 && strcmp(text, "pmtest-worker") == 0,
              "worker cmdline '%s'", text);
        CHECK(pu_comm(w[i], text, sizeof text) == 0 && strcmp(text, "pmtest-worker") == 0,
              "worker comm '%s'", text);
    }
    pf_stop(app, PF_T_EXIT);

    /* Refused parameters: each run gets its own socket and log. */
    static const char *const refused[] = {"no_such_parameter=1", "n_processes=abc",
                                          "die_timeout=-5x", "start_delay=1.5s"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(app->sock, sizeof app->sock, "%s/sock-%zu", app->dir, i);
        snprintf(app->log, sizeof app->log, "%s/log-%zu", app->dir, i);
        app->reaped = 0;
        const char *bad[] = {"n_processes=1", refused[i], NULL};
        pf_start_app(app, bad, NULL);
        CHECK(pf_wait_exit(app, PF_T_EXIT), "'%s' did not stop the program", refused[i]);
        pf_check_exit_code(app, 2);
        CHECK(pu_count_containing(app->log, refused[i]) == 1, "no message naming '%s'",
              refused[i]);
        CHECK(pu_count_containing(app->log, "FastCGI:") == 0, "managed despite '%s'",
              refused[i]);
    }
}

/* pid_fname: the file holds the manager's pid and is written before the first fork
 * (seen in the system calls, traced with strace). */
static void test_pid_file(void **state)
{
#ifndef STRACE
    (void)state;
    skip();
#else
    pf_app_t *app = *state;
    char trace[PU_PATH_MAX + 8], pid_param[PU_PATH_MAX + 16], line[PF_LINE_LEN];
    snprintf(trace, sizeof trace, "%s/trace", app->dir);
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *argv[] = {STRACE, "-f", "-qq", "-s", "256", "-o", trace,
                          "-e", "trace=%file,%process,write,pwrite64",
                          WORKER_APP, app->sock, "n_processes=2", pid_param, NULL};
    /* LeakSanitizer cannot work under ptrace (PM_SANITIZER=address builds). */
    const char *env[] = {"ASAN_OPTIONS=detect_leaks=0", NULL};
    pid_t tracer = pu_spawn(argv, env, app->log);
    CHECK(tracer > 0, "cannot start strace");

    /* The manager is strace's child; its pid comes from its first line. */
    long long deadline = pu_now_ms() + PF_T_START;
    while (pu_collect_pids(app->log, "FastCGI: manager (pid ", "): initialized", &app->pid, 1) <
           1) {
        CHECK(pu_now_ms() < deadline, "the manager never logged initialized");
        pu_sleep_ms(5);
    }
    CHECK(pf_wait_started(app, 2) > 0, "the workers did not start");
    char *content = pu_read_file(app->pid_file, NULL);
    snprintf(line, sizeof line, "%d\n", (int)app->pid);
    CHECK(content && strcmp(content, line) == 0, "pid file holds '%s', expected '%d\\n'",
          content ? content : "(none)", (int)app->pid);
    free(content);

    kill(app->pid, SIGTERM);
    int status = 0;
    CHECK(pu_wait_exit(tracer, PF_T_EXIT, &status), "the manager did not exit");
    /* strace exits with its tracee's status. */
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "manager's wait status %d", status);
    CHECK(!pu_file_exists(app->pid_file), "pid file left behind");

    /* In the trace, before the manager's first fork: the pid file is created (or
     * renamed into place) and the pid is written. */
    char *text = pu_read_file(trace, NULL);
    CHECK(text != NULL, "no trace");
    char quoted_path[PU_PATH_MAX + 4], written[32];
    snprintf(quoted_path, sizeof quoted_path, "\"%s\"", app->pid_file);
    snprintf(written, sizeof written, ", \"%d\\n\", ", (int)app->pid);
    int created = 0, wrote = 0, forked = 0;
    for (char *l = strtok(text, "\n"); l && !forked; l = strtok(NULL, "\n")) {
        if (atoi(l) != app->pid)
            continue;
        const char *call = l + strspn(l, "0123456789 ");
        if (!strncmp(call, "fork(", 5) || !strncmp(call, "vfork(", 6) ||
            !strncmp(call, "clone(", 6) || !strncmp(call, "clone3(", 7))
            forked = 1;
        else if (strstr(call, quoted_path) &&
                 (strstr(call, "O_CREAT") || !strncmp(call, "rename", 6) ||
                  !strncmp(call, "link", 4)))
            created = 1;
        else if ((!strncmp(call, "write(", 6) || !strncmp(call, "pwrite64(", 9)) &&
                 strstr(call, written))
            wrote = 1;
    }
    free(text);
    CHECK(forked, "no fork in the trace");
    CHECK(created, "pid file not created before the first fork");
    CHECK(wrote, "pid not written before the first fork");
#endif
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_parameters),
        T(test_pid_file),
    };
#undef T
    return cmocka_run_group_tests_name("process_config", tests, pf_group_setup, NULL);
}
