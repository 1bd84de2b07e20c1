package fcgipm_test

import (
	"fmt"
	"net/http"
	"os"
	"time"

	fcgipm "github.com/fcgi-pm/fcgi-pm/bindings/go"
)

// A hello server: four workers on a unix socket, each replaced after 1000 requests.
// Run as it is, the program becomes the manager (its pid in /run/hello.pid) and its
// workers serve; TERM stops them gracefully, HUP replaces them.
func Example() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from pid %d\n", os.Getpid())
	})
	fcgipm.Main(fcgipm.Config{
		Address:     "/run/hello.sock",
		Processes:   4,
		MaxRequests: 1000,
		DieTimeout:  10 * time.Second,
		PIDFile:     "/run/hello.pid",
	}, nil)
}

// The worker's context ends work of its own when the worker must stop.
func ExampleWorker_Context() {
	cfg := fcgipm.Config{Address: "/run/app.sock", Processes: 2}
	cfg.WorkerInit = func(w *fcgipm.Worker) error {
		go func() {
			tick := time.NewTicker(time.Minute)
			defer tick.Stop()
			for {
				select {
				case <-tick.C: // refresh a cache, say
				case <-w.Context().Done():
					return
				}
			}
		}()
		return nil
	}
	if err := fcgipm.Serve(cfg, http.DefaultServeMux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
