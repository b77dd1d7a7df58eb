#!/usr/bin/env bash
# shellcheck disable=SC2317  # the checks are functions called through check()
# Runs deploy/nginx/coord.conf in a real nginx on high ports, with a throwaway certificate and a stand-in for
# coordd, and checks what a client gets: the config loads (nginx -t), plain HTTP answers 308 to HTTPS, every
# location (the live feed's included) sends HSTS, JSON is gzipped when asked, the live feed is not.
# Exit 0 when all hold, 1 when one does not, 2 when nginx, openssl or curl is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
nginx=$(command -v nginx || echo /usr/sbin/nginx)
for tool in "$nginx" openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "check-nginx: $tool is missing"; exit 2; }
done
tmp=$(mktemp -d)
trap 'kill "$(cat "$tmp/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$tmp"' EXIT
base=$((20000 + RANDOM % 20000))
http=$base https=$((base + 1)) upstream=$((base + 2))
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=coord.example.org" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1
# The shipped file, with only its ports, certificate paths and upstream address changed.
sed -e "s|listen 80;|listen 127.0.0.1:$http;|" -e "s|listen 443 ssl http2;|listen 127.0.0.1:$https ssl http2;|" \
    -e "s|/etc/letsencrypt/live/coord.example.org/fullchain.pem|$tmp/cert.pem|" \
    -e "s|/etc/letsencrypt/live/coord.example.org/privkey.pem|$tmp/key.pem|" \
    -e "s|server 127.0.0.1:8080 |server 127.0.0.1:$upstream |" \
    -e "s|allow 10.0.0.0/8;|allow 127.0.0.1;|" deploy/nginx/coord.conf > "$tmp/coord.conf"
json=$(printf '{"items":[%s]}' "$(for i in $(seq 1 30); do printf '{"warehouse":"MNL","item":"HSHETARPW406","on_hand":%d},' "$i"; done)" | sed 's/,]}$/]}/')
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fcgi;
    uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
    include $tmp/coord.conf;
    # Stands in for coordd.
    server {
        listen 127.0.0.1:$upstream;
        location / { default_type application/json; return 200 '$json'; }
        location = /v1/events/live { default_type text/event-stream; return 200 'retry: 2000\n\n'; }
    }
}
CONF
status=0
if out=$("$nginx" -t -q -c "$tmp/nginx.conf" -p "$tmp" 2>&1); then echo "check-nginx: nginx -t: ok"; else echo "check-nginx: nginx -t failed: $out"; exit 1; fi
"$nginx" -c "$tmp/nginx.conf" -p "$tmp"
for _ in $(seq 1 50); do [[ -s $tmp/nginx.pid ]] && break; sleep 0.1; done
check() { if "$2"; then echo "check-nginx: $1: ok"; else echo "check-nginx: $1: FAILED"; status=1; fi; }
headers() { curl -sk -o /dev/null -D - "$@"; }
redirects() { [[ $(headers "http://127.0.0.1:$http/v1/stock/dispatches" -X POST | head -1) == *" 308 "* ]]; }
hsts_api() { headers "https://127.0.0.1:$https/v1/stock" | grep -qi "^strict-transport-security"; }
hsts_feed() { headers "https://127.0.0.1:$https/v1/events/live" | grep -qi "^strict-transport-security"; }
gzipped() { headers -H "Accept-Encoding: gzip" "https://127.0.0.1:$https/v1/stock" | grep -qi "^content-encoding: gzip"; }
plain() { ! headers "https://127.0.0.1:$https/v1/stock" | grep -qi "^content-encoding"; }
feed_plain() { ! headers -H "Accept-Encoding: gzip" "https://127.0.0.1:$https/v1/events/live" | grep -qi "^content-encoding"; }
check "http answers 308 to https" redirects
check "HSTS on the API" hsts_api
check "HSTS on the live feed" hsts_feed
check "JSON gzipped when asked" gzipped
check "JSON plain when not asked" plain
check "the live feed never gzipped" feed_plain
exit $status
