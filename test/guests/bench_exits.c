/*
 * bench_exits: issues N hypercalls of one kind, for bench/. Usage:
 *   bench_exits.hvt KIND N      KIND = walltime | poll | puts
 * poll uses a zero timeout; puts writes 1 byte. It prints nothing itself, so
 * the console sees exactly the N bytes of a puts run. Follows the hvt ABI
 * only, so any Solo5-compatible tender can run it for a side-by-side figure.
 */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char kind[16];
  char num[24];
  const char *p = cmdline;
  int64_t n;
  hvt_next_word(&p, kind, sizeof kind);
  hvt_next_word(&p, num, sizeof num);
  if (hvt_parse_i64(num, &n) != 0 || n < 0) {
    hvt_puts("usage: bench_exits.hvt walltime|poll|puts N\n");
    return 2;
  }
  if (strcmp(kind, "walltime") == 0) {
    for (int64_t i = 0; i < n; i++) (void)hvt_walltime();
  } else if (strcmp(kind, "poll") == 0) {
    for (int64_t i = 0; i < n; i++) (void)hvt_poll(0, 0);
  } else if (strcmp(kind, "puts") == 0) {
    for (int64_t i = 0; i < n; i++) hvt_write(".", 1);
  } else {
    hvt_puts("bench_exits: unknown kind\n");
    return 2;
  }
  return 0;
}
