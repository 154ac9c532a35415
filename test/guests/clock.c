/* clock: WALLTIME, a TSC-based monotonic clock, and POLL timeouts. */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)cmdline;
  hvt_printf("walltime_ns=%lu\n", hvt_walltime());
  hvt_printf("cpu_cycle_freq=%lu\n", bi->cpu_cycle_freq);

  uint64_t t0 = hvt_monotonic_ns();
  uint64_t ready = ~0ull;
  int ret = hvt_poll(20000000ull, &ready);
  uint64_t t1 = hvt_monotonic_ns();
  hvt_printf("poll_elapsed_ns=%lu\n", t1 - t0);
  hvt_printf("poll_ret=%d ready_set=0x%lx\n", ret, ready);

  unsigned count = 0;
  for (int i = 0; i < 1000; i++) {
    ready = ~0ull;
    if (hvt_poll(0, &ready) == 0 && ready == 0) count++;
  }
  uint64_t t2 = hvt_monotonic_ns();
  hvt_printf("zero_polls=%u\n", count);
  hvt_printf("walltime_ns=%lu\n", hvt_walltime());

  int mono_ok = bi->cpu_cycle_freq != 0 && t1 > t0 && t2 > t1;
  hvt_puts(mono_ok ? "monotonic: ok\n" : "monotonic: FAIL\n");
  return 0;
}
