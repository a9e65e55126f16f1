#!/usr/bin/env bash
# The OCI benchmark, through Docker, side by side in one run:
#  - the wall time of `docker run --rm IMAGE true` (median of N, the runtimes taking turns)
#    with runc, gVisor's runsc (if installed: --platform=ptrace --network=none) and Bulwark;
#  - the memory of an idle sandbox (`sleep 60`): the sum over the container's host
#    processes (everything under its containerd shim: for Bulwark `bulwark boot`, its
#    systrap stubs and `bulwark gofer`; for runsc its sandbox, stubs and gofer; for runc the
#    program) of VmRSS, and of Pss (RSS counts pages shared between them, such as the
#    Sentry's memory file, once per process).
# It starts a dockerd of its own in a temporary directory (as runsc-compat/tests/docker.rs).
#   bench/oci.sh [N]        (default N=20; BULWARK_ARGS adds runtime arguments)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
scripts/setup >/dev/null
cargo build --release -q -p runsc-compat
target=${CARGO_TARGET_DIR:-target}
bulwark=$(realpath "$target/x86_64-unknown-linux-gnu/release/bulwark")
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker
# Short paths: the sockets' must fit in 108 bytes.
work=$(mktemp -d /tmp/bulwark-oci.XXXXXX)

runtimes=(runc bulwark)
runsc_entry=""
if command -v runsc >/dev/null; then
    runtimes=(runc runsc bulwark)
    runsc_entry=", \"runsc\": {\"path\": \"$(command -v runsc)\",
        \"runtimeArgs\": [\"--platform=ptrace\", \"--network=none\"]}"
else
    echo "runsc is not installed (apt-get install runsc): gVisor left out" >&2
fi
bulwark_args=""
for a in ${BULWARK_ARGS:-}; do bulwark_args+="${bulwark_args:+, }\"$a\""; done
cat >"$work/daemon.json" <<JSON
{
  "iptables": false, "ip-masq": false, "ip6tables": false, "bridge": "none",
  "storage-driver": "${STORAGE_DRIVER:-overlay2}",
  "runtimes": {"bulwark": {"path": "$bulwark", "runtimeArgs": [$bulwark_args]}$runsc_entry}
}
JSON

docker() { "$docker_cli" -H "unix://$work/docker.sock" "$@"; }
dockerd --config-file "$work/daemon.json" --data-root "$work/data" --exec-root "$work/exec" \
    --pidfile "$work/docker.pid" -H "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
    docker ps -aq 2>/dev/null | xargs -r "$docker_cli" -H "unix://$work/docker.sock" rm -f >/dev/null 2>&1 || true
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    grep -o " $work/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 600); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { cat "$work/dockerd.log" >&2; exit 1; }
    sleep 0.1
done

mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for tool in sh true sleep; do ln -s busybox "$work/rootfs/bin/$tool"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" bin
docker import "$work/rootfs.tar" bb >/dev/null

now() { date +%s%N; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# Start-up: one warm-up run each, then N rounds in which every runtime runs once.
for rt in "${runtimes[@]}"; do
    docker run --rm --runtime="$rt" --network=none bb true
done
for _ in $(seq "$n"); do
    for rt in "${runtimes[@]}"; do
        t0=$(now)
        docker run --rm --runtime="$rt" --network=none bb true
        echo $(( ($(now) - t0) / 1000000 )) >>"$work/start.$rt"
    done
done

# Idle memory: the processes under the container's shim, a second after it started.
descendants() {
    local pid=$1 child
    for child in $(ps -o pid= --ppid "$pid"); do
        echo "$child"
        descendants "$child"
    done
}
memory() { # kB of VmRSS and of Pss, summed over the container's host processes
    local rt=$1 id shim pids rss=0 pss=0 p
    id=$(docker run -d --runtime="$rt" --network=none bb sleep 60)
    sleep 1
    shim=$(pgrep -f "containerd-shim-runc-v2 .*-id $id") || { echo "no shim for $id" >&2; return 1; }
    pids=$(descendants "$shim")
    for p in $pids; do
        rss=$((rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
        pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    done
    echo "$rss $pss $(echo "$pids" | wc -w)"
    docker rm -f "$id" >/dev/null
}
declare -A ms rss pss procs
for rt in "${runtimes[@]}"; do
    ms[$rt]=$(median <"$work/start.$rt")
    read -r rss[$rt] pss[$rt] procs[$rt] <<<"$(memory "$rt")"
done

echo "docker run --rm bb true: median of $n (ms); idle sandbox (sleep 60): host processes, RSS and PSS (MiB)"
printf "%-8s %10s %10s %10s %10s\n" runtime "start ms" processes "RSS MiB" "PSS MiB"
for rt in "${runtimes[@]}"; do
    printf "%-8s %10s %10s %10.1f %10.1f\n" "$rt" "${ms[$rt]}" "${procs[$rt]}" \
        "$(echo "${rss[$rt]} / 1024" | bc -l)" "$(echo "${pss[$rt]} / 1024" | bc -l)"
done
ratio() { echo "scale=2; $1 / $2" | bc -l; }
echo "start-up: bulwark/runc $(ratio "${ms[bulwark]}" "${ms[runc]}")x"
if [[ -n ${ms[runsc]:-} ]]; then
    echo "start-up: bulwark/runsc $(ratio "${ms[bulwark]}" "${ms[runsc]}")x"
    echo "idle RSS: bulwark/runsc $(ratio "${rss[bulwark]}" "${rss[runsc]}")x," \
        "PSS: bulwark/runsc $(ratio "${pss[bulwark]}" "${pss[runsc]}")x"
fi
