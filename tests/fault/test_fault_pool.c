/*
 * test_fault_pool.c -- fault injection on the pool itself (docs/reliability.md R1, R2, R4,
 * R5, R6, R7, R8, R12), on worker_app run as a real process tree, n = 8.
 *
 *   R1   1000 SIGKILLs to random workers, one every 60 ms (60 s): after each the
 *        manager has n live children again, p99 of kill -> n live children < 50 ms;
 *        0 zombies among its children at the end; its fd count unchanged and its
 *        VmRSS grown by < 64 KiB (both from a baseline taken after the first 20 kills,
 *        past the allocator's warm-up; the start figures are printed too); exactly
 *        one "exited with status 9" line per kill. Under ASan the manager runs with
 *        the allocator quarantine off (here and in R12), which otherwise grows VmRSS
 *        by design.
 *   R2   all n workers SIGKILLed at once, 200 rounds: every round back to n live,
 *        new children (the dead ones reaped) within 100 ms; one line per death.
 *   R4   1000 HUPs within 1 s: the manager survives and settles at exactly n live
 *        workers, no zombie; it still serves and stops cleanly.
 *   R5   TERM with all workers idle: exit 0 within 200 ms, pid file removed, no
 *        worker left (not even as a zombie).
 *   R6   TERM during a 2 s request (body=100000&sleep_ms=2000), die_timeout 5: the
 *        response is complete and byte-exact, the manager exits 0 within 2.3 s.
 *   R7   workers block TERM (WORKER_APP_BLOCK_TERM=1), die_timeout 2: the manager
 *        exits 1 at 2 s +- 0.1 s after the TERM, logs "wait timeout", and every worker
 *        pid is gone.
 *   R8   the application crashes at start (WORKER_APP_CRASH_AT_START=1) for 60 s with
 *        the default backoff: forks <= n + 60 after the first burst of n; manager CPU
 *        time (utime+stime) < 5 % of the wall time; TERM honoured within 200 ms.
 *   R12  10^4 respawns (crash at start, min_uptime=0: no backoff): the manager's
 *        descriptors are the very same before and after, and none is a pidfd (the
 *        manager holds no descriptor per worker). Each set is taken with the manager
 *        stopped (SIGSTOP) and every child exited (unreaped), retried until all n
 *        slots are filled, so that no respawn races the count.
 *
 * Every time is taken from CLOCK_MONOTONIC while polling /proc (or waitpid, for the
 * manager's own exit) every 1 ms, never from log lines. Each figure is printed as
 * "FIGURE <scenario> <name> <value> <unit>" and appended to $PM_FIGURES_FILE when it
 * is set.
 *
 * PM_FAULT_POOL_FILTER=<cmocka pattern> (e.g. "test_r5_*") runs only matching tests.
 *
 * The test process is a child subreaper: workers orphaned by their manager become
 * its children, so a worker left behind is seen (as our child, or our zombie).
 */
#include <dirent.h>
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_util.h"

#ifndef WORKER_APP
#error "WORKER_APP must name the worker_app executable"
#endif

/* Built with AddressSanitizer (PM_SANITIZER=address): see test_r1_random_sigkills. */
#if defined(__SANITIZE_ADDRESS__)
#define PM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PM_ASAN 1
#endif
#endif
#ifndef PM_ASAN
#define PM_ASAN 0
#endif

#define N_WORKERS 8
#define PATH_LEN (PU_PATH_MAX + 64)
#define LINE_LEN 512

/* Generous bounds for what is not a pass criterion (start-up, log lines). */
#define T_START 10000
#define T_LINE 5000
#define T_EXIT 10000

/* ---- the pass criteria (docs/reliability.md) ---- */
#define R1_KILLS 1000
#define R1_PERIOD_MS 60 /* 1000 kills over 60 s */
#define R1_P99_MS 50.0
#define R1_GROWTH_KIB 64
#define R1_WARMUP_KILLS 20 /* RSS/fd baseline after these: allocator and page warm-up */
#define R2_ROUNDS 200
#define R2_BOUND_MS 100.0
#define R4_HUPS 1000
#define R4_WINDOW_MS 1000
#define R5_BOUND_MS 200.0
#define R6_SLEEP_MS 2000
#define R6_BODY 100000
#define R6_BOUND_MS 2300.0
#define R7_DIE_TIMEOUT_MS 2000.0
#define R7_TOLERANCE_MS 100.0
#define R8_RUN_MS 60000
#define R8_EXTRA_FORKS 60
#define R8_CPU_PERCENT 5.0
#define R8_TERM_MS 200.0
#define R12_RESPAWNS 10000

/* ---- clock, figures ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_1ms(void)
{
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleeps until the monotonic time t (ms, as now_ms). */
static void sleep_until(double t)
{
    double left = t - now_ms();
    if (left <= 0)
        return;
    struct timespec ts = {(time_t)(left / 1e3), (long)((left - (double)(time_t)(left / 1e3) * 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* "FIGURE <scenario> <name> <value> <unit>" to stdout and to $PM_FIGURES_FILE. */
static void figure(const char *scenario, const char *name, double value, const char *unit)
{
    char line[256];
    if (value == (double)(long long)value)
        snprintf(line, sizeof line, "FIGURE %s %s %lld %s\n", scenario, name, (long long)value, unit);
    else
        snprintf(line, sizeof line, "FIGURE %s %s %.3f %s\n", scenario, name, value, unit);
    fputs(line, stdout);
    fflush(stdout);
    const char *path = getenv("PM_FIGURES_FILE");
    if (path && *path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fputs(line, f);
            fclose(f);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0..100) of v[0..n), sorted in place. */
static double percentile(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int rank = (int)((p / 100.0) * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the application under test ---- */

typedef struct app {
    char dir[PU_PATH_MAX];
    char sock[PATH_LEN];
    char log[PATH_LEN];
    char pid_file[PATH_LEN];
    pid_t pid;  /* the manager */
    int reaped; /* its wait status is in status */
    int status;
} app_t;

static app_t *g_app; /* the running test's, whose log a failed check shows */

static void print_log_tail(const char *path, size_t max_bytes)
{
    size_t len = 0;
    char *text = pu_read_file(path, &len);
    if (!text) {
        print_error("(no log at %s)\n", path);
        return;
    }
    const char *from = text;
    if (len > max_bytes) {
        from = text + len - max_bytes;
        const char *nl = strchr(from, '\n');
        if (nl)
            from = nl + 1;
    }
    print_error("---- %s (last %zu bytes of %zu) ----\n%s---- end of log ----\n", path,
                (size_t)(len - (size_t)(from - text)), len, from);
    free(text);
}

static void check_failed(const char *expr, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    print_error("%s:%d: check failed: %s\n  ", file, line, expr);
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    if (g_app)
        print_log_tail(g_app->log, 4000);
    _fail(file, line);
}

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond))                                                      \
            check_failed(#cond, __FILE__, __LINE__, __VA_ARGS__);          \
    } while (0)

static const char *mline(char *buf, const app_t *app, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(buf, LINE_LEN, "FastCGI: manager (pid %d): ", (int)app->pid);
    va_start(ap, fmt);
    vsnprintf(buf + n, LINE_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

/* Starts worker_app with n_processes=N_WORKERS plus params (NULL-terminated) and env
 * ("NAME=value", NULL-terminated, may be NULL). */
static void start_app(app_t *app, const char *const params[], const char *const env[])
{
    static char n_param[32];
    const char *argv[32] = {WORKER_APP, app->sock, n_param};
    int argc = 3;
    snprintf(n_param, sizeof n_param, "n_processes=%d", N_WORKERS);
    for (int i = 0; params && params[i] && argc < 31; i++)
        argv[argc++] = params[i];
    argv[argc] = NULL;
    app->pid = pu_spawn(argv, env, app->log);
    CHECK(app->pid > 0, "cannot start %s", WORKER_APP);
}

/* The manager's children: live ones into live[] (may be NULL), zombies counted.
 * The number of live children, or -1 if the manager's /proc entry is gone. */
static int manager_children(const app_t *app, pid_t *live, int *zombies)
{
    pid_t kids[PU_MAX_PIDS];
    int n = pu_children(app->pid, kids, PU_MAX_PIDS);
    if (n < 0)
        return -1;
    int alive = 0, dead = 0;
    for (int i = 0; i < n; i++) {
        char st = pu_proc_state(kids[i]);
        if (st == 'Z' || st == 'X')
            dead++;
        else if (st != 0) {
            if (live)
                live[alive] = kids[i];
            alive++;
        }
    }
    if (zombies)
        *zombies = dead;
    return alive;
}

/* Waits (1 ms polls) until the manager has exactly N_WORKERS live children, no
 * zombie, and none of them in excluded[0..n_excl). Returns the ms it took from
 * `since`, or -1 after timeout_ms. The children go to live[] when non-NULL; when
 * dead_ms is non-NULL it gets the ms from `since` until the kernel had finished
 * every excluded process (each a zombie or gone): the part of the time that is the
 * dying processes' own exit, before the manager can know of it. */
static double wait_pool_ex(const app_t *app, const pid_t *excluded, int n_excl, double since,
                           double timeout_ms, pid_t *live, double *dead_ms)
{
    pid_t kids[PU_MAX_PIDS];
    double dead_at = -1;
    for (;;) {
        int zombies = 0;
        if (dead_ms && dead_at < 0) {
            int running = 0;
            for (int i = 0; i < n_excl && !running; i++)
                running = pu_alive(excluded[i]);
            if (!running)
                dead_at = now_ms();
        }
        int alive = manager_children(app, kids, &zombies);
        double t = now_ms();
        if (alive == N_WORKERS && zombies == 0) {
            int clean = 1;
            for (int i = 0; i < alive && clean; i++)
                clean = !pu_has_pid(excluded, n_excl, kids[i]);
            if (clean) {
                if (live)
                    memcpy(live, kids, sizeof(pid_t) * N_WORKERS);
                if (dead_ms)
                    *dead_ms = (dead_at < 0 ? t : dead_at) - since;
                return t - since;
            }
        }
        if (t - since > timeout_ms)
            return -1;
        sleep_1ms();
    }
}

static double wait_pool(const app_t *app, const pid_t *excluded, int n_excl, double since,
                        double timeout_ms, pid_t *live)
{
    return wait_pool_ex(app, excluded, n_excl, since, timeout_ms, live, NULL);
}

/* Starts the app and waits for the manager's "initialized" and n workers each
 * initialized (idle in accept), their pids in workers[]. */
static void start_pool(app_t *app, const char *const params[], const char *const env[],
                       pid_t *workers)
{
    char line[LINE_LEN];
    start_app(app, params, env);
    CHECK(pu_wait_line(app->log, mline(line, app, "initialized"), 1, T_START),
          "manager never logged initialized");
    CHECK(wait_pool(app, NULL, 0, now_ms(), T_START, workers) >= 0, "the pool never reached %d",
          N_WORKERS);
    for (int i = 0; i < N_WORKERS; i++) {
        snprintf(line, sizeof line, "FastCGI: server (pid %d): initialized", (int)workers[i]);
        CHECK(pu_wait_line(app->log, line, 1, T_START), "worker %d never initialized",
              (int)workers[i]);
    }
}

/* Polls waitpid every 1 ms for the manager's exit: ms from `since`, or -1 if it has
 * not exited within timeout_ms. */
static double wait_manager_exit(app_t *app, double since, double timeout_ms)
{
    for (;;) {
        pid_t got = waitpid(app->pid, &app->status, WNOHANG);
        double t = now_ms();
        if (got == app->pid) {
            app->reaped = 1;
            return t - since;
        }
        if (got < 0 && errno != EINTR)
            return -1;
        if (t - since > timeout_ms)
            return -1;
        sleep_1ms();
    }
}

/* TERM, and the manager must exit 0 (clean-up of a test whose subject is elsewhere). */
static void stop_app(app_t *app)
{
    kill(app->pid, SIGTERM);
    CHECK(wait_manager_exit(app, now_ms(), T_EXIT) >= 0, "manager did not exit after TERM");
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 0,
          "manager's wait status after TERM is 0x%x, expected exit 0", app->status);
}

/* ---- /proc figures of the manager ---- */

static int fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return -1;
    const char *p = strstr(text, "\nVmRSS:");
    long kib = p ? strtol(p + 7, NULL, 10) : -1;
    free(text);
    return kib;
}

/* utime + stime of pid in seconds, or -1. */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return -1;
    /* After "pid (comm) ": state is field 3, utime 14, stime 15. */
    char *p = strrchr(text, ')');
    unsigned long long utime = 0, stime = 0;
    int ok = p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                         &stime) == 2;
    free(text);
    return ok ? (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* Counts the lines of a growing log that contain a needle, reading only what was
 * appended since the last call. */
typedef struct tail {
    const char *path;
    const char *needle;
    off_t offset;
    char carry[LINE_LEN]; /* an incomplete last line */
    size_t carry_len;
    long count;
} tail_t;

static long tail_count(tail_t *t)
{
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return t->count;
    char buf[65536];
    for (;;) {
        ssize_t got = pread(fd, buf, sizeof buf, t->offset);
        if (got <= 0)
            break;
        t->offset += got;
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                if (t->carry_len < sizeof t->carry - 1)
                    t->carry[t->carry_len++] = buf[i];
                continue;
            }
            t->carry[t->carry_len] = '\0';
            t->count += strstr(t->carry, t->needle) != NULL;
            t->carry_len = 0;
        }
    }
    close(fd);
    return t->count;
}

/* Checks that the "server (pid V) exited with status <status>" lines of the log are
 * exactly the deaths in pids[0..n) (a pid may repeat if it was reused). */
static void check_one_line_per_death(const app_t *app, pid_t *pids, int n, int status)
{
    char before[LINE_LEN], after[64];
    mline(before, app, "server (pid ");
    snprintf(after, sizeof after, ") exited with status %d", status);
    pid_t *logged = calloc((size_t)n + 64, sizeof *logged);
    CHECK(logged != NULL, "out of memory");
    int n_logged = pu_collect_pids(app->log, before, after, logged, n + 64);
    qsort(pids, (size_t)n, sizeof *pids, cmp_pid);
    qsort(logged, (size_t)n_logged, sizeof *logged, cmp_pid);
    int missing = 0, extra = 0;
    for (int i = 0, j = 0; i < n || j < n_logged;) {
        if (j >= n_logged || (i < n && pids[i] < logged[j])) {
            if (missing++ < 5)
                print_error("killed pid %d has no 'exited with status %d' line\n", (int)pids[i],
                            status);
            i++;
        } else if (i >= n || logged[j] < pids[i]) {
            if (extra++ < 5)
                print_error("pid %d logged 'exited with status %d' but was not killed (or "
                            "twice)\n", (int)logged[j], status);
            j++;
        } else {
            i++;
            j++;
        }
    }
    free(logged);
    CHECK(n_logged == n && missing == 0 && extra == 0,
          "%d deaths, %d 'exited with status %d' lines (%d missing, %d extra)", n, n_logged,
          status, missing, extra);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    app_t *app = calloc(1, sizeof *app);
    if (!app || pu_make_temp_dir(app->dir, sizeof app->dir, "fault-pool") < 0) {
        free(app);
        return -1;
    }
    snprintf(app->sock, sizeof app->sock, "%s/sock", app->dir);
    snprintf(app->log, sizeof app->log, "%s/log", app->dir);
    snprintf(app->pid_file, sizeof app->pid_file, "%s/app.pid", app->dir);
    g_app = app;
    *state = app;
    return 0;
}

/* Fails on a sanitizer report in the log, kills whatever is left, removes the dir. */
static int teardown(void **state)
{
    app_t *app = *state;
    int reports = pu_sanitizer_reports(app->log);
    if (reports > 0) {
        print_error("sanitizer reports in %s:\n", app->log);
        print_log_tail(app->log, 20000);
    }
    pu_kill_children();
    pu_remove_temp_dir(app->dir);
    g_app = NULL;
    free(app);
    return reports > 0 ? -1 : 0;
}

/* ---- R1 ---- */

/* Under ASan every free goes to a quarantine (256 MB by default) that holds it back
 * to catch use after free, so VmRSS grows with any allocation churn however well the
 * memory is managed. Where VmRSS is measured (R1, R12) the quarantine is turned off
 * with this "ASAN_OPTIONS=..." entry (leaks are still reported at the manager's exit). */
static const char *asan_no_quarantine(void)
{
    static char entry[1024];
    const char *opts = getenv("ASAN_OPTIONS");
    snprintf(entry, sizeof entry,
             "ASAN_OPTIONS=%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
             opts ? opts : "", opts && *opts ? ":" : "");
    return entry;
}

static void test_r1_random_sigkills(void **state)
{
    app_t *app = *state;
    pid_t live[N_WORKERS];
    static pid_t victims[R1_KILLS];
    static double took[R1_KILLS], exit_part[R1_KILLS];
    const char *params[] = {"die_timeout=5", NULL};
    const char *env[] = {asan_no_quarantine(), NULL};
    start_pool(app, params, PM_ASAN ? env : NULL, live);
    figure("R1", "asan_quarantine_off", PM_ASAN, "bool");

    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    printf("R1: random seed %u\n", seed);
    srand(seed);
    int fd_start = fd_count(app->pid);
    long rss_start = rss_kib(app->pid);
    int fd_base = -1;
    long rss_base = -1;
    int slow = 0;
    double t0 = now_ms();
    for (int i = 0; i < R1_KILLS; i++) {
        sleep_until(t0 + (double)i * R1_PERIOD_MS);
        if (i == R1_WARMUP_KILLS) {
            fd_base = fd_count(app->pid);
            rss_base = rss_kib(app->pid);
        }
        pid_t victim = live[rand() % N_WORKERS];
        victims[i] = victim;
        double killed = now_ms();
        CHECK(kill(victim, SIGKILL) == 0, "kill %d: %s", (int)victim, strerror(errno));
        took[i] = wait_pool_ex(app, &victim, 1, killed, 5000, live, &exit_part[i]);
        CHECK(took[i] >= 0, "kill %d of %d (pid %d): the pool is not back to %d after 5 s", i + 1,
              R1_KILLS, (int)victim, N_WORKERS);
        slow += took[i] >= R1_P99_MS;
    }
    double elapsed = now_ms() - t0;

    int zombies = 0;
    int alive = manager_children(app, NULL, &zombies);
    int fd_end = fd_count(app->pid);
    long rss_end = rss_kib(app->pid);
    double mean = 0;
    for (int i = 0; i < R1_KILLS; i++)
        mean += took[i] / R1_KILLS;
    double p50 = percentile(took, R1_KILLS, 50), p99 = percentile(took, R1_KILLS, 99);
    double max = took[R1_KILLS - 1];
    double exit_p99 = percentile(exit_part, R1_KILLS, 99);
    double exit_max = exit_part[R1_KILLS - 1];

    figure("R1", "kills", R1_KILLS, "count");
    figure("R1", "duration", elapsed / 1000.0, "s");
    figure("R1", "recovery_mean", mean, "ms");
    figure("R1", "recovery_p50", p50, "ms");
    figure("R1", "recovery_p99", p99, "ms");
    figure("R1", "recovery_max", max, "ms");
    figure("R1", "recoveries_over_50ms", slow, "count");
    figure("R1", "victim_exit_p99", exit_p99, "ms");
    figure("R1", "victim_exit_max", exit_max, "ms");
    figure("R1", "zombies_at_end", zombies, "count");
    figure("R1", "fd_count_start", fd_start, "fds");
    figure("R1", "fd_count_baseline", fd_base, "fds");
    figure("R1", "fd_count_end", fd_end, "fds");
    figure("R1", "rss_start", (double)rss_start, "KiB");
    figure("R1", "rss_baseline", (double)rss_base, "KiB");
    figure("R1", "rss_end", (double)rss_end, "KiB");
    figure("R1", "rss_growth", (double)(rss_end - rss_base), "KiB");
    figure("R1", "rss_growth_from_start", (double)(rss_end - rss_start), "KiB");

    CHECK(p99 < R1_P99_MS, "p99 of kill -> %d live children is %.3f ms (bound %.0f)", N_WORKERS,
          p99, R1_P99_MS);
    CHECK(alive == N_WORKERS && zombies == 0, "at the end: %d live children, %d zombies", alive,
          zombies);
    CHECK(fd_end == fd_base && fd_end == fd_start,
          "manager fd count: %d at start, %d after %d kills, %d at the end", fd_start, fd_base,
          R1_WARMUP_KILLS, fd_end);
    CHECK(rss_end - rss_base < R1_GROWTH_KIB,
          "manager VmRSS grew by %ld KiB (%ld -> %ld) over %d kills (bound %d KiB)",
          rss_end - rss_base, rss_base, rss_end, R1_KILLS - R1_WARMUP_KILLS, R1_GROWTH_KIB);
    check_one_line_per_death(app, victims, R1_KILLS, 9);
    stop_app(app);
}

/* ---- R2 ---- */

static void test_r2_all_killed_at_once(void **state)
{
    app_t *app = *state;
    pid_t live[N_WORKERS];
    static pid_t dead[R2_ROUNDS * N_WORKERS];
    static double took[R2_ROUNDS], exit_part[R2_ROUNDS], manager_part[R2_ROUNDS];
    start_pool(app, NULL, NULL, live);

    int over = 0;
    for (int round = 0; round < R2_ROUNDS; round++) {
        pid_t *batch = dead + round * N_WORKERS;
        memcpy(batch, live, sizeof live);
        double killed = now_ms();
        for (int i = 0; i < N_WORKERS; i++)
            CHECK(kill(batch[i], SIGKILL) == 0, "kill %d: %s", (int)batch[i], strerror(errno));
        took[round] = wait_pool_ex(app, batch, N_WORKERS, killed, 5000, live, &exit_part[round]);
        CHECK(took[round] >= 0, "round %d: the pool is not back to %d new workers after 5 s",
              round + 1, N_WORKERS);
        manager_part[round] = took[round] - exit_part[round];
        over += took[round] >= R2_BOUND_MS;
        pu_sleep_ms(10); /* let the new workers get going */
    }
    int zombies = 0;
    int alive = manager_children(app, NULL, &zombies);
    double mean = 0;
    for (int i = 0; i < R2_ROUNDS; i++)
        mean += took[i] / R2_ROUNDS;
    double p50 = percentile(took, R2_ROUNDS, 50), p99 = percentile(took, R2_ROUNDS, 99);
    double max = took[R2_ROUNDS - 1];
    double exit_p99 = percentile(exit_part, R2_ROUNDS, 99), exit_max = exit_part[R2_ROUNDS - 1];
    double mgr_p99 = percentile(manager_part, R2_ROUNDS, 99);
    double mgr_max = manager_part[R2_ROUNDS - 1];

    figure("R2", "rounds", R2_ROUNDS, "count");
    figure("R2", "deaths", R2_ROUNDS * N_WORKERS, "count");
    figure("R2", "recovery_mean", mean, "ms");
    figure("R2", "recovery_p50", p50, "ms");
    figure("R2", "recovery_p99", p99, "ms");
    figure("R2", "recovery_max", max, "ms");
    figure("R2", "rounds_over_100ms", over, "count");
    figure("R2", "victims_exit_p99", exit_p99, "ms");
    figure("R2", "victims_exit_max", exit_max, "ms");
    figure("R2", "after_exit_to_n_p99", mgr_p99, "ms");
    figure("R2", "after_exit_to_n_max", mgr_max, "ms");
    figure("R2", "zombies_at_end", zombies, "count");

    CHECK(max < R2_BOUND_MS, "slowest round back to %d in %.3f ms (bound %.0f), %d rounds over",
          N_WORKERS, max, R2_BOUND_MS, over);
    CHECK(alive == N_WORKERS && zombies == 0, "at the end: %d live children, %d zombies", alive,
          zombies);
    check_one_line_per_death(app, dead, R2_ROUNDS * N_WORKERS, 9);
    stop_app(app);
}

/* ---- R4 ---- */

static void test_r4_hup_storm(void **state)
{
    app_t *app = *state;
    pid_t live[N_WORKERS];
    char line[LINE_LEN];
    start_pool(app, NULL, NULL, live);

    double t0 = now_ms();
    int sent = 0;
    for (int i = 0; i < R4_HUPS; i++) {
        sleep_until(t0 + (double)i * R4_WINDOW_MS / R4_HUPS);
        sent += kill(app->pid, SIGHUP) == 0;
    }
    double storm = now_ms() - t0;
    CHECK(sent == R4_HUPS, "only %d HUPs could be sent: the manager died", sent);
    CHECK(pu_alive(app->pid), "the manager died during the HUP storm");

    /* Settled: exactly n live children, no zombie, the same set for 500 ms. */
    double settled = -1, t_end = now_ms();
    pid_t set[N_WORKERS];
    double stable_since = -1;
    while (now_ms() - t_end < 10000) {
        pid_t kids[N_WORKERS];
        int ok = wait_pool(app, NULL, 0, now_ms(), 10000, kids) >= 0;
        CHECK(ok, "the pool did not settle at %d after the storm", N_WORKERS);
        if (stable_since < 0 || !pu_same_pids(kids, N_WORKERS, set, N_WORKERS)) {
            memcpy(set, kids, sizeof set);
            stable_since = now_ms();
        } else if (now_ms() - stable_since >= 500) {
            settled = stable_since - t_end;
            break;
        }
        pu_sleep_ms(5);
    }
    CHECK(settled >= 0, "the manager's children never stayed the same %d for 500 ms", N_WORKERS);
    CHECK(pu_alive(app->pid), "the manager died after the HUP storm");
    int zombies = 0;
    int alive = manager_children(app, NULL, &zombies);
    int term_lines = pu_count_containing(app->log, mline(line, app, "sending TERM to PIDs, "));
    int started = pu_count_containing(app->log, ") started");

    figure("R4", "hups_sent", sent, "count");
    figure("R4", "storm_duration", storm, "ms");
    figure("R4", "sending_term_lines", term_lines, "count");
    figure("R4", "workers_started", started, "count");
    figure("R4", "settle_after_storm", settled, "ms");
    figure("R4", "live_workers_at_end", alive, "count");
    figure("R4", "zombies_at_end", zombies, "count");

    CHECK(alive == N_WORKERS && zombies == 0, "at the end: %d live children, %d zombies", alive,
          zombies);
    CHECK(term_lines >= 1 && term_lines <= R4_HUPS, "%d 'sending TERM' lines", term_lines);
    /* Every worker of the final set is a fully working one. */
    char out[PATH_LEN];
    snprintf(out, sizeof out, "%s/response", app->dir);
    char *resp = NULL;
    size_t len = 0;
    int rc = pu_request(app->sock, "", out, T_EXIT, &resp, &len);
    pid_t served = pu_response_pid(resp);
    free(resp);
    CHECK(rc == 0 && pu_has_pid(set, N_WORKERS, served),
          "after the storm a request got rc %d, served by %d", rc, (int)served);
    stop_app(app);
}

/* ---- R5 ---- */

static void test_r5_term_idle(void **state)
{
    app_t *app = *state;
    pid_t live[N_WORKERS];
    char pid_param[PATH_LEN + 16], line[LINE_LEN];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    const char *params[] = {pid_param, NULL};
    start_pool(app, params, NULL, live);
    CHECK(pu_file_exists(app->pid_file), "no pid file");
    pu_sleep_ms(100); /* idle, all of them blocked in accept */

    double sent = now_ms();
    kill(app->pid, SIGTERM);
    double took = wait_manager_exit(app, sent, T_EXIT);
    int left = 0;
    for (int i = 0; i < N_WORKERS; i++)
        left += pu_exists(live[i]);
    pid_t ours[PU_MAX_PIDS];
    int orphans = pu_children(getpid(), ours, PU_MAX_PIDS);

    figure("R5", "exit_after_term", took, "ms");
    figure("R5", "workers_left", left, "count");
    figure("R5", "pid_file_left", pu_file_exists(app->pid_file), "count");

    CHECK(took >= 0, "the manager did not exit after TERM");
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 0,
          "manager's wait status 0x%x, expected exit 0", app->status);
    CHECK(took < R5_BOUND_MS, "exit %.3f ms after TERM (bound %.0f)", took, R5_BOUND_MS);
    CHECK(!pu_file_exists(app->pid_file), "pid file %s left behind", app->pid_file);
    CHECK(left == 0 && orphans == 0, "%d worker pids still exist, %d orphans are ours", left,
          orphans);
    CHECK(pu_count_lines(app->log, mline(line, app, "dying: safe exit from signal TERM")) == 1,
          "no 'dying: safe exit from signal TERM'");
}

/* ---- R6 ---- */

static void test_r6_term_during_request(void **state)
{
    app_t *app = *state;
    pid_t live[N_WORKERS];
    char query[64], after[96], out[PATH_LEN];
    const char *params[] = {"die_timeout=5", NULL};
    start_pool(app, params, NULL, live);

    snprintf(query, sizeof query, "body=%d&sleep_ms=%d", R6_BODY, R6_SLEEP_MS);
    snprintf(after, sizeof after, "): begin %s", query);
    snprintf(out, sizeof out, "%s/response", app->dir);
    pu_request_t req;
    double started = now_ms();
    CHECK(pu_request_start(&req, app->sock, query, out) == 0, "cannot run cgi-fcgi");
    pid_t busy = -1;
    while (pu_collect_pids(app->log, "worker_app (pid ", after, &busy, 1) < 1) {
        CHECK(now_ms() - started < T_LINE, "the request never began");
        sleep_1ms();
    }
    double sent = now_ms();
    kill(app->pid, SIGTERM);
    double took = wait_manager_exit(app, sent, 10000);
    char *resp = NULL;
    size_t len = 0, body_len = 0;
    int rc = pu_request_finish(&req, T_EXIT, &resp, &len);
    double request_ms = now_ms() - started;
    const char *body = pu_response_body(resp, len, &body_len);
    int exact = pu_body_is_pattern(body, body_len, R6_BODY);
    pid_t served = pu_response_pid(resp);
    free(resp);

    figure("R6", "term_after_request_began", sent - started, "ms");
    figure("R6", "exit_after_term", took, "ms");
    figure("R6", "request_duration", request_ms, "ms");
    figure("R6", "body_bytes", (double)body_len, "bytes");
    figure("R6", "body_exact", exact, "bool");

    CHECK(rc == 0, "the client exited with %d", rc);
    CHECK(exact, "body of %zu bytes is not the %d-byte pattern", body_len, R6_BODY);
    CHECK(served == busy, "served by %d, begun by %d", (int)served, (int)busy);
    CHECK(took >= 0, "the manager did not exit within 10 s of TERM");
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 0,
          "manager's wait status 0x%x, expected exit 0", app->status);
    CHECK(took < R6_BOUND_MS, "exit %.3f ms after TERM (bound %.0f)", took, R6_BOUND_MS);
    char line[LINE_LEN];
    snprintf(line, sizeof line, "FastCGI: server (pid %d): safe exit after SIGTERM", (int)busy);
    CHECK(pu_count_lines(app->log, line) == 1, "no '%s'", line);
}

/* ---- R7 ---- */

static void test_r7_workers_block_term(void **state)
{
    app_t *app = *state;
    pid_t live[N_WORKERS];
    char line[LINE_LEN];
    const char *params[] = {"die_timeout=2", NULL};
    const char *env[] = {"WORKER_APP_BLOCK_TERM=1", NULL};
    start_pool(app, params, env, live);
    CHECK(pu_wait_containing(app->log, "): TERM and HUP blocked", N_WORKERS, T_LINE),
          "not all workers blocked TERM");

    double sent = now_ms();
    kill(app->pid, SIGTERM);
    double took = wait_manager_exit(app, sent, 10000);
    int left = 0;
    for (int i = 0; i < N_WORKERS; i++)
        left += pu_exists(live[i]);
    pid_t ours[PU_MAX_PIDS];
    int orphans = pu_children(getpid(), ours, PU_MAX_PIDS);
    int timeout_lines = pu_count_lines(app->log, mline(line, app, "wait timeout"));

    figure("R7", "exit_after_term", took, "ms");
    figure("R7", "deviation_from_die_timeout", took - R7_DIE_TIMEOUT_MS, "ms");
    figure("R7", "exit_code", WIFEXITED(app->status) ? WEXITSTATUS(app->status) : -1, "code");
    figure("R7", "survivors", left + orphans, "count");

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

/* ---- R8 ---- */

static void test_r8_crash_loop(void **state)
{
    app_t *app = *state;
    char line[LINE_LEN];
    const char *env[] = {"WORKER_APP_CRASH_AT_START=1", NULL};
    double t0 = now_ms();
    start_app(app, NULL, env);
    mline(line, app, "server (pid ");
    tail_t started = {.path = app->log, .needle = ") started"};
    while (tail_count(&started) < N_WORKERS) {
        CHECK(now_ms() - t0 < T_START, "the first %d workers never started", N_WORKERS);
        sleep_1ms();
    }
    double burst = now_ms() - t0;
    /* Forks in the 60 s after the burst, sampled every second for the figures. */
    double t_burst = now_ms();
    long at_30 = -1;
    for (int s = 1; s * 1000 <= R8_RUN_MS; s++) {
        sleep_until(t_burst + s * 1000.0);
        CHECK(pu_alive(app->pid), "the manager died in the crash loop");
        if (s == 30)
            at_30 = tail_count(&started);
    }
    long forks = tail_count(&started);
    double cpu = cpu_seconds(app->pid);
    double wall = (now_ms() - t0) / 1000.0;
    int crash_loop_lines = pu_count_containing(app->log, "): crash loop: ");

    double sent = now_ms();
    kill(app->pid, SIGTERM);
    double took = wait_manager_exit(app, sent, T_EXIT);

    figure("R8", "first_burst_after_spawn", burst, "ms");
    figure("R8", "forks_total", (double)forks, "count");
    figure("R8", "forks_after_first_burst", (double)(forks - N_WORKERS), "count");
    figure("R8", "forks_after_first_burst_last_30s", (double)(forks - at_30), "count");
    figure("R8", "manager_cpu", cpu, "s");
    figure("R8", "wall", wall, "s");
    figure("R8", "manager_cpu_share", 100.0 * cpu / wall, "%");
    figure("R8", "crash_loop_lines", crash_loop_lines, "count");
    figure("R8", "exit_after_term", took, "ms");

    CHECK(forks - N_WORKERS <= R8_EXTRA_FORKS, "%ld forks in %d s after the first burst (bound %d)",
          forks - N_WORKERS, R8_RUN_MS / 1000, R8_EXTRA_FORKS);
    CHECK(forks > N_WORKERS, "never respawned after the first burst");
    CHECK(cpu >= 0 && 100.0 * cpu / wall < R8_CPU_PERCENT,
          "manager CPU %.2f s over %.1f s wall = %.2f %% (bound %.0f %%)", cpu, wall,
          100.0 * cpu / wall, R8_CPU_PERCENT);
    CHECK(took >= 0, "the manager did not exit after TERM");
    CHECK(took < R8_TERM_MS, "exit %.3f ms after TERM (bound %.0f)", took, R8_TERM_MS);
    CHECK(WIFEXITED(app->status) && WEXITSTATUS(app->status) == 0,
          "manager's wait status 0x%x, expected exit 0", app->status);
}

/* ---- R12 ---- */

/* The manager's descriptors, taken while it is stopped and all its children have
 * exited (they stay unreaped): pidfds counted, every other fd as "N -> target". */
typedef struct fd_snapshot {
    int total, pidfds, children;
    int n_other;
    char other[64][128];
} fd_snapshot_t;

static void snapshot_fds_once(const app_t *app, fd_snapshot_t *snap)
{
    memset(snap, 0, sizeof *snap);
    CHECK(kill(app->pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
    double t0 = now_ms();
    while (pu_proc_state(app->pid) != 'T') {
        CHECK(now_ms() - t0 < T_LINE, "the manager did not stop");
        sleep_1ms();
    }
    /* Every child runs into its crash and stays a zombie: the manager cannot reap. */
    int zombies = 0;
    while (manager_children(app, NULL, &zombies) != 0) {
        CHECK(now_ms() - t0 < T_LINE, "the stopped manager's children do not exit");
        sleep_1ms();
    }
    snap->children = zombies;
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)app->pid);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_LEN], target[96] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        snap->total++;
        if (strcmp(target, "anon_inode:[pidfd]") == 0)
            snap->pidfds++;
        else if (snap->n_other < 64)
            snprintf(snap->other[snap->n_other++], sizeof snap->other[0], "%s -> %s", e->d_name,
                     target);
    }
    closedir(d);
    qsort(snap->other, (size_t)snap->n_other, sizeof snap->other[0],
          (int (*)(const void *, const void *))strcmp);
    CHECK(kill(app->pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
}

/* A snapshot with all n slots filled if possible: SIGSTOP may land while a slot
 * waits to be refilled, and such a snapshot is taken again after letting the manager
 * run 2 ms (for at most 10 s). */
static void snapshot_fds(const app_t *app, fd_snapshot_t *snap, int *attempts)
{
    double t0 = now_ms();
    for (*attempts = 1; *attempts <= 2000 && now_ms() - t0 < 10000; ++*attempts) {
        snapshot_fds_once(app, snap);
        if (snap->children == N_WORKERS)
            return;
        pu_sleep_ms(2);
    }
    --*attempts;
}

static void test_r12_fd_count_over_respawns(void **state)
{
    app_t *app = *state;
    const char *params[] = {"min_uptime=0", NULL};
    const char *env[] = {"WORKER_APP_CRASH_AT_START=1", PM_ASAN ? asan_no_quarantine() : NULL,
                         NULL};
    double t0 = now_ms();
    start_app(app, params, env);
    tail_t started = {.path = app->log, .needle = ") started"};
    while (tail_count(&started) < N_WORKERS) {
        CHECK(now_ms() - t0 < T_START, "the first %d workers never started", N_WORKERS);
        sleep_1ms();
    }
    static fd_snapshot_t before, after;
    int tries_before, tries_after;
    snapshot_fds(app, &before, &tries_before);
    long at_before = tail_count(&started);
    long rss_before = rss_kib(app->pid);

    double t1 = now_ms();
    while (tail_count(&started) < at_before + R12_RESPAWNS) {
        CHECK(pu_alive(app->pid), "the manager died in the respawn loop");
        CHECK(now_ms() - t1 < 150000, "only %ld respawns in 150 s", started.count - at_before);
        pu_sleep_ms(20);
    }
    double loop_s = (now_ms() - t1) / 1000.0;
    snapshot_fds(app, &after, &tries_after);
    long respawns = tail_count(&started) - at_before;
    long rss_after = rss_kib(app->pid);
    int backoff_lines = pu_count_containing(app->log, "crash loop");

    figure("R12", "asan_quarantine_off", PM_ASAN, "bool");
    figure("R12", "respawns", (double)respawns, "count");
    figure("R12", "respawn_rate", (double)respawns / loop_s, "per_s");
    figure("R12", "fd_count_before", before.total, "fds");
    figure("R12", "fd_count_after", after.total, "fds");
    figure("R12", "non_pidfd_fds_before", before.n_other, "fds");
    figure("R12", "non_pidfd_fds_after", after.n_other, "fds");
    figure("R12", "pidfds_before", before.pidfds, "fds");
    figure("R12", "unreaped_workers_before", before.children, "count");
    figure("R12", "pidfds_after", after.pidfds, "fds");
    figure("R12", "unreaped_workers_after", after.children, "count");
    figure("R12", "snapshot_attempts_before", tries_before, "count");
    figure("R12", "snapshot_attempts_after", tries_after, "count");
    figure("R12", "rss_before", (double)rss_before, "KiB");
    figure("R12", "rss_after", (double)rss_after, "KiB");

    int same = before.n_other == after.n_other;
    for (int i = 0; same && i < before.n_other; i++)
        same = strcmp(before.other[i], after.other[i]) == 0;
    if (!same || getenv("PM_FAULT_POOL_VERBOSE")) {
        for (int i = 0; i < before.n_other; i++)
            print_error("before: %s\n", before.other[i]);
        for (int i = 0; i < after.n_other; i++)
            print_error("after:  %s\n", after.other[i]);
    }
    CHECK(same, "the manager's descriptors changed over %ld respawns (%d -> %d)", respawns,
          before.n_other, after.n_other);
    CHECK(before.pidfds == 0 && after.pidfds == 0,
          "the manager holds pidfds: %d before, %d after (it needs none per worker)",
          before.pidfds, after.pidfds);
    CHECK(after.total == before.total, "fd count %d before, %d after %ld respawns",
          before.total, after.total, respawns);
    CHECK(backoff_lines == 0, "min_uptime=0 still backed off (%d 'crash loop' lines)",
          backoff_lines);
    stop_app(app);
}

int main(void)
{
    /* PM_FAULT_POOL_FILTER=pattern runs only the matching tests (e.g. "test_r5*"). */
    const char *filter = getenv("PM_FAULT_POOL_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_r5_term_idle),         T(test_r6_term_during_request),
        T(test_r7_workers_block_term), T(test_r2_all_killed_at_once),
        T(test_r4_hup_storm),         T(test_r12_fd_count_over_respawns),
        T(test_r1_random_sigkills),   T(test_r8_crash_loop),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
