package Nginx;
# A private nginx in front of a FastCGI socket, in a scratch directory: the least
# configuration that passes every request to the socket; one connection per request
# (nginx's default), or with keep_conn => 1 FastCGI connections kept alive between
# requests (fastcgi_keep_conn on, an upstream keepalive cache).
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(sleep);

sub start {
    my ($class, $dir, $sock, %o) = @_;
    my $keepalive = $o{keep_conn} ? 'keepalive 8;' : '';
    my $keep_conn = $o{keep_conn} ? 'fastcgi_keep_conn on;' : '';
    my $port = do { my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0'); $s->sockport };
    my $user = $> == 0 ? 'user root root;' : '';
    open my $conf, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
    print $conf <<CONF;
$user
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
worker_processes 1;
daemon on;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    fastcgi_temp_path $dir/fastcgi;
    proxy_temp_path $dir/proxy;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream app { server unix:$sock; $keepalive }
    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO \$uri;
            fastcgi_pass app;
            $keep_conn
        }
    }
}
CONF
    close $conf;
    system('nginx', '-p', $dir, '-c', "$dir/nginx.conf") == 0 or die "nginx did not start: "
        . `cat $dir/nginx-error.log 2>/dev/null`;
    return bless { dir => $dir, port => $port }, $class;
}

sub url { "http://127.0.0.1:$_[0]{port}/" }

sub stop {
    my ($self) = @_;
    my $pid = `cat $self->{dir}/nginx.pid 2>/dev/null`;
    chomp $pid;
    return unless $pid;
    kill 'QUIT', $pid;
    for (1 .. 500) { last unless kill 0, $pid; sleep 0.01 }
    kill 'KILL', $pid;
}

sub DESTROY { $_[0]->stop }

1;
