// Package fcgipm makes a Go program a pre-forking FastCGI server supervised by
// libfcgi-pm's manager: a pool of worker processes, each serving an http.Handler
// through the standard library's net/http/fcgi, respawned when they die, replaced on
// HUP, stopped gracefully on TERM.
//
//	func main() {
//		http.HandleFunc("/", hello)
//		fcgipm.Main(fcgipm.Config{Address: "/run/app.sock", Processes: 4}, nil)
//	}
//
// # How a Go program gets the C manager
//
// The library forks its workers from pm_manage and refuses a process with more than
// one thread: a signal meant for the manager could reach another thread, and a fork
// copies only the thread that calls it. A Go program has several threads before main
// runs, and Go cannot fork without exec (golang/go#14767). So the manager runs
// before Go does, as runc's nsenter runs its C: Serve, called in the process the
// user started, checks the Config, opens the listening socket and execs the same
// program again in place (same pid) with the pool's parameters in its environment.
// In that image a cgo constructor (start.c) runs before Go's runtime exists, in the
// process's only thread, and calls pm_manage. The manager never returns to Go: it is
// the library's, in C, with its own signal handling, log lines, pid file, systemd
// notifications (Type=notify; socket activation's LISTEN_PID still names it) and
// crash backoff, and it exits once its pool has stopped. In each worker it forks,
// pm_manage returns in the constructor, which puts TERM and HUP back to their
// default actions; Go's runtime then starts, main runs afresh, and its call of Serve
// finds itself a worker and serves the inherited socket. The manager's death reaches
// the workers as TERM (the parent-death signal), as every stop does.
//
// The alternative, the library's exec mode (each worker a fresh exec of the
// program), is what the fcgi-pm program gives: the same program runs unchanged
// under it (FCGI_PM_MANAGER_PID: the constructor adopts the process as a worker, on
// descriptor 0). Forking from the constructor costs a worker one fork instead of a
// fork and an exec, keeps the manager a single-threaded C process of a few hundred
// KiB, and needs no helper process: the pid the user started, and wrote into the pid
// file, is the manager's throughout.
//
// What follows from the design:
//   - main runs once in the process the user started and once in each worker, never
//     in the manager. Work before Serve is done in each worker (as after an exec);
//     what each worker must do once is WorkerInit's.
//   - The manager runs no Go code, so the hooks are the workers' (WorkerInit,
//     PreDispatch, PostDispatch, Log); the library's manager-side hooks and the
//     parameters that only make sense with them are not offered (see Config).
//   - A failure of pm_manage itself (another manager holds the pid file, say) is found
//     in the exec'd image: main runs there once more, and Serve returns the error.
//
// # Signals and stops
//
// In a worker no C handler is left in Go's runtime: TERM and HUP are Go's, taken
// with os/signal once Serve runs (before that they end the worker, which serves
// nothing yet), and passed on to the library with pm_request_stop. The program may
// use os/signal for any other signal. A stop (TERM, HUP, the manager's death,
// max_requests or the memory limits after a request, Worker.Stop) closes the
// listener at once, cancels Worker.Context, and ends each FastCGI connection once no
// request is open on it (its handler has returned and net/http/fcgi has written the
// request's last record) by shutting its write side: never a close over bytes not
// yet read, such as a request body the handler left, which would reset the
// connection and could cost nginx the reply. A connection the web server keeps alive
// (fastcgi_keep_conn) is ended with the reply of a request that comes on it within
// 100 ms, else then; nginx closes it, and net/http/fcgi with it. When the last
// connection is closed, Serve returns. A request nginx sends on a kept-alive
// connection just as the worker ends it fails on that connection: nginx sends a GET
// again on a new one, not a POST (it does not resend a request it may have sent).
// C workers that end a kept-alive connection race the same way.
//
// Each request is one pm_pre_dispatch / pm_post_dispatch pair (the library's
// counting, max_requests and memory checks, its log lines), made one at a time under
// the worker's lock, since net/http/fcgi serves requests concurrently. Concurrent
// requests in one worker each count as one. Before each, the request is named for
// the live status (`fcgi-pm status`: pm_set_request, in the same cgo call): its
// method, URI and client address; with concurrent requests the worker shows its
// latest.
//
// # Sizing
//
// Each worker runs with GOMAXPROCS 1 unless Config.MaxProcs or the GOMAXPROCS
// environment variable say otherwise: the pool scales by processes, as the library's
// C workers do, and more threads in each worker only add scheduling between them.
// bench/run measures it (hello behind nginx, 2 workers, GOMAXPROCS 1 against 2, in
// the same run; bench/results/latest.md, "Go"): on 2 cores, GOMAXPROCS 1 served
// more. Give a pool at least one worker per core, and more when handlers block.
package fcgipm
