#!/bin/sh
# nginx in front of a FastCGI socket, configured with the example server block
# (nginx-server.conf) and nothing else of the system's, run from a scratch directory.
#   nginx-front.sh start DIR SOCKET [SERVER_CONF]   prints the port it listens on
#   nginx-front.sh stop DIR                         graceful stop, waits for the exit
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2

if [ "$cmd" = stop ]; then
  [ -s "$dir/nginx.pid" ] || exit 0
  pid=$(cat "$dir/nginx.pid")
  kill -QUIT "$pid" 2>/dev/null || exit 0
  for _ in $(seq 500); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.01; done
  kill -KILL "$pid" 2>/dev/null || true
  exit 0
fi

sock=$3 server=${4:-$here/nginx-server.conf}
mkdir -p "$dir"
cp /etc/nginx/fastcgi_params "$dir/"
user=; [ "$(id -u)" -ne 0 ] || user="user root root;"  # the scratch dir is root's
port=8080
while :; do
  sed -e "s#unix:/run/fcgi-pm-hello.sock#unix:$sock#" -e "s#127.0.0.1:8080#127.0.0.1:$port#" \
    "$server" >"$dir/server.conf"
  cat >"$dir/nginx.conf" <<CONF
$user
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  include $dir/server.conf;
}
CONF
  if nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$dir/start.err"; then
    echo "$port"
    exit 0
  fi
  grep -q "Address already in use" "$dir/start.err" && [ "$port" -lt 8180 ] || {
    cat "$dir/start.err" >&2; exit 1; }
  port=$((port + 1))
done
