package fcgipm_test

// Process tests: this test binary, run with FCGIPM_TEST_APP set, is a program on the
// package (testApp); the tests start it as a real pool and talk to it with a real
// FastCGI client (cgi-fcgi) and through nginx (examples/deploy/nginx-front.sh).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fcgipm "github.com/fcgi-pm/fcgi-pm/bindings/go"
)

func TestMain(m *testing.M) {
	if os.Getenv("FCGIPM_TEST_APP") != "" {
		testApp()
		return
	}
	os.Exit(m.Run())
}

// testApp is the program under test, configured by its environment (APP_*).
func testApp() {
	n, _ := strconv.Atoi(os.Getenv("APP_N"))
	maxReq, _ := strconv.ParseInt(os.Getenv("APP_MAX_REQUESTS"), 10, 64)
	cfg := fcgipm.Config{
		Address:     os.Getenv("APP_ADDRESS"),
		Processes:   n,
		MaxRequests: maxReq,
		PIDFile:     os.Getenv("APP_PID_FILE"),
		DieTimeout:  20 * time.Second,
	}
	if t := os.Getenv("APP_TITLE"); t != "" {
		cfg.Title = t
	}
	cfg.NoScoreboard = os.Getenv("APP_NO_SCOREBOARD") != ""
	cfg.StatusSocket = os.Getenv("APP_STATUS_SOCKET")
	cfg.StatusGroup = os.Getenv("APP_STATUS_GROUP")
	var worker atomic.Pointer[fcgipm.Worker]
	if os.Getenv("APP_LOG") != "" {
		cfg.Log = func(line string) {
			fmt.Fprintln(os.Stderr, "go-log: "+line)
			if w := worker.Load(); w != nil && strings.Contains(line, "panic serving") {
				w.Notify("Log saw the panic") // back into the worker, from its log
			}
		}
	}
	var pre, post, usr1 atomic.Int64
	cancelled := make(chan struct{})
	cfg.WorkerInit = func(w *fcgipm.Worker) error {
		worker.Store(w)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		go func() {
			for range sig {
				usr1.Add(1)
			}
		}()
		go func() {
			<-w.Context().Done()
			w.Notify("worker context cancelled")
			close(cancelled)
		}()
		if os.Getenv("APP_INIT_FAILS") != "" {
			return errors.New("init refused on purpose")
		}
		return nil
	}
	cfg.PreDispatch = func(*fcgipm.Worker, *http.Request) { pre.Add(1) }
	cfg.PostDispatch = func(*fcgipm.Worker, *http.Request) { post.Add(1) }
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		fmt.Fprintf(rw, "Hello from pid %d\n", os.Getpid())
	})
	mux.HandleFunc("/wait", func(rw http.ResponseWriter, r *http.Request) {
		file := r.URL.Query().Get("file") // until the test creates it
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(file); err == nil {
				break
			}
		}
		fmt.Fprintf(rw, "Hello from pid %d\n", os.Getpid())
	})
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("on purpose") })
	mux.HandleFunc("/usr1", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "usr1 %d\n", usr1.Load())
	})
	mux.HandleFunc("/hooks", func(rw http.ResponseWriter, r *http.Request) {
		_, ok := fcgipm.FromContext(r.Context())
		fmt.Fprintf(rw, "pre %d post %d worker %v gomaxprocs %d\n", pre.Load(), post.Load(), ok,
			runtime.GOMAXPROCS(0))
	})
	mux.HandleFunc("/args", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "%q\n", os.Args[1:])
	})
	mux.HandleFunc("/stop", func(rw http.ResponseWriter, r *http.Request) {
		w, _ := fcgipm.FromContext(r.Context())
		w.Stop()
		fmt.Fprintf(rw, "stopping %d\n", os.Getpid())
	})
	mux.HandleFunc("/param", func(rw http.ResponseWriter, r *http.Request) {
		w, _ := fcgipm.FromContext(r.Context())
		err := w.SetParameter("max_requests", r.URL.Query().Get("max_requests"))
		v, _ := w.Parameter("max_requests")
		fmt.Fprintf(rw, "max_requests %s %v\n", v, err)
	})
	mux.HandleFunc("/exit", func(rw http.ResponseWriter, r *http.Request) {
		w, _ := fcgipm.FromContext(r.Context())
		w.Exit(3, "asked by /exit")
		fmt.Fprintf(rw, "exiting %d\n", os.Getpid())
	})
	if os.Getenv("APP_MAIN") != "" {
		fcgipm.Main(cfg, mux)
	}
	err := fcgipm.Serve(cfg, mux)
	if fcgipm.InWorker() {
		select { // the worker's own goroutine, told by its context
		case <-cancelled:
		case <-time.After(5 * time.Second):
		}
	}
	var exit *fcgipm.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.Status)
	case errors.Is(err, fcgipm.ErrRange):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// ---- a pool of testApp ----

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type pool struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncBuffer
	dir  string
	sock string
	done chan struct{}
	code int
}

// scratch is a directory of the test's own, short enough for unix socket paths.
func scratch(t *testing.T) string {
	dir, err := os.MkdirTemp("", "fcgipm-go-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// appArgs are the program's arguments: a worker must see them as they were.
var appArgs = []string{"app-arg", "--flag=value with spaces"}

func command(env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], appArgs...)
	cmd.Env = append(append(os.Environ(), "FCGIPM_TEST_APP=1"), env...)
	return cmd
}

// startPool starts testApp with env, on a unix socket in a scratch directory, and
// waits until `ready` workers have said they are initialized.
func startPool(t *testing.T, ready int, env ...string) *pool {
	dir := scratch(t)
	p := &pool{t: t, log: &syncBuffer{}, dir: dir, sock: filepath.Join(dir, "app.sock"), done: make(chan struct{})}
	p.cmd = command(append([]string{"APP_ADDRESS=" + p.sock}, env...)...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = 128 + int(p.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	p.waitLog(ready, "initialized", `server \(pid \d+\): initialized`)
	return p
}

func (p *pool) pid() int { return p.cmd.Process.Pid }

func (p *pool) count(pattern string) int {
	return len(regexp.MustCompile(pattern).FindAllString(p.log.String(), -1))
}

// waitLog waits until pattern has matched n lines of the log.
func (p *pool) waitLog(n int, what, pattern string) {
	p.t.Helper()
	if !waitUntil(20*time.Second, func() bool { return p.count(pattern) >= n }) {
		p.t.Fatalf("waited for %d %q lines:\n%s", n, what, p.log.String())
	}
}

// started lists the workers the manager has started, in order.
func (p *pool) started() []int {
	var pids []int
	for _, m := range regexp.MustCompile(`server \(pid (\d+)\) started`).FindAllStringSubmatch(p.log.String(), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

func (p *pool) signal(s syscall.Signal) { syscall.Kill(p.pid(), s) }

// wait waits for the manager's exit and returns its status.
func (p *pool) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(30 * time.Second):
		p.t.Fatalf("the manager did not exit:\n%s", p.log.String())
		return -1
	}
}

// stop sends TERM and expects a clean exit.
func (p *pool) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		p.t.Fatalf("manager exited %d:\n%s", code, p.log.String())
	}
}

func waitUntil(limit time.Duration, ok func() bool) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// procStatus is the value of field in /proc/PID/status.
func procStatus(t *testing.T, pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			return strings.TrimSpace(line[len(field)+1:])
		}
	}
	return ""
}

// children are the live processes whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, c)
		}
	}
	return out
}

// ---- clients ----

// fcgiGet asks path of the FastCGI server at sock with cgi-fcgi: status and body.
func fcgiGet(sock, path string) (int, string, error) {
	uri, query, _ := strings.Cut(path, "?")
	cmd := exec.Command("cgi-fcgi", "-bind", "-connect", sock)
	cmd.Env = []string{"REQUEST_METHOD=GET", "SERVER_PROTOCOL=HTTP/1.1", "HTTP_HOST=localhost",
		"SCRIPT_NAME=" + uri, "REQUEST_URI=" + path, "QUERY_STRING=" + query, "SCRIPT_FILENAME=/app"}
	out, err := cmd.Output()
	if err != nil {
		return 0, "", fmt.Errorf("cgi-fcgi: %v (%q)", err, out)
	}
	head, body, ok := strings.Cut(string(out), "\r\n\r\n")
	if !ok {
		return 0, "", fmt.Errorf("cgi-fcgi: bad response %q", out)
	}
	status := 200
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(line, "Status: ") {
			status, _ = strconv.Atoi(strings.Fields(line)[1])
		}
	}
	return status, body, nil
}

func pidOf(body string) int {
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(body, "Hello from pid ")))
	return pid
}

type nginx struct {
	dir  string
	port int
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// startNginx puts nginx in front of sock; keepConn: FastCGI connections kept alive.
func startNginx(t *testing.T, dir, sock string, keepConn bool) *nginx {
	t.Helper()
	script := filepath.Join(repoRoot(), "examples", "deploy", "nginx-front.sh")
	args := []string{script, "start", dir, sock}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if keepConn {
		conf := filepath.Join(dir, "keep-conn.conf")
		os.WriteFile(conf, []byte("upstream app { server unix:/run/fcgi-pm-hello.sock; keepalive 8; }\n"+
			"server {\n listen 127.0.0.1:8080;\n location / {\n  include fastcgi_params;\n"+
			"  fastcgi_pass app;\n  fastcgi_keep_conn on;\n }\n}\n"), 0o644)
		args = append(args, conf)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("sh", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	port, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || perr != nil {
		t.Fatalf("nginx did not start: %v %q %s", err, out, stderr.String())
	}
	n := &nginx{dir: dir, port: port}
	t.Cleanup(func() { exec.Command("sh", script, "stop", dir).Run() })
	return n
}

var client = &http.Client{Timeout: 30 * time.Second}

// postBody is sent with each POST of the load, and not read by the handler.
var postBody = strings.Repeat("x", 3000)

func (n *nginx) get(path string) (int, string, error) {
	return n.do("GET", path)
}

func (n *nginx) do(method, path string) (int, string, error) {
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(postBody)
	}
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", n.port, path), body)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text), err
}

// load sends requests from c clients until stop is closed: the number sent, and
// the failures (anything but a 200 with the hello body).
func (n *nginx) load(c int, method, path string, stop chan struct{}) (sent, failed *atomic.Int64, wait func()) {
	sent, failed = &atomic.Int64{}, &atomic.Int64{}
	var wg sync.WaitGroup
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, body, err := n.do(method, path)
				sent.Add(1)
				if err != nil || status != 200 || !strings.HasPrefix(body, "Hello from pid ") {
					if failed.Add(1) <= 3 {
						fmt.Fprintf(os.Stderr, "failed request: %d %q %v\n", status, body, err)
					}
				}
			}
		}()
	}
	return sent, failed, wg.Wait
}

// ---- the scenarios ----

// The process the user started is the manager: its pid in the pid file, one thread
// (no Go runtime in it), the library's log lines; its children are the workers,
// which serve through cgi-fcgi and nginx.
func TestServesAsTheManagerItsUserStarted(t *testing.T) {
	dir := scratch(t)
	pidFile := filepath.Join(dir, "app 100%.pid") // the parameters' encoding across exec
	p := startPool(t, 2, "APP_N=2", "APP_PID_FILE="+pidFile, "APP_TITLE=go-app-manager")
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.pid()) {
		t.Fatalf("pid file %q holds %q (%v), the manager is %d", pidFile, b, err, p.pid())
	}
	if th := procStatus(t, p.pid(), "Threads"); th != "1" {
		t.Errorf("the manager has %s threads: Go's runtime runs in it", th)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid())); !strings.HasPrefix(string(cmdline), "go-app-manager") {
		t.Errorf("manager's title %q", cmdline)
	}
	workers := p.started()
	if len(workers) != 2 {
		t.Fatalf("started %v:\n%s", workers, p.log.String())
	}
	for _, w := range workers {
		if ppid := procStatus(t, w, "PPid"); ppid != strconv.Itoa(p.pid()) {
			t.Errorf("worker %d has parent %s", w, ppid)
		}
	}
	for i := 0; i < 10; i++ {
		status, body, err := fcgiGet(p.sock, "/?sleep=0")
		if err != nil || status != 200 || !contains(workers, pidOf(body)) {
			t.Fatalf("cgi-fcgi: %d %q %v (workers %v)", status, body, err, workers)
		}
	}
	ng := startNginx(t, filepath.Join(p.dir, "nginx"), p.sock, false)
	for i := 0; i < 20; i++ {
		if status, body, err := ng.get("/hello"); err != nil || status != 200 || !contains(workers, pidOf(body)) {
			t.Fatalf("nginx: %d %q %v", status, body, err)
		}
	}
	for _, w := range workers { // Go's runtime started in each, after the fork
		if th, _ := strconv.Atoi(procStatus(t, w, "Threads")); th < 2 {
			t.Errorf("worker %d has %d threads: not a Go runtime", w, th)
		}
	}
	// The hooks and the worker in the request's context.
	_, body, _ := fcgiGet(p.sock, "/hooks")
	var pre, post, procs int
	var inCtx bool
	fmt.Sscanf(body, "pre %d post %d worker %v gomaxprocs %d", &pre, &post, &inCtx, &procs)
	if pre < 1 || post != pre-1 || !inCtx || procs != 1 {
		t.Errorf("hooks, context, GOMAXPROCS 1 in a worker: %q", body)
	}
	// The worker's os.Args are the program's, though the manager's title is over them.
	if _, body, _ := fcgiGet(p.sock, "/args"); body != fmt.Sprintf("%q\n", appArgs) {
		t.Errorf("a worker's os.Args: %q, want %q", body, appArgs)
	}
	for _, line := range []string{"manager (pid " + strconv.Itoa(p.pid()) + "): initialized",
		"manager (pid " + strconv.Itoa(p.pid()) + "): server (pid " + strconv.Itoa(workers[0]) + ") started"} {
		if !strings.Contains(p.log.String(), "FastCGI: "+line) {
			t.Errorf("no line %q in the log:\n%s", line, p.log.String())
		}
	}
	p.stop()
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	for _, w := range workers {
		if alive(w) {
			t.Errorf("worker %d outlived its manager", w)
		}
	}
}

func contains(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

func TestRespawnsAKilledWorker(t *testing.T) {
	p := startPool(t, 2, "APP_N=2")
	victim := p.started()[0]
	syscall.Kill(victim, syscall.SIGKILL)
	p.waitLog(3, "a third start", `server \(pid \d+\) started`)
	if !strings.Contains(p.log.String(), fmt.Sprintf("server (pid %d) exited on signal 9", victim)) &&
		!strings.Contains(p.log.String(), fmt.Sprintf("server (pid %d) exited with status 9", victim)) {
		t.Errorf("the kill is not logged:\n%s", p.log.String())
	}
	p.waitLog(3, "initialized", `server \(pid \d+\): initialized`)
	for i := 0; i < 5; i++ {
		if _, body, err := fcgiGet(p.sock, "/"); err != nil || pidOf(body) == victim {
			t.Fatalf("%q %v", body, err)
		}
	}
	p.stop()
}

// HUP replaces every worker while nginx sends requests, with FastCGI connections
// closed after each request — GETs, and POSTs whose body the handler does not read
// (net/http/fcgi reads it after the reply) — and kept alive (GETs: a request nginx
// sends on a kept-alive connection as the worker ends it is sent again, which nginx
// does not do for a POST; C workers are no different): none fails, and without
// keep-alive nginx logs no error either (nothing was retried behind the client's back).
func TestHUPUnderLoadLosesNoRequest(t *testing.T) {
	p := startPool(t, 3, "APP_N=3")
	for _, keep := range []bool{false, true} {
		ng := startNginx(t, filepath.Join(p.dir, fmt.Sprintf("nginx-%v", keep)), p.sock, keep)
		before := len(p.started())
		stop := make(chan struct{})
		sent, failed, wait := ng.load(4, "GET", "/?sleep=2", stop)
		postMethod := "POST"
		if keep {
			postMethod = "GET"
		}
		sentPost, failedPost, waitPost := ng.load(4, postMethod, "/?sleep=2", stop)
		for i := 0; i < 3; i++ {
			time.Sleep(400 * time.Millisecond)
			p.signal(syscall.SIGHUP)
		}
		time.Sleep(400 * time.Millisecond)
		close(stop)
		wait()
		waitPost()
		p.waitLog(before+9, "replacements", `server \(pid \d+\) started`)
		nlog, _ := os.ReadFile(filepath.Join(ng.dir, "error.log"))
		if failed.Load()+failedPost.Load() != 0 || sent.Load() < 50 || sentPost.Load() < 50 ||
			(!keep && strings.Contains(string(nlog), "[error]")) {
			t.Fatalf("keep_conn %v: %d of %d GETs and %d of %d POSTs failed:\n%s\nnginx:\n%s", keep, failed.Load(),
				sent.Load(), failedPost.Load(), sentPost.Load(), p.log.String(), nlog)
		}
		t.Logf("keep_conn %v: %d GETs and %d %ss across 3 HUPs, 0 failed", keep, sent.Load(), sentPost.Load(), postMethod)
	}
	// Every replaced worker exited 0, none was killed at the die timeout.
	if n := p.count(`exited with status 0`); n < 18 {
		t.Errorf("%d clean exits:\n%s", n, p.log.String())
	}
	if strings.Contains(p.log.String(), "SIGKILL") || strings.Contains(p.log.String(), "signal 9") {
		t.Errorf("a worker was killed:\n%s", p.log.String())
	}
	p.stop()
}

// TERM with a request in flight: the request completes, idle workers stop at once,
// the manager exits 0, and the worker's context is cancelled.
func TestTermLetsTheRequestInFlightFinish(t *testing.T) {
	p := startPool(t, 2, "APP_N=2")
	ng := startNginx(t, filepath.Join(p.dir, "nginx"), p.sock, true)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		s, b, e := ng.get("/?sleep=1500")
		res <- result{s, b, e}
	}()
	time.Sleep(300 * time.Millisecond)
	begin := time.Now()
	p.signal(syscall.SIGTERM)
	r := <-res
	if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "Hello from pid ") {
		t.Fatalf("the request in flight: %d %q %v\n%s", r.status, r.body, r.err, p.log.String())
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("manager exited %d", code)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	busy := pidOf(r.body)
	log := p.log.String()
	if !strings.Contains(log, fmt.Sprintf("server (pid %d): safe exit after SIGTERM", busy)) {
		t.Errorf("the busy worker's exit is not the library's line:\n%s", log)
	}
	if n := p.count(`worker context cancelled`); n != 2 {
		t.Errorf("%d contexts cancelled:\n%s", n, log)
	}
	for _, w := range p.started() {
		if alive(w) {
			t.Errorf("worker %d left behind", w)
		}
	}
}

// SIGKILL of the manager: every worker ends (the parent-death signal, taken by Go).
func TestKilledManagerLeavesNoWorker(t *testing.T) {
	p := startPool(t, 3, "APP_N=3")
	workers := p.started()
	p.signal(syscall.SIGKILL)
	p.wait()
	if !waitUntil(10*time.Second, func() bool {
		for _, w := range workers {
			if alive(w) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("workers %v outlived the manager", workers)
	}
}

// Recycling by max_requests under POST load through nginx, the body unread by the
// handler: no request fails, nginx logs no error (a connection closed over the
// unread body would reset it, and cost nginx the reply).
func TestMaxRequestsRecyclesUnderLoad(t *testing.T) {
	p := startPool(t, 3, "APP_N=3", "APP_MAX_REQUESTS=40")
	ng := startNginx(t, filepath.Join(p.dir, "nginx"), p.sock, false)
	stop := make(chan struct{})
	sent, failed, wait := ng.load(6, "POST", "/", stop)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wait()
	nlog, _ := os.ReadFile(filepath.Join(ng.dir, "error.log"))
	recycled := p.count(`safe exit after max_requests \(40\)`)
	if failed.Load() != 0 || recycled < 3 || strings.Contains(string(nlog), "[error]") {
		t.Fatalf("%d of %d failed, %d recycled:\n%s\nnginx:\n%s", failed.Load(), sent.Load(), recycled, p.log.String(), nlog)
	}
	t.Logf("%d POSTs, %d workers recycled, 0 failed", sent.Load(), recycled)
	p.stop()
}

func TestMaxRequestsEndsAWorker(t *testing.T) {
	p := startPool(t, 1, "APP_N=1", "APP_MAX_REQUESTS=3")
	first := p.started()[0]
	for i := 0; i < 3; i++ {
		if _, body, err := fcgiGet(p.sock, "/"); err != nil || pidOf(body) != first {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	p.waitLog(2, "the replacement", `server \(pid \d+\) started`)
	if !strings.Contains(p.log.String(), fmt.Sprintf("server (pid %d): safe exit after max_requests (3)", first)) {
		t.Errorf("no max_requests line:\n%s", p.log.String())
	}
	p.waitLog(2, "initialized", `server \(pid \d+\): initialized`)
	if _, body, err := fcgiGet(p.sock, "/"); err != nil || pidOf(body) == first {
		t.Fatalf("after max_requests: %q %v", body, err)
	}
	p.stop()
}

// A handler's panic is the request's (a 500, logged); the worker serves on.
// Worker.Exit ends the worker with its status; Go's own signal handling works in a
// worker (os/signal for USR1).
func TestPanicExitAndGoSignals(t *testing.T) {
	p := startPool(t, 1, "APP_N=1", "APP_LOG=1")
	worker := p.started()[0]
	if status, _, err := fcgiGet(p.sock, "/panic"); err != nil || status != 500 {
		t.Fatalf("panic: %d %v", status, err)
	}
	// The worker's lines go through Config.Log; the manager's do not (it runs no Go).
	if !strings.Contains(p.log.String(), fmt.Sprintf("go-log: FastCGI: server (pid %d): panic serving /panic: on purpose", worker)) ||
		strings.Contains(p.log.String(), "go-log: FastCGI: manager") {
		t.Errorf("the panic is not logged through Config.Log:\n%s", p.log.String())
	}
	// Log called back into the worker (Notify) without a deadlock; it serves on.
	if !strings.Contains(p.log.String(), fmt.Sprintf("go-log: FastCGI: server (pid %d): Log saw the panic", worker)) {
		t.Errorf("Log's own Notify is missing:\n%s", p.log.String())
	}
	if _, body, err := fcgiGet(p.sock, "/"); err != nil || pidOf(body) != worker {
		t.Fatalf("after the panic: %q %v", body, err)
	}
	syscall.Kill(worker, syscall.SIGUSR1)
	ok := waitUntil(5*time.Second, func() bool {
		_, body, _ := fcgiGet(p.sock, "/usr1")
		return strings.TrimSpace(body) == "usr1 1"
	})
	if !ok || !alive(worker) {
		t.Fatalf("USR1 through os/signal in the worker: %v, alive %v", ok, alive(worker))
	}
	if _, body, err := fcgiGet(p.sock, "/exit"); err != nil || !strings.HasPrefix(body, "exiting") {
		t.Fatalf("/exit: %q %v", body, err)
	}
	p.waitLog(1, "exit 3", fmt.Sprintf(`server \(pid %d\) exited with status 768`, worker))
	p.stop()
}

// sd_notify as for C: READY=1 once the workers serve, RELOADING=1 on HUP, then
// READY=1 again, STOPPING=1 on TERM; the manager's pid is the one started.
func TestSdNotify(t *testing.T) {
	dir := scratch(t)
	path := filepath.Join(dir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var mu sync.Mutex
	var msgs []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	seen := func(word string, n int) bool {
		return waitUntil(10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			c := 0
			for _, m := range msgs {
				for _, l := range strings.Split(m, "\n") {
					if l == word {
						c++
					}
				}
			}
			return c >= n
		})
	}
	p := startPool(t, 2, "APP_N=2", "NOTIFY_SOCKET="+path)
	if !seen("READY=1", 1) {
		t.Fatalf("no READY=1: %q", msgs)
	}
	p.signal(syscall.SIGHUP)
	if !seen("RELOADING=1", 1) || !seen("READY=1", 2) {
		t.Fatalf("HUP: %q", msgs)
	}
	p.stop()
	if !seen("STOPPING=1", 1) {
		t.Fatalf("TERM: %q", msgs)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("notifications: %q", msgs)
}

// A second manager on the same pid file is refused: Serve returns ErrLocked in the
// program the user started (its main reports it), the first pool serves on.
func TestSecondManagerOnThePidFileIsRefused(t *testing.T) {
	dir := scratch(t)
	pidFile := filepath.Join(dir, "app.pid")
	p := startPool(t, 1, "APP_N=1", "APP_PID_FILE="+pidFile)
	second := filepath.Join(dir, "second.sock")
	cmd := command("APP_MAIN=1", "APP_N=1", "APP_PID_FILE="+pidFile, "APP_ADDRESS="+second)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "fcgipm: ") ||
		!strings.Contains(stderr.String(), pidFile) || !strings.Contains(stderr.String(), "held by another manager") {
		t.Fatalf("second manager: %v, stderr %q", err, stderr.String())
	}
	if _, err := os.Stat(second); !os.IsNotExist(err) {
		t.Errorf("the refused pool's socket file is left behind (%v)", err)
	}
	if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines > 1 {
		t.Errorf("more than the library's line and the error: %q", stderr.String())
	}
	if _, body, err := fcgiGet(p.sock, "/"); err != nil || !strings.HasPrefix(body, "Hello") {
		t.Fatalf("the first pool: %q %v", body, err)
	}
	p.stop()
}

// A refused Config: Main exits 2 after one line naming the parameter; nothing started.
func TestBadConfigExits2(t *testing.T) {
	dir := scratch(t)
	sock := filepath.Join(dir, "never.sock")
	cmd := command("APP_MAIN=1", "APP_N=200000", "APP_ADDRESS="+sock)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 ||
		!strings.Contains(string(out), "n_processes") {
		t.Fatalf("exit %d: %q", cmd.ProcessState.ExitCode(), out)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("a refused config opened its socket")
	}
}

// WorkerInit's error ends the worker with status 1 (the library logs the wait status, 256); the manager respawns it
// in its crash backoff.
func TestWorkerInitErrorEndsTheWorker(t *testing.T) {
	dir := scratch(t)
	sock := filepath.Join(dir, "app.sock")
	cmd := command("APP_N=1", "APP_ADDRESS="+sock, "APP_INIT_FAILS=1")
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !waitUntil(10*time.Second, func() bool {
		return strings.Count(log.String(), "WorkerInit: init refused on purpose") >= 2 &&
			strings.Count(log.String(), "exited with status 256") >= 2 && strings.Contains(log.String(), "crash loop")
	}) {
		t.Fatalf("log:\n%s", log.String())
	}
}

// fcgiPmCLI is the fcgi-pm program: FCGI_PM_CLI, or the test command's build tree.
func fcgiPmCLI() string {
	if cli := os.Getenv("FCGI_PM_CLI"); cli != "" {
		return cli
	}
	return filepath.Join(repoRoot(), "build", "src", "fcgi-pm")
}

// liveStatus is what `fcgi-pm status --json` tells of a pool (the fields read here).
type liveStatus struct {
	Pool struct {
		Workers  int    `json:"workers"`
		Busy     int    `json:"busy"`
		Requests uint64 `json:"requests"`
	} `json:"pool"`
	Workers []struct {
		Pid      int    `json:"pid"`
		State    string `json:"state"`
		Requests uint64 `json:"requests"`
		Method   string `json:"method"`
		URI      string `json:"uri"`
		Remote   string `json:"remote"`
	} `json:"workers"`
}

// readStatus runs `fcgi-pm status --json target`: the status, and the JSON as text.
func readStatus(t *testing.T, target string) (liveStatus, string) {
	t.Helper()
	out, err := exec.Command(fcgiPmCLI(), "status", "--json", "--no-proc", target).Output()
	var st liveStatus
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	if err != nil {
		t.Fatalf("fcgi-pm status --json %s: %v (%q)", target, err, out)
	}
	return st, string(out)
}

// The live status names each request: a worker busy in a request through nginx shows
// its method, URI and client (REMOTE_ADDR, its port left out), read by pid and on
// StatusSocket; once released, the request is counted and shown as the last. With
// NoScoreboard a request is counted, not named; an unknown StatusGroup is refused.
func TestLiveStatusNamesTheRequest(t *testing.T) {
	statusSock := filepath.Join(scratch(t), "status.sock")
	p := startPool(t, 1, "APP_N=1", "APP_STATUS_SOCKET="+statusSock)
	ng := startNginx(t, filepath.Join(p.dir, "nginx"), p.sock, false)
	worker := p.started()[0]
	before, _ := readStatus(t, strconv.Itoa(p.pid()))
	release := filepath.Join(p.dir, "release")
	uri := "/wait?file=" + release
	res := make(chan error, 1)
	go func() {
		status, body, err := ng.get(uri)
		if err == nil && (status != 200 || pidOf(body) != worker) {
			err = fmt.Errorf("%d %q", status, body)
		}
		res <- err
	}()
	var st liveStatus
	var text string
	busy := func() bool {
		st, text = readStatus(t, strconv.Itoa(p.pid()))
		return len(st.Workers) == 1 && st.Workers[0].State == "busy"
	}
	if !waitUntil(10*time.Second, busy) {
		t.Fatalf("no busy worker: %s", text)
	}
	for _, target := range []string{strconv.Itoa(p.pid()), statusSock} {
		st, text = readStatus(t, target)
		w := st.Workers[0]
		if w.Pid != worker || w.State != "busy" || w.Method != "GET" || w.URI != uri || w.Remote != "127.0.0.1" ||
			st.Pool.Busy != 1 {
			t.Errorf("status from %s: %s, want worker %d busy in GET %s from 127.0.0.1", target, text, worker, uri)
		}
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("the request: %v", err)
	}
	if !waitUntil(5*time.Second, func() bool {
		st, text = readStatus(t, strconv.Itoa(p.pid()))
		return st.Pool.Requests == before.Pool.Requests+1
	}) {
		t.Fatalf("the request is not counted (%d before): %s", before.Pool.Requests, text)
	}
	if w := st.Workers[0]; w.State != "idle" || w.Requests != before.Workers[0].Requests+1 || w.URI != uri {
		t.Errorf("after the request: %s, want the worker idle, its request counted and shown as the last", text)
	}
	p.stop()
	if _, err := os.Stat(statusSock); !os.IsNotExist(err) {
		t.Errorf("the status socket is left behind (%v)", err)
	}

	// NoScoreboard: the request is counted, not named.
	p = startPool(t, 1, "APP_N=1", "APP_NO_SCOREBOARD=1")
	if _, _, err := fcgiGet(p.sock, "/?sleep=0"); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(5*time.Second, func() bool {
		st, text = readStatus(t, strconv.Itoa(p.pid()))
		return st.Pool.Requests == 1
	}) || st.Workers[0].Method != "" || st.Workers[0].URI != "" {
		t.Errorf("NoScoreboard: %s, want the request counted, not named", text)
	}
	p.stop()

	dir := scratch(t)
	sock := filepath.Join(dir, "never.sock")
	cmd := command("APP_MAIN=1", "APP_N=1", "APP_ADDRESS="+sock, "APP_STATUS_SOCKET="+filepath.Join(dir, "status.sock"),
		"APP_STATUS_GROUP=no-such-group-fcgipm")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "status_group: no group 'no-such-group-fcgipm'") {
		t.Fatalf("an unknown StatusGroup: exit %d: %q", cmd.ProcessState.ExitCode(), out)
	}
}

// The same program, unchanged, as a worker of the fcgi-pm program (exec mode): it is
// adopted (FCGI_PM_MANAGER_PID), serves fd 0, and stops on TERM.
func TestRunsUnderTheFcgiPmProgram(t *testing.T) {
	cli := fcgiPmCLI()
	dir := scratch(t)
	sock := filepath.Join(dir, "cli.sock")
	cmd := exec.Command(cli, "-s", sock, "-F", "2", "--max-requests", "2", "--", os.Args[0])
	cmd.Env = append(os.Environ(), "FCGIPM_TEST_APP=1", "APP_N=4", "APP_ADDRESS=")
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cli, err)
	}
	defer cmd.Process.Kill()
	if !waitUntil(20*time.Second, func() bool { return strings.Count(log.String(), "): initialized") >= 3 }) {
		t.Fatalf("log:\n%s", log.String())
	}
	var workers []int
	for _, m := range regexp.MustCompile(`server \(pid (\d+)\) started`).FindAllStringSubmatch(log.String(), -1) {
		pid, _ := strconv.Atoi(m[1])
		workers = append(workers, pid)
	}
	for i := 0; i < 6; i++ {
		status, body, err := fcgiGet(sock, "/")
		if err != nil || status != 200 || !strings.HasPrefix(body, "Hello from pid ") {
			t.Fatalf("%d %q %v\n%s", status, body, err, log.String())
		}
		if i == 0 && !contains(workers, pidOf(body)) {
			t.Errorf("served by %d, not one of the program's workers %v", pidOf(body), workers)
		}
	}
	// --max-requests reaches the adopted worker (PM_MAX_REQUESTS): replaced after 2.
	if !waitUntil(10*time.Second, func() bool { return strings.Contains(log.String(), "safe exit after max_requests (2)") }) {
		t.Errorf("no max_requests exit:\n%s", log.String())
	}
	for _, w := range workers {
		if kids := children(w); len(kids) != 0 {
			t.Errorf("the adopted worker %d forked %v: it managed a pool of its own", w, kids)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fcgi-pm: %v\n%s", err, log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("fcgi-pm did not stop:\n%s", log.String())
	}
}

// On TERM the socket refuses new connections at once, while a busy worker still
// finishes its request.
func TestTermRefusesNewConnectionsWhileDraining(t *testing.T) {
	p := startPool(t, 1, "APP_N=1")
	res := make(chan string, 1)
	go func() { _, b, _ := fcgiGet(p.sock, "/?sleep=1000"); res <- b }()
	time.Sleep(300 * time.Millisecond)
	p.signal(syscall.SIGTERM)
	refused := waitUntil(500*time.Millisecond, func() bool {
		c, err := net.Dial("unix", p.sock)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if b := <-res; !strings.HasPrefix(b, "Hello from pid") {
		t.Fatalf("the request in flight: %q", b)
	}
	if !refused {
		t.Fatal("the socket still accepted while the worker drained")
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// Worker.Stop ends the worker after its request ("safe exit on request", status 0),
// and the manager replaces it; SetParameter changes a running worker's parameter,
// and refuses a bad value with the library's error.
func TestWorkerStopAndParameters(t *testing.T) {
	p := startPool(t, 1, "APP_N=1")
	worker := p.started()[0]
	if _, body, err := fcgiGet(p.sock, "/param?max_requests=7"); err != nil || body != "max_requests 7 <nil>\n" {
		t.Fatalf("/param: %q %v", body, err)
	}
	if _, body, _ := fcgiGet(p.sock, "/param?max_requests=-1"); !strings.Contains(body, "max_requests 7 fcgipm: max_requests") {
		t.Fatalf("a bad value: %q", body)
	}
	if _, body, err := fcgiGet(p.sock, "/stop"); err != nil || !strings.HasPrefix(body, "stopping") {
		t.Fatalf("/stop: %q %v", body, err)
	}
	p.waitLog(1, "the exit", fmt.Sprintf(`server \(pid %d\) exited with status 0`, worker))
	if !strings.Contains(p.log.String(), fmt.Sprintf("server (pid %d): safe exit on request", worker)) {
		t.Errorf("no library line for the stop:\n%s", p.log.String())
	}
	p.waitLog(2, "the replacement", `server \(pid \d+\): initialized`)
	p.stop()
}

// Processes 0: no manager, the process serves itself (the library's single
// process), and stops on TERM after its request.
func TestSingleProcessServesItself(t *testing.T) {
	dir := scratch(t)
	sock := filepath.Join(dir, "single.sock")
	cmd := command("APP_N=0", "APP_ADDRESS="+sock)
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var body string
	if !waitUntil(10*time.Second, func() bool { _, body, _ = fcgiGet(sock, "/"); return body != "" }) {
		t.Fatalf("no answer:\n%s", log.String())
	}
	if pidOf(body) != cmd.Process.Pid || len(children(cmd.Process.Pid)) != 0 {
		t.Fatalf("served by %d, the process is %d (children %v)", pidOf(body), cmd.Process.Pid, children(cmd.Process.Pid))
	}
	res := make(chan string, 1)
	go func() { _, b, _ := fcgiGet(sock, "/?sleep=800"); res <- b }()
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if b := <-res; !strings.HasPrefix(b, "Hello from pid") {
		t.Errorf("the request in flight: %q", b)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, log.String())
	}
}

// systemd's socket activation: the socket on descriptor 3 (LISTEN_FDS, LISTEN_PID
// naming the pid that execs into the program), the manager keeping that pid.
func TestSocketActivation(t *testing.T) {
	dir := scratch(t)
	sock := filepath.Join(dir, "activated.sock")
	pidFile := filepath.Join(dir, "app.pid")
	cmd := exec.Command("systemd-socket-activate", "-l", sock, "-E", "FCGIPM_TEST_APP=1", "-E", "APP_N=2",
		"-E", "APP_ADDRESS=", "-E", "APP_PID_FILE="+pidFile, "-E", "LD_LIBRARY_PATH", os.Args[0])
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("systemd-socket-activate: %v", err)
	}
	defer cmd.Process.Kill()
	if !waitUntil(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatalf("no socket:\n%s", log.String())
	}
	for i := 0; i < 4; i++ {
		if status, body, err := fcgiGet(sock, "/"); err != nil || status != 200 || !strings.HasPrefix(body, "Hello") {
			t.Fatalf("%d %q %v\n%s", status, body, err, log.String())
		}
	}
	b, _ := os.ReadFile(pidFile)
	if strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) || len(children(cmd.Process.Pid)) != 2 {
		t.Fatalf("pid file %q, started %d, children %v\n%s", b, cmd.Process.Pid, children(cmd.Process.Pid), log.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, log.String())
	}
}
