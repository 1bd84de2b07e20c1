/*
 * host_app -- a host program with state of its own that fcgi-pm must leave alone:
 * a blocked signal, a SIGUSR2 handler, a SIGCHLD disposition, an extra descriptor,
 * and a child process of its own.
 *
 * Usage: host_app DIR N_PROCESSES ign|handler
 *   Before pm_manage it writes DIR/host (its fds, SigBlk, and its child's pid).
 *   Each worker writes DIR/worker.<pid> with the same facts as it sees them, then
 *   blocks in accept() on DIR/sock until the manager stops it.
 *   Hooks append "manager_init <pid>" / "server_init <pid>" to DIR/hooks.
 *   With HOST_APP_NOTIFY_STDIO=1 in its environment, log lines go through a notify
 *   hook that prints them to stdout with stdio (buffered in the manager when it forks
 *   the next worker: that output must not be written twice).
 *   The host also leaves "host output" unflushed in its stdout, and has a second
 *   listening socket at fd 11, which each worker closes and reuses for a file: after
 *   the worker is stopped it appends "fd 11 after stop: file" (or "other") to its report.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcgi_pm.h"

static char dir[256];

static void on_usr2(int signo) { (void)signo; }
static void on_chld(int signo) { (void)signo; }

/* Writes text to path, creating it. */
static void save(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t ignored = write(fd, text, strlen(text));
    (void)ignored;
    close(fd);
}

/* "fds: 0 1 2 ...", "SigBlk: ...", "chld: ...", "usr2: ..." for this process. */
static void describe(FILE *out)
{
    fprintf(out, "fds:");
    DIR *d = opendir("/proc/self/fd");
    int own = dirfd(d);
    int fds[256], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (e->d_name[0] != '.' && atoi(e->d_name) != own)
            fds[n++] = atoi(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) /* readdir order is not sorted: sort */
        for (int j = i + 1; j < n; j++)
            if (fds[j] < fds[i]) { int t = fds[i]; fds[i] = fds[j]; fds[j] = t; }
    for (int i = 0; i < n; i++)
        fprintf(out, " %d", fds[i]);
    fprintf(out, "\n");

    char line[256];
    FILE *status = fopen("/proc/self/status", "r");
    while (fgets(line, sizeof line, status))
        if (strncmp(line, "SigBlk:", 7) == 0)
            fputs(line, out);
    fclose(status);

    struct sigaction sa;
    sigaction(SIGCHLD, NULL, &sa);
    fprintf(out, "chld: %s\n", sa.sa_handler == SIG_IGN ? "ign" : sa.sa_handler == SIG_DFL ? "dfl" : "handler");
    sigaction(SIGUSR2, NULL, &sa);
    fprintf(out, "usr2: %s\n", sa.sa_handler == on_usr2 ? "handler" : "other");
}

static void hook(pm_t *pm, void *user)
{
    char path[300];
    snprintf(path, sizeof path, "%s/hooks", dir);
    FILE *f = fopen(path, "a");
    fprintf(f, "%s %d\n", (const char *)user, (int)getpid());
    fclose(f);
    (void)pm;
}

static void print_line(pm_t *pm, const char *line, void *user)
{
    printf("%s\n", line);
    (void)pm;
    (void)user;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char path[300];

    /* The host's own state. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    signal(SIGUSR2, on_usr2);
    if (strcmp(argv[3], "ign") == 0) {
        signal(SIGCHLD, SIG_IGN);
    } else {
        struct sigaction sa = {0};
        sa.sa_handler = on_chld; /* counts nothing, reaps nothing */
        sigaction(SIGCHLD, &sa, NULL);
    }
    int host_fd = open("/dev/null", O_RDONLY);
    dup2(host_fd, 10);
    close(host_fd);
    pid_t host_child = fork();
    if (host_child == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }

    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/sock", dir);
    if (bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(sock, 16) < 0)
        return 1;

    /* A second listener the workers will not use (an admin socket, say), and output
     * still sitting in stdio's buffer when the workers are forked. */
    int admin = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un admin_addr = {.sun_family = AF_UNIX};
    snprintf(admin_addr.sun_path, sizeof admin_addr.sun_path, "%s/admin.sock", dir);
    if (bind(admin, (struct sockaddr *)&admin_addr, sizeof admin_addr) < 0 || listen(admin, 1) < 0)
        return 1;
    dup2(admin, 11);
    close(admin);
    printf("host output\n");

    /* Described into memory first: the report itself opens no descriptor. */
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    describe(f);
    fprintf(f, "child: %d\n", (int)host_child);
    fclose(f);
    snprintf(path, sizeof path, "%s/host", dir);
    save(path, text);
    free(text);


    pm_t *pm = pm_create();
    pm_parameter(pm, "n_processes", argv[2]);
    pm_parameter(pm, "die_timeout", "5");
    pm_set_hook(pm, PM_HOOK_MANAGER_INIT, hook, "manager_init");
    pm_set_hook(pm, PM_HOOK_SERVER_INIT, hook, "server_init");
    const char *stdio_notify = getenv("HOST_APP_NOTIFY_STDIO");
    if (stdio_notify && strcmp(stdio_notify, "1") == 0)
        pm_set_notify_hook(pm, print_line, NULL);
    if (pm_manage(pm) != PM_WORKER) {
        pm_destroy(pm);
        return 1;
    }

    f = open_memstream(&text, &len);
    describe(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/worker.%d", dir, (int)getpid());
    save(path, text);
    free(text);

    /* The worker closes the admin socket and the number is reused for a file. */
    char scratch[300];
    snprintf(scratch, sizeof scratch, "%s/scratch.%d", dir, (int)getpid());
    int file = open(scratch, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    close(11);
    dup2(file, 11);
    close(file);

    while (accept(sock, NULL, NULL) >= 0)
        ;
    struct stat st;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    dprintf(fd, "fd 11 after stop: %s\n", fstat(11, &st) == 0 && S_ISREG(st.st_mode) ? "file" : "other");
    close(fd);
    pm_destroy(pm);
    return 0;
}
