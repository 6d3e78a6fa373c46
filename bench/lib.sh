# Shared by the bench scripts (sourced): parses `[--smoke]` into MODE, sets ROOT and exports
# CARGO_TARGET_DIR (default target/perf, so the release build is shared between scripts).
bench_init() {
    MODE=full
    case "${1:-}" in
        --smoke) MODE=smoke ;;
        "") ;;
        *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
    esac
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/perf}
    mkdir -p "$CARGO_TARGET_DIR"
}
