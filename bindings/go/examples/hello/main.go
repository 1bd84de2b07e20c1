// Command hello is a FastCGI hello server on the fcgipm package: a pool of workers,
// each answering "Hello from pid N" (with ?sleep=MS, after sleeping that long).
//
//	hello [-n N] [-max-requests N] [-die-timeout D] [-pid-file F] [ADDRESS]
//
// ADDRESS is a unix socket path or host:port; without it, the socket on
// descriptor 0 (as the fcgi-pm program and spawn-fcgi give it).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	fcgipm "github.com/fcgi-pm/fcgi-pm/bindings/go"
)

func main() {
	var cfg fcgipm.Config
	flag.IntVar(&cfg.Processes, "n", 2, "workers (0: serve in this process)")
	flag.Int64Var(&cfg.MaxRequests, "max-requests", 0, "requests per worker (0: no limit)")
	flag.DurationVar(&cfg.DieTimeout, "die-timeout", 0, "TERM's grace before KILL (0: 60s)")
	flag.StringVar(&cfg.PIDFile, "pid-file", "", "the manager's pid file")
	flag.Parse()
	cfg.Address = flag.Arg(0)

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil && ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "Hello from pid %d\n", os.Getpid())
	})
	fcgipm.Main(cfg, nil)
}
