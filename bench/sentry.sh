#!/usr/bin/env bash
# The Sentry benchmark: native, Bulwark on each platform, and gVisor's runsc (ptrace) when
# installed, side by side in one run. Prints absolute times and ratios to native.
#   bench/sentry.sh            (builds bulwark in release first)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
cargo build --release -q -p runsc-compat
target=${CARGO_TARGET_DIR:-target}
bulwark=$(realpath "$target/x86_64-unknown-linux-gnu/release/bulwark")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/getppid.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
C
cat >"$work/forkexec.c" <<'C'
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 100; i++) {
        pid_t p = fork();
        if (p == 0) { execl("/bin/busybox", "busybox", "true", (char *)0); _exit(127); }
        int st; waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "child failed\n"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6));
    return 0;
}
C
gcc -O2 -static -o "$work/getppid" "$work/getppid.c"
gcc -O2 -static -o "$work/forkexec" "$work/forkexec.c"
head -c 100M /dev/urandom >"$work/data"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || return 1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
# Runners: native, bulwark per platform, runsc if present.
runners=(native bulwark-systrap)
[ -w /dev/kvm ] && runners+=(bulwark-kvm)
command -v runsc >/dev/null && runners+=(runsc)
run() {
    local runner=$1; shift
    case $runner in
        native) "$@" ;;
        bulwark-*) "$bulwark" --platform="${runner#bulwark-}" do -- "$@" ;;
        runsc) runsc --platform=ptrace --network=none --ignore-cgroups do -- "$@" ;;
    esac
}

printf '%-16s %14s %14s %18s %16s\n' runner "getppid ns" "do /bin/true ms" "100 fork+exec ms" "sha256 100MB ms"
declare -A base
for r in "${runners[@]}"; do
    iters=200000
    [ "$r" = bulwark-kvm ] && iters=20000
    [ "$r" = runsc ] && iters=20000
    # A failed run shows as 0 and is reported on standard error.
    g=$(run "$r" "$work/getppid" "$iters" 2>/dev/null | tail -1) || { echo "$r: getppid failed" >&2; g=0; }
    t=0
    for _ in 1 2 3 4 5; do t=$(( t + $(ms run "$r" /bin/true || echo 0) )); done
    t=$(( t / 5 ))
    f=$(run "$r" "$work/forkexec" 2>/dev/null | tail -1) || { echo "$r: fork+exec failed" >&2; f=0; }
    h=$(ms run "$r" /bin/busybox sha256sum "$work/data") || { echo "$r: sha256sum failed" >&2; h=0; }
    if [ "$r" = native ]; then base=([g]=$g [t]=$t [f]=$f [h]=$h); fi
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else printf "-" }'; }
    printf '%-16s %8s %5s %8s %5s %12s %5s %10s %5s\n' "$r" \
        "$g" "$(ratio "$g" "${base[g]}")" "$t" "$(ratio "$t" "${base[t]}")" \
        "$f" "$(ratio "$f" "${base[f]}")" "$h" "$(ratio "$h" "${base[h]}")"
done
