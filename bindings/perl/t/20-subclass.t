# A subclass overriding managing_init, handling_init, pm_pre_dispatch /
# pm_post_dispatch (calling SUPER), pm_notify, pm_die and pm_abort: each is called
# where the original calls it, in the right process and role.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PMTest;
use POSIX ();

my $app = start_app(params => ['n_processes=2'], env => { APP_SUBCLASS => 1 });
ok(wait_log($app->{log}, qr/server \(pid \d+\): \[sub\] initialized$/, 2), 'workers initialised')
    or diag(read_file($app->{log}));
my $m = $app->{pid};
my @w = workers($m);
my $events = read_file($app->{applog});
like($events, qr/^hook managing_init $m role manager$/m, 'managing_init in the manager, role manager');
for my $w (@w) {
    like($events, qr/^hook handling_init $w role server title perl-fcgi$/m,
         "handling_init in worker $w, role server, titled");
}
like(request($app->{sock}), qr/Hello from worker/, 'a request');
ok(wait_log($app->{applog}, qr/^hook pm_post_dispatch/, 1), 'post_dispatch hook ran');
$events = read_file($app->{applog});
my ($pre) = $events =~ /^hook pm_pre_dispatch (\d+)$/m;
my ($post) = $events =~ /^hook pm_post_dispatch (\d+)$/m;
ok($pre && (grep { $_ == $pre } @w), 'pm_pre_dispatch in a worker');
is($post, $pre, 'pm_post_dispatch in the same worker');

# Every line the library logs went through the subclass's pm_notify, without the
# prefix, in the process that logged it; SUPER::pm_notify printed what it was given.
like($events, qr/^hook pm_notify $m initialized$/m, 'the manager\'s "initialized" through pm_notify');
like($events, qr/^hook pm_notify $m server \(pid $w[0]\) started$/m, '"server started" through pm_notify');
like($events, qr/^hook pm_notify $w[0] initialized$/m, 'the worker\'s "initialized" in the worker');
is(stop_app($app, 10), 0, 'TERM: exit 0');
$events = read_file($app->{applog});
like($events, qr/^hook pm_notify $m received signal TERM$/m, 'the stop\'s lines too');
like($events, qr/^hook pm_die $m safe exit from signal TERM$/m, 'TERM: pm_die in the manager');
like($events, qr/^hook pm_notify $m dying: \[sub\] safe exit from signal TERM$/m,
     'its SUPER::pm_die stopped the pool, with its message');
unlike($events, qr/^hook pm_die (?!$m )/m, 'pm_die in no other process');
my @lines = fastcgi_lines($app->{log});
ok(@lines > 5 && !(grep { !/^FastCGI: (manager|server) \(pid P\): \[sub\] / } @lines),
   'every line on STDERR came through the subclass') or diag(join "\n", @lines);
# The die timeout: pm_abort, with "wait timeout", before the busy worker is killed.
$app = start_app(params => ['n_processes=1', 'die_timeout=1'], env => { APP_SUBCLASS => 1 });
ok(wait_log($app->{log}, qr/\): \[sub\] initialized$/, 2), 'a worker');
my $busy = fork;
if (!$busy) { request($app->{sock}, 'sleep_ms=3000'); POSIX::_exit(0) }
ok(wait_log($app->{applog}, qr/^busy/, 1), 'a request in progress');
kill 'TERM', $app->{pid};
is(wait_exit($app, 10), 1, 'exit 1 at the die timeout');
waitpid($busy, 0);
$m = $app->{pid};
like(read_file($app->{applog}), qr/^hook pm_abort $m wait timeout$/m, 'pm_abort called with "wait timeout"');
like(read_file($app->{log}), qr/manager \(pid $m\): \[sub\] \[sub\] wait timeout$/m,
     'its SUPER::pm_abort logged its message');
done_testing;
