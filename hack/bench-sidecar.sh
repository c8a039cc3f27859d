#!/usr/bin/env bash
# Benchmark of the CORS sidecar (make bench-sidecar): the one benchmark of its cost per request.
#
# On this machine, in one run, wrk measures the same stand-in application (nginx answering the
# seed's 20-byte body) four ways: directly, through cors-sidecar, and through nginx and HAProxy
# configured as CORS reverse proxies with the same policy (hack/bench-sidecar-nginx.conf.tmpl,
# hack/bench-sidecar-haproxy.cfg.tmpl), each with a matching Origin and with none, at WRK_CONNS
# connections and at 1 (the latency a proxy adds, without queueing). Rounds interleave the
# targets (app, sidecar, nginx, HAProxy, app, ...) so that load from elsewhere on the machine hits
# them alike; each figure is the median of the rounds, with the spread (lowest-highest) beside it.
# Per target: requests/s, p50/p99 latency, CPU per request (the target's own utime+stime over the
# requests it served) and the proxies' RSS under load. A last phase counts system calls and
# context switches per request (perf stat on tracepoints, apart from the timed rounds, whose
# figures it would otherwise tax). The result replaces the "## Sidecar" section of
# docs/benchmarks.md up to the line "<!-- end of generated numbers -->".
#
# Needs wrk, nginx and haproxy (the Debian packages wrk, nginx-light and haproxy; installed here
# if missing, which needs root), and perf for the system call counts (skipped without it).
# Knobs: BENCH_DURATION (default 10s), WRK_THREADS (1), WRK_CONNS (32), BENCH_ROUNDS (3, at least
# 3), SYSCALL_DURATION (5s), SIDECAR_GOMAXPROCS (unset: the binary's own choice, which follows the
# CPU limit of its cgroup), BENCH_DOC (docs/benchmarks.md; "-" prints only).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10s}
SYSCALL_DURATION=${SYSCALL_DURATION:-5s}
THREADS=${WRK_THREADS:-1}
CONNS=${WRK_CONNS:-32}
ROUNDS=${BENCH_ROUNDS:-3}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
APP_PORT=18481
NGINX_PORT=18482
SIDECAR_PORT=18483
ADMIN_PORT=18484
HAPROXY_PORT=18485
[ "$ROUNDS" -ge 3 ] || { echo "BENCH_ROUNDS must be at least 3 (figures are medians)" >&2; exit 2; }

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
sidecar_env=()
[ -n "${SIDECAR_GOMAXPROCS:-}" ] && sidecar_env=(GOMAXPROCS="$SIDECAR_GOMAXPROCS")
env "${sidecar_env[@]}" "$WORK/cors-sidecar" proxy --inbound-port $SIDECAR_PORT --admin-port $ADMIN_PORT \
  --policy-file "$WORK/policy.json" --upstream 127.0.0.1:$APP_PORT --log-level info 2>"$WORK/sidecar.log" & PIDS+=($!)
SIDECAR_PID=$!

for i in $(seq 100); do
  if curl -fs -o /dev/null http://127.0.0.1:$APP_PORT/ && curl -fs -o /dev/null http://127.0.0.1:$NGINX_PORT/ &&
    curl -fs -o /dev/null http://127.0.0.1:$HAPROXY_PORT/ &&
    curl -fs -o /dev/null http://127.0.0.1:$ADMIN_PORT/readyz; then break; fi
  [ "$i" = 100 ] && { echo "servers did not start" >&2; cat "$WORK"/*.err "$WORK/sidecar.log" >&2; exit 1; }
  sleep 0.1
done
SIDECAR_PROCS=$(grep -o '"gomaxprocs":[0-9]*' "$WORK/sidecar.log" | cut -d: -f2)

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
tree_rss_kib() { # a process and its children (nginx's master and workers)
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

target_port() { case $1 in app) echo $APP_PORT ;; sidecar) echo $SIDECAR_PORT ;; nginx) echo $NGINX_PORT ;; haproxy) echo $HAPROXY_PORT ;; esac; }
proxy_pid() { case $1 in app) echo $APP_PID ;; sidecar) echo $SIDECAR_PID ;; nginx) echo $NGINX_CORS_PID ;; haproxy) echo $HAPROXY_PID ;; esac; }
target_pids() { # the processes whose CPU is the target's: nginx's master and workers, HAProxy's one process
  local pid; pid=$(proxy_pid "$1")
  echo "$pid" $(pgrep -P "$pid" || true)
}

# run PORT ORIGIN CONNS PID... -> "rps p50us p99us cpu_us_per_request" (CPU of the PIDs)
run() {
  local port=$1 origin=$2 conns=$3 args out rps p50 p99 reqs t0 t1 cpu
  shift 3
  args=(-t"$THREADS" -c"$conns" -d"$DURATION" --latency)
  [ "$conns" -lt "$THREADS" ] && args[0]=-t1
  [ -n "$origin" ] && args+=(-H "Origin: $origin")
  t0=$(cpu_ticks "$@")
  out=$(wrk "${args[@]}" "http://127.0.0.1:$port/")
  t1=$(cpu_ticks "$@")
  # Errors fail the run; a request over wrk's 2 s timeout is counted (a stall of the machine
  # shows as one) and reported with the tables.
  if grep -q 'Non-2xx' <<<"$out" || grep -Eq 'Socket errors: connect [1-9]|read [1-9]|write [1-9]' <<<"$out"; then
    echo "wrk reported errors on port $port:" >&2; echo "$out" >&2; exit 1
  fi
  timeouts=$(awk '/Socket errors:/ { print $NF }' <<<"$out")
  if [ -n "$timeouts" ] && [ "$timeouts" != 0 ]; then echo "$port $timeouts" >>"$WORK/timeouts"; fi
  rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  reqs=$(awk '/ requests in / {print $1}' <<<"$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  cpu=$(awk -v t=$((t1 - t0)) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
  echo "$rps $p50 $p99 $cpu"
}

RESULTS=$WORK/results # lines: target origin conns round rps p50 p99 cpu
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "measuring: wrk -t$THREADS -c$CONNS -d$DURATION, then -c1; $ROUNDS interleaved rounds, medians kept" >&2
for round in $(seq "$ROUNDS"); do
  for conns in "$CONNS" 1; do
    for origin in "http://www.bbb.com" ""; do
      for target in app sidecar nginx haproxy; do
        sampler=
        if [ "$target" != app ]; then
          ( # sample the RSS (master + workers) while wrk runs; the file keeps the maximum over all
            # rounds (written by rename: the sampler is killed at any point)
            pid=$(proxy_pid $target); f="$WORK/$target.rss"; max=$(cat "$f" 2>/dev/null || echo 0)
            while kill -0 "$pid" 2>/dev/null; do
              r=$(tree_rss_kib "$pid"); [ "$r" -gt "${max:-0}" ] && max=$r && echo $max >"$f.$BASHPID" && mv "$f.$BASHPID" "$f"; sleep 0.2
            done
          ) & sampler=$!
        fi
        # shellcheck disable=SC2046 # a list of pids
        got=$(run "$(target_port $target)" "$origin" "$conns" $(target_pids $target))
        [ -n "$sampler" ] && { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; }
        echo "$target ${origin:-none} $conns $round $got" >>"$RESULTS"
        printf '  round %s %-8s origin=%-20s c=%-3s -> %s\n' "$round" "$target" "${origin:-none}" "$conns" "$got" >&2
      done
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# System calls and context switches per request, at WRK_CONNS connections with a matching
# Origin, counted by perf on the syscall tracepoints (a read that fails with EAGAIN is a read
# that found nothing and is followed by a wait for readiness).
SYSCALLS=$WORK/syscalls # lines: target total eagain reads writes polls sched ctxsw
: >"$SYSCALLS"
PERF=$(command -v perf || true)
if [ -n "$PERF" ] && "$PERF" stat -e raw_syscalls:sys_enter -p $$ -- true >/dev/null 2>&1; then
  tp=/sys/kernel/tracing/events/syscalls
  [ -d $tp ] || tp=/sys/kernel/debug/tracing/events/syscalls
  events=(-e raw_syscalls:sys_enter -e raw_syscalls:sys_exit --filter 'ret == -11' -e context-switches)
  for s in read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait epoll_pwait2 futex nanosleep clock_nanosleep sched_yield; do
    [ -d "$tp/sys_enter_$s" ] && events+=(-e "syscalls:sys_enter_$s")
  done
  echo "counting system calls per request: wrk -c$CONNS -d$SYSCALL_DURATION under perf stat" >&2
  for target in app sidecar nginx haproxy; do
    pids=$(target_pids $target | tr ' ' ,)
    "$PERF" stat -x, -o "$WORK/perf.$target" "${events[@]}" -p "$pids" -- sleep "${SYSCALL_DURATION%s}" &
    perf_pid=$!
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$SYSCALL_DURATION" -H "Origin: http://www.bbb.com" "http://127.0.0.1:$(target_port $target)/")
    wait $perf_pid || true
    reqs=$(awk '/ requests in / {print $1}' <<<"$out")
    awk -F, -v r="$reqs" -v t=$target '
      $3 == "raw_syscalls:sys_enter" { total = $1 }
      $3 == "raw_syscalls:sys_exit" { eagain = $1 }
      $3 == "context-switches" { cs = $1 }
      $3 ~ /sys_enter_(read|readv|recvfrom|recvmsg)$/ { reads += $1 }
      $3 ~ /sys_enter_(write|writev|sendto|sendmsg)$/ { writes += $1 }
      $3 ~ /sys_enter_epoll_/ { polls += $1 }
      $3 ~ /sys_enter_(futex|nanosleep|clock_nanosleep|sched_yield)$/ { sched += $1 }
      END { printf "%s %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", t, total/r, eagain/r, reads/r, writes/r, polls/r, sched/r, cs/r }
    ' "$WORK/perf.$target" >>"$SYSCALLS"
    tail -1 "$SYSCALLS" | sed 's/^/  /' >&2
  done
fi

SIDECAR_RSS_MAX=$(cat "$WORK/sidecar.rss" 2>/dev/null || echo 0)
SIDECAR_HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$SIDECAR_PID/status" 2>/dev/null || echo 0)
NGINX_RSS_MAX=$(cat "$WORK/nginx.rss" 2>/dev/null || echo 0)
HAPROXY_RSS_MAX=$(cat "$WORK/haproxy.rss" 2>/dev/null || echo 0)
HAPROXY_THREADS=$(awk '/^Threads:/ {print $2}' /proc/$HAPROXY_PID/status 2>/dev/null || echo "?")
NGINX_WORKERS=$(pgrep -c -P $NGINX_CORS_PID || echo "?")

# med TARGET ORIGIN CONNS FIELD -> the median over the rounds (FIELD: 5 rps, 6 p50, 7 p99, 8 cpu)
med() {
  awk -v t="$1" -v o="$2" -v c="$3" -v f="$4" '$1 == t && $2 == o && $3 == c { print $f }' "$RESULTS" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# spread TARGET ORIGIN CONNS FIELD -> "lowest-highest" over the rounds
spread() {
  awk -v t="$1" -v o="$2" -v c="$3" -v f="$4" '$1 == t && $2 == o && $3 == c { print $f }' "$RESULTS" |
    sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'
}
us() { awk -v v="$1" 'BEGIN { if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%d µs", v }'; }
mib() { awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { if [ "$1" = 1 ]; then echo "met"; else echo "**not met**"; fi; }
target_name() { case $1 in app) echo "app directly" ;; sidecar) echo "cors-sidecar" ;; nginx) echo "nginx CORS proxy" ;; haproxy) echo "HAProxy CORS proxy" ;; esac; }

# aim_rows ORIGIN -> the done-when rows of issue 25 against the best peer per figure: the peer
# with more requests/s, and the peer with less CPU per request.
aim_rows() {
  local o=$1 s_rps s_cpu n_rps h_rps n_cpu h_cpu rpeer cpeer p_rps p_cpu rr cr
  s_rps=$(med sidecar "$o" "$CONNS" 5); s_cpu=$(med sidecar "$o" "$CONNS" 8)
  n_rps=$(med nginx "$o" "$CONNS" 5); h_rps=$(med haproxy "$o" "$CONNS" 5)
  n_cpu=$(med nginx "$o" "$CONNS" 8); h_cpu=$(med haproxy "$o" "$CONNS" 8)
  if awk -v a="$h_rps" -v b="$n_rps" 'BEGIN { exit !(a > b) }'; then rpeer=HAProxy p_rps=$h_rps; else rpeer=nginx p_rps=$n_rps; fi
  if awk -v a="$h_cpu" -v b="$n_cpu" 'BEGIN { exit !(a < b) }'; then cpeer=HAProxy p_cpu=$h_cpu; else cpeer=nginx p_cpu=$n_cpu; fi
  rr=$(ratio "$s_rps" "$p_rps"); cr=$(ratio "$s_cpu" "$p_cpu")
  echo "| requests/s ≥ 1.10x the best peer's (Origin $o) | ${rr}x $rpeer's ($s_rps vs $p_rps) | $(verdict "$(awk -v r="$rr" 'BEGIN { print (r >= 1.10) }')") |"
  echo "| CPU per request ≤ 0.90x the best peer's (Origin $o) | ${cr}x $cpeer's ($s_cpu vs $p_cpu µs) | $(verdict "$(awk -v r="$cr" 'BEGIN { print (r <= 0.90) }')") |"
}
# latency_row ORIGIN -> added p50 at 1 connection, the sidecar's against nginx's
latency_row() {
  local o=$1 a s n
  a=$(med app "$o" 1 6); s=$(med sidecar "$o" 1 6); n=$(med nginx "$o" 1 6)
  echo "| p50 added at 1 connection below nginx's (Origin $o) | $((s - a)) µs vs nginx's $((n - a)) µs ($(us "$s") and $(us "$n") against $(us "$a") direct) | $(verdict "$([ "$s" -lt "$n" ] && echo 1 || echo 0)") |"
}

section=$(mktemp)
{
  echo "## Sidecar"
  echo
  echo "\`make bench-sidecar\` (hack/bench-sidecar.sh), $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(go env GOVERSION),"
  echo "$($NGINX -v 2>&1 | sed 's/.*version: //'), HAProxy $($HAPROXY -v 2>&1 | head -1 | awk '{print $3}'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'). One machine, one run: wrk, the application and the"
  echo "proxy share the $(nproc) cores (load average $LOAD_BEFORE before the rounds, $LOAD_AFTER after). The application is nginx (1 worker) answering the seed's 20-byte body; the"
  echo "CORS nginx runs $NGINX_WORKERS workers (\`worker_processes auto\`, upstream keepalive), the CORS HAProxy $HAPROXY_THREADS threads"
  echo "(its default; \`http-reuse always\`), cors-sidecar GOMAXPROCS=$SIDECAR_PROCS${SIDECAR_GOMAXPROCS:+ (set by SIDECAR_GOMAXPROCS)}, in explicit mode (\`--upstream\`; not measured here: the"
  echo "transparent mode's one getsockopt per connection and the kernel's NAT connection tracking, which any"
  echo "redirecting sidecar pays). All proxies apply the seed policy; the matching Origin is \`http://www.bbb.com\`."
  echo "Each figure is the median of $ROUNDS interleaved rounds; the spread is the lowest and highest round."
  echo
  for conns in "$CONNS" 1; do
    echo "\`wrk -t$THREADS -c$conns -d$DURATION\`:"
    echo
    echo "| target | Origin | requests/s | spread | p50 | p99 | CPU per request | spread |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for origin in "http://www.bbb.com" none; do
      for target in app sidecar nginx haproxy; do
        echo "| $(target_name $target) | $origin | $(med $target $origin "$conns" 5) | $(spread $target $origin "$conns" 5) | $(us "$(med $target $origin "$conns" 6)") | $(us "$(med $target $origin "$conns" 7)") | $(med $target $origin "$conns" 8) µs | $(spread $target $origin "$conns" 8) |"
      done
    done
    echo
  done
  echo "CPU per request is the user + system time of that target's processes (the application's for"
  echo "\"app directly\", the proxy's otherwise) divided by the requests wrk completed."
  if [ -s "$WORK/timeouts" ]; then
    echo "Requests over wrk's 2 s timeout (stalls of the machine), all rounds: $(awk '{ t[$1] += $2 } END { for (p in t) { printf "%s%s %d", sep, p, t[p]; sep = ", " } }' "$WORK/timeouts" |
      sed "s/$APP_PORT/app/; s/$SIDECAR_PORT/cors-sidecar/; s/$NGINX_PORT/nginx/; s/$HAPROXY_PORT/HAProxy/")."
  fi
  echo
  if [ -s "$SYSCALLS" ]; then
    echo "System calls per request (\`perf stat\` on the syscall tracepoints, \`wrk -c$CONNS -d$SYSCALL_DURATION\`, matching Origin, a run of its own):"
    echo
    echo "| target | all | of which EAGAIN | reads | writes | epoll | futex, nanosleep, sched_yield | context switches |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    while read -r t total eagain reads writes polls sched cs; do
      echo "| $(target_name "$t") | $total | $eagain | $reads | $writes | $polls | $sched | $cs |"
    done <"$SYSCALLS"
    echo
  fi
  echo "Memory: cors-sidecar RSS under load peaked at $(mib "$SIDECAR_RSS_MAX") (sampled every 0.2 s; VmHWM"
  echo "$(mib "$SIDECAR_HWM")); the CORS nginx (master + workers) at $(mib "$NGINX_RSS_MAX"), the CORS HAProxy at $(mib "$HAPROXY_RSS_MAX"). Static binary (\`-s -w\`):"
  echo "$(mib $((BIN_SIZE / 1024)))."
  echo
  echo "Issue 25's aims (medians at $CONNS connections unless said):"
  echo
  echo "| aim | measured | |"
  echo "|---|---|---|"
  aim_rows "http://www.bbb.com"
  aim_rows none
  latency_row "http://www.bbb.com"
  latency_row none
  echo "| RSS under load ≤ 12 MiB | $(mib "$SIDECAR_RSS_MAX") | $(verdict "$([ "$SIDECAR_RSS_MAX" -le $((12 * 1024)) ] && echo 1 || echo 0)") |"
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
  mv "$DOC.tmp" "$DOC"
  echo "wrote the Sidecar section of ${DOC#"$ROOT"/}" >&2
fi
rm -f "$section"
