{
  # node-gyp rebuild (run by scripts/build-native.mjs at npm install).
  # Variant with AddressSanitizer + UndefinedBehaviorSanitizer: node-gyp rebuild -- -Dsanitize=1
  "variables": { "sanitize%": 0 },
  "targets": [
    {
      "target_name": "lstm_native",
      "sources": ["src/addon.cc", "src/lstm.cc", "src/kernels.cc", "src/gemm.cc", "src/thread_pool.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      # -O3 without -ffast-math: no reassociation; -fno-trapping-math lets GCC if-convert (and so
      # vectorise) the branch-free sigmoid/tanh. The hot kernels carry target_clones (AVX-512 /
      # AVX2+FMA / baseline), so no -march flag: the build runs on any x86-64.
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O0", "-Os"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=fast", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-lopenblas"],
      "conditions": [
        ["sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
