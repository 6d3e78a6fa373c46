# Shared setup of the e2e suites (e2e/clients, e2e/groups, e2e/cluster, e2e/compose,
# e2e/replication, e2e/sarama, e2e/k8s),
# sourced by their run.sh:
#
#   source "$(dirname "$0")/../lib/setup.sh"
#   e2e_setup kcat promtool   # the commands the suite needs besides Python
#   e2e_pytest "$@"           # pytest in the suite's directory; exits with pytest's status
#
# A suite that needs no Python (e2e/sarama) calls the parts on their own:
#
#   e2e_apt_install golang-go ...   # installs the given Debian packages
#   e2e_require_broker              # fails setup if the broker binary is missing
#
# Sets ROOT (the repository) and VENV, and exports IRONLOG_BIN (default:
# <repo>/target/debug/ironlog; build it with `cargo build -p ironlog`). e2e_setup
# installs the Debian package of each missing command, and the pinned clients of
# e2e/lib/requirements.txt into the venv e2e/.venv (again only when requirements.txt changed).
# A setup failure prints a pytest-style summary line ("0 passed, 1 failed") and exits 1.

E2E_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_SUITE_DIR=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
E2E_SUITE=e2e/$(basename "$E2E_SUITE_DIR")
ROOT=$(git -C "$E2E_LIB" rev-parse --show-toplevel 2>/dev/null || (cd "$E2E_LIB/../.." && pwd))
export IRONLOG_BIN=${IRONLOG_BIN:-$ROOT/target/debug/ironlog}
VENV=$(dirname "$E2E_LIB")/.venv

fail_setup() { echo "$E2E_SUITE setup failed: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

e2e_apt_install() { # Debian packages (none: nothing to do)
  (($#)) || return 0
  echo "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail_setup "apt-get update"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || fail_setup "apt-get install $*"
}

e2e_require_broker() {
  [[ -x $IRONLOG_BIN ]] || fail_setup "broker binary $IRONLOG_BIN missing (cargo build -p ironlog)"
}

e2e_setup() { # commands...
  local cmd missing=()
  for cmd in "$@"; do
    if ! command -v "$cmd" >/dev/null; then
      case $cmd in
        promtool) missing+=(prometheus) ;;
        *) missing+=("$cmd") ;;
      esac
    fi
  done
  e2e_apt_install "${missing[@]}"

  # Reinstall only when requirements.txt changed since the venv was last set up.
  local requirements=$E2E_LIB/requirements.txt stamp=$VENV/.requirements.txt
  if [[ ! -x $VENV/bin/python ]] || ! cmp -s "$requirements" "$stamp"; then
    echo "setting up $VENV"
    python3 -m venv "$VENV" || fail_setup "python3 -m venv"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
      || fail_setup "pip install -r $requirements"
    cp "$requirements" "$stamp"
  fi

  e2e_require_broker
}

print_crash() { # exit status, directory the process ran in, its executable
  local status=$1 dir=$2 exe=$3 core
  ((status > 128)) || return 0
  echo "--- pytest was killed by signal $((status - 128))"
  core=$(ls -t "$dir"/core* 2>/dev/null | head -1)
  if [[ -z $core ]]; then
    echo "(no core file in $dir: core_pattern is $(cat /proc/sys/kernel/core_pattern))"
  elif command -v gdb >/dev/null; then
    gdb -batch -nx -ex "bt 25" -ex "info threads" "$exe" "$core" 2>/dev/null \
      | grep -E "^#|^\*|^  [0-9]+ +Thread" | cut -c1-200 | head -50
  else
    echo "(gdb is not installed: core file $core not read)"
  fi
  rm -f "$dir"/core*
}

e2e_pytest() { # pytest arguments...
  cd "$E2E_SUITE_DIR"
  local status=0
  # --color=no: the summary lines are parsed (e2e/k8s/run.sh) and read in CI logs.
  "$VENV/bin/python" -m pytest -v -p no:cacheprovider --color=no --durations=8 "$@" || status=$?
  exit "$status"
}
