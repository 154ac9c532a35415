{
  "variables": {
    "ukvm_cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
    "ukvm_linux_sources": [
      "native/kvm_linux.cc",
      "native/vcpu_linux.cc",
      "native/vcpu_debug_linux.cc",
      "native/host_signals_linux.cc",
      "native/host_waitset_linux.cc",
      "native/host_tap_linux.cc",
      "native/host_seccomp_linux.cc",
      "native/host_ring_linux.cc",
      "native/guest_mapping.cc",
      "native/host_waitwatch_linux.cc",
      "native/vcpu_lanes_linux.cc"
    ],
    "ukvm_freebsd_sources": [
      "native/vmm_freebsd.cc",
      "native/freebsd/vcpu_freebsd.cc",
      "native/freebsd/vmm_confine_freebsd.cc",
      "native/freebsd/host_signals_freebsd.cc",
      "native/freebsd/host_waitset_freebsd.cc",
      "native/freebsd/host_tap_freebsd.cc",
      "native/freebsd/host_disk_freebsd.cc",
      "native/guest_mapping.cc"
    ]
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["<@(ukvm_cflags_cc)"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"]
  },
  "targets": [
    {
      "target_name": "ukvm_native",
      "sources": ["native/addon.cc", "native/host_io_posix.cc"],
      "conditions": [
        ["OS=='linux'", { "sources": ["<@(ukvm_linux_sources)"] }],
        ["OS=='freebsd'", { "sources": ["<@(ukvm_freebsd_sources)"] }]
      ]
    },
    {
      "target_name": "ukvm_bench",
      "defines": ["UKVM_BENCH"],
      "sources": ["native/addon.cc", "native/host_io_posix.cc"],
      "conditions": [
        ["OS=='linux'", { "sources": ["<@(ukvm_linux_sources)", "native/bench_linux.cc"] }],
        ["OS=='freebsd'", { "sources": ["<@(ukvm_freebsd_sources)"] }]
      ]
    }
  ]
}
