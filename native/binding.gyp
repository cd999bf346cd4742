{
  # node-gyp rebuild (run by scripts/build-native.mjs at npm install).
  # Variant with AddressSanitizer + UndefinedBehaviorSanitizer: node-gyp rebuild -- -Dsanitize=1
  # With the CUDA engine (scripts/build-native.mjs does this when nvcc is found): first nvcc compiles
  # native/cuda/lstm_cuda.cu into an object file, then node-gyp rebuild -- -Dcuda_obj=<that .o>
  # -Dcuda_lib=<CUDA lib64 dir> links it and cudart (static) into the same addon.
  "variables": { "sanitize%": 0, "cuda_obj%": "", "cuda_lib%": "" },
  "targets": [
    {
      "target_name": "lstm_native",
      "sources": ["src/addon.cc", "src/model_api.cc", "src/lstm.cc", "src/kernels.cc", "src/gemm.cc", "src/thread_pool.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      # RTTI on: the CUDA object (nvcc, RTTI by default) and these share ModelApi's vtable.
      # -O3 without -ffast-math: no reassociation; -fno-trapping-math lets GCC if-convert (and so
      # vectorise) the branch-free sigmoid/tanh. The hot kernels carry target_clones (AVX-512 /
      # AVX2+FMA / baseline), so no -march flag: the build runs on any x86-64.
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0", "-Os"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=fast", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-lopenblas"],
      "conditions": [
        ["sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }],
        ["cuda_obj!=''", {
          "defines": ["LSTM_CUDA"],
          # cudart linked statically: the addon needs only the driver (libcuda.so.1) at run time,
          # and loads (reporting no device) where there is none
          "libraries": ["<(cuda_obj)", "-L<(cuda_lib)", "-lcudart_static", "-ldl", "-lrt"]
        }]
      ]
    }
  ]
}
