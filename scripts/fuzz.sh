#!/usr/bin/env bash
# Fuzzes coord's input handling with libFuzzer and the address sanitizer (swiftc -sanitize=fuzzer,address).
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]     targets: request json percent command import-line (default all)
#
# FUZZ_OPT=-Onone builds faster and runs slower (make test's short run uses it).
#
# Builds Events and Coordination instrumented into .build-fuzz/, then one fuzz binary from the HTTP decoder's
# sources, Tests/coorddTests/FuzzTargets.swift (the checks, shared with the regression tests) and
# Tests/Fuzz/Entry.swift. Each target starts from Tests/Fuzz/corpus/TARGET, grows a working corpus in
# .build-fuzz/corpus/TARGET, and a crashing input is copied to Tests/Fuzz/crashes/TARGET/ to be kept: the
# regression tests run every file there. Exit status: 0 no crash, 1 a crash (its file is named), 2 build failure.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
targets=()
while (($#)); do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=(request json percent command import-line)

out=.build-fuzz
mkdir -p "$out"
opt="${FUZZ_OPT:--O}"
binary="$out/coord-fuzz$opt"
flags=("-sanitize=fuzzer,address" "$opt" -g -swift-version 6 -parse-as-library -enable-testing -I "$out" -I Sources/CLibPQ)
for dir in $(pkg-config --cflags-only-I libpq 2>/dev/null | sed 's/-I//g'); do flags+=(-Xcc "-I$dir"); done

build() {
    # Rebuild only when a source is newer than the binary.
    if [[ -x "$binary" ]] && [[ -z "$(find Sources Tests/Fuzz Tests/coorddTests/FuzzTargets.swift -name '*.swift' -newer "$binary" | head -1)" ]]; then
        return 0
    fi
    echo "building the fuzz binary (instrumented Events and Coordination)..." >&2
    mapfile -t events < <(find Sources/Events -name '*.swift' | sort)
    mapfile -t coordination < <(find Sources/Coordination -name '*.swift' | sort)
    rm -f "$out"/*.swiftmodule "$out"/*.a
    swiftc "${flags[@]}" -module-name Events -emit-module -emit-module-path "$out/Events.swiftmodule" \
        -emit-library -static -o "$out/libEvents.a" "${events[@]}"
    swiftc "${flags[@]}" -module-name Coordination -emit-module -emit-module-path "$out/Coordination.swiftmodule" \
        -emit-library -static -o "$out/libCoordination.a" "${coordination[@]}"
    swiftc "${flags[@]}" -D FUZZING -module-name CoordFuzz -o "$binary" \
        Tests/Fuzz/Entry.swift Tests/coorddTests/FuzzTargets.swift \
        Sources/coordd/HTTP/RequestDecoder.swift Sources/coordd/HTTP/HTTPRequest.swift \
        -L "$out" -lCoordination -lEvents -lpq 2> >(grep -v "Cannot export local symbol" >&2)
}
build || exit 2

status=0
for target in "${targets[@]}"; do
    corpus="$out/corpus/$target"
    mkdir -p "$corpus" "$out/artifacts/$target" "Tests/Fuzz/crashes/$target"
    seed="Tests/Fuzz/corpus/$target"
    echo "fuzzing $target for ${seconds}s" >&2
    if ! COORD_FUZZ_TARGET="$target" ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$binary" "$corpus" ${seed:+"$seed"} \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$target/" > "$out/$target.log" 2>&1; then
        status=1
        for crash in "$out/artifacts/$target"/*; do
            [[ -f "$crash" ]] || continue
            cp "$crash" "Tests/Fuzz/crashes/$target/"
            echo "CRASH in $target: kept as Tests/Fuzz/crashes/$target/$(basename "$crash"); see $out/$target.log" >&2
        done
        tail -40 "$out/$target.log" >&2
    else
        grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/$target.log" | sed "s/^/  $target /" >&2 || true
    fi
done
exit $status
