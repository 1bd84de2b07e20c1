/*
 * fcgi-pm status -- what a running pool is doing now, from its scoreboard.
 *
 *     fcgi-pm status [--json | --openmetrics] [--watch[=SECONDS]] [--no-proc] MANAGER
 *
 * MANAGER is the manager's pid, its pid file, its FastCGI socket (a unix socket
 * path, HOST:PORT) or its status socket. The table is for people, --json for
 * programs, --openmetrics for Prometheus (OpenMetrics text). Exit 0; 1 when the
 * manager cannot be read (gone, not fcgi-pm, another user's), with one line why;
 * 2 for bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_pm.h"
#include "status_cmd.h"

enum format { TABLE, JSON, OPENMETRICS };

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signo)
{
    (void)signo;
    interrupted = 1;
}

/* "1.204s", "35ms", "412us", "2h03m", "3d04h": short, for a column. */
static void format_duration(char *out, size_t size, long long us)
{
    if (us < 0)
        snprintf(out, size, "-");
    else if (us < 1000)
        snprintf(out, size, "%lldus", us);
    else if (us < 1000000)
        snprintf(out, size, "%lldms", us / 1000);
    else if (us < 60000000LL)
        snprintf(out, size, "%.3fs", us / 1e6);
    else if (us < 3600000000LL)
        snprintf(out, size, "%lldm%02llds", us / 60000000LL, us / 1000000 % 60);
    else if (us < 86400000000LL)
        snprintf(out, size, "%lldh%02lldm", us / 3600000000LL, us / 60000000LL % 60);
    else
        snprintf(out, size, "%lldd%02lldh", us / 86400000000LL, us / 3600000000LL % 24);
}

static void format_size(char *out, size_t size, long long kb)
{
    if (kb < 0)
        snprintf(out, size, "-");
    else if (kb < 10240)
        snprintf(out, size, "%lldK", kb);
    else if (kb < 10240 * 1024)
        snprintf(out, size, "%.1fM", kb / 1024.0);
    else
        snprintf(out, size, "%.1fG", kb / 1048576.0);
}

static void format_clock(char *out, size_t size, long long unix_us, int with_date)
{
    time_t t = (time_t)(unix_us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, size, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
}

/* The snapshot's figures, as the printers use them (pm_status_value, pm_status_text). */
struct pool {
    long long manager_pid, started_us, uptime_us, target, workers, ready, idle, busy, starting, stopping;
    long long crash_backoff, backoff_us, accepted, requests, spawned, respawns, exits, crashes, reloads;
    long long max_busy, pool_full, listen_queue, listen_queue_max, listen_backlog;
    long long slow_requests, deadline_kills, recycled;
    const char *title, *phase, *mode;
};
struct worker {
    long long pid, slot, state, busy, requests, started_us, request_start_us, request_us, cpu_us, rss_kb;
    const char *method, *uri, *remote;
};

static long long pool_value(pm_status_t *st, int field)
{
    long long v = -1;
    pm_status_value(st, PM_STATUS_POOL, field, &v);
    return v;
}

static void load_pool(pm_status_t *st, struct pool *p)
{
    p->manager_pid = pool_value(st, PM_POOL_MANAGER_PID);
    p->started_us = pool_value(st, PM_POOL_START_TIME_US);
    p->uptime_us = pool_value(st, PM_POOL_UPTIME_US);
    p->target = pool_value(st, PM_POOL_TARGET);
    p->workers = pool_value(st, PM_POOL_WORKERS);
    p->ready = pool_value(st, PM_POOL_READY);
    p->idle = pool_value(st, PM_POOL_IDLE);
    p->busy = pool_value(st, PM_POOL_BUSY);
    p->starting = pool_value(st, PM_POOL_STARTING);
    p->stopping = pool_value(st, PM_POOL_STOPPING);
    p->crash_backoff = pool_value(st, PM_POOL_CRASH_BACKOFF);
    p->backoff_us = pool_value(st, PM_POOL_BACKOFF_US);
    p->accepted = pool_value(st, PM_POOL_ACCEPTED);
    p->requests = pool_value(st, PM_POOL_REQUESTS);
    p->spawned = pool_value(st, PM_POOL_SPAWNED);
    p->respawns = pool_value(st, PM_POOL_RESPAWNS);
    p->exits = pool_value(st, PM_POOL_EXITS);
    p->crashes = pool_value(st, PM_POOL_CRASHES);
    p->reloads = pool_value(st, PM_POOL_RELOADS);
    p->max_busy = pool_value(st, PM_POOL_MAX_BUSY);
    p->pool_full = pool_value(st, PM_POOL_POOL_FULL);
    p->listen_queue = pool_value(st, PM_POOL_LISTEN_QUEUE);
    p->listen_queue_max = pool_value(st, PM_POOL_LISTEN_QUEUE_MAX);
    p->listen_backlog = pool_value(st, PM_POOL_LISTEN_BACKLOG);
    p->slow_requests = pool_value(st, PM_POOL_SLOW_REQUESTS);
    p->deadline_kills = pool_value(st, PM_POOL_DEADLINE_KILLS);
    p->recycled = pool_value(st, PM_POOL_RECYCLED);
    p->title = pm_status_text(st, PM_STATUS_POOL, PM_POOL_TITLE);
    p->phase = pm_status_text(st, PM_STATUS_POOL, PM_POOL_PHASE);
    p->mode = pm_status_text(st, PM_STATUS_POOL, PM_POOL_MODE);
}

static long long slot_value(pm_status_t *st, int i, int field)
{
    long long v = -1;
    pm_status_value(st, i, field, &v);
    return v;
}

static void load_worker(pm_status_t *st, int i, struct worker *w)
{
    w->pid = slot_value(st, i, PM_SLOT_PID);
    w->slot = slot_value(st, i, PM_SLOT_INDEX);
    w->state = slot_value(st, i, PM_SLOT_STATE);
    w->busy = slot_value(st, i, PM_SLOT_BUSY);
    w->requests = slot_value(st, i, PM_SLOT_REQUESTS);
    w->started_us = slot_value(st, i, PM_SLOT_START_TIME_US);
    w->request_start_us = slot_value(st, i, PM_SLOT_REQUEST_START_US);
    w->request_us = slot_value(st, i, PM_SLOT_REQUEST_US);
    w->cpu_us = slot_value(st, i, PM_SLOT_CPU_US);
    w->rss_kb = slot_value(st, i, PM_SLOT_RSS_KB);
    w->method = pm_status_text(st, i, PM_SLOT_METHOD);
    w->uri = pm_status_text(st, i, PM_SLOT_URI);
    w->remote = pm_status_text(st, i, PM_SLOT_REMOTE);
}

static void print_table(FILE *out, pm_status_t *st)
{
    struct pool pool, *p = &pool;
    load_pool(st, p);
    char up[32], since[32], queue[64];
    format_duration(up, sizeof up, p->uptime_us);
    format_clock(since, sizeof since, p->started_us, 1);
    if (p->listen_queue >= 0)
        snprintf(queue, sizeof queue, "%lld waiting (max %lld), backlog %lld", p->listen_queue,
                 p->listen_queue_max, p->listen_backlog);
    else
        snprintf(queue, sizeof queue, "unknown");
    fprintf(out, "pool:      %s\n", p->title);
    fprintf(out, "manager:   pid %lld, %s, up %s (since %s)\n", p->manager_pid, p->phase, up, since);
    fprintf(out, "workers:   %lld of %lld (%s): %lld busy, %lld idle", p->workers, p->target, p->mode, p->busy,
            p->idle);
    if (p->starting)
        fprintf(out, ", %lld starting", p->starting);
    if (p->stopping)
        fprintf(out, ", %lld stopping", p->stopping);
    fprintf(out, "; max busy %lld, pool full %lld times\n", p->max_busy, p->pool_full);
    fprintf(out, "requests:  %lld served, %lld accepted, %lld slow, %lld past their deadline\n", p->requests,
            p->accepted, p->slow_requests, p->deadline_kills);
    fprintf(out, "listen:    %s\n", queue);
    fprintf(out, "lifecycle: %lld started (%lld respawns), %lld exited (%lld crashes), %lld recycled, %lld reloads",
            p->spawned, p->respawns, p->exits, p->crashes, p->recycled, p->reloads);
    if (p->crash_backoff) {
        char next[32];
        format_duration(next, sizeof next, p->backoff_us);
        fprintf(out, "; CRASH BACKOFF, next respawn in %s", next);
    }
    fputc('\n', out);
    fprintf(out, "\n%7s %4s %-8s %8s %8s %8s %7s %9s  %s\n", "PID", "SLOT", "STATE", "REQS", "STARTED", "CPU", "RSS",
            "TIME", "REQUEST");
    for (int i = 0; i < p->workers; i++) {
        struct worker worker, *w = &worker;
        load_worker(st, i, w);
        char started[16], cpu[16], rss[16], took[16], request[300];
        format_clock(started, sizeof started, w->started_us, 0);
        format_duration(cpu, sizeof cpu, w->cpu_us);
        format_size(rss, sizeof rss, w->rss_kb);
        format_duration(took, sizeof took, w->request_us);
        if (w->method[0] || w->uri[0])
            snprintf(request, sizeof request, "%s %s%s%s%s", w->method, w->uri, w->remote[0] ? " (" : "", w->remote,
                     w->remote[0] ? ")" : "");
        else
            snprintf(request, sizeof request, "%s", w->request_us >= 0 ? "(not told)" : "");
        fprintf(out, "%7lld %4lld %-8s %8lld %8s %8s %7s %9s%s %s\n", w->pid, w->slot, pm_worker_state_name((int)w->state),
                w->requests, started, cpu, rss, took, w->busy ? "*" : " ", request);
    }
}

/* Microseconds as decimal seconds ("12.000345"), without floating point. */
static void seconds(FILE *out, const char *name, long long us)
{
    const char *sign = us < 0 ? "-" : "";
    unsigned long long u = us < 0 ? 0ULL - (unsigned long long)us : (unsigned long long)us;
    fprintf(out, "\"%s\":%s%llu.%06llu", name, sign, u / 1000000, u % 1000000);
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\u%04x", c); /* the board's strings are ASCII: others escaped, not guessed */
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void print_json(FILE *out, pm_status_t *st)
{
    struct pool pool, *p = &pool;
    load_pool(st, p);
    fprintf(out, "{\"pool\":{\"manager_pid\":%lld,\"title\":", p->manager_pid);
    json_string(out, p->title);
    fprintf(out, ",\"phase\":");
    json_string(out, p->phase);
    fprintf(out, ",\"mode\":");
    json_string(out, p->mode);
    fputc(',', out);
    seconds(out, "start_time", p->started_us);
    fputc(',', out);
    seconds(out, "uptime_seconds", p->uptime_us);
    fprintf(out,
            ",\"target\":%lld,\"workers\":%lld,\"ready\":%lld,\"idle\":%lld,\"busy\":%lld,\"starting\":%lld,\"stopping\":%lld,"
            "\"crash_backoff\":%s,",
            p->target, p->workers, p->ready, p->idle, p->busy, p->starting, p->stopping,
            p->crash_backoff ? "true" : "false");
    seconds(out, "backoff_seconds", p->backoff_us);
    fprintf(out,
            ",\"accepted\":%lld,\"requests\":%lld,\"spawned\":%lld,\"respawns\":%lld,\"exits\":%lld,"
            "\"crashes\":%lld,\"reloads\":%lld,\"max_busy\":%lld,\"pool_full\":%lld,"
            "\"slow_requests\":%lld,\"deadline_kills\":%lld,\"recycled\":%lld,",
            p->accepted, p->requests, p->spawned, p->respawns, p->exits, p->crashes, p->reloads, p->max_busy,
            p->pool_full, p->slow_requests, p->deadline_kills, p->recycled);
    if (p->listen_queue >= 0)
        fprintf(out, "\"listen_queue\":%lld,\"listen_queue_max\":%lld,\"listen_backlog\":%lld}", p->listen_queue,
                p->listen_queue_max, p->listen_backlog);
    else
        fprintf(out, "\"listen_queue\":null,\"listen_queue_max\":%lld,\"listen_backlog\":null}", p->listen_queue_max);
    fprintf(out, ",\"workers\":[");
    for (int i = 0; i < p->workers; i++) {
        struct worker worker, *w = &worker;
        load_worker(st, i, w);
        fprintf(out, "%s{\"pid\":%lld,\"slot\":%lld,\"state\":\"%s\",\"busy\":%s,\"requests\":%lld,", i ? "," : "", w->pid,
                w->slot, pm_worker_state_name((int)w->state), w->busy ? "true" : "false", w->requests);
        seconds(out, "start_time", w->started_us);
        fputc(',', out);
        if (w->request_us >= 0) {
            seconds(out, "request_start_time", w->request_start_us);
            fputc(',', out);
            seconds(out, "request_seconds", w->request_us);
            fputc(',', out);
        } else {
            fputs("\"request_start_time\":null,\"request_seconds\":null,", out);
        }
        fputs("\"method\":", out);
        json_string(out, w->method);
        fputs(",\"uri\":", out);
        json_string(out, w->uri);
        fputs(",\"remote\":", out);
        json_string(out, w->remote);
        fputc(',', out);
        if (w->cpu_us >= 0)
            seconds(out, "cpu_seconds", w->cpu_us);
        else
            fputs("\"cpu_seconds\":null", out);
        if (w->rss_kb >= 0)
            fprintf(out, ",\"rss_bytes\":%lld}", w->rss_kb * 1024);
        else
            fputs(",\"rss_bytes\":null}", out);
    }
    fputs("]}\n", out);
}

/* A label value: \, " and newline escaped, as the text format asks. */
static void label_value(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void family(FILE *out, const char *name, const char *type, const char *unit, const char *help)
{
    fprintf(out, "# TYPE %s %s\n", name, type);
    if (unit)
        fprintf(out, "# UNIT %s %s\n", name, unit);
    fprintf(out, "# HELP %s %s\n", name, help);
}

static void print_openmetrics(FILE *out, pm_status_t *st)
{
    struct pool pool, *p = &pool;
    load_pool(st, p);
    family(out, "fcgipm_manager", "info", NULL, "The pool's manager: its pid, title, fcgi-pm's version, phase and pool mode.");
    fprintf(out, "fcgipm_manager_info{pid=\"%lld\",title=\"", p->manager_pid);
    label_value(out, p->title);
    fprintf(out, "\",version=\"%s\",phase=\"%s\",mode=\"%s\"} 1\n", pm_version(), p->phase, p->mode);
    family(out, "fcgipm_manager_start_time_seconds", "gauge", "seconds", "When the manager started, since the epoch.");
    fprintf(out, "fcgipm_manager_start_time_seconds %.6f\n", p->started_us / 1e6);
    family(out, "fcgipm_workers_target", "gauge", NULL, "Workers the pool keeps running (n_processes).");
    fprintf(out, "fcgipm_workers_target %lld\n", p->target);
    family(out, "fcgipm_workers", "gauge", NULL, "Live workers by state.");
    int busy_only = 0, running = 0;
    for (int i = 0; i < p->workers; i++) {
        long long state = slot_value(st, i, PM_SLOT_STATE);
        busy_only += state == PM_WORKER_BUSY;
        running += state == PM_WORKER_RUNNING;
    }
    fprintf(out, "fcgipm_workers{state=\"idle\"} %lld\n", p->idle);
    fprintf(out, "fcgipm_workers{state=\"busy\"} %d\n", busy_only);
    fprintf(out, "fcgipm_workers{state=\"starting\"} %lld\n", p->starting);
    fprintf(out, "fcgipm_workers{state=\"stopping\"} %lld\n", p->stopping);
    fprintf(out, "fcgipm_workers{state=\"running\"} %d\n", running);
    /* The pool's other figures: one family each, none for a figure not known. */
    static const struct {
        const char *family, *sample, *type, *help;
        int field;
    } pool_metrics[] = {
        {"fcgipm_workers_max_busy", "fcgipm_workers_max_busy", "gauge", "The most workers busy at once since the start, sampled each second.",
         PM_POOL_MAX_BUSY},
        {"fcgipm_pool_full", "fcgipm_pool_full_total", "counter", "One-second samples that found every worker busy.",
         PM_POOL_POOL_FULL},
        {"fcgipm_requests", "fcgipm_requests_total", "counter", "Requests served by the pool's workers.",
         PM_POOL_REQUESTS},
        {"fcgipm_worker_starts", "fcgipm_worker_starts_total", "counter", "Workers started.", PM_POOL_SPAWNED},
        {"fcgipm_worker_respawns", "fcgipm_worker_respawns_total", "counter",
         "Workers started in place of one that had ended.", PM_POOL_RESPAWNS},
        {"fcgipm_worker_exits", "fcgipm_worker_exits_total", "counter", "Workers that ended.", PM_POOL_EXITS},
        {"fcgipm_worker_crashes", "fcgipm_worker_crashes_total", "counter",
         "Workers that failed soon after their start.", PM_POOL_CRASHES},
        {"fcgipm_reloads", "fcgipm_reloads_total", "counter", "Reloads (HUP).", PM_POOL_RELOADS},
        {"fcgipm_slow_requests", "fcgipm_slow_requests_total", "counter", "Requests that ran past request_slow.",
         PM_POOL_SLOW_REQUESTS},
        {"fcgipm_deadline_kills", "fcgipm_deadline_kills_total", "counter",
         "Workers stopped for a request that ran past request_timeout.", PM_POOL_DEADLINE_KILLS},
        {"fcgipm_worker_recycles", "fcgipm_worker_recycles_total", "counter",
         "Workers replaced for their requests, age or memory.", PM_POOL_RECYCLED},
        {"fcgipm_crash_backoff", "fcgipm_crash_backoff", "gauge",
         "1 while crashed workers are respawned one per second.", PM_POOL_CRASH_BACKOFF},
        {"fcgipm_listen_queue", "fcgipm_listen_queue", "gauge", "Connections waiting to be accepted.",
         PM_POOL_LISTEN_QUEUE},
        {"fcgipm_listen_queue_max", "fcgipm_listen_queue_max", "gauge", "The most connections seen waiting.",
         PM_POOL_LISTEN_QUEUE_MAX},
        {"fcgipm_listen_backlog", "fcgipm_listen_backlog", "gauge",
         "The most connections that may wait (listen backlog).", PM_POOL_LISTEN_BACKLOG},
    };
    for (size_t f = 0; f < sizeof pool_metrics / sizeof pool_metrics[0]; f++) {
        long long v = pool_value(st, pool_metrics[f].field);
        if (v < 0)
            continue;
        family(out, pool_metrics[f].family, pool_metrics[f].type, NULL, pool_metrics[f].help);
        fprintf(out, "%s %lld\n", pool_metrics[f].sample, v);
    }
    /* Per worker, one family after the other (the format keeps a family's samples
     * together): the field, its factor to the metric's unit, and whether the metric
     * is a whole number. */
    static const struct {
        const char *family, *sample, *type, *unit, *help;
        int field;
        long long factor; /* whole numbers */
        double scale;     /* or a fraction */
    } per_worker[] = {
        {"fcgipm_worker_requests", "fcgipm_worker_requests_total", "counter", NULL,
         "Requests served by each live worker.", PM_SLOT_REQUESTS, 1, 0},
        {"fcgipm_worker_busy", "fcgipm_worker_busy", "gauge", NULL, "1 while the worker is in a request.",
         PM_SLOT_BUSY, 1, 0},
        {"fcgipm_worker_request_duration_seconds", "fcgipm_worker_request_duration_seconds", "gauge", "seconds",
         "The current request's time so far, or the last request's duration.", PM_SLOT_REQUEST_US, 0, 1e-6},
        {"fcgipm_worker_cpu_seconds", "fcgipm_worker_cpu_seconds_total", "counter", "seconds",
         "CPU time used by each worker (user and system).", PM_SLOT_CPU_US, 0, 1e-6},
        {"fcgipm_worker_resident_memory_bytes", "fcgipm_worker_resident_memory_bytes", "gauge", "bytes",
         "Resident memory of each worker.", PM_SLOT_RSS_KB, 1024, 0},
    };
    for (size_t f = 0; f < sizeof per_worker / sizeof per_worker[0]; f++) {
        family(out, per_worker[f].family, per_worker[f].type, per_worker[f].unit, per_worker[f].help);
        for (int i = 0; i < p->workers; i++) {
            long long v = slot_value(st, i, per_worker[f].field);
            if (v < 0)
                continue; /* unknown: no sample */
            fprintf(out, "%s{slot=\"%lld\",pid=\"%lld\"} ", per_worker[f].sample, slot_value(st, i, PM_SLOT_INDEX),
                    slot_value(st, i, PM_SLOT_PID));
            if (per_worker[f].factor)
                fprintf(out, "%lld\n", v * per_worker[f].factor);
            else
                fprintf(out, "%.6f\n", v * per_worker[f].scale);
        }
    }
    fprintf(out, "# EOF\n");
}

static void status_usage(FILE *out)
{
    fprintf(out,
            "usage: fcgi-pm status [options] MANAGER\n"
            "  MANAGER             the manager's pid, pid file, FastCGI socket (a unix socket\n"
            "                      path, unix:PATH, tcp:HOST:PORT or HOST:PORT) or status socket\n"
            "  --json              one JSON object, for programs\n"
            "  --openmetrics       OpenMetrics (Prometheus) text\n"
            "  --watch[=SECONDS]   redraw the table every SECONDS (default 1) until interrupted\n"
            "  --no-proc           no /proc reads: CPU and memory only where the\n"
            "                      manager's figures hold (idle workers)\n"
            "  -h, --help          this text\n");
}

__attribute__((noreturn, format(printf, 1, 2))) static void status_die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("fcgi-pm status: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static int fail(pm_status_t *st)
{
    fprintf(stderr, "fcgi-pm status: %s\n", pm_status_errmsg(st));
    pm_status_close(st);
    return 1;
}

int status_main(int argc, char **argv)
{
    enum { JSON_OPT = 256, OPENMETRICS_OPT, WATCH_OPT, NO_PROC_OPT };
    static const struct option longs[] = {
        {"json", no_argument, NULL, JSON_OPT},
        {"openmetrics", no_argument, NULL, OPENMETRICS_OPT},
        {"watch", optional_argument, NULL, WATCH_OPT},
        {"no-proc", no_argument, NULL, NO_PROC_OPT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum format format = TABLE;
    double watch = 0;
    int flags = PM_STATUS_PROC;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:h", longs, NULL)) != -1) {
        switch (c) {
        case JSON_OPT: format = JSON; break;
        case OPENMETRICS_OPT: format = OPENMETRICS; break;
        case WATCH_OPT: {
            watch = 1;
            if (optarg) {
                char *end;
                errno = 0;
                watch = strtod(optarg, &end);
                if (!*optarg || *end || errno || !(watch >= 0.05 && watch <= 3600))
                    status_die_usage("--watch: '%s' is not a number of seconds from 0.05 to 3600", optarg);
            }
            break;
        }
        case NO_PROC_OPT: flags = 0; break;
        case 'h': status_usage(stdout); return 0;
        case ':': status_die_usage("%s needs a value", argv[optind - 1]);
        default: status_die_usage("unknown option %s (see fcgi-pm status --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        status_die_usage("no manager given (its pid, pid file or socket; see --help)");
    if (optind + 1 < argc)
        status_die_usage("one manager at a time ('%s' is one too many)", argv[optind + 1]);
    if (watch > 0 && format != TABLE)
        status_die_usage("--watch redraws the table: not with --json or --openmetrics");
    pm_status_t *st = pm_status_new();
    if (!st) {
        fputs("fcgi-pm status: out of memory\n", stderr);
        return 1;
    }
    if (pm_status_open(st, argv[optind]) < 0 || pm_status_read(st, flags) < 0)
        return fail(st);
    static char buffer[1 << 18]; /* the whole output of a big pool in a few writes */
    setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
    if (watch <= 0) {
        if (format == JSON)
            print_json(stdout, st);
        else if (format == OPENMETRICS)
            print_openmetrics(stdout, st);
        else
            print_table(stdout, st);
        pm_status_close(st);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* --watch: on a terminal, the table redrawn in place until INT or TERM (or the
     * manager ends); otherwise (a pipe, a file) one table after another, no escapes. */
    struct sigaction sa = {0};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int terminal = isatty(STDOUT_FILENO);
    if (terminal)
        fputs("\033[?1049h", stdout); /* the terminal's alternate screen, left on exit */
    int rc = 0;
    for (int first = 1; !interrupted; first = 0) {
        char now[32];
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        format_clock(now, sizeof now, (long long)t.tv_sec * 1000000, 1);
        fputs(terminal ? "\033[H\033[J" : first ? "" : "\n", stdout);
        fprintf(stdout, "fcgi-pm status %s, every %gs%s  %s\n\n", argv[optind], watch,
                terminal ? " (Ctrl-C to quit)" : "", now);
        print_table(stdout, st);
        fflush(stdout);
        poll(NULL, 0, (int)(watch * 1000));
        if (!interrupted && pm_status_read(st, flags) < 0) {
            rc = 1;
            break;
        }
    }
    if (terminal)
        fputs("\033[?1049l", stdout);
    fflush(stdout);
    if (rc)
        return fail(st);
    pm_status_close(st);
    return 0;
}
