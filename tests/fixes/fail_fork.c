/* LD_PRELOAD shim: fork() fails with EAGAIN while the file named by
 * FAIL_FORK_WHILE exists, as it does under RLIMIT_NPROC or a cgroup's pids.max. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

pid_t fork(void)
{
    const char *flag = getenv("FAIL_FORK_WHILE");
    if (flag && access(flag, F_OK) == 0) {
        errno = EAGAIN;
        return -1;
    }
    pid_t (*real_fork)(void) = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    return real_fork();
}
