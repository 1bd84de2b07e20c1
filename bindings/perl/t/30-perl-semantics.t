# Perl's own semantics across the library's forks and exits: output buffered before
# pm_manage is written once; END blocks and destructors run once in each process
# that exits; an exception in an init hook is reported and ends pm_manage there;
# the program's own %SIG handlers stay its own; the handle is freed with its object.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PMTest;
use POSIX ();
use FCGI::ProcManager::XS;

subtest 'buffers flushed before each fork' => sub {
    my $app = start_app(params => ['n_processes=3'], env => { APP_PRINT => 'buffered-before-manage' });
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 3), 'three workers');
    is(stop_app($app, 10), 0, 'exit 0');
    is(() = read_file($app->{out}) =~ /buffered-before-manage/g, 1, 'printed once, not once per worker');
};

subtest 'END blocks and destructors: once in each process, through Perl\'s exit' => sub {
    my $app = start_app(params => ['n_processes=2', 'max_requests=1']);
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2), 'two workers');
    my @w = workers($app->{pid});
    like(request($app->{sock}), qr/Hello/, 'a request: its worker leaves (max_requests 1)');
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 3), 'replaced');
    is(stop_app($app, 10), 0, 'exit 0');
    my $events = read_file($app->{applog});
    my $m = $app->{pid};
    is(() = $events =~ /^END $m$/mg, 1, 'END once in the manager');
    is(() = $events =~ /^DESTROY $m$/mg, 1, 'destructor once in the manager');
    my @ended = $events =~ /^worker (\d+)$/mg;
    is(scalar @ended, 3, 'three workers ran');
    for my $w (@ended) {
        is(() = $events =~ /^END $w$/mg, 1, "END once in worker $w");
        is(() = $events =~ /^DESTROY $w$/mg, 1, "destructor once in worker $w");
    }
};

subtest 'an exception in handling_init' => sub {
    my $app = start_app(params => ['n_processes=1'], env => { APP_SUBCLASS => 1, APP_DIE_IN => 'handling_init' });
    ok(wait_log($app->{log}, qr/server \(pid \d+\): \[sub\] handling_init failed on purpose$/, 2), 'logged, worker by worker')
        or diag(read_file($app->{log}));
    ok(wait_log($app->{log}, qr/^handling_init failed on purpose$/, 1), 'and rethrown from pm_manage (Perl\'s die)');
    ok(wait_log($app->{log}, qr/exited with status 65280$/, 1), 'the worker died as Perl dies (255)')
        or diag(read_file($app->{log}));
    is(stop_app($app, 10), 0, 'the manager stops as usual');
};

subtest 'an exception in managing_init' => sub {
    my $dir = scratch();
    my $app = start_app(dir => $dir, params => ['n_processes=2', "pid_fname=$dir/pid"],
                        env => { APP_SUBCLASS => 1, APP_DIE_IN => 'managing_init' });
    is(wait_exit($app, 10), 255, 'pm_manage died in the manager: the program dies (255)');
    like(read_file($app->{log}), qr/^managing_init failed on purpose$/m, 'with the exception');
    like(read_file($app->{log}), qr/manager \(pid \d+\): \[sub\] managing_init failed on purpose$/m, 'logged too');
    ok(!-e "$dir/pid", 'no pid file left');
    is(count_lines($app->{log}, qr/started$/), 0, 'no worker forked');
};

subtest 'pm_exit from managing_init' => sub {
    my $dir = scratch();
    my $app = start_app(dir => $dir, params => ['n_processes=2', "pid_fname=$dir/pid"],
                        env => { APP_SUBCLASS => 1, APP_EXIT_IN => 'managing_init' });
    is(wait_exit($app, 10), 3, 'the manager exits with the status asked for');
    like(read_file($app->{log}), qr/manager \(pid \d+\): \[sub\] leaving from managing_init$/m, 'logged');
    ok(!-e "$dir/pid", 'no pid file left');
    is(count_lines($app->{log}, qr/started$/), 0, 'no worker forked');
    my $m = $app->{pid};
    like(read_file($app->{applog}), qr/^END $m$/m, 'END ran in the manager');
};

subtest 'a %SIG handler in the manager (the library waits in C)' => sub {
    my $app = start_app(params => ['n_processes=1'], env => { APP_USR1 => 1 });
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 1), 'a worker');
    kill 'USR1', $app->{pid};
    ok(wait_log($app->{applog}, qr/^usr1 $app->{pid}$/, 1, 5), 'USR1 runs the program\'s handler in the manager');
    is(stop_app($app, 10), 0, 'exit 0');
};

subtest 'no_signals: the program\'s TERM handler stops the pool with pm_die' => sub {
    my $app = start_app(params => ['n_processes=2', 'no_signals=1'], env => { APP_TERM_DIES => 1 });
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2), 'two workers');
    my @w = workers($app->{pid});
    kill 'TERM', $app->{pid};
    is(wait_exit($app, 10), 0, 'exit 0');
    like(read_file($app->{log}), qr/manager \(pid \d+\): dying: stopped by the program's handler$/m,
         'the manager died through pm_die');
    ok(!(grep { alive($_) } @w), 'no worker left');
};

subtest 'the program\'s own %SIG handlers' => sub {
    my $app = start_app(params => ['n_processes=1'], env => { APP_USR1 => 1 });
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 1), 'a worker');
    my ($w) = workers($app->{pid});
    kill 'USR1', $w;
    # (FCGI.pm's Accept then fails with EINTR, and the loop ends, as under the original)
    ok(wait_log($app->{applog}, qr/^usr1 $w$/, 1, 5), 'USR1 runs the program\'s handler in the worker');
    is(stop_app($app, 10), 0, 'exit 0');
};

subtest 'bad values die with the library\'s message and change nothing' => sub {
    my $pm = FCGI::ProcManager::XS->new({ n_processes => 2 });
    ok(!eval { $pm->pm_parameter(die_timeout => 'soon'); 1 }, 'die_timeout soon refused');
    like($@, qr/^FCGI::ProcManager::XS: .*die_timeout/, 'the message names the parameter');
    is($pm->die_timeout, 60, 'unchanged');
    ok(!eval { FCGI::ProcManager::XS->new({ n_processes => 'many' }); 1 }, 'new refuses a bad n_processes');
    like($@, qr/n_processes/, 'naming it');
    is($pm->pm_parameter('anything', 'kept'), 'kept', 'unknown names are kept, as in the original');
};

subtest 'the handle is freed with its object' => sub {
    my $freed = 0;
    no warnings 'redefine';
    my $destroy = \&FCGI::ProcManager::XS::Handle::DESTROY;
    local *FCGI::ProcManager::XS::Handle::DESTROY = sub { $freed++; $destroy->(@_) };
    for (1 .. 100) { my $pm = FCGI::ProcManager::XS->new({ n_processes => 1 }); }
    is($freed, 100, 'one handle freed per object');
    my $fds = () = glob('/proc/self/fd/*');
    for (1 .. 100) { my $pm = FCGI::ProcManager::XS->new({ n_processes => 1 }); }
    is(scalar(() = glob('/proc/self/fd/*')), $fds, 'no descriptor left by them');
};
done_testing;
