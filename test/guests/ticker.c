/* ticker: `ticker.hvt N MS` sleeps in N POLLs of MS ms each, with no device,
 * and says how late the wake-ups came: for the scheduler's tests, where
 * several VMs share one thread and an idle one must still wake on time while
 * another computes. Prints "ticks=N early=E late_max_us=L late_avg_us=A". */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char a[24], b[24];
  const char *p = cmdline;
  int64_t n, ms;
  hvt_next_word(&p, a, sizeof a);
  hvt_next_word(&p, b, sizeof b);
  if (hvt_parse_i64(a, &n) != 0 || hvt_parse_i64(b, &ms) != 0 || n <= 0 || ms <= 0) {
    hvt_puts("usage: ticker.hvt N MS\n");
    return 2;
  }
  uint64_t want = (uint64_t)ms * 1000000ull;
  uint64_t late_max = 0, late_sum = 0;
  unsigned early = 0;
  for (int64_t i = 0; i < n; i++) {
    uint64_t t0 = hvt_monotonic_ns();
    hvt_poll(want, 0);
    uint64_t took = hvt_monotonic_ns() - t0;
    if (took < want) {
      early++;
      continue;
    }
    uint64_t late = took - want;
    late_sum += late;
    if (late > late_max) late_max = late;
  }
  hvt_printf("ticks=%ld early=%u late_max_us=%lu late_avg_us=%lu\n", n, early, late_max / 1000, late_sum / 1000 / (uint64_t)n);
  return 0;
}
