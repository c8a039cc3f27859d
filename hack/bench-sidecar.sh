#!/usr/bin/env bash
# Benchmark of the CORS sidecar (make bench-sidecar).
#
# On this machine, in one run, wrk measures the same stand-in application (nginx answering the
# seed's 20-byte body) four ways: directly, through cors-sidecar, and through nginx and HAProxy
# configured as CORS reverse proxies with the same policy (hack/bench-sidecar-nginx.conf.tmpl,
# hack/bench-sidecar-haproxy.cfg.tmpl), each with a matching Origin and with none. It reports
# requests/s, p50/p99 latency and CPU per request (the proxy's own utime+stime over the requests
# it served) at WRK_CONNS connections, p50/p99 at 1 connection (the latency a proxy adds, without
# queueing), and the proxies' RSS under load, and writes them to the "## Sidecar" section of
# docs/benchmarks.md.
#
# Needs wrk, nginx and haproxy (the Debian packages wrk, nginx-light and haproxy; installed here
# if missing, which needs root). Knobs: BENCH_DURATION (default 10s), WRK_THREADS (1), WRK_CONNS (32),
# BENCH_ROUNDS (3; rounds interleave the targets and each keeps its best), BENCH_DOC (docs/benchmarks.md; "-" prints only).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10s}
THREADS=${WRK_THREADS:-1}
CONNS=${WRK_CONNS:-32}
ROUNDS=${BENCH_ROUNDS:-3}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
APP_PORT=18481
NGINX_PORT=18482
SIDECAR_PORT=18483
ADMIN_PORT=18484
HAPROXY_PORT=18485

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

WORK=$(mktemp -d /tmp/bench-sidecar.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "building cors-sidecar" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$WORK/cors-sidecar" ./cmd/cors-sidecar
BIN_SIZE=$(stat -c %s "$WORK/cors-sidecar")

render() { # template, output
  sed -e "s#@DIR@#$WORK#g; s#@PROXY_PORT@#$NGINX_PORT#g; s#@APP_PORT@#$APP_PORT#g; s#@WORKERS@#auto#g" "$1" >"$2"
}
render hack/bench-sidecar-app.conf.tmpl "$WORK/app.conf"
render hack/bench-sidecar-nginx.conf.tmpl "$WORK/cors.conf"
sed -e "s#@DIR@#$WORK#g; s#@PROXY_PORT@#$HAPROXY_PORT#g; s#@APP_PORT@#$APP_PORT#g" hack/bench-sidecar-haproxy.cfg.tmpl >"$WORK/haproxy.cfg"

# The seed's PluginConfig as the injector writes it into the pod policy, on the app's port.
cat >"$WORK/policy.json" <<EOF
{"version":1,"ports":{"$APP_PORT":{"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"}],"allowMethods":["POST","GET","PATCH","DELETE"],"allowHeaders":["X-Foo-Bar-1"],"exposeHeaders":["Content-Encoding","Kuma-Revision"],"allowCredentials":true,"maxAge":86400}}}
EOF

"$NGINX" -c "$WORK/app.conf" -p "$WORK" & PIDS+=($!)
APP_PID=$!
"$NGINX" -c "$WORK/cors.conf" -p "$WORK" & PIDS+=($!)
NGINX_CORS_PID=$!
"$HAPROXY" -db -f "$WORK/haproxy.cfg" 2>"$WORK/haproxy.err" & PIDS+=($!)
HAPROXY_PID=$!
"$WORK/cors-sidecar" proxy --inbound-port $SIDECAR_PORT --admin-port $ADMIN_PORT \
  --policy-file "$WORK/policy.json" --upstream 127.0.0.1:$APP_PORT --log-level warn 2>"$WORK/sidecar.log" & PIDS+=($!)
SIDECAR_PID=$!

for i in $(seq 100); do
  if curl -fs -o /dev/null http://127.0.0.1:$APP_PORT/ && curl -fs -o /dev/null http://127.0.0.1:$NGINX_PORT/ &&
    curl -fs -o /dev/null http://127.0.0.1:$HAPROXY_PORT/ &&
    curl -fs -o /dev/null http://127.0.0.1:$ADMIN_PORT/readyz; then break; fi
  [ "$i" = 100 ] && { echo "servers did not start" >&2; cat "$WORK"/*.err "$WORK/sidecar.log" >&2; exit 1; }
  sleep 0.1
done

# The proxies must answer the same way before they are compared.
for port in $NGINX_PORT $HAPROXY_PORT $SIDECAR_PORT; do
  got=$(curl -si http://127.0.0.1:$port/ -H 'Origin: http://www.bbb.com' | tr -d '\r' | tr 'A-Z' 'a-z')
  grep -q '^access-control-allow-origin: http://www.bbb.com$' <<<"$got" || { echo "port $port: no CORS on a match:" >&2; echo "$got" >&2; exit 1; }
  got=$(curl -si -X OPTIONS http://127.0.0.1:$port/ -H 'Origin: http://www.bbb.com' | tr -d '\r' | tr 'A-Z' 'a-z')
  grep -q '^access-control-max-age: 86400$' <<<"$got" || { echo "port $port: bad preflight:" >&2; echo "$got" >&2; exit 1; }
  got=$(curl -si http://127.0.0.1:$port/ -H 'Origin: http://www.ccc.com' | tr -d '\r' | tr 'A-Z' 'a-z')
  ! grep -q '^access-control' <<<"$got" || { echo "port $port: CORS on a non-match" >&2; exit 1; }
done

to_us() { # wrk latency (e.g. 412.00us, 1.20ms, 1.01s) -> microseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1
    printf "%d", n * m + 0.5 }'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nginx_rss_kib() { # master and workers of one nginx
  local total=0 pid
  for pid in $1 $(pgrep -P "$1"); do total=$((total + $(rss_kib "$pid"))); done
  echo $total
}

# cpu_ticks PID... -> utime+stime of the processes, in clock ticks
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  echo $total
}

# run NAME PORT ORIGIN CONNS PID... -> "rps p50us p99us cpu_us_per_request" (CPU of the PIDs)
run() {
  local port=$2 origin=$3 conns=$4 args out rps p50 p99 reqs t0 t1 cpu
  shift 4
  args=(-t"$THREADS" -c"$conns" -d"$DURATION" --latency)
  [ "$conns" -lt "$THREADS" ] && args[0]=-t1
  [ -n "$origin" ] && args+=(-H "Origin: $origin")
  t0=$(cpu_ticks "$@")
  out=$(wrk "${args[@]}" "http://127.0.0.1:$port/")
  t1=$(cpu_ticks "$@")
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "wrk reported errors on $1:" >&2; echo "$out" >&2; exit 1; fi
  rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  reqs=$(awk '/ requests in / {print $1}' <<<"$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  cpu=$(awk -v t=$((t1 - t0)) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
  echo "$rps $p50 $p99 $cpu"
}

declare -A R
SIDECAR_RSS_MAX=0
NGINX_RSS_MAX=0
proxy_pid() { case $1 in sidecar) echo $SIDECAR_PID ;; nginx) echo $NGINX_CORS_PID ;; haproxy) echo $HAPROXY_PID ;; esac; }
echo "measuring: wrk -t$THREADS -c$CONNS -d$DURATION, then -c1; $ROUNDS interleaved round(s), best kept" >&2
# Rounds are interleaved (app, sidecar, nginx, haproxy, app, ...) so that a burst of load from elsewhere on
# the machine hits all targets alike; each target keeps its best round (interference only slows).
for round in $(seq "$ROUNDS"); do
for conns in "$CONNS" 1; do
  for origin in "http://www.bbb.com" ""; do
    for target in app sidecar nginx haproxy; do
      case $target in app) port=$APP_PORT ;; sidecar) port=$SIDECAR_PORT ;; nginx) port=$NGINX_PORT ;; haproxy) port=$HAPROXY_PORT ;; esac
      key="$target|${origin:-none}|$conns"
      if [ "$target" != app ]; then
        ( # sample the RSS (master + workers) while wrk runs; the file keeps the maximum over all rounds
          # (written by rename: the sampler is killed at any point)
          pid=$(proxy_pid $target); f="$WORK/$target.rss"; max=$(cat "$f" 2>/dev/null || echo 0)
          while kill -0 "$pid" 2>/dev/null; do
            r=$(nginx_rss_kib "$pid"); [ "$r" -gt "${max:-0}" ] && max=$r && echo $max >"$f.$BASHPID" && mv "$f.$BASHPID" "$f"; sleep 0.2
          done
        ) & sampler=$!
      fi
      case $target in
        app) pids="$APP_PID $(pgrep -P $APP_PID)" ;;
        sidecar) pids=$SIDECAR_PID ;;
        nginx) pids="$NGINX_CORS_PID $(pgrep -P $NGINX_CORS_PID)" ;;
        haproxy) pids=$HAPROXY_PID ;; # one process, its threads included
      esac
      # shellcheck disable=SC2086 # pids is a list
      got=$(run "$target" "$port" "$origin" "$conns" $pids)
      [ "$target" != app ] && { kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true; }
      if [ -z "${R[$key]:-}" ] || [ "${got%% *}" -gt "${R[$key]%% *}" ]; then R[$key]=$got; fi
      printf '  round %s %-8s origin=%-20s c=%-3s -> %s\n' "$round" "$target" "${origin:-none}" "$conns" "$got" >&2
    done
  done
done
done
SIDECAR_RSS_MAX=$(cat "$WORK/sidecar.rss" 2>/dev/null || echo 0)
SIDECAR_HWM=$(hwm_kib $SIDECAR_PID)
NGINX_RSS_MAX=$(cat "$WORK/nginx.rss" 2>/dev/null || echo 0)
HAPROXY_RSS_MAX=$(cat "$WORK/haproxy.rss" 2>/dev/null || echo 0)
HAPROXY_THREADS=$(awk '/^Threads:/ {print $2}' /proc/$HAPROXY_PID/status 2>/dev/null || echo "?")
NGINX_WORKERS=$(pgrep -c -P $NGINX_CORS_PID || echo "?")

f() { echo "$1" | cut -d' ' -f"$2"; }
us() { awk -v v="$1" 'BEGIN { if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%d µs", v }'; }
mib() { awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1024 }'; }

S_RPS=$(f "${R[sidecar|http://www.bbb.com|$CONNS]}" 1)
N_RPS=$(f "${R[nginx|http://www.bbb.com|$CONNS]}" 1)
S_RPS_NONE=$(f "${R[sidecar|none|$CONNS]}" 1)
N_RPS_NONE=$(f "${R[nginx|none|$CONNS]}" 1)
# The next aim, against the best peer (the proxy with more requests/s) per Origin case:
# >= 1.10x its requests/s and <= 0.90x its CPU per request.
best_peer() { # origin -> the peer with more requests/s
  if [ "$(f "${R[haproxy|$1|$CONNS]}" 1)" -gt "$(f "${R[nginx|$1|$CONNS]}" 1)" ]; then echo haproxy; else echo nginx; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
aim_row() { # origin -> a table row for the next aim
  local o=$1 peer s p rr cr
  peer=$(best_peer "$o"); s=${R[sidecar|$o|$CONNS]}; p=${R[$peer|$o|$CONNS]}
  rr=$(ratio "$(f "$s" 1)" "$(f "$p" 1)"); cr=$(ratio "$(f "$s" 4)" "$(f "$p" 4)")
  local met; met=$(awk -v r="$rr" -v c="$cr" 'BEGIN { print (r >= 1.10 && c <= 0.90) ? 1 : 0 }')
  echo "| next aim: >= 1.10x the best peer's requests/s and <= 0.90x its CPU per request (Origin $o) | vs $peer: ${rr}x requests/s ($(f "$s" 1) vs $(f "$p" 1)), ${cr}x CPU per request ($(f "$s" 4) vs $(f "$p" 4) µs) | $(verdict "$met") |"
}
H_RPS=$(f "${R[haproxy|http://www.bbb.com|$CONNS]}" 1)
H_RPS_NONE=$(f "${R[haproxy|none|$CONNS]}" 1)
A_P50_1=$(f "${R[app|http://www.bbb.com|1]}" 2)
S_P50_1=$(f "${R[sidecar|http://www.bbb.com|1]}" 2)
N_P50_1=$(f "${R[nginx|http://www.bbb.com|1]}" 2)
ADDED=$((S_P50_1 - A_P50_1))
ADDED_NGINX=$((N_P50_1 - A_P50_1))
verdict() { if [ "$1" = 1 ]; then echo "met"; else echo "**not met**"; fi; }
THROUGHPUT_MET=$([ "$S_RPS" -ge "$N_RPS" ] && [ "$S_RPS" -ge "$H_RPS" ] && echo 1 || echo 0)
THROUGHPUT_NONE_MET=$([ "$S_RPS_NONE" -ge "$N_RPS_NONE" ] && [ "$S_RPS_NONE" -ge "$H_RPS_NONE" ] && echo 1 || echo 0)
LATENCY_MET=$([ "$ADDED" -lt 100 ] && echo 1 || echo 0)
RSS_MET=$([ "$SIDECAR_RSS_MAX" -lt $((15 * 1024)) ] && echo 1 || echo 0)

target_name() { case $1 in app) echo "app directly" ;; sidecar) echo "cors-sidecar" ;; nginx) echo "nginx CORS proxy" ;; haproxy) echo "HAProxy CORS proxy" ;; esac; }

section=$(mktemp)
{
  echo "## Sidecar"
  echo
  echo "\`make bench-sidecar\` (hack/bench-sidecar.sh), $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(go env GOVERSION),"
  echo "$($NGINX -v 2>&1 | sed 's/.*version: //'), HAProxy $($HAPROXY -v 2>&1 | head -1 | awk '{print $3}'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'). One machine, one run: wrk, the application and the"
  echo "proxy share the $(nproc) cores. The application is nginx (1 worker) answering the seed's 20-byte body; the"
  echo "CORS nginx runs $NGINX_WORKERS workers (\`worker_processes auto\`, upstream keepalive), the CORS HAProxy $HAPROXY_THREADS threads"
  echo "(its default; \`http-reuse always\`), cors-sidecar its default"
  echo "GOMAXPROCS, in explicit mode (\`--upstream\`; not measured here: the transparent mode's one getsockopt"
  echo "per connection and the kernel's NAT connection tracking, which any redirecting sidecar pays). All"
  echo "proxies apply the seed policy; the matching Origin is \`http://www.bbb.com\`."
  echo
  echo "Throughput, \`wrk -t$THREADS -c$CONNS -d$DURATION\` (best of $ROUNDS interleaved rounds):"
  echo
  echo "| target | Origin | requests/s | p50 | p99 | CPU per request |"
  echo "|---|---|---:|---:|---:|---:|"
  for origin in "http://www.bbb.com" none; do
    for target in app sidecar nginx haproxy; do
      v=${R[$target|$origin|$CONNS]}
      name=$(target_name $target)
      echo "| $name | $origin | $(f "$v" 1) | $(us "$(f "$v" 2)") | $(us "$(f "$v" 3)") | $(f "$v" 4) µs |"
    done
  done
  echo
  echo "CPU per request is the user + system time of that target's processes (the application's for"
  echo "\"app directly\", the proxy's otherwise) divided by the requests wrk completed."
  echo
  echo "Latency without queueing, \`wrk -t1 -c1 -d$DURATION\`:"
  echo
  echo "| target | Origin | requests/s | p50 | p99 |"
  echo "|---|---|---:|---:|---:|"
  for origin in "http://www.bbb.com" none; do
    for target in app sidecar nginx haproxy; do
      v=${R[$target|$origin|1]}
      name=$(target_name $target)
      echo "| $name | $origin | $(f "$v" 1) | $(us "$(f "$v" 2)") | $(us "$(f "$v" 3)") |"
    done
  done
  echo
  echo "Memory: cors-sidecar RSS under load peaked at $(mib "$SIDECAR_RSS_MAX") (sampled every 0.2 s; VmHWM"
  echo "$(mib "$SIDECAR_HWM")); the CORS nginx (master + workers) at $(mib "$NGINX_RSS_MAX"), the CORS HAProxy at $(mib "$HAPROXY_RSS_MAX"). Static binary (\`-s -w\`):"
  echo "$(mib $((BIN_SIZE / 1024)))."
  echo
  echo "| aim | measured | |"
  echo "|---|---|---|"
  echo "| throughput through the sidecar at least nginx's and HAProxy's | $S_RPS vs $N_RPS / $H_RPS req/s with a matching Origin, $S_RPS_NONE vs $N_RPS_NONE / $H_RPS_NONE without | $(verdict $THROUGHPUT_MET) / $(verdict $THROUGHPUT_NONE_MET) |"
  echo "| added p50 latency under 100 µs | $ADDED µs at 1 connection ($(us "$S_P50_1") vs $(us "$A_P50_1") direct; nginx adds $ADDED_NGINX µs) | $(verdict $LATENCY_MET) |"
  echo "| RSS under 15 MiB under load | $(mib "$SIDECAR_RSS_MAX") | $(verdict $RSS_MET) |"
  aim_row "http://www.bbb.com"
  aim_row none
  echo
} >"$section"

cat "$section"
if [ "$DOC" != "-" ]; then
  # Replace the "## Sidecar" section (up to the next "## " heading), keeping everything else.
  # Text in the section after a line "<!-- end of generated numbers -->" is kept as written.
  awk -v secfile="$section" '
    BEGIN { while ((getline l < secfile) > 0) sec = sec l "\n" }
    /^## / { if (insec) { insec = 0; printf "%s", keep } }
    /^## Sidecar$/ { insec = 1; printf "%s", sec; keep = ""; kept = 0; next }
    insec { if ($0 == "<!-- end of generated numbers -->") kept = 1; if (kept) keep = keep $0 "\n"; next }
    { print }
    END { if (insec) printf "%s", keep }
  ' "$DOC" >"$DOC.tmp"
  # A blank line before the next heading.
  mv "$DOC.tmp" "$DOC"
  echo "wrote the Sidecar section of ${DOC#"$ROOT"/}" >&2
fi
