#!/usr/bin/env bash
# The real-programs benchmark: native, Bulwark on each platform, and gVisor's runsc
# (ptrace) when installed, side by side in one run. Prints times and ratios to native.
#   bench/programs.sh            (builds bulwark in release first)
# Cases: python3 -c pass; python3 json over a 10 MB document; gcc compiling a 1,000-line
# C file; git status in a repository of 5,000 files; clock_gettime in a loop (vDSO);
# 1,000 fork+exec+wait of /bin/true.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
cargo build --release -q -p runsc-compat
target=${CARGO_TARGET_DIR:-target}
bulwark=$(realpath "$target/x86_64-unknown-linux-gnu/release/bulwark")
python=$(python3 -c 'import sys; print(sys.executable)')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A 10 MB JSON document, a 1,000-line C file, a 5,000-file repository.
"$python" - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
doc = [{"id": i, "name": f"item {i}", "tags": ["a", "b", "c"], "value": i * 0.5} for i in range(120000)]
open(f"{work}/doc.json", "w").write(json.dumps(doc))
with open(f"{work}/big.c", "w") as f:
    f.write("#include <stdio.h>\n")
    for i in range(330):
        f.write(f"static int f{i}(int x) {{\n    return x * {i} + {i % 7};\n}}\n")
    f.write("int main(void) {\n    int s = 0;\n")
    for i in range(330):
        f.write(f"    s += f{i}(s);\n")
    f.write('    printf("%d\\n", s);\n    return 0;\n}\n')
repo = f"{work}/repo"
for d in range(50):
    os.makedirs(f"{repo}/d{d}")
    for i in range(100):
        open(f"{repo}/d{d}/f{i}", "w").write(f"{d} {i}\n")
PY
git -C "$work/repo" init -q
git -C "$work/repo" add -A
git -C "$work/repo" -c user.email=b@b -c user.name=b commit -qm init

cat >"$work/clock.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    struct timespec a, b, t;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &t);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
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
    for (int i = 0; i < 1000; i++) {
        pid_t p = fork();
        if (p == 0) { execl("/bin/true", "true", (char *)0); _exit(127); }
        int st; waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "child failed\n"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6));
    return 0;
}
C
gcc -O2 -o "$work/clock" "$work/clock.c"
gcc -O2 -o "$work/forkexec" "$work/forkexec.c"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || return 1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
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
# Median of three runs of a command, in ms (0 if it failed).
median3() {
    local a b c
    a=$(ms "$@" || echo 0); b=$(ms "$@" || echo 0); c=$(ms "$@" || echo 0)
    printf '%s\n%s\n%s\n' "$a" "$b" "$c" | sort -n | sed -n 2p
}

printf '%-16s %12s %12s %12s %12s %14s %14s\n' runner "py pass ms" "py json ms" "gcc ms" \
    "git st ms" "clock ns" "1000 f+e ms"
declare -A base
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else printf "-" }'; }
for r in "${runners[@]}"; do
    p=$(median3 run "$r" "$python" -c pass)
    j=$(median3 run "$r" "$python" -c "import json; d = json.load(open('$work/doc.json')); json.dumps(d)")
    g=$(median3 run "$r" sh -c "cd /tmp && gcc -O1 -o /tmp/big '$work/big.c'")
    s=$(median3 run "$r" sh -c "cd '$work/repo' && git status --short")
    c=$(run "$r" "$work/clock" 1000000 2>/dev/null | tail -1) || { echo "$r: clock failed" >&2; c=0; }
    f=$(run "$r" "$work/forkexec" 2>/dev/null | tail -1) || { echo "$r: fork+exec failed" >&2; f=0; }
    if [ "$r" = native ]; then base=([p]=$p [j]=$j [g]=$g [s]=$s [c]=$c [f]=$f); fi
    printf '%-16s %7s %4s %7s %4s %7s %4s %7s %4s %8s %5s %8s %5s\n' "$r" \
        "$p" "$(ratio "$p" "${base[p]}")" "$j" "$(ratio "$j" "${base[j]}")" \
        "$g" "$(ratio "$g" "${base[g]}")" "$s" "$(ratio "$s" "${base[s]}")" \
        "$c" "$(ratio "$c" "${base[c]}")" "$f" "$(ratio "$f" "${base[f]}")"
done
