# Real hosts behind nginx: Plack's FCGI handler with --manager FCGI::ProcManager::XS,
# FCGI::Engine with --manager FCGI::Engine::ProcManager::XS, and a plain FCGI.pm
# loop. Each serves requests, survives HUPs under load with no failed request, stops
# cleanly on TERM and leaves no process behind; each again with nginx keeping its
# FastCGI connections alive, where an idle worker waits for the next request inside
# FCGI.pm's Accept on a connection it holds, and a HUP or TERM must still end it at
# once (not when nginx closes the connection, nor at the die timeout).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(sleep time);
use PMTest;
use Nginx;

my @missing = grep { system("command -v $_ >/dev/null 2>&1") != 0 } qw(nginx plackup);
if (@missing) {
    plan skip_all => "needs @missing" unless $ENV{FCGI_PM_REQUIRE_ALL};
    fail("needs @missing");
    done_testing;
    exit;
}

# Requests through nginx for the given seconds in a child; its exit code is 0 if
# none failed; it prints "ok <n> failed <m>" to the file.
sub load {
    my ($url, $seconds, $file) = @_;
    my $pid = fork;
    return $pid if $pid;
    my ($ok, $failed) = (0, 0);
    my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
    my $until = time + $seconds;
    while (time < $until) {
        my $r = $http->get($url);
        $r->{success} && $r->{content} =~ /^hello from \d+|Hello from worker/ ? $ok++ : $failed++;
    }
    open my $fh, '>', $file or POSIX::_exit(2);
    print $fh "ok $ok failed $failed\n";
    close $fh;
    POSIX::_exit($failed ? 1 : 0);
}

# How many sockets pid holds (its listener, and a connection while it keeps one).
sub sockets {
    my ($pid) = @_;
    return scalar grep { (readlink($_) // '') =~ /^socket:/ } glob("/proc/$pid/fd/*");
}

# Waits until each of the pool's HUPs so far was acted on (a "sending TERM" line for
# each) and it is whole again: two workers, both initialized, neither one a HUP
# stopped. (A HUP that comes while the workers the previous one stopped are still
# ending stops those again: one replacement for both, as when the workers are slow.)
sub replaced {
    my ($app, $hups) = @_;
    my $until = time + 20;
    while (time < $until) {
        my $log = read_file($app->{log});
        my $terms = () = $log =~ /sending TERM to PIDs, /g;
        my %stopped = map { $_ => 1 } map { split ' ' } $log =~ /sending TERM to PIDs, ([\d ]+)$/mg;
        my %ready = map { $_ => 1 } $log =~ /server \(pid (\d+)\): initialized$/mg;
        my @now = workers($app->{pid});
        return 1 if $terms >= $hups && @now == 2 && !grep { $stopped{$_} || !$ready{$_} } @now;
        sleep 0.05;
    }
    diag(read_file($app->{log}));
    return 0;
}

sub exercise {
    my ($name, %start) = @_;
    my $keep = delete $start{keep_conn};
    $name .= ', connections kept alive' if $keep;
    my $dir = scratch();
    my $app = start_app(dir => $dir, %start);
    ok(wait_log($app->{log}, qr/server \(pid \d+\): initialized$/, 2, 20), "$name: two workers")
        or return diag(read_file($app->{log}));
    my $nginx = Nginx->start($dir, $app->{sock}, keep_conn => $keep);
    my $r = HTTP::Tiny->new->get($nginx->url);
    ok($r->{success}, "$name: a request through nginx") or diag("$r->{status} $r->{content}");
    my @before = workers($app->{pid});

    my $loader = load($nginx->url, 3, "$dir/load");
    for (1 .. 5) { sleep 0.4; kill 'HUP', $app->{pid} }
    waitpid($loader, 0);
    chomp(my $result = read_file("$dir/load"));
    is($? >> 8, 0, "$name: no failed request across 5 HUPs under load ($result)");
    my ($served) = $result =~ /ok (\d+)/;
    ok(($served || 0) > 50, "$name: requests served during the HUPs");
    ok(replaced($app, 5), "$name: every HUP replaced the pool");
    my @after = workers($app->{pid});
    if ($keep) {
        # Idle workers holding a kept-alive connection: a HUP replaces them at once.
        HTTP::Tiny->new->get($nginx->url) for 1 .. 4;
        my @holding = grep { sockets($_) >= 2 } @after;
        ok(@holding, "$name: a worker holds a kept-alive connection (pids @holding)");
        my $t0 = time;
        kill 'HUP', $app->{pid};
        sleep 0.01 while time < $t0 + 5 && grep { alive($_) } @after;
        my $took = time - $t0;
        ok(!(grep { alive($_) } @after) && $took < 3,
           sprintf("$name: a HUP ended the idle workers in %.2f s, not when nginx closed their connections", $took));
        ok(replaced($app, 6), "$name: the pool replaced");
        @after = workers($app->{pid});
        HTTP::Tiny->new->get($nginx->url) for 1 .. 4;
        @holding = grep { sockets($_) >= 2 } @after;
        ok(@holding, "$name: again a worker holds a kept-alive connection (pids @holding)");
    }
    my $t0 = time;
    is(stop_app($app, 15), 0, "$name: TERM, exit 0");
    ok(time - $t0 < 3, sprintf("$name: ... in %.2f s, not at the die timeout", time - $t0)) if $keep;
    ok(!(grep { alive($_) } @before, @after), "$name: no worker left");
    $nginx->stop;
}

for my $keep (0, 1) {
    exercise('plackup -s FCGI', keep_conn => $keep,
             program => ['plackup', '-s', 'FCGI', '--manager', 'FCGI::ProcManager::XS', '--nproc', '2'],
             params => ['--listen', 'SOCK', "$FindBin::Bin/bin/hello.psgi"]);
    exercise('FCGI::Engine', keep_conn => $keep,
             program => [$^X, "$FindBin::Bin/bin/engine.pl", '--manager', 'FCGI::Engine::ProcManager::XS'],
             params => ['--listen', 'SOCK', '--nproc', 2, '--pidfile', 'PIDFILE']);
    exercise('FCGI.pm loop', keep_conn => $keep, params => ['n_processes=2']);
}
done_testing;
