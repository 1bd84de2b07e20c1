/*
 * crash_pm -- a program on libfcgi-pm whose workers crash at start: each appends a
 * line to $BENCH_CRASH_LOG and exits 1 as soon as pm_manage returns in it.
 * Usage: crash_pm SOCKET N_PROCESSES
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fcgi_pm.h>

int main(int argc, char **argv)
{
    if (argc != 3 || FCGX_Init() != 0 || FCGX_OpenSocket(argv[1], 128) < 0)
        return 2;
    pm_t *pm = pm_create();
    if (!pm || pm_parameter(pm, "n_processes", argv[2]) != 0 || pm_manage(pm) < 0)
        return 1;
    FILE *f = fopen(getenv("BENCH_CRASH_LOG"), "a");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    return 1;
}
