/*
 * fcgi-pm -- run and supervise any FastCGI program: spawn-fcgi and multiwatch in one.
 *
 *     fcgi-pm -s /run/app.sock -F 8 -- ./app [args...]
 *
 * Opens the listening socket, then becomes the manager (libfcgi-pm, exec mode): each
 * worker is the program exec'd with the socket on descriptor 0, the FastCGI
 * convention, so any FastCGI program runs unmodified. HUP replaces the workers, TERM
 * or INT stops them (SIGKILL after --die-timeout). Flags follow spawn-fcgi where they
 * overlap. Bad flags or values: exit 2 with one line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcgi_pm.h"
#include "resize_cmd.h"
#include "status_cmd.h"

struct options {
    const char *socket_path; /* -s */
    const char *address;     /* -a */
    const char *port;        /* -p */
    int backlog;             /* -b */
    const char *workers;     /* -F */
    const char *pid_file;    /* -P */
    mode_t mode;             /* -M */
    int mode_set;
    char **program;          /* after -- */
    const char *user;        /* -u: workers run as this user... */
    uid_t uid;
    gid_t gid;               /* ...and group (-g, or the user's) */
    const char *sock_user;   /* -U, -G: owner of the unix socket */
    const char *sock_group;
    uid_t sock_uid;
    gid_t sock_gid;
    int drop;                /* -u or -g given */
    const char *directory;   /* -d: the workers' working directory */
    int stop_signal;         /* --stop-signal: what the workers get to stop */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fcgi-pm [options] -- program [args...]\n"
            "       fcgi-pm status [--json | --openmetrics | --watch] MANAGER (see status --help)\n"
            "       fcgi-pm resize SIZE MANAGER (a running static pool's size; see resize --help)\n"
            "  -s PATH           listen on a unix socket at PATH\n"
            "  -a ADDR           listen on TCP address ADDR (with -p; default 0.0.0.0)\n"
            "  -p PORT           listen on TCP port PORT\n"
            "  -b N              listen backlog (default 1024)\n"
            "  -F N              workers to keep running (default 1); with --pool dynamic,\n"
            "                    the workers to start with\n"
            "  --pool MODE       static (default: -F workers, always), dynamic (between\n"
            "                    --min-idle and --max-idle idle, at most --max-workers) or\n"
            "                    ondemand (none until a connection waits, at most\n"
            "                    --max-workers; each idle --idle-timeout retires); only\n"
            "                    programs on libfcgi-pm tell when they are idle: others\n"
            "                    make a pool that grows but never shrinks\n"
            "  --min-idle N, --max-idle N  a dynamic pool's idle workers (default 1, and\n"
            "                    the larger of --min-idle and -F)\n"
            "  --max-workers N   the most workers a dynamic or ondemand pool grows to\n"
            "  --idle-timeout S  seconds an idle worker beyond the pool's resting size\n"
            "                    stays (default 10)\n"
            "  --spawn-rate N    the most workers started a second, and at once (default 1000)\n"
            "  -P FILE           pid file of the manager (locked; a second manager is refused)\n"
            "  -M MODE           unix socket mode, octal (default 0660)\n"
            "  -u USER, -g GROUP workers run as USER and GROUP (when started as root)\n"
            "  -U USER, -G GROUP owner and group of the unix socket\n"
            "  -d DIR            the workers' working directory\n"
            "  (no -s or -p)     the listening socket is inherited: systemd's LISTEN_FDS\n"
            "                    (fd 3), or fd 0 as a web server passes it\n"
            "  -n                stay in the foreground (always so; for spawn-fcgi scripts)\n"
            "  --die-timeout S   seconds the workers get after TERM before SIGKILL (default 60)\n"
            "  --start-delay S   seconds to pause after each fork (default 0)\n"
            "  --start-timeout S give up (exit 1) if the workers are not all running this\n"
            "                    long after the start, e.g. a program that cannot be exec'd\n"
            "                    (default 0: never)\n"
            "  --stop-signal SIG the signal the workers get to stop, on TERM, INT and HUP:\n"
            "                    TERM (default), INT, QUIT, HUP, USR1, USR2 or WINCH\n"
            "  --max-requests N, --max-size KB, --sizecheck-num-requests N\n"
            "                    passed to the workers as PM_MAX_REQUESTS, PM_MAX_SIZE and\n"
            "                    PM_SIZECHECK_NUM_REQUESTS (programs on libfcgi-pm, and Perl's\n"
            "                    FCGI::ProcManager::Constrained, exit after N requests or\n"
            "                    above KB of virtual memory, and are replaced)\n"
            "  --max-requests-jitter N  each worker's --max-requests raised by a random 0..N of\n"
            "                    its own, so that workers started together do not all leave\n"
            "                    together; a program on libfcgi-pm asks for its replacement\n"
            "                    as its last request begins\n"
            "  --request-timeout S  a request running S seconds has its worker stopped (TERM,\n"
            "                    then KILL after --request-timeout-grace S, default 1), logged\n"
            "                    with its URI and replaced (programs on libfcgi-pm)\n"
            "  --request-slow S  a request running S seconds is logged and counted\n"
            "  --max-age S       a worker older than S seconds is replaced, the new one first\n"
            "  --max-rss KB      a worker with more than KB resident is replaced after its\n"
            "                    request, the new one first (checked once a second)\n"
            "  --pm-title TITLE  the manager's process title (default \"fcgi-pm: manager\n"
            "                    (PROGRAM on SOCKET)\")\n"
            "  --status-socket PATH  hand the live status to readers on a unix socket at\n"
            "                    PATH (mode 0600; 0660 with --status-group)\n"
            "  --status-group GROUP  the group that may read the status there\n"
            "  --min-uptime S, --backoff-min S, --backoff-max S, --crash-budget N,\n"
            "  --crash-window S  crash-loop backoff, as the library's parameters\n"
            "  -h, --help        this text\n"
            "  -v, --version     the version\n");
}

/* One line naming the problem, exit 2: bad usage never starts anything. */
__attribute__((noreturn, format(printf, 1, 2))) static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("fcgi-pm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static int parse_count(const char *flag, const char *text, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < lo || v > hi)
        die_usage("%s: '%s' is not a whole number from %ld to %ld", flag, text, lo, hi);
    return (int)v;
}

static uid_t lookup_user(const char *flag, const char *name, gid_t *primary)
{
    struct passwd *pw = getpwnam(name);
    if (!pw)
        die_usage("%s: no user '%s'", flag, name);
    if (primary)
        *primary = pw->pw_gid;
    return pw->pw_uid;
}

static gid_t lookup_group(const char *flag, const char *name)
{
    struct group *gr = getgrnam(name);
    if (!gr)
        die_usage("%s: no group '%s'", flag, name);
    return gr->gr_gid;
}

/* The manager's handle, for the SIGINT handler. */
static pm_t *the_manager;

/* SIGINT (a Ctrl-C, or kill -INT) stops the manager exactly as TERM does: workers
 * finish their requests, the pid file goes with the last of them, exit 0. */
static void on_interrupt(int signo)
{
    int saved = errno;
    pm_request_stop(the_manager, signo);
    errno = saved;
}

/* Installed even if fcgi-pm was started with SIGINT ignored (a non-interactive
 * shell's "&"): kill -INT must always be a graceful stop. */
static void handle_interrupt(pm_t *pm)
{
    the_manager = pm;
    struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* In each new worker, first, every signal still blocked (so neither on_interrupt
 * nor a terminal's signal can act between fork and here): the worker gets a session
 * of its own, always. A Ctrl-C (or Ctrl-\, Ctrl-Z) then reaches the manager alone,
 * which stops the workers its graceful way, instead of killing exec'd programs
 * mid-request; a group-wide signal (kill %1, kill -- -PGID, timeout(1), supervisors
 * that signal the process group) reaches the manager alone as well, which is what
 * makes it graceful. Always, not only in a terminal's foreground: a job moves to the
 * foreground (fg) after its workers started, and group-wide signals are no less
 * abrupt without a terminal. A session rather than only a process group: with no
 * controlling terminal, a worker writing to the terminal is never stopped by SIGTTOU
 * (stty tostop), nor sent SIGHUP when it hangs up. systemd is unaffected: it signals
 * the unit's control group, sessions or not. However the manager ends, its workers
 * get SIGTERM (the library's parent-death signal). */
static void detach_worker(pm_t *pm, void *user)
{
    const struct options *o = user;
    if (setsid() < 0)
        pm_warn(pm, "setsid: %s", strerror(errno));
    /* SIGINT and the stop signal at their defaults for the program: exec turns a
     * handler into the default, but keeps SIG_IGN (a non-interactive shell's "&"
     * ignores INT and QUIT). Ignoring SIGINT first drops a Ctrl-C that arrived before
     * setsid: the manager got it too, and stops this worker its own way; unless INT
     * is the stop signal, which may be the manager's, and must stay pending. */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    if (o->stop_signal != SIGINT)
        sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(o->stop_signal, &sa, NULL);
}

/* In each worker, just before the exec: the working directory, then groups, gid and
 * uid, each checked, and checked again afterwards; any failure ends the worker. */
static void prepare_worker(pm_t *pm, void *user)
{
    const struct options *o = user;
    if (o->directory && chdir(o->directory) != 0) {
        pm_warn(pm, "chdir: %s: %s", o->directory, strerror(errno));
        pm_exit(pm, "cannot enter the working directory", 1);
    }
    if (!o->drop)
        return;
    int ok = o->user ? initgroups(o->user, o->gid) == 0 : setgroups(1, &o->gid) == 0;
    ok = ok && setgid(o->gid) == 0 && setuid(o->uid) == 0;
    ok = ok && getuid() == o->uid && geteuid() == o->uid && getgid() == o->gid && getegid() == o->gid;
    ok = ok && (o->uid == 0 || setuid(0) != 0); /* no way back */
    if (!ok)
        pm_exit(pm, "cannot drop privileges", 1);
}

static int listen_unix(const struct options *o)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(o->socket_path) >= sizeof addr.sun_path)
        die_usage("-s: socket path longer than %zu bytes", sizeof addr.sun_path - 1);
    strcpy(addr.sun_path, o->socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A stale socket (nothing listening) is replaced; a live one or any other file
     * is left alone. */
    struct stat st;
    if (lstat(o->socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "fcgi-pm: %s exists and is not a socket\n", o->socket_path);
            exit(1);
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = connect(probe, (struct sockaddr *)&addr, sizeof addr) == 0;
        close(probe);
        if (live) {
            fprintf(stderr, "fcgi-pm: %s: something is listening there already\n", o->socket_path);
            exit(1);
        }
        unlink(o->socket_path);
    }
    /* Created with its final mode: the umask shapes the mode bind gives it. */
    mode_t mode = o->mode_set ? o->mode : 0660;
    mode_t old = umask((mode_t)(~mode & 0777));
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc < 0 || (o->mode_set && chmod(o->socket_path, mode) < 0) ||
        ((o->sock_user || o->sock_group) && chown(o->socket_path, o->sock_uid, o->sock_gid) < 0) ||
        listen(fd, o->backlog) < 0) {
        fprintf(stderr, "fcgi-pm: %s: %s\n", o->socket_path, strerror(errno));
        exit(1);
    }
    return fd;
}

static int listen_tcp(const struct options *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(o->address, o->port, &hints, &res);
    if (rc != 0)
        die_usage("-a/-p: %s:%s: %s", o->address ? o->address : "*", o->port, gai_strerror(rc));
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, o->backlog) < 0) {
        fprintf(stderr, "fcgi-pm: %s:%s: %s\n", o->address ? o->address : "*", o->port, strerror(errno));
        exit(1);
    }
    freeaddrinfo(res);
    return fd;
}

static int is_listening(int fd)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
}

/* A listening socket handed over at start: systemd's socket activation (LISTEN_PID
 * is us, LISTEN_FDS >= 1: fd 3; the variables are not passed on to the workers), or
 * fd 0, as web servers start FastCGI programs. -1 if there is none. */
static int inherited_socket(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (pid && fds && atol(pid) == (long)getpid() && atoi(fds) >= 1) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return is_listening(3) ? 3 : -1;
    }
    return is_listening(0) ? 0 : -1;
}

/* Everything main allocated, freed on the way out: the status to return. */
static int finish(pm_t *pm, struct options *o, int status)
{
    pm_destroy(pm);
    free((char *)o->user);
    free((char *)o->directory);
    return status;
}

/* The manager's title names the pool, as "ps" shows it: the program and its socket. */
static void set_title(pm_t *pm, const struct options *o, int inherited)
{
    char title[256];
    const char *prog = strrchr(o->program[0], '/') ? strrchr(o->program[0], '/') + 1 : o->program[0];
    if (o->socket_path)
        snprintf(title, sizeof title, "fcgi-pm: manager (%s on %s)", prog, o->socket_path);
    else if (o->port)
        snprintf(title, sizeof title, "fcgi-pm: manager (%s on %s:%s)", prog, o->address ? o->address : "*", o->port);
    else
        snprintf(title, sizeof title, "fcgi-pm: manager (%s on fd %d)", prog, inherited);
    pm_parameter(pm, "pm_title", title);
}

/* Sets a library parameter from a flag; a refused value is a usage error. */
/* The library's message on the pool's settings, in the flags' names. */
static const char *pool_message(const char *message)
{
    static const char *const names[][2] = {
        {"n_processes", "-F"},          {"min_idle", "--min-idle"},       {"max_idle", "--max-idle"},
        {"max_workers", "--max-workers"}, {"idle_timeout", "--idle-timeout"}, {"spawn_rate", "--spawn-rate"},
        {"pool ", "--pool "},           {"request_timeout_grace", "--request-timeout-grace"},
        {"request_timeout", "--request-timeout"}, {"request_slow", "--request-slow"},
        {"max_age", "--max-age"},       {"max_rss", "--max-rss"},
    };
    static char out[512];
    size_t n = 0;
    for (const char *p = message; *p && n + 1 < sizeof out;) {
        size_t k = 0;
        for (; k < sizeof names / sizeof names[0]; ++k)
            if (strncmp(p, names[k][0], strlen(names[k][0])) == 0)
                break;
        const char *word = k < sizeof names / sizeof names[0] ? names[k][1] : NULL;
        if (word && n + strlen(word) + 1 < sizeof out) {
            memcpy(out + n, word, strlen(word));
            n += strlen(word);
            p += strlen(names[k][0]);
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static void set(pm_t *pm, const char *flag, const char *name, const char *value)
{
    if (pm_parameter(pm, name, value) != 0)
        die_usage("%s: %s", flag, pm_errmsg(pm));
}

/* A worker's own limit: checked as the library parameter it becomes in the worker,
 * then handed to the workers through the environment. */
static void pass_on(pm_t *pm, const char *flag, const char *name, const char *variable, const char *value)
{
    pm_t *check = pm_create();
    if (!check)
        die_usage("out of memory");
    if (pm_parameter(check, name, value) != 0) {
        fprintf(stderr, "fcgi-pm: %s: %s\n", flag, pm_errmsg(check));
        pm_destroy(check);
        pm_destroy(pm);
        exit(2);
    }
    pm_destroy(check);
    set(pm, flag, name, value); /* the manager's too: with max_requests, it replaces workers as they near it */
    setenv(variable, value, 1);
}

/* The signals the library can stop exec'd workers with (its "stop_signal" choices). */
static const struct {
    const char *name;
    int signo;
} stop_signals[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"HUP", SIGHUP},
                    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};

/* --stop-signal: a name above, with or without "SIG", in any case, or its number. */
static int parse_stop_signal(pm_t *pm, const char *text)
{
    const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
    char *end;
    long number = strtol(text, &end, 10);
    int numeric = *text >= '0' && *text <= '9' && !*end;
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; ++i)
        if (numeric ? number == stop_signals[i].signo : strcasecmp(name, stop_signals[i].name) == 0) {
            set(pm, "--stop-signal", "stop_signal", stop_signals[i].name);
            return stop_signals[i].signo;
        }
    die_usage("--stop-signal: '%s' is not one of TERM, INT, QUIT, HUP, USR1, USR2, WINCH "
              "(a name, with or without SIG, or its number)", text);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "resize") == 0)
        return resize_main(argc - 1, argv + 1);
    struct options o = {.backlog = 1024, .workers = "1", .stop_signal = SIGTERM};
    pm_t *pm = pm_create();
    if (!pm) {
        fputs("fcgi-pm: out of memory\n", stderr);
        return 1;
    }
    enum { DIE_TIMEOUT = 256, START_DELAY, MIN_UPTIME, BACKOFF_MIN, BACKOFF_MAX, CRASH_BUDGET, CRASH_WINDOW,
           MAX_REQUESTS, MAX_SIZE, SIZECHECK, PM_TITLE, STOP_SIGNAL, START_TIMEOUT, STATUS_SOCKET,
           STATUS_GROUP, POOL, MIN_IDLE, MAX_IDLE, MAX_WORKERS, IDLE_TIMEOUT, SPAWN_RATE, REQUEST_TIMEOUT,
           REQUEST_TIMEOUT_GRACE, REQUEST_SLOW, MAX_REQUESTS_JITTER, MAX_AGE, MAX_RSS };
    static const struct option longs[] = {
        {"die-timeout", required_argument, NULL, DIE_TIMEOUT},
        {"start-delay", required_argument, NULL, START_DELAY},
        {"min-uptime", required_argument, NULL, MIN_UPTIME},
        {"backoff-min", required_argument, NULL, BACKOFF_MIN},
        {"backoff-max", required_argument, NULL, BACKOFF_MAX},
        {"crash-budget", required_argument, NULL, CRASH_BUDGET},
        {"crash-window", required_argument, NULL, CRASH_WINDOW},
        {"max-requests", required_argument, NULL, MAX_REQUESTS},
        {"max-size", required_argument, NULL, MAX_SIZE},
        {"sizecheck-num-requests", required_argument, NULL, SIZECHECK},
        {"pm-title", required_argument, NULL, PM_TITLE},
        {"stop-signal", required_argument, NULL, STOP_SIGNAL},
        {"start-timeout", required_argument, NULL, START_TIMEOUT},
        {"status-socket", required_argument, NULL, STATUS_SOCKET},
        {"status-group", required_argument, NULL, STATUS_GROUP},
        {"pool", required_argument, NULL, POOL},
        {"min-idle", required_argument, NULL, MIN_IDLE},
        {"max-idle", required_argument, NULL, MAX_IDLE},
        {"max-workers", required_argument, NULL, MAX_WORKERS},
        {"idle-timeout", required_argument, NULL, IDLE_TIMEOUT},
        {"spawn-rate", required_argument, NULL, SPAWN_RATE},
        {"request-timeout", required_argument, NULL, REQUEST_TIMEOUT},
        {"request-timeout-grace", required_argument, NULL, REQUEST_TIMEOUT_GRACE},
        {"request-slow", required_argument, NULL, REQUEST_SLOW},
        {"max-requests-jitter", required_argument, NULL, MAX_REQUESTS_JITTER},
        {"max-age", required_argument, NULL, MAX_AGE},
        {"max-rss", required_argument, NULL, MAX_RSS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    const char *group = NULL;
    int titled = 0;
    int workers_given = 0, ondemand = 0, jitter_given = 0, max_requests_given = 0;
    while ((c = getopt_long(argc, argv, "+:s:a:p:b:F:P:M:u:g:U:G:d:nhv", longs, NULL)) != -1) {
        switch (c) {
        case 's': o.socket_path = optarg; break;
        case 'a': o.address = optarg; break;
        case 'p': o.port = optarg; parse_count("-p", optarg, 1, 65535); break;
        case 'b': o.backlog = parse_count("-b", optarg, 1, 65535); break;
        case 'F': o.workers = optarg; workers_given = 1; parse_count("-F", optarg, 1, 100000); break;
        case POOL: set(pm, "--pool", "pool", optarg); ondemand = strcmp(optarg, "ondemand") == 0; break;
        case MIN_IDLE: set(pm, "--min-idle", "min_idle", optarg); break;
        case MAX_IDLE: set(pm, "--max-idle", "max_idle", optarg); break;
        case MAX_WORKERS: set(pm, "--max-workers", "max_workers", optarg); break;
        case IDLE_TIMEOUT: set(pm, "--idle-timeout", "idle_timeout", optarg); break;
        case SPAWN_RATE: set(pm, "--spawn-rate", "spawn_rate", optarg); break;
        case REQUEST_TIMEOUT: set(pm, "--request-timeout", "request_timeout", optarg); break;
        case REQUEST_TIMEOUT_GRACE: set(pm, "--request-timeout-grace", "request_timeout_grace", optarg); break;
        case REQUEST_SLOW: set(pm, "--request-slow", "request_slow", optarg); break;
        case MAX_AGE: set(pm, "--max-age", "max_age", optarg); break;
        case MAX_RSS: set(pm, "--max-rss", "max_rss", optarg); break;
        case MAX_REQUESTS_JITTER:
            pass_on(pm, "--max-requests-jitter", "max_requests_jitter", "PM_MAX_REQUESTS_JITTER", optarg);
            jitter_given = 1;
            break;
        case 'P': o.pid_file = optarg; break;
        case 'M': {
            char *end;
            long m = strtol(optarg, &end, 8);
            if (!*optarg || *end || m < 0 || m > 0777)
                die_usage("-M: '%s' is not an octal mode from 0 to 0777", optarg);
            o.mode = (mode_t)m;
            o.mode_set = 1;
            break;
        }
        case 'n': break;
        case 'd': o.directory = strdup(optarg); break;
        /* copies: the manager's title overwrites argv, and workers use these later */
        case 'u': o.user = strdup(optarg); break;
        case 'g': group = optarg; break;
        case 'U': o.sock_user = optarg; break;
        case 'G': o.sock_group = optarg; break;
        case DIE_TIMEOUT: set(pm, "--die-timeout", "die_timeout", optarg); break;
        case START_TIMEOUT: set(pm, "--start-timeout", "start_timeout", optarg); break;
        case START_DELAY: set(pm, "--start-delay", "start_delay", optarg); break;
        case MIN_UPTIME: set(pm, "--min-uptime", "min_uptime", optarg); break;
        case BACKOFF_MIN: set(pm, "--backoff-min", "backoff_min", optarg); break;
        case BACKOFF_MAX: set(pm, "--backoff-max", "backoff_max", optarg); break;
        case CRASH_BUDGET: set(pm, "--crash-budget", "crash_budget", optarg); break;
        case CRASH_WINDOW: set(pm, "--crash-window", "crash_window", optarg); break;
        case MAX_REQUESTS:
            pass_on(pm, "--max-requests", "max_requests", "PM_MAX_REQUESTS", optarg);
            max_requests_given = 1;
            break;
        case MAX_SIZE: pass_on(pm, "--max-size", "max_size", "PM_MAX_SIZE", optarg); break;
        case SIZECHECK:
            pass_on(pm, "--sizecheck-num-requests", "sizecheck_num_requests", "PM_SIZECHECK_NUM_REQUESTS", optarg);
            break;
        case PM_TITLE: set(pm, "--pm-title", "pm_title", optarg); titled = 1; break;
        case STATUS_SOCKET: set(pm, "--status-socket", "status_socket", optarg); break;
        case STATUS_GROUP:
            lookup_group("--status-group", optarg);
            set(pm, "--status-group", "status_group", optarg);
            break;
        case STOP_SIGNAL: o.stop_signal = parse_stop_signal(pm, optarg); break;
        case 'h': usage(stdout); return finish(pm, &o, 0);
        case 'v': printf("fcgi-pm %s\n", pm_version()); return finish(pm, &o, 0);
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default:
            if (optopt)
                die_usage("unknown option -%c (see --help)", optopt);
            die_usage("unknown option %s (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        die_usage("no program to run (fcgi-pm [options] -- program [args...])");
    if (jitter_given && !max_requests_given)
        die_usage("--max-requests-jitter applies with --max-requests only");
    o.program = argv + optind;
    if (o.socket_path && o.port)
        die_usage("give either -s PATH or -p PORT, not both");
    int inherited = -1;
    if (!o.socket_path && !o.port) {
        inherited = inherited_socket();
        if (inherited < 0)
            die_usage("no socket: give -s PATH or -p PORT, or start with a listening socket on fd 0 "
                      "or through systemd socket activation");        /* Whoever handed the socket over keeps it, and may queue connections on it for
         * the next start: a stop must not shut it down for them. */
        set(pm, "(inherited socket)", "stop_listening", "0");
    }
    if (o.address && !o.port)
        die_usage("-a needs -p");
    if ((o.mode_set || o.sock_user || o.sock_group) && !o.socket_path)
        die_usage("-M, -U and -G apply to a unix socket (-s)");
    o.sock_uid = o.sock_user ? lookup_user("-U", o.sock_user, NULL) : (uid_t)-1;
    o.sock_gid = o.sock_group ? lookup_group("-G", o.sock_group) : (gid_t)-1;
    if (o.user || group) {
        if (geteuid() != 0)
            die_usage("-u and -g need fcgi-pm to be started as root");
        o.gid = 0;
        o.uid = o.user ? lookup_user("-u", o.user, &o.gid) : getuid();
        if (group)
            o.gid = lookup_group("-g", group);
        if (o.uid == 0 && o.user)
            die_usage("-u: refusing to run workers as root");
        o.drop = 1;
    }
    if (o.directory) {
        struct stat st;
        if (stat(o.directory, &st) != 0 || !S_ISDIR(st.st_mode))
            die_usage("-d: '%s' is not a directory", o.directory);
    }
    pm_set_hook(pm, PM_HOOK_CHILD_AFTER_FORK, detach_worker, &o);
    pm_set_hook(pm, PM_HOOK_SERVER_INIT, prepare_worker, &o);
    /* From here a Ctrl-C is a stop request, acted on as soon as pm_manage runs. */
    handle_interrupt(pm);
    /* An ondemand pool starts none: -F is its error only when given. */
    if (!ondemand || workers_given)
        set(pm, "-F", "n_processes", o.workers);
    if (pm_check_parameters(pm) != 0)
        die_usage("%s", pool_message(pm_errmsg(pm)));
    if (o.pid_file) {
        set(pm, "-P", "pid_fname", o.pid_file);
        /* Before the socket: a second manager is refused before it touches the
         * first one's socket. */
        int rc = pm_write_pid_file(pm, NULL);
        if (rc == PM_ELOCKED || rc == PM_EPIDFILE)
            return finish(pm, &o, 1); /* logged: "pid file ... is held by another manager (pid N)" */
        /* any other failure is logged and the manager carries on, as the original */
    }
    int fd = inherited >= 0 ? inherited : o.socket_path ? listen_unix(&o) : listen_tcp(&o);
    if (fd < 0) {
        fprintf(stderr, "fcgi-pm: socket: %s\n", strerror(errno));
        return finish(pm, &o, 1);
    }
    if (!titled)
        set_title(pm, &o, inherited);
    if (pm_set_exec(pm, fd, o.program, NULL) != 0) {
        fprintf(stderr, "fcgi-pm: %s\n", pm_errmsg(pm));
        return finish(pm, &o, 1);
    }
    int rc = pm_manage(pm); /* exits in the manager; exec mode never returns in a worker */
    fprintf(stderr, "fcgi-pm: %s\n", pm_errmsg(pm));
    return finish(pm, &o, rc < 0 ? 1 : 0);
}
