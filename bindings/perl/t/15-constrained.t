# FCGI::ProcManager::XS::Constrained: FCGI::ProcManager::Constrained's parameters,
# their defaults from the environment, and the limits enforced after each request;
# the base class, like FCGI::ProcManager, has no limits whatever the environment says.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PMTest;
use FCGI::ProcManager::XS;
use FCGI::ProcManager::XS::Constrained;

{
    local $ENV{PM_MAX_REQUESTS} = 7;
    local $ENV{PM_MAX_SIZE} = 123456;
    local $ENV{PM_SIZECHECK_NUM_REQUESTS} = 5;
    local $ENV{PM_MAX_REQUESTS_JITTER} = 9;
    my $c = FCGI::ProcManager::XS::Constrained->new({ n_processes => 1 });
    is($c->max_requests, 7, 'max_requests from PM_MAX_REQUESTS');
    is($c->max_size, 123456, 'max_size from PM_MAX_SIZE');
    is($c->sizecheck_num_requests, 5, 'sizecheck_num_requests from PM_SIZECHECK_NUM_REQUESTS');
    is($c->{_handle}->get('max_requests_jitter'), '9', 'max_requests_jitter from PM_MAX_REQUESTS_JITTER');
    my $given = FCGI::ProcManager::XS::Constrained->new({ max_requests => 3 });
    is($given->max_requests, 3, 'a value given wins over the environment');
    my $base = FCGI::ProcManager::XS->new({ n_processes => 1 });
    is($base->{_handle}->get('max_requests'), '0', 'the base class ignores PM_MAX_REQUESTS');
    is($base->{_handle}->get('max_size'), '0', 'and PM_MAX_SIZE');
    is($base->{_handle}->get('max_requests_jitter'), '0', 'and PM_MAX_REQUESTS_JITTER (refused without max_requests)');
}

# The manager's request limits and recycling: passed to new like the others, and
# checked together by pm_manage (which dies before anything is started).
{
    my %limits = (request_timeout => 30, request_timeout_grace => 2.5, request_slow => 5,
                  max_requests => 100, max_requests_jitter => 50, max_age => 3600, max_rss => 524288);
    for my $class (qw(FCGI::ProcManager::XS FCGI::ProcManager::XS::Constrained)) {
        my $pm = $class->new({%limits});
        is($pm->{_handle}->get($_), "$limits{$_}", "$class: $_ reaches the library") for sort keys %limits;
    }
    my $pm = FCGI::ProcManager::XS->new({ n_processes => 1, max_requests_jitter => 10 });
    ok(!eval { $pm->pm_manage; 1 }, 'max_requests_jitter without max_requests: pm_manage refuses it');
    like($@, qr/^FCGI::ProcManager::XS: pm_manage: max_requests_jitter applies with max_requests only/,
         '... with the library\'s message');
}

my $app = start_app(params => ['n_processes=1'],
                    env => { PM_CLASS => 'FCGI::ProcManager::XS::Constrained', PM_MAX_REQUESTS => 2 });
ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 1), 'a worker');
my ($w) = workers($app->{pid});
like(request($app->{sock}), qr/worker $w /, 'first request');
like(request($app->{sock}), qr/worker $w /, 'second request, same worker');
ok(wait_log($app->{log}, qr/server \(pid $w\): safe exit after max_requests \(2\)$/, 1), 'it leaves after 2');
ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2), 'and is replaced');
is(stop_app($app, 10), 0, 'exit 0');

$app = start_app(params => ['n_processes=1', 'max_size=1000', 'sizecheck_num_requests=1'],
                 env => { PM_CLASS => 'FCGI::ProcManager::XS::Constrained' });
ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 1), 'a worker (max_size 1000 KB: perl is bigger)');
request($app->{sock});
ok(wait_log($app->{log}, qr/safe exit due to memory limits exceeded after 1 requests$/, 1),
   'it leaves after its first request, as the size check says')
    or diag(read_file($app->{log}));
is(stop_app($app, 10), 0, 'exit 0');
done_testing;
