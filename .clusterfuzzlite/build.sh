#!/bin/bash -eu
# Builds every fuzz target of fuzz/ (cargo fuzz build -O) into $OUT, with its seed corpus
# ($OUT/<target>_seed_corpus.zip), its dictionary ($OUT/<target>.dict, for the byte-level
# targets) and its libFuzzer options ($OUT/<target>.options).
#
# In the ClusterFuzzLite image the repository is $SRC/hijack (see Dockerfile). Outside it,
# run it with SRC set to the folder that holds the repository and OUT to any folder:
#   SRC=$(dirname "$PWD") OUT=$(mktemp -d) .clusterfuzzlite/build.sh
# (there cargo needs the nightly toolchain: this script uses `cargo +nightly` when the
# default toolchain is not a nightly one).

project=""
for dir in "$SRC/hijack" "$SRC"/*/; do
    dir=${dir%/}
    if [[ -f "$dir/fuzz/Cargo.toml" ]] && grep -q '^name = "hijack-fuzz"' "$dir/fuzz/Cargo.toml"; then
        project=$dir
        break
    fi
done
if [[ -z "$project" ]]; then
    echo "build.sh: no hijack repository (with fuzz/Cargo.toml) under $SRC" >&2
    exit 1
fi

cargo=(cargo)
if ! cargo --version | grep -q nightly && rustup run nightly rustc --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
fi

cd "$project/fuzz"
"${cargo[@]}" fuzz build -O
targets=$("${cargo[@]}" fuzz list)
# cargo builds into $CARGO_TARGET_DIR when it is set (cargo xtask cflite-check sets it).
built=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
for target in $targets; do
    cp "$built/$target" "$OUT/"
    (cd "corpus/$target" && python3 -m zipfile -c "$OUT/${target}_seed_corpus.zip" ./*)
    options="[libfuzzer]\nmax_len = 4096\ntimeout = 60\nrss_limit_mb = 4096\n"
    if [[ "$target" != lifecycle ]]; then
        # lifecycle's input is an `arbitrary` encoding: HTTP tokens do not help it.
        cp http.dict "$OUT/$target.dict"
        options+="dict = $target.dict\n"
    fi
    printf "$options" >"$OUT/$target.options"
done
echo "build.sh: $(wc -w <<<"$targets") fuzz targets in $OUT: $(echo $targets)"
