#!/usr/bin/perl
# dispatch.pl -- the cost of one pre_dispatch + post_dispatch pair in a real worker
# (n_processes 1) of Perl's FCGI::ProcManager or FCGI::Engine::ProcManager: the Perl
# counterpart of dispatch_bench (bench/dispatch.sh runs both).
#
#   dispatch.pl SYSTEM --time=N,REPS [--pid-file=PATH]
#       times N pairs, REPS times, and an empty loop of N iterations alike; prints
#       "pair MEDIAN STDDEV" and "empty-loop MEDIAN STDDEV", in ns per iteration
#   dispatch.pl SYSTEM --pairs=K [--pid-file=PATH]
#       runs K pairs between two marker system calls, for counting them under strace
#
# SYSTEM is "procmanager" or "engine", or "procmanager-xs" / "engine-xs" for the
# Perl binding's drop-ins on libfcgi-pm (found in PERL5LIB). An engine needs --pid-file: without a pid
# file its manager's TERM handler dies calling remove on it, and leaves the worker.
# The markers are stat(2) calls on the same paths dispatch_bench uses.
use strict;
use warnings;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my $begin_marker = '/nonexistent/dispatch-bench-begin';
my $end_marker = '/nonexistent/dispatch-bench-end';

my $usage = "usage: dispatch.pl procmanager|engine[-xs] --time=N,REPS|--pairs=K [--pid-file=PATH]\n";
my $system = shift @ARGV // '';
my ($n, $reps, $pairs, $pid_file);
for (@ARGV) {
    if (/^--time=([1-9]\d*),([1-9]\d*)$/) { ($n, $reps) = ($1, $2) }
    elsif (/^--pairs=([1-9]\d*)$/) { $pairs = $1 }
    elsif (/^--pid-file=(.+)$/) { $pid_file = $1 }
    else { die $usage }
}
die $usage unless $system =~ /^(procmanager|engine)(-xs)?$/ && (defined $n xor defined $pairs);
die "dispatch.pl: the engine needs --pid-file\n" if $system =~ /^engine/ && !defined $pid_file;
my $class = { procmanager => 'FCGI::ProcManager', engine => 'FCGI::Engine::ProcManager',
              'procmanager-xs' => 'FCGI::ProcManager::XS', 'engine-xs' => 'FCGI::Engine::ProcManager::XS' }->{$system};
eval "require $class; 1" or die $@;

# The two systems differ in names only: pm_manage / manage, pm_pre_dispatch /
# pre_dispatch, and so on. Each loop is written out with literal method calls, as an
# application writes them.
my ($pm, $time_pairs, $run_pairs, $post_dispatch, $term_count);
if ($system =~ /^procmanager/) {
    $pm = $class->new({n_processes => 1, defined $pid_file ? (pid_fname => $pid_file) : ()});
    $pm->pm_manage();
    $time_pairs = sub {
        my $t0 = clock_gettime(CLOCK_MONOTONIC);
        for (1 .. $_[0]) { $pm->pm_pre_dispatch(); $pm->pm_post_dispatch(); }
        return clock_gettime(CLOCK_MONOTONIC) - $t0;
    };
    $run_pairs = sub { for (1 .. $_[0]) { $pm->pm_pre_dispatch(); $pm->pm_post_dispatch(); } };
    $post_dispatch = sub { $pm->pm_post_dispatch() };
    $term_count = sub { $pm->pm_received_signal('TERM') };
} else {
    require MooseX::Daemonize::Pid::File;
    $pm = $class->new(
        n_processes => 1,
        pidfile => MooseX::Daemonize::Pid::File->new(file => $pid_file));
    $pm->manage();
    $time_pairs = sub {
        my $t0 = clock_gettime(CLOCK_MONOTONIC);
        for (1 .. $_[0]) { $pm->pre_dispatch(); $pm->post_dispatch(); }
        return clock_gettime(CLOCK_MONOTONIC) - $t0;
    };
    $run_pairs = sub { for (1 .. $_[0]) { $pm->pre_dispatch(); $pm->post_dispatch(); } };
    $post_dispatch = sub { $pm->post_dispatch() };
    $term_count = sub { $pm->received_signal('TERM') };
}
# Only the worker gets here.

sub time_empty {
    my $t0 = clock_gettime(CLOCK_MONOTONIC);
    for (1 .. $_[0]) { }
    return clock_gettime(CLOCK_MONOTONIC) - $t0;
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# Sample standard deviation, as Google Benchmark reports it (0 for one sample).
sub stddev {
    return 0 if @_ < 2;
    my $mean = 0;
    $mean += $_ / @_ for @_;
    my $sum = 0;
    $sum += ($_ - $mean) ** 2 for @_;
    return sqrt($sum / (@_ - 1));
}

if (defined $pairs) {
    -e $begin_marker;
    $run_pairs->($pairs);
    -e $end_marker;
} else {
    $time_pairs->($n);  # warm-up, not recorded
    time_empty($n);
    my (@pair, @empty);
    for (1 .. $reps) {
        push @pair, $time_pairs->($n) * 1e9 / $n;
        push @empty, time_empty($n) * 1e9 / $n;
    }
    printf "pair %.1f %.1f\n", median(@pair), stddev(@pair);
    printf "empty-loop %.1f %.1f\n", median(@empty), stddev(@empty);
}

# TERM to the manager, which sends TERM to this worker; the next post_dispatch then
# exits 0 ("safe exit after SIGTERM"), after which the manager exits 0 too.
STDOUT->flush();
kill TERM => getppid();
for (1 .. 1000) {
    last if $term_count->();
    select(undef, undef, undef, 0.01);
}
$post_dispatch->();
die "dispatch.pl: no TERM came back from the manager within 10 s\n";
