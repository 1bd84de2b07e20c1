# The live status (fcgi-pm status): the library's parameters for it go through the
# constructor; a worker of a plain FCGI.pm loop behind nginx, busy in a request,
# shows its method, URI and client (named from the request's environment when
# FCGI.pm's Accept returns), read by the manager's pid and on the status socket;
# once answered, the request is counted and shown as the last. An unknown
# status_group makes pm_manage die with the library's message.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);
use PMTest;
use Nginx;
use FCGI::ProcManager::XS;
use FCGI::ProcManager::XS::Constrained;

my $cli = $ENV{FCGI_PM_CLI} || 'fcgi-pm';  # CTest names the build tree's
my @missing = grep { system("command -v '$_' >/dev/null 2>&1") != 0 } $cli, qw(nginx cgi-fcgi);
if (@missing) {
    plan skip_all => "needs @missing" unless $ENV{FCGI_PM_REQUIRE_ALL};
    fail("needs @missing");
    done_testing;
    exit;
}

for my $class (qw(FCGI::ProcManager::XS FCGI::ProcManager::XS::Constrained)) {
    my $pm = $class->new({ scoreboard => 0, status_socket => '/run/app.status', status_group => 'adm' });
    is($pm->{_handle}->get('scoreboard'), '0', "$class: scoreboard reaches the library");
    is($pm->{_handle}->get('status_socket'), '/run/app.status', "$class: status_socket too");
    is($pm->{_handle}->get('status_group'), 'adm', "$class: status_group too");
    is($pm->pm_parameter('status_socket'), '/run/app.status', "$class: pm_parameter reads it back");
}
ok(!eval { FCGI::ProcManager::XS->new({ status_socket => 'x' x 200 }); 1 }, 'a status_socket too long is refused');
like($@, qr/^FCGI::ProcManager::XS: status_socket: /, '... with the library\'s message');

# The pool's status as fcgi-pm status --json tells it, or undef.
sub status {
    my ($target) = @_;
    my $out = `'$cli' status --json --no-proc '$target' 2>&1`;
    return undef if $? != 0;
    return eval { JSON::PP::decode_json($out) };
}

sub wait_status {
    my ($target, $ok) = @_;
    my $st;
    my $until = time + 10;
    while (time < $until) {
        $st = status($target);
        return $st if $st && $ok->($st);
        sleep 0.02;
    }
    diag(explain($st));
    return undef;
}

my $dir = scratch();
my $app = start_app(dir => $dir, params => ['n_processes=1', "status_socket=$dir/status.sock"]);
ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 1), 'a worker') or diag(read_file($app->{log}));
my ($worker) = workers($app->{pid});
my $nginx = Nginx->start($dir, $app->{sock});
my $before = status($app->{pid});
ok($before && @{ $before->{workers} } == 1, 'the status of a pool of one, by the manager\'s pid');

my $uri = "/status?wait_for=$dir/release";
my $client = fork;
die "fork: $!" unless defined $client;
if (!$client) {
    my $r = HTTP::Tiny->new(timeout => 30)->get('http://127.0.0.1:' . $nginx->{port} . $uri);
    POSIX::_exit($r->{success} && $r->{content} =~ /^Hello from worker $worker / ? 0 : 1);
}
ok(wait_status($app->{pid}, sub { $_[0]{workers}[0]{state} eq 'busy' }), 'the worker busy in the request');
for my $target ($app->{pid}, "$dir/status.sock") {
    my $w = status($target)->{workers}[0];
    is_deeply([@$w{qw(pid state method uri remote)}], [$worker, 'busy', 'GET', $uri, '127.0.0.1'],
              "read from $target: the request's method, URI and client");
}
open my $release, '>', "$dir/release" or die;
close $release;
waitpid $client, 0;
is($?, 0, 'the request answered once released');
my $after = wait_status($app->{pid}, sub { $_[0]{pool}{requests} == $before->{pool}{requests} + 1 });
ok($after, 'the request counted in the pool');
my $w = $after ? $after->{workers}[0] : {};
is_deeply([@$w{qw(state requests uri)}], ['idle', $before->{workers}[0]{requests} + 1, $uri],
          'the worker idle, its request counted and shown as the last');
$nginx->stop;
is(stop_app($app, 10), 0, 'exit 0');
ok(!-e "$dir/status.sock", 'the status socket removed at the stop');

$dir = scratch();
$app = start_app(dir => $dir, params => ['n_processes=1', "status_socket=$dir/status.sock",
                                         'status_group=no-such-group-fcgipm']);
isnt(wait_exit($app, 10), 0, 'an unknown status_group: pm_manage dies');
like(read_file($app->{log}), qr/FCGI::ProcManager::XS: status_group: no group 'no-such-group-fcgipm'/,
     '... with the library\'s message') or diag(read_file($app->{log}));
done_testing;
