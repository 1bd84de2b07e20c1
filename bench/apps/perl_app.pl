#!/usr/bin/perl
# The benchmark's Perl responder under either Perl manager.
# Usage: perl_app.pl procmanager|engine SOCKET N_PROCESSES
#   procmanager  FCGI::ProcManager 0.28
#   engine       FCGI::Engine::ProcManager (Moose), with a pid file: without one its
#                manager dies at TERM (removing an undefined pid file) and leaves the
#                workers behind
# With BENCH_CRASH_LOG set, each worker appends a line to that file and exits 1 at
# start.
use strict;
use warnings;
use FCGI;
my ($manager, $path, $n) = @ARGV;
my $socket = FCGI::OpenSocket($path, 128);
my $request = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%ENV, $socket);
my ($pm, $pre, $post);
if ($manager eq 'procmanager') {
    require FCGI::ProcManager;
    $pm = FCGI::ProcManager->new({n_processes => $n});
    $pm->pm_manage();
    ($pre, $post) = ('pm_pre_dispatch', 'pm_post_dispatch');
} elsif ($manager eq 'engine') {
    require FCGI::Engine::ProcManager;
    require MooseX::Daemonize::Pid::File;
    $pm = FCGI::Engine::ProcManager->new(
        n_processes => $n,
        pidfile     => MooseX::Daemonize::Pid::File->new(file => "$path.pid"));
    $pm->manage();
    ($pre, $post) = ('pre_dispatch', 'post_dispatch');
} else {
    die "usage: perl_app.pl procmanager|engine SOCKET N_PROCESSES\n";
}
if ($ENV{BENCH_CRASH_LOG}) {
    open(my $f, '>>', $ENV{BENCH_CRASH_LOG}) or exit 1;
    print $f "$$\n";
    close $f;
    exit 1;
}
while ($request->Accept() >= 0) {
    $pm->$pre();
    print "Content-Type: text/plain\r\n\r\nHello from worker $$\n";
    $pm->$post();
}
