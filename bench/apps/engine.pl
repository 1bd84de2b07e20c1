#!/usr/bin/perl
# The benchmark's Perl responder under FCGI::Engine::ProcManager (Moose).
# Usage: engine.pl SOCKET N_PROCESSES. With BENCH_CRASH_LOG set, each worker appends
# a line to that file and exits 1 at start.
use strict;
use warnings;
use FCGI;
use FCGI::Engine::ProcManager;
use MooseX::Daemonize::Pid::File;
my ($path, $n) = @ARGV;
my $socket = FCGI::OpenSocket($path, 128);
my $request = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%ENV, $socket);
# Without a pid file its manager dies at TERM (removing an undefined pid file) and
# leaves the workers behind.
my $pm = FCGI::Engine::ProcManager->new(
    n_processes => $n,
    pidfile     => MooseX::Daemonize::Pid::File->new(file => "$path.pid"));
$pm->manage();
crash() if $ENV{BENCH_CRASH_LOG};
while ($request->Accept() >= 0) {
    $pm->pre_dispatch();
    print "Content-Type: text/plain\r\n\r\nHello from worker $$\n";
    $pm->post_dispatch();
}
sub crash {
    open(my $f, '>>', $ENV{BENCH_CRASH_LOG}) or exit 1;
    print $f "$$\n";
    close $f;
    exit 1;
}
