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
 * The state is read from /proc; the times come from the kernel's process events
 * (the proc connector): a measure ends at the fork of the last of its
 * workers, or at the exit of the last process to go. Without the events (or when
 * some were lost), a measure ends when a poll of /proc saw its end.
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
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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
 * manager of the CPU it is timed on). With the process events, the least time
 * between two looks at /proc, which are made only when an event calls for one. */
static long poll_ns = 20000;

/* The kernel's process events: every fork and exit on the machine, stamped with
 * the monotonic clock when it happens. Polling cannot time a short interval as
 * well: here, a poll every 5 us instead of 20 made the respawn 4 times as long, the
 * poller's reads of /proc competing with the fork and exit being timed. */
static int events_fd = -1;
static int events_lost;    /* since events_watch: the times then come from polls */
static pid_t watched;      /* the manager whose children's forks and exits are kept */
static unsigned forks_seen, exits_seen; /* of the watched manager's children (exits: and its own) */
static double watched_exit_ms;
#define EVENT_SLOTS 16384  /* a power of two, well above the largest pool's lifetimes */
static struct {
    pid_t pid;
    double fork_ms, exit_ms;  /* 0: not seen */
} known[EVENT_SLOTS];

static void events_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
    if (fd < 0)
        return;
    int size = 8 << 20; /* the whole machine's forks and exits queue up here */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
    struct {
        struct nlmsghdr nl;
        struct cn_msg cn;
        enum proc_cn_mcast_op op;
    } __attribute__((packed)) listen = {
        .nl = {.nlmsg_len = sizeof listen, .nlmsg_type = NLMSG_DONE},
        .cn = {.id = {.idx = CN_IDX_PROC, .val = CN_VAL_PROC}, .len = sizeof(enum proc_cn_mcast_op)},
        .op = PROC_CN_MCAST_LISTEN,
    };
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || send(fd, &listen, sizeof listen, 0) < 0) {
        close(fd);
        return;
    }
    events_fd = fd;
}

/* pid's slot, or a free one for it; EVENT_SLOTS if the table is full without it. */
static unsigned slot_of(pid_t pid)
{
    unsigned i = (unsigned)pid & (EVENT_SLOTS - 1);
    for (unsigned probes = 0; known[i].pid && known[i].pid != pid; i = (i + 1) & (EVENT_SLOTS - 1))
        if (++probes == EVENT_SLOTS)
            return EVENT_SLOTS;
    return i;
}

/* From now on, keeps the forks of manager's children, their exits and its own. */
static void events_watch(pid_t manager)
{
    memset(known, 0, sizeof known);
    watched = manager;
    watched_exit_ms = 0;
    events_lost = 0;
}

/* Reads every event queued: the kernel's alone (sender 0, the process events'
 * connector id, whole), anything else is dropped. */
static void events_read(void)
{
    static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct sockaddr_nl from;
    socklen_t from_len;
    ssize_t got;
    while (events_fd >= 0 &&
           (got = recvfrom(events_fd, buf, sizeof buf, 0, (struct sockaddr *)&from, (from_len = sizeof from, &from_len))) != 0) {
        if (got < 0) {
            events_lost |= errno == ENOBUFS;
            if (errno == ENOBUFS || errno == EINTR)
                continue;
            return; /* EAGAIN: all read */
        }
        if (from.nl_pid != 0)
            continue;
        int len = (int)got; /* signed: NLMSG_NEXT may take it below 0 */
        for (struct nlmsghdr *nl = (struct nlmsghdr *)buf; NLMSG_OK(nl, len); nl = NLMSG_NEXT(nl, len)) {
            struct cn_msg *cn = NLMSG_DATA(nl);
            if (nl->nlmsg_len < NLMSG_LENGTH(sizeof *cn) || cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC ||
                cn->len < sizeof(struct proc_event) || nl->nlmsg_len < NLMSG_LENGTH(sizeof *cn + cn->len))
                continue;
            struct proc_event *ev = (struct proc_event *)cn->data;
            double at = (double)ev->timestamp_ns / 1e6;
            if (ev->what == PROC_EVENT_FORK && ev->event_data.fork.parent_tgid == watched &&
                ev->event_data.fork.child_pid == ev->event_data.fork.child_tgid) {
                unsigned i = slot_of(ev->event_data.fork.child_pid);
                if (i == EVENT_SLOTS) { /* full: from now on the times come from polls */
                    events_lost = 1;
                    continue;
                }
                known[i].pid = ev->event_data.fork.child_pid; /* a pid reused: its new life */
                known[i].fork_ms = at;
                known[i].exit_ms = 0;
                forks_seen++;
            } else if (ev->what == PROC_EVENT_EXIT &&
                       ev->event_data.exit.process_pid == ev->event_data.exit.process_tgid) {
                if (ev->event_data.exit.process_pid == watched) {
                    watched_exit_ms = at;
                    exits_seen++;
                } else {
                    unsigned i = slot_of(ev->event_data.exit.process_pid);
                    if (i < EVENT_SLOTS && known[i].pid) {
                        known[i].exit_ms = at;
                        exits_seen++;
                    }
                }
            }
        }
    }
}

/* The events must be seen to arrive: outside the initial pid and user namespaces
 * the kernel ignores the request to listen, or reports pids that are not ours. A
 * child is forked and its fork awaited (200 ms at most); without it the socket is
 * closed, and the times come from polls. */
static void events_confirm(void)
{
    if (events_fd < 0)
        return;
    events_watch(getpid());
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    int seen = 0;
    for (double give_up = now_ms() + 200; child > 0 && !seen && now_ms() < give_up;) {
        struct pollfd p = {events_fd, POLLIN, 0};
        poll(&p, 1, 10);
        events_read();
        unsigned k = slot_of(child);
        seen = k < EVENT_SLOTS && known[k].pid == child && known[k].fork_ms > 0;
    }
    if (child > 0)
        waitpid(child, NULL, 0);
    if (!seen) {
        close(events_fd);
        events_fd = -1;
    }
    events_watch(0);
}

/* The kernel's time of the last fork among pids (0 if one is not known). */
static double last_fork_ms(const pid_t *pids, int n)
{
    double last = 0;
    for (int i = 0; i < n; i++) {
        unsigned k = slot_of(pids[i]);
        if (k == EVENT_SLOTS || !known[k].pid || !known[k].fork_ms)
            return 0;
        last = known[k].fork_ms > last ? known[k].fork_ms : last;
    }
    return events_lost ? 0 : last;
}

/* The kernel's time of the last exit among pids, and the manager's too if
 * with_manager (0 if one is not known). */
static double last_exit_ms(const pid_t *pids, int n, int with_manager)
{
    double last = with_manager ? watched_exit_ms : 1;
    for (int i = 0; i < n && last; i++) {
        unsigned k = slot_of(pids[i]);
        if (k == EVENT_SLOTS || !known[k].pid || !known[k].exit_ms)
            return 0;
        last = known[k].exit_ms > last ? known[k].exit_ms : last;
    }
    return events_lost ? 0 : last;
}

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

/* Until it is worth looking at /proc again: with the events, until the manager
 * forks (or, for_exits, until it or a child of its exits), or 2 ms at most (a reap
 * has no event); then at least poll_ns after the last look for a large pool. Without
 * the events, poll_ns. Asleep meanwhile: the processes timed keep the CPU. */
static void wait_for_change(int for_exits)
{
    if (events_fd < 0) {
        pause_briefly();
        return;
    }
    double give_up = now_ms() + 2.0;
    unsigned *counter = for_exits ? &exits_seen : &forks_seen, seen = *counter;
    events_read();
    for (double t; *counter == seen && (t = now_ms()) < give_up;) {
        struct pollfd p = {events_fd, POLLIN, 0};
        long ns = (long)((give_up - t) * 1e6);
        struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
        ppoll(&p, 1, &ts, NULL);
        events_read();
    }
    if (poll_ns > 20000)
        pause_briefly(); /* the rest of a batch of forks or exits */
}

/* Polls until the manager has `want` children, none of them in `old` (n_old of
 * them); returns the time that took from t0, or -1 (manager gone, or too long):
 * by the events, until the last of them was forked and the last of old exited. */
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
        if (n == want && !stale) {
            double polled = now_ms();
            events_read();
            double forked = last_fork_ms(now, n), exited = n_old ? last_exit_ms(old, n_old, 0) : 1;
            /* A child is on its parent's list a moment before its fork event is sent:
             * waited for (1 ms at most), so that a sample is not timed by the poll. */
            for (double give_up = polled + 1.0; events_fd >= 0 && !events_lost && (!forked || !exited) &&
                                                now_ms() < give_up;) {
                struct pollfd p = {events_fd, POLLIN, 0};
                poll(&p, 1, 1);
                events_read();
                forked = last_fork_ms(now, n);
                exited = n_old ? last_exit_ms(old, n_old, 0) : 1;
            }
            if (!forked || !exited)
                return polled - t0;
            return (forked > exited ? forked : exited) - t0;
        }
        if (now_ms() - t0 > GIVE_UP_MS)
            return -1;
        wait_for_change(0);
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
    events_open();
    events_confirm();
    if (events_fd < 0)
        fprintf(stderr, "lifecycle: no process events (proc connector): times from polls\n");

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
        events_watch(manager);
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
            wait_for_change(1);
        while (r == manager && alive(old, n_old) > 0 && now_ms() < deadline)
            wait_for_change(1);
        double polled = now_ms();
        events_read();
        double exited = last_exit_ms(old, n_old, 1);
        add(&stop, r == manager && polled < deadline ? (exited ? exited : polled) - t0 : -1);
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
