#!/usr/bin/env bash
# The VFS benchmark: stat of a cached path, cold walk+stat (a Gofer round trip per
# component), and read throughput of a 256 MiB file through the Gofer's donated
# descriptor, natively and under Bulwark (systrap), side by side in one run.
#   bench/vfs.sh [BASELINE_BULWARK]
# With a second bulwark binary (say, one built from the previous commit), it runs that
# too, in the same run, so a change is measured side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
cargo build --release -q -p runsc-compat
target=${CARGO_TARGET_DIR:-target}
bulwark=$(realpath "$target/x86_64-unknown-linux-gnu/release/bulwark")
work=$(mktemp -d /var/tmp/bulwark-vfs.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat >"$work/vfsbench.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    const char *dir = argv[1];
    char path[4096];
    struct stat st;
    /* Cold: the first stat of each of 2000 files (each a walk the cache has not seen). */
    double t0 = now();
    for (int i = 0; i < 2000; i++) {
        snprintf(path, sizeof path, "%s/tree/d%d/f%d", dir, i / 100, i);
        if (stat(path, &st)) { perror(path); return 1; }
    }
    double cold = (now() - t0) / 2000 * 1e9;
    /* Cached: the same path again and again. */
    snprintf(path, sizeof path, "%s/tree/d0/f0", dir);
    t0 = now();
    for (int i = 0; i < 20000; i++) stat(path, &st);
    double cached = (now() - t0) / 20000 * 1e9;
    /* Read throughput. */
    snprintf(path, sizeof path, "%s/big", dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    size_t chunk = 1 << 20; char *buf = malloc(chunk); long long total = 0; ssize_t n;
    t0 = now();
    while ((n = read(fd, buf, chunk)) > 0) total += n;
    double secs = now() - t0;
    printf("%.0f %.0f %.0f\n", cached, cold, total / secs / (1 << 20));
    return 0;
}
C
gcc -O2 -static -o "$work/vfsbench" "$work/vfsbench.c"
mkdir -p "$work/tree"
for d in $(seq 0 19); do
    mkdir -p "$work/tree/d$d"
    for f in $(seq $((d * 100)) $((d * 100 + 99))); do : >"$work/tree/d$d/f$f"; done
done
head -c 256M /dev/urandom >"$work/big"
sync

printf '%-16s %16s %18s %18s\n' runner "stat cached ns" "walk+stat cold ns" "read MiB/s"
# Both runs read the file from the host's page cache (warmed first), so the figure is
# the cost of the path, not of the disk.
cat "$work/big" >/dev/null
read -r nc nw nr < <("$work/vfsbench" "$work")
printf '%-16s %16s %18s %18s\n' native "$nc" "$nw" "$nr"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
row() { # name binary platform
    local bc bw br
    read -r bc bw br < <("$2" --platform="$3" do -- "$work/vfsbench" "$work" 2>/dev/null)
    printf '%-16s %8s (%6s) %10s (%6s) %10s (%6s)\n' "$1" \
        "$bc" "$(ratio "$bc" "$nc")" "$bw" "$(ratio "$bw" "$nw")" "$br" "$(ratio "$br" "$nr")"
}
row bulwark-systrap "$bulwark" systrap
if [ -n "${1:-}" ]; then row baseline-systrap "$1" systrap; fi
if [ -r /dev/kvm ]; then
    row bulwark-kvm "$bulwark" kvm
    if [ -n "${1:-}" ]; then row baseline-kvm "$1" kvm; fi
fi
