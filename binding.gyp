{
  "targets": [
    {
      "target_name": "ukvm_native",
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "sources": ["native/addon.cc", "native/io_posix.cc"],
      "conditions": [
        ["OS=='linux'", { "sources": ["native/kvm_linux.cc", "native/vcpu_linux.cc", "native/signals_linux.cc", "native/waitset_linux.cc", "native/bench_linux.cc", "native/tap_linux.cc"] }]
      ]
    }
  ]
}
