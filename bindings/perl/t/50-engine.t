# FCGI::Engine with --manager FCGI::Engine::ProcManager::XS: side by side with
# FCGI::Engine::ProcManager (the same log lines and exit code over a start, a HUP
# and a TERM), augments in the right process, the Constrained class's limits, and
# the Moose interface.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PMTest;
BEGIN {
    unless (eval { require FCGI::Engine; 1 }) {
        plan skip_all => 'needs FCGI::Engine' unless $ENV{FCGI_PM_REQUIRE_ALL};
        fail('needs FCGI::Engine');
        done_testing;
        exit;
    }
}
use FCGI::Engine::ProcManager;
use FCGI::Engine::ProcManager::XS;
use FCGI::Engine::ProcManager::XS::Constrained;

sub engine {
    my ($manager, %o) = @_;
    my $dir = scratch();
    return start_app(dir => $dir, env => $o{env},
                     program => [$^X, "$FindBin::Bin/bin/engine.pl", '--listen', "$dir/app.sock",
                                 '--nproc', $o{n} || 2, '--pidfile', "$dir/app.pid", '--manager', $manager]);
}

# A start, a HUP, a TERM: the exit code and the masked, sorted log lines.
sub life {
    my ($manager) = @_;
    my $app = engine($manager);
    wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2, 20) or return ('no start', read_file($app->{log}));
    my $pid_file = read_file("$app->{dir}/app.pid");
    like(request($app->{sock}), qr/Hello from worker/, "$manager: a request");
    kill 'HUP', $app->{pid};
    wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 4, 20);
    my $code = stop_app($app, 15);
    ok(!-e "$app->{dir}/app.pid", "$manager: pid file removed");
    is($pid_file =~ /^(\d+)/ && $1, $app->{pid}, "$manager: the pid file held the manager's pid");
    return ("exit " . (defined $code ? $code : 'none'),
            sort grep { !/exited with status 9$/ } fastcgi_lines($app->{log}));
}

my @original = life('FCGI::Engine::ProcManager');
my @xs = life('FCGI::Engine::ProcManager::XS');
ok(@original > 10, 'the original\'s run logged (' . scalar(@original) . ' lines)');
is_deeply(\@xs, \@original, 'same exit code and log lines as FCGI::Engine::ProcManager')
    or diag(join "\n", 'xs:', @xs, 'original:', @original);

subtest 'augments' => sub {
    my $app = engine('TestEngineSubclass');
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2, 20), 'two workers');
    my $m = $app->{pid};
    my @w = workers($m);
    like(request($app->{sock}), qr/Hello/, 'a request');
    ok(wait_log($app->{applog}, qr/^augment post_dispatch/, 1), 'post_dispatch augment ran');
    my $events = read_file($app->{applog});
    like($events, qr/^augment manager_init $m role manager$/m, 'manager_init in the manager');
    like($events, qr/^augment server_init $_ role server manager $m$/m, "server_init in worker $_, manager_pid set")
        for @w;
    my ($pre) = $events =~ /^augment pre_dispatch (\d+)$/m;
    ok($pre && grep({ $_ == $pre } @w), 'pre_dispatch in a worker');
    like($events, qr/^augment post_dispatch $pre$/m, 'post_dispatch in the same');
    is(stop_app($app, 15), 0, 'exit 0');
};

subtest 'Constrained' => sub {
    my $app = engine('FCGI::Engine::ProcManager::XS::Constrained', n => 1, env => { PM_MAX_REQUESTS => 2 });
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 1, 20), 'a worker');
    request($app->{sock}) for 1 .. 2;
    ok(wait_log($app->{log}, qr/server \(pid \d+\): safe exit after max_requests \(2\)$/, 1), 'leaves after 2 requests');
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2), 'replaced');
    is(stop_app($app, 15), 0, 'exit 0');
    my $c = FCGI::Engine::ProcManager::XS::Constrained->new(max_process_size => 1000, min_share_size => 10);
    is($c->{_handle}->get('max_size'), '1000', 'max_process_size is the library\'s max_size');
    is($c->{_handle}->get('min_share_size'), '10', 'min_share_size passed on');
    local $ENV{PM_MAX_REQUESTS} = 7;
    local $ENV{PM_MAX_REQUESTS_JITTER} = 9;
    my $base = FCGI::Engine::ProcManager::XS->new(n_processes => 1);
    is($base->{_handle}->get('max_requests'), '0', 'the base class ignores PM_MAX_REQUESTS');
    is($base->{_handle}->get('max_requests_jitter'), '0', 'and PM_MAX_REQUESTS_JITTER');
};

subtest 'the Moose interface' => sub {
    my @attributes = map { $_->name } FCGI::Engine::ProcManager->meta->get_all_attributes;
    ok(@attributes >= 13, 'the original has ' . scalar(@attributes) . ' attributes');
    for my $name (@attributes) {
        ok(FCGI::Engine::ProcManager::XS->meta->find_attribute_by_name($name), "attribute $name");
    }
    # (less the constants it imports: SIGTERM, SA_RESTART, DEBUG, ...)
    my @methods = grep { !/^(BUILD|meta|DESTROY|new|DEBUG|SIG[A-Z]+|SA_[A-Z]+|_.*)$/ }
        map { $_->name } FCGI::Engine::ProcManager->meta->get_all_methods;
    for my $name (@methods) {
        ok(FCGI::Engine::ProcManager::XS->can($name), "method $name");
    }
    my $pm = FCGI::Engine::ProcManager::XS->new(n_processes => 3, die_timeout => 5);
    is($pm->n_processes, 3, 'n_processes');
    is($pm->{_handle}->get('n_processes'), '3', 'given to the library');
    $pm->die_timeout(7);
    is($pm->{_handle}->get('die_timeout'), '7', 'a change follows');
    ok(!eval { $pm->die_timeout(-1); 1 }, 'a value the library refuses dies');
    like($@, qr/die_timeout/, 'naming it');
    is($pm->die_timeout, 7, 'and changes nothing');
    is($pm->role, 'manager', 'role');
    is($pm->process_name, 'perl-fcgi', 'process_name');
    is($pm->manager_process_name, 'perl-fcgi-pm', 'manager_process_name');
};
done_testing;
