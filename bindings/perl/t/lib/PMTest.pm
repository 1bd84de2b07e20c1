package PMTest;
# What the tests share: starting t/bin/app.pl (or another program) under a manager
# in a scratch directory, waiting for its log lines, FastCGI requests with
# cgi-fcgi, the manager's workers from /proc, and stopping it.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use FindBin;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(start_app wait_log count_lines read_file request workers wait_exit
                 stop_app fastcgi_lines alive scratch);

my @started;  # process groups to clean up
END { kill 'KILL', -$_ for @started }

# The blib directories the test runs with, for the programs it starts.
my $perl5lib = join ':', grep { m{blib} } @INC;

sub scratch { tempdir('fcgi-pm-perl-XXXXXX', TMPDIR => 1, CLEANUP => 1) }

# start_app(params => [...], env => {...}, program => [...], dir => DIR):
# a new process group running the program (default: perl t/bin/app.pl SOCKET)
# with PARAMS after it (a parameter "SOCK" becomes the socket's path, "PIDFILE"
# DIR/app.pid), STDOUT to DIR/out, STDERR to DIR/log.
sub start_app {
    my (%o) = @_;
    my $dir = $o{dir} || scratch();
    my $app = { dir => $dir, sock => "$dir/app.sock", log => "$dir/log", out => "$dir/out",
                applog => "$dir/applog" };
    my @cmd = $o{program} ? @{ $o{program} } : ($^X, "$FindBin::Bin/bin/app.pl", $app->{sock});
    my %placeholder = (SOCK => $app->{sock}, PIDFILE => "$dir/app.pid");
    push @cmd, map { $placeholder{$_} || $_ } @{ $o{params} || [] };
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        setpgrp(0, 0);
        $ENV{PERL5LIB} = join ':', grep { defined && length } $perl5lib, $ENV{PERL5LIB};
        $ENV{APP_LOG} = $app->{applog};
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
        open STDOUT, '>', $app->{out} or die;
        open STDERR, '>', $app->{log} or die;
        exec @cmd or POSIX::_exit(127);
    }
    push @started, $pid;
    $app->{pid} = $pid;
    return $app;
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    return scalar <$fh>;
}

sub count_lines {
    my ($path, $re) = @_;
    return scalar grep { /$re/ } split /\n/, read_file($path);
}

# Waits until the file has at least n lines matching re; true if it did in time.
sub wait_log {
    my ($path, $re, $n, $timeout) = @_;
    my $until = time + ($timeout || 10);
    while (time < $until) {
        return 1 if count_lines($path, $re) >= $n;
        sleep 0.01;
    }
    return 0;
}

# One FastCGI GET through cgi-fcgi: the response body (after the headers), or undef.
sub request {
    my ($sock, $query) = @_;
    local $ENV{REQUEST_METHOD} = 'GET';
    local $ENV{SCRIPT_NAME} = '/';
    local $ENV{QUERY_STRING} = defined $query ? $query : '';
    my $out = `timeout 20 cgi-fcgi -bind -connect $sock 2>/dev/null`;
    return undef if $? != 0 || !defined $out;
    $out =~ s/\A.*?\r?\n\r?\n//s;
    return $out;
}

sub workers {
    my ($pid) = @_;
    my $list = read_file("/proc/$pid/task/$pid/children");
    return grep { length } split /\s+/, $list;
}

sub alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    my $stat = read_file("/proc/$pid/stat");
    return $stat !~ /^\d+ \(.*\) Z/s;
}

# The exit code of the app's process (or -signal), or undef if it did not exit in time.
sub wait_exit {
    my ($app, $timeout) = @_;
    my $until = time + ($timeout || 10);
    while (time < $until) {
        my $r = waitpid($app->{pid}, WNOHANG);
        if ($r == $app->{pid}) {
            return $app->{code} = WIFEXITED($?) ? WEXITSTATUS($?) : -WTERMSIG($?);
        }
        sleep 0.01;
    }
    return undef;
}

sub stop_app {
    my ($app, $timeout) = @_;
    kill 'TERM', $app->{pid};
    return wait_exit($app, $timeout);
}

# The log's "FastCGI: " lines, pids masked.
sub fastcgi_lines {
    my ($path) = @_;
    return map { s/\(pid \d+\)/(pid P)/g; s/PIDs, [\d ]+$/PIDs, P.../; $_ }
        grep { /^FastCGI: / } split /\n/, read_file($path);
}

1;
