/*
 * lifecycle -- times a process manager's life cycle from outside, through /proc,
 * the same way for every system (fcgi-pm, its peers):
 *
 *     lifecycle [-n N] [-r REPS] [-R SIGNAL] [-s SOCKET] [-k] [-a] -- manager command...
 *
 * Each repetition starts the command (stderr to /dev/null) and measures
 *   startup   exec of the manager until N workers (its children) exist
 *   respawn   SIGKILL of one idle worker until N workers exist without it (5 times)
 *   reload    SIGNAL (default HUP) to the manager until N workers exist, all new
 *   stop      TERM to the manager until it has exited and its (idle) workers too
 * and, with -k, instead of stop: the manager SIGKILLed, then how many of its
 * workers are still alive 100 ms and 2 s later (each killed afterwards).
 * Prints one line per measure: name median min max samples (times in ms), or with
 * -a, name and every sample (for runs interleaved with other systems' and summed up
 * by the caller); exits 3 if a start did not reach N workers.
 * SOCKET, when given, is removed before each start (a unix socket left behind).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 4096
#define MAX_SAMPLES 1024
#define GIVE_UP_MS 60000.0
#define RESPAWNS 5 /* per repetition: a short measure, taken often */

struct series {
    const char *name;
    double v[MAX_SAMPLES];
    int n;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Between two polls: 20 us, longer for large pools, where reading the children list
 * costs more and the times measured are longer (the poll must not starve the
 * manager of the CPU it is timed on). */
static long poll_ns = 20000;

static void pause_briefly(void)
{
    struct timespec ts = {0, poll_ns};
    nanosleep(&ts, NULL);
}

/* The manager's children, from /proc; -1 if it is gone. */
static int children(pid_t manager, pid_t *out)
{
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)manager, (int)manager);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t len = 0, r;
    while (len < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += r;
    close(fd);
    buf[len < 0 ? 0 : len] = '\0';
    int n = 0;
    for (char *p = buf, *end; n < MAX_WORKERS; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        out[n++] = (pid_t)pid;
    }
    return n;
}

static int contains(const pid_t *set, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (set[i] == pid)
            return 1;
    return 0;
}

/* Polls until the manager has `want` children, none of them in `old` (n_old of
 * them); returns the time that took from t0, or -1 (manager gone, or too long). */
static double wait_for_workers(pid_t manager, int want, const pid_t *old, int n_old, double t0)
{
    static pid_t now[MAX_WORKERS];
    for (;;) {
        int n = children(manager, now);
        if (n < 0)
            return -1;
        int stale = 0;
        for (int i = 0; i < n; i++)
            stale += contains(old, n_old, now[i]);
        if (n == want && !stale)
            return now_ms() - t0;
        if (now_ms() - t0 > GIVE_UP_MS)
            return -1;
        pause_briefly();
    }
}

static void add(struct series *s, double v)
{
    if (v >= 0 && s->n < MAX_SAMPLES)
        s->v[s->n++] = v;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int all_samples; /* -a */

static void report(struct series *s)
{
    if (all_samples) {
        printf("%s", s->name);
        for (int i = 0; i < s->n; i++)
            printf(" %.3f", s->v[i]);
        printf("\n");
        return;
    }
    if (!s->n) {
        printf("%s - - - 0\n", s->name);
        return;
    }
    qsort(s->v, s->n, sizeof s->v[0], by_value);
    double median = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
    printf("%s %.3f %.3f %.3f %d\n", s->name, median, s->v[0], s->v[s->n - 1], s->n);
}

static pid_t start(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        dup2(null_fd, 2);
        dup2(null_fd, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Kills what is left of a run: the manager and any worker it left behind. */
static void clean_up(pid_t manager, const pid_t *workers, int n)
{
    kill(manager, SIGKILL);
    for (int i = 0; i < n; i++)
        kill(workers[i], SIGKILL);
    waitpid(manager, NULL, 0);
}

/* How many of pids are running: a zombie (exited, not yet reaped by whoever
 * inherited it) is not. */
static int alive(const pid_t *pids, int n)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, stat, sizeof stat - 1);
        close(fd);
        stat[len > 0 ? len : 0] = '\0';
        const char *state = strrchr(stat, ')'); /* after the command name */
        count += state && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
    }
    return count;
}

int main(int argc, char **argv)
{
    int n = 4, reps = 5, orphans = 0, reload_signal = SIGHUP;
    const char *socket_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "+n:r:R:s:ka")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'R': reload_signal = !strcmp(optarg, "USR2") ? SIGUSR2 : SIGHUP; break;
        case 's': socket_path = optarg; break;
        case 'k': orphans = 1; break;
        case 'a': all_samples = 1; break;
        default: return 2;
        }
    }
    if (optind >= argc || n < 1 || n > MAX_WORKERS || reps < 1 || reps > MAX_SAMPLES) {
        fprintf(stderr, "usage: lifecycle [-n N] [-r REPS] [-R HUP|USR2] [-s SOCKET] [-k] [-a] -- command...\n");
        return 2;
    }
    char **command = argv + optind;
    if (n > 64)
        poll_ns = 20000L * (n / 64); /* 320 us at n = 1024 */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);

    static struct series startup = {.name = "startup"}, respawn = {.name = "respawn"}, reload = {.name = "reload"},
                         stop = {.name = "stop"}, orphans_100ms = {.name = "orphans_100ms"},
                         orphans_2s = {.name = "orphans_2s"};
    static pid_t old[MAX_WORKERS];
    int failures = 0;
    for (int rep = 0; rep < reps; rep++) {
        if (socket_path)
            unlink(socket_path);
        double t0 = now_ms();
        pid_t manager = start(command);
        double t = wait_for_workers(manager, n, NULL, 0, t0);
        add(&startup, t);
        int n_old = children(manager, old);
        if (t < 0 || n_old != n) {
            failures++;
            clean_up(manager, old, n_old > 0 ? n_old : 0);
            continue;
        }
        usleep(100000); /* let the workers settle (Perl: load, reach accept) */

        /* respawn: the last worker listed SIGKILLed, RESPAWNS times */
        for (int k = 0; k < RESPAWNS; k++) {
            if (k > 0) {
                usleep(50000);
                n_old = children(manager, old);
            }
            if (n_old < 1)
                break;
            pid_t victim = old[n_old - 1];
            t0 = now_ms();
            kill(victim, SIGKILL);
            add(&respawn, wait_for_workers(manager, n, &victim, 1, t0));
        }
        usleep(100000);

        /* reload: every worker replaced */
        n_old = children(manager, old);
        t0 = now_ms();
        kill(manager, reload_signal);
        add(&reload, wait_for_workers(manager, n, old, n_old, t0));
        usleep(100000);

        n_old = children(manager, old);
        if (orphans) {
            kill(manager, SIGKILL);
            waitpid(manager, NULL, 0);
            usleep(100000);
            add(&orphans_100ms, alive(old, n_old));
            usleep(1900000);
            add(&orphans_2s, alive(old, n_old));
            clean_up(manager, old, n_old);
            continue;
        }
        /* stop: TERM until the manager has exited and none of its workers runs */
        t0 = now_ms();
        kill(manager, SIGTERM);
        double deadline = t0 + GIVE_UP_MS;
        int status;
        pid_t r;
        while ((r = waitpid(manager, &status, WNOHANG)) == 0 && now_ms() < deadline)
            pause_briefly();
        while (r == manager && alive(old, n_old) > 0 && now_ms() < deadline)
            pause_briefly();
        add(&stop, r == manager && now_ms() < deadline ? now_ms() - t0 : -1);
        clean_up(manager, old, n_old);
    }
    report(&startup);
    report(&respawn);
    report(&reload);
    if (orphans) {
        report(&orphans_100ms);
        report(&orphans_2s);
    } else {
        report(&stop);
    }
    if (failures)
        fprintf(stderr, "lifecycle: %d of %d starts did not reach %d workers\n", failures, reps, n);
    return failures ? 3 : 0;
}
