// go_plain is the Go hello handler (bindings/go/examples/hello's) on
// net/http/fcgi alone, serving the socket on descriptor 0: bench/run's yardstick for
// the fcgipm package, run under spawn-fcgi.
package main

import (
	"fmt"
	"net/http"
	"net/http/fcgi"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1) // as the package sizes each worker of a pool
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil && ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "Hello from pid %d\n", os.Getpid())
	})
	if err := fcgi.Serve(nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
