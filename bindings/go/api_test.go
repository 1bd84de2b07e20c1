package fcgipm

// The API without a pool: Config against the library's parameter table, bad input,
// errors. (process_test.go runs pools.)

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// every field set: each of the library's parameters is either set by a Config field
// or left out on purpose, with the reason. (Not a pool Serve would start: the
// request limits need the scoreboard that NoScoreboard turns off.)
func fullConfig() Config {
	return Config{Processes: 3, DieTimeout: 2 * time.Second, StartDelay: time.Millisecond,
		MinUptime: 2 * time.Second, BackoffMin: 50 * time.Millisecond, BackoffMax: 5 * time.Second,
		CrashBudget: 4, CrashWindow: 20 * time.Second, StartTimeout: 9 * time.Second, MaxRequests: 500,
		SizecheckNumRequests: 10, MaxSizeKiB: 1 << 20, MinShareSizeKiB: 100, MaxUnsharedSizeKiB: 200,
		PIDFile: "/run/app.pid", Title: "app-manager", ProcessName: "app-worker", KeepListening: true,
		NoScoreboard: true, StatusSocket: "/run/app.status", StatusGroup: "adm",
		Pool: "dynamic", MinIdle: 2, MaxIdle: 4, MaxWorkers: 16, IdleTimeout: 3 * time.Second, SpawnRate: 100,
		RequestTimeout: 30 * time.Second, RequestTimeoutGrace: 2500 * time.Millisecond, RequestSlow: 5 * time.Second,
		MaxRequestsJitter: 50, MaxAge: time.Hour, MaxRSSKiB: 512 << 10}
}

func TestConfigCoversEveryParameter(t *testing.T) {
	cfg := fullConfig()
	ps, err := cfg.parameters()
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, p := range ps {
		set[p.name] = p.value
	}
	for _, name := range parameterNames() {
		_, inConfig := set[name]
		reason, excluded := excludedParameters[name]
		if inConfig == excluded {
			t.Errorf("%s: in Config %v, excluded %v (%q): exactly one", name, inConfig, excluded, reason)
		}
		delete(set, name)
	}
	for name := range set {
		t.Errorf("Config sets %s, which the library does not have", name)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the full config is refused: %v", err)
	}
}

func TestConfigValuesAsTheLibraryReadsThem(t *testing.T) {
	cfg := fullConfig()
	ps, _ := cfg.parameters()
	pm, err := newHandle(ps)
	if err != nil {
		t.Fatal(err)
	}
	defer destroyHandle(pm)
	want := map[string]string{"n_processes": "3", "die_timeout": "2", "start_delay": "0.001",
		"min_uptime": "2", "backoff_min": "0.05", "backoff_max": "5", "crash_budget": "4",
		"crash_window": "20", "start_timeout": "9", "max_requests": "500", "sizecheck_num_requests": "10",
		"max_size": "1048576", "min_share_size": "100", "max_unshared_size": "200",
		"pid_fname": "/run/app.pid", "pm_title": "app-manager", "process_name": "app-worker",
		"stop_listening": "0", "scoreboard": "0", "status_socket": "/run/app.status", "status_group": "adm",
		"pool": "dynamic", "min_idle": "2", "max_idle": "4", "max_workers": "16", "idle_timeout": "3",
		"spawn_rate": "100", "request_timeout": "30", "request_timeout_grace": "2.5", "request_slow": "5",
		"max_requests_jitter": "50", "max_age": "3600", "max_rss": "524288", "no_exit": "1"}
	for name, v := range want {
		if got := getParameter(pm, name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

func TestConfigZeroValueIsTheDefaults(t *testing.T) {
	ps, err := (&Config{}).parameters()
	if err != nil || len(ps) != 0 {
		t.Fatalf("%v %v", ps, err)
	}
	// Negative durations are zero seconds (DieTimeout: wait for ever).
	ps, _ = (&Config{DieTimeout: -1, BackoffMin: -time.Second}).parameters()
	if len(ps) != 2 || ps[0] != (param{"die_timeout", "0"}) || ps[1] != (param{"backoff_min", "0"}) {
		t.Fatalf("%v", ps)
	}
}

// Each refusal is an *Error that errors.Is matches with its code's sentinel (and no
// other), with a message naming the problem; nothing is opened.
func TestValidateRefusesBadInput(t *testing.T) {
	cases := []struct {
		cfg      Config
		sentinel error
		names    string
	}{
		{Config{Processes: 200000}, ErrRange, "n_processes"},
		{Config{DieTimeout: 1500 * time.Microsecond}, ErrBadValue, "die_timeout: 1.5ms"},
		{Config{Title: strings.Repeat("t", 300)}, ErrTooLong, "pm_title"},
		{Config{PIDFile: "/run/a\x00b"}, ErrInvalid, "pid_fname: the value contains a NUL byte"},
		{Config{MaxProcs: -1}, ErrRange, "MaxProcs"},
		{Config{Address: "no-port"}, ErrInvalid, `"no-port" is neither`},
		{Config{Address: "unix:relative.sock"}, ErrInvalid, "absolute path"},
		{Config{MaxRequests: -5}, ErrRange, "max_requests"},
	}
	all := []error{ErrInvalid, ErrNoMemory, ErrUnknown, ErrBadValue, ErrRange, ErrTooLong, ErrState,
		ErrChild, ErrLocked, ErrPidFile, ErrSys, ErrInternal, ErrStopped}
	for _, c := range cases {
		err := c.cfg.Validate()
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%+v: %v, want %v naming %q", c.cfg, err, c.sentinel, c.names)
			continue
		}
		for _, other := range all {
			if other != c.sentinel && errors.Is(err, other) {
				t.Errorf("%v also matches %v", err, other)
			}
		}
	}
}

func TestErrorSentinelsCarryTheLibraryText(t *testing.T) {
	if ErrLocked.Error() != "fcgipm: pid file is held by another manager" {
		t.Errorf("%q", ErrLocked.Error())
	}
	e := &Error{Code: -13} // PM_ESTOPPED
	if !errors.Is(e, ErrStopped) || e.Error() != "fcgipm: the worker is stopping: no more requests" {
		t.Errorf("%v", e)
	}
	if errors.Is(&Error{Code: -99}, ErrInvalid) {
		t.Error("an unknown code matched a sentinel")
	}
	x := &ExitError{Status: 3, Message: "asked"}
	if x.Error() != "fcgipm: exit status 3: asked" {
		t.Errorf("%q", x.Error())
	}
}

// A listening failure is ErrSys with the errno underneath.
func TestListenFailureWrapsErrno(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = listenFD(busy.Addr().String())
	if !errors.Is(err, ErrSys) || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("%v", err)
	}
}

// With no address the socket must be given: here descriptor 0 is not one.
func TestListenWithoutAddressNeedsAGivenSocket(t *testing.T) {
	if isListening(0) {
		t.Fatal("run the tests with descriptor 0 not a listening socket")
	}
	_, err := listenFD("")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "LISTEN_FDS") {
		t.Fatalf("%v", err)
	}
}

// The parameters' encoding for the exec: what the constructor decodes (process tests
// run it) — '%', newlines and control bytes escaped, the rest as it is.
func TestListenEncodingOfParameters(t *testing.T) {
	got := encodeParameters([]param{{"pid_fname", "/run/a 100%\n.pid"}, {"n_processes", "2"}})
	if got != "pid_fname=/run/a 100%25%0A.pid\nn_processes=2\n" {
		t.Fatalf("%q", got)
	}
}

func TestVersionIsTheLibrarys(t *testing.T) {
	if !strings.Contains(Version(), ".") {
		t.Fatalf("%q", Version())
	}
	if InWorker() {
		t.Fatal("a test binary is no worker")
	}
}

func TestExcludedParametersHaveReasons(t *testing.T) {
	for name, reason := range excludedParameters {
		if len(reason) < 10 {
			t.Errorf("%s: %q", name, reason)
		}
	}
}
