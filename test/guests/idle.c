/* idle: no devices; says "idle", then sleeps in 10-second POLLs until it is
 * stopped. The cheapest unikernel that stays alive: what the library's pool
 * and per-VM memory figures are measured with. */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  hvt_puts("idle\n");
  for (;;) hvt_poll(10000000000ull, 0);
}
