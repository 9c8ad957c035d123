# Sourced by the other scripts: the build environment (libtorch from the project venv).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="${WELD_VENV:-$ROOT/.venv}"
export PATH="$VIRTUAL_ENV/bin:$HOME/.cargo/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK="${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
export WELD_PYTHON="$VIRTUAL_ENV/bin/python"
BIN="$ROOT/target/release"
