#!/usr/bin/env bash
# hack/progress.sh TITLE CMD [ARG...]
#
# Runs CMD with a line saying what is being built and for how long, so a first build that
# compiles for minutes does not look hung: on a terminal one line counts the seconds, elsewhere
# (CI logs) a line every PROGRESS_EVERY seconds (default 60). Exits with CMD's status.
set -uo pipefail

title=$1
shift
every=${PROGRESS_EVERY:-60}
start=$SECONDS
echo ">> $title"
"$@" &
pid=$!
# Ctrl-C reaches CMD through the process group; do not leave it running if we are killed alone.
trap 'kill "$pid" 2>/dev/null' TERM HUP
tty=false
[ -t 1 ] && tty=true

elapsed() { printf '%dm%02ds' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }

last=$start
while kill -0 "$pid" 2>/dev/null; do
  sleep 1
  if $tty; then
    printf '\r   ... %s: %s ' "$title" "$(elapsed)"
  elif ((SECONDS - last >= every)); then
    last=$SECONDS
    echo "   ... $title: $(elapsed)"
  fi
done
wait "$pid"
rc=$?
$tty && printf '\r\033[K'
if ((rc == 0)); then
  echo "   $title: done in $(elapsed)"
else
  echo "   $title: failed after $(elapsed) (exit $rc)" >&2
fi
exit "$rc"
