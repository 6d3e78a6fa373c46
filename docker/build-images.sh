#!/usr/bin/env bash
# Builds the broker and operator images without a registry: the release binaries are built
# on this machine, then each image is assembled FROM scratch from a root filesystem holding
# the binary, the shared libraries it links (found with ldd) and, for the broker, a static
# busybox for the StatefulSet's `/bin/sh -c` entry (it derives the node id from the pod name).
#
#   docker/build-images.sh [TAG]      # default tag 0.1.0; images ironlog/ironlog, ironlog/ironlog-operator
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-0.1.0}
OUT=target/images

if [[ ! -x /bin/busybox ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi
cargo build --release -p ironlog-server --bin ironlog -p ironlog-operator --bin ironlog-operator

rootfs() { # name binary: $OUT/name/{rootfs,data} is the build context
  local dir=$OUT/$1/rootfs bin=$2
  rm -rf "$OUT/$1"; mkdir -p "$dir/usr/local/bin" "$dir/etc" "$dir/tmp" "$OUT/$1/data"
  touch "$OUT/$1/data/.keep"
  install -m 0755 "target/release/$bin" "$dir/usr/local/bin/$bin"
  strip --strip-debug "$dir/usr/local/bin/$bin"
  # The binary's shared libraries and the dynamic loader, at their usual paths.
  ldd "target/release/$bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    cp --parents -L "$lib" "$dir"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nironlog:x:1000:1000:ironlog:/var/lib/ironlog:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/sh\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nironlog:x:1000:\nnonroot:x:65532:\n' > "$dir/etc/group"
  chmod 1777 "$dir/tmp"
}

rootfs broker ironlog
mkdir -p "$OUT/broker/rootfs/bin"
cp /bin/busybox "$OUT/broker/rootfs/bin/busybox"
ln -s busybox "$OUT/broker/rootfs/bin/sh"
docker build -q -f docker/broker.Dockerfile -t "ironlog/ironlog:$TAG" "$OUT/broker"

rootfs operator ironlog-operator
docker build -q -f docker/operator.Dockerfile -t "ironlog/ironlog-operator:$TAG" "$OUT/operator"
docker images | grep '^ironlog/'
