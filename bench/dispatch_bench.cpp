// dispatch_bench -- the cost of one pm_pre_dispatch + pm_post_dispatch pair in a real
// worker: pm_manage (n_processes 1) forks the worker, which measures the pair and then
// stops the pool as a server stop would (bench/dispatch.sh runs it).
//
//   dispatch_bench [Google Benchmark flags]   times the pair (by default 10
//                                             repetitions, aggregates only)
//   dispatch_bench --pairs=K                  runs K pairs between two marker system
//                                             calls, for counting them under strace
//
// DISPATCH_BENCH_SCOREBOARD=0 in the environment sets "scoreboard" 0 (the workers
// keep no request views: the pair without the live status); DISPATCH_BENCH_NAMED=1
// names each request (pm_set_request) before its pair, as pm_fcgx_accept does.
//
// The markers are access(2) calls on the paths begin_marker and end_marker, which
// dispatch.sh looks for in the trace (dispatch.pl uses the same ones).
#include <benchmark/benchmark.h>
#include <fcgi_pm.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <ctime>
#include <string>
#include <vector>
#include <unistd.h>

namespace {

constexpr const char *begin_marker = "/nonexistent/dispatch-bench-begin";
constexpr const char *end_marker = "/nonexistent/dispatch-bench-end";
constexpr const char *default_flags[] = {"--benchmark_repetitions=10", "--benchmark_report_aggregates_only=true"};

pm_t *worker_pm;  // the worker's handle, once pm_manage has returned PM_WORKER
bool named;       // DISPATCH_BENCH_NAMED

inline void one_request() {
    if (named)
        pm_set_request(worker_pm, "GET", "/bench/dispatch?with=a-query", "127.0.0.1");
    pm_pre_dispatch(worker_pm);
    pm_post_dispatch(worker_pm);
}

void dispatch_pair(benchmark::State &state) {
    for (auto _ : state)
        one_request();
}

void run_pairs(long pairs) {
    (void)::access(begin_marker, F_OK);
    for (long i = 0; i < pairs; ++i)
        one_request();
    (void)::access(end_marker, F_OK);
}

// TERM to the manager, which sends TERM to this worker; the next pm_post_dispatch
// then exits 0 ("safe exit after SIGTERM"), after which the manager exits 0 too.
[[noreturn]] void stop_pool() {
    std::fflush(stdout);
    ::kill(::getppid(), SIGTERM);
    for (int i = 0; i < 1000 && pm_received_signal(worker_pm, SIGTERM) == 0; ++i) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        ::nanosleep(&pause, nullptr);
    }
    pm_post_dispatch(worker_pm);
    std::fprintf(stderr, "dispatch_bench: no TERM came back from the manager within 10 s\n");
    std::exit(1);
}

// "--pairs=K": K > 0, or -1 when arg is not that option; exits 2 on a bad K.
long pairs_option(const std::string &arg) {
    const std::string prefix = "--pairs=";
    if (arg.compare(0, prefix.size(), prefix) != 0)
        return -1;
    const char *text = arg.c_str() + prefix.size();
    char *end = nullptr;
    errno = 0;
    long k = std::strtol(text, &end, 10);
    if (!*text || *end || errno || k <= 0) {
        std::fprintf(stderr, "dispatch_bench: --pairs wants a positive number, not '%s'\n", text);
        std::exit(2);
    }
    return k;
}

}  // namespace

int main(int argc, char **argv) {
    // The worker's title is written over argv's strings: work on copies.
    std::vector<std::string> args(argv, argv + argc);
    long pairs = args.size() == 2 ? pairs_option(args[1]) : -1;
    if (pairs < 0) {
        // Defaults first, so that the caller's flags override them.
        args.insert(args.begin() + 1, std::begin(default_flags), std::end(default_flags));
        std::vector<char *> gb_argv;
        for (std::string &a : args)
            gb_argv.push_back(a.data());
        gb_argv.push_back(nullptr);
        int gb_argc = static_cast<int>(args.size());
        benchmark::Initialize(&gb_argc, gb_argv.data());
        if (benchmark::ReportUnrecognizedArguments(gb_argc, gb_argv.data()))
            return 2;
        benchmark::RegisterBenchmark("pm_pre_dispatch+pm_post_dispatch", dispatch_pair)
            ->Unit(benchmark::kNanosecond);
    }

    const char *board = std::getenv("DISPATCH_BENCH_SCOREBOARD");
    const char *name = std::getenv("DISPATCH_BENCH_NAMED");
    named = name && std::string(name) == "1";
    pm_t *pm = pm_create();
    if (!pm || pm_parameter(pm, "n_processes", "1") < 0 ||
        (board && pm_parameter(pm, "scoreboard", board) < 0)) {
        std::fprintf(stderr, "dispatch_bench: %s\n", pm ? pm_errmsg(pm) : "out of memory");
        return 1;
    }
    int rc = pm_manage(pm);  // returns only in the worker
    if (rc != PM_WORKER) {
        std::fprintf(stderr, "dispatch_bench: pm_manage: %s\n", rc < 0 ? pm_errmsg(pm) : "no worker");
        return 1;
    }
    worker_pm = pm;

    if (pairs > 0) {
        run_pairs(pairs);
    } else {
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
    }
    stop_pool();
}
