#!/usr/bin/env bash
# Builds the engine's two WebAssembly modules (image tower, text tower, CALIP's terms) with Debian's clang-16 + lld-16:
#   build/clip-vit-relaxed.wasm  relaxed-SIMD int8 dot product (VNNI where the CPU has it)
#   build/clip-vit-simd128.wasm  plain SIMD128 (i32x4.dot_i16x8_s), for runtimes or CPUs
#                                where the relaxed one is missing or not exact
# The outputs are committed; CI rebuilds them and fails if they differ (reproducible build).
set -euo pipefail
cd "$(dirname "$0")"
CC=${CC:-clang-16}
FLAGS=(--target=wasm32 -O3 -flto -nostdlib -ffreestanding -fno-builtin-memcpy -fno-builtin-memset -Wall -Wextra -Werror
  -fno-ident -ffile-prefix-map="$PWD"=. -msimd128
  -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 -Wl,--initial-memory=262144)
export PATH="/usr/lib/llvm-16/bin:$PATH"  # wasm-ld
mkdir -p build
"$CC" "${FLAGS[@]}" -mrelaxed-simd -o build/clip-vit-relaxed.wasm clip_vit.c clip_text.c transformer.c calip.c kernels.c
"$CC" "${FLAGS[@]}" -o build/clip-vit-simd128.wasm clip_vit.c clip_text.c transformer.c calip.c kernels.c
sha256sum build/*.wasm
