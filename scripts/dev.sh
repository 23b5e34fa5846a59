#!/usr/bin/env bash
# volumedr developer entry point: sets up .venv from scratch if needed, then
#   run    opens the workstation on the default bundled case (chest)
#   demo   simulate -> reconstruct -> study file on the command line (no window)
#   test   runs the whole test suite
#   bench  runs the reconstruction and simulator benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${PYTHON:-python3}"

setup() {
    if [ ! -x .venv/bin/python ]; then
        "$PY" -m venv .venv
    fi
    if ! .venv/bin/python -c "import volumedr, numba, h5py, xraylib, pynetdicom, pytest, pytestqt, PySide6, pyqtgraph" 2>/dev/null \
        || [ pyproject.toml -nt .venv/.installed ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".[gui,test]"
        # compile the numba kernels once into numba's cache, so the first acquisition in the window
        # does not freeze it while numba compiles
        .venv/bin/python -m volumedr.warmup || true
        touch .venv/.installed
    fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        # shared libraries Qt's offscreen and X11 (xcb) platforms load at run time (without the xcb ones
        # the window aborts on a real desktop), and, for the tests, the DICOM validator (dicom3tools),
        # a real PACS (orthanc), an X server and its screen grabber (xvfb, x11-apps)
        pkgs="libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0"
        pkgs="$pkgs libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0"
        pkgs="$pkgs libxcb-image0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0 libxcb-sync1 libxcb-shm0"
        pkgs="$pkgs libxcb-render0 libx11-xcb1"
        if [ "${1:-}" = "test" ]; then pkgs="$pkgs dicom3tools orthanc xvfb x11-apps"; fi
        missing=""
        for pkg in $pkgs; do
            dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
        done
        if [ -n "$missing" ]; then
            apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
        fi
    fi
}

cmd="${1:-run}"
shift || true
setup "$cmd"
case "$cmd" in
    run)
        if .venv/bin/volumedr gui --help >/dev/null 2>&1; then exec .venv/bin/volumedr gui --case chest "$@"; fi
        exec bash "$0" demo ;;
    demo)
        mkdir -p out
        .venv/bin/volumedr simulate chest -o out/chest.h5 --bin 4 --seed 1 "$@"
        .venv/bin/volumedr reconstruct out/chest.h5
        .venv/bin/volumedr info out/chest.h5 ;;
    test)
        export QT_QPA_PLATFORM=offscreen
        exec .venv/bin/python -m pytest -q "$@" ;;
    bench)
        exec .venv/bin/python benchmarks/bench_reconstruct.py "$@" ;;
    *)
        echo "usage: scripts/dev.sh [run|demo|test|bench]" >&2; exit 2 ;;
esac
