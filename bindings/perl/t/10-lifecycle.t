# A plain FCGI.pm loop on FCGI::ProcManager::XS: start, requests, HUP, TERM; the
# original's log lines; the library's manager (locked pid file, busy requests
# finished, nothing left behind).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PMTest;
use POSIX ();

my $dir = scratch();
my $app = start_app(dir => $dir, params => ['n_processes=2', 'die_timeout=10', "pid_fname=$dir/app.pid"]);
ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2), 'two workers initialised')
    or diag(read_file($app->{log}));
my @first = sort(workers($app->{pid}));
is(scalar @first, 2, 'two workers');
is(read_file("$app->{dir}/app.pid"), "$app->{pid}\n", 'the pid file holds the manager\'s pid');
like(read_file("/proc/$app->{pid}/cmdline"), qr/^perl-fcgi-pm/, 'manager title perl-fcgi-pm');
like(read_file("/proc/$first[0]/cmdline"), qr/^perl-fcgi/, 'worker title perl-fcgi');

my $body = request($app->{sock});
like($body, qr/^Hello from worker (\d+) title perl-fcgi usr1 0$/m, 'a request is served, $0 is the title');
my ($served_by) = $body =~ /worker (\d+)/;
ok((grep { $_ == $served_by } @first), '$$ in the worker is its pid');

kill 'HUP', $app->{pid};
ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 4), 'HUP: two new workers');
my @second = sort(workers($app->{pid}));
is(scalar @second, 2, 'still two');
ok(!(grep { my $w = $_; grep { $_ == $w } @first } @second), 'all of them new');

ok(wait_log($app->{applog}, qr/^worker/, 4), 'the new workers run');
my $busy = do {
    my $pid = fork;
    if (!$pid) { my $b = request($app->{sock}, 'sleep_ms=800'); POSIX::_exit(defined $b && $b =~ /Hello/ ? 0 : 1) }
    $pid;
};
ok(wait_log($app->{applog}, qr/^busy/, 1), 'a request in progress');
kill 'TERM', $app->{pid};
waitpid($busy, 0);
is($? >> 8, 0, 'the busy request finished during the stop');
is(wait_exit($app, 10), 0, 'TERM: the manager exits 0');
ok(!-e "$app->{dir}/app.pid", 'pid file removed');
ok(!(grep { alive($_) } @first, @second), 'no worker left');

my @lines = fastcgi_lines($app->{log});
my @expect_start = ('FastCGI: manager (pid P): initialized', 'FastCGI: manager (pid P): server (pid P) started');
is($lines[0], $expect_start[0], 'first line: initialized');
is(scalar(grep { $_ eq 'FastCGI: manager (pid P): received signal TERM' } @lines), 1, 'received signal TERM');
is(scalar(grep { $_ eq 'FastCGI: manager (pid P): sending TERM to PIDs, P...' } @lines), 2, 'TERM sent twice (HUP, TERM)');
is($lines[-1], 'FastCGI: manager (pid P): dying: safe exit from signal TERM', 'last line: dying');
is(scalar(grep { $_ eq 'FastCGI: server (pid P): safe exit after SIGTERM' } @lines), 1,
   'the busy worker left after its request');
done_testing;
