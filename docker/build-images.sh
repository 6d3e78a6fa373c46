#!/usr/bin/env bash
# Builds the broker and operator images without a registry: the binaries (release by default)
# are built on this machine, then each image is assembled FROM scratch from a root filesystem holding
# the binary, the shared libraries it links (found with ldd) and, for the broker, a static
# busybox for the StatefulSet's `/bin/sh -c` entry (it derives the node id from the pod name).
#
#   docker/build-images.sh [TAG]      # default tag 0.1.0; images ironlog/ironlog, ironlog/ironlog-operator
#
# Env: IRONLOG_PROFILE  release (default) or debug: a debug image is built from the debug
#                       binaries (target/debug), so a test run that already built them (CI's
#                       `build` step) needs no release build; debug symbols are stripped.
#      IRONLOG_IMAGES   which images, default "broker operator" (e2e/compose needs only broker).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-0.1.0}
PROFILE=${IRONLOG_PROFILE:-release}
IMAGES=${IRONLOG_IMAGES:-broker operator}
OUT=target/images
case $PROFILE in
  release) cargo_profile=(--release) ;;
  debug) cargo_profile=() ;;
  *) echo "IRONLOG_PROFILE must be release or debug, not $PROFILE" >&2; exit 2 ;;
esac
BIN_DIR=${CARGO_TARGET_DIR:-target}/$PROFILE

if [[ ! -x /bin/busybox ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi
packages=()
[[ " $IMAGES " == *" broker "* ]] && packages+=(-p ironlog --bin ironlog)
[[ " $IMAGES " == *" operator "* ]] && packages+=(-p ironlog-operator --bin ironlog-operator)
cargo build "${cargo_profile[@]}" "${packages[@]}"

rootfs() { # name binary: $OUT/name/{rootfs,data} is the build context
  local dir=$OUT/$1/rootfs bin=$2
  rm -rf "$OUT/$1"; mkdir -p "$dir/usr/local/bin" "$dir/etc" "$dir/tmp" "$OUT/$1/data"
  touch "$OUT/$1/data/.keep"
  install -m 0755 "$BIN_DIR/$bin" "$dir/usr/local/bin/$bin"
  strip --strip-debug "$dir/usr/local/bin/$bin"
  # The binary's shared libraries and the dynamic loader, at their usual paths.
  ldd "$BIN_DIR/$bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    cp --parents -L "$lib" "$dir"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nironlog:x:1000:1000:ironlog:/var/lib/ironlog:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/sh\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nironlog:x:1000:\nnonroot:x:65532:\n' > "$dir/etc/group"
  chmod 1777 "$dir/tmp"
}

if [[ " $IMAGES " == *" broker "* ]]; then
  rootfs broker ironlog
  mkdir -p "$OUT/broker/rootfs/bin"
  cp /bin/busybox "$OUT/broker/rootfs/bin/busybox"
  ln -s busybox "$OUT/broker/rootfs/bin/sh"
  docker build -q -f docker/broker.Dockerfile -t "ironlog/ironlog:$TAG" "$OUT/broker"
fi

if [[ " $IMAGES " == *" operator "* ]]; then
  rootfs operator ironlog-operator
  docker build -q -f docker/operator.Dockerfile -t "ironlog/ironlog-operator:$TAG" "$OUT/operator"
fi
docker images | grep '^ironlog/'
