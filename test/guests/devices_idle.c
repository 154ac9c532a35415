/* devices_idle: declares a block device "storage" and a net device "service",
 * says "idle", then sleeps in 10-second POLLs until it is stopped: an idle
 * unikernel holding both kinds of host descriptors, for start/stop cycles. */
#include "hvt.h"

HVT_MANIFEST(HVT_BLOCK("storage"), HVT_NET("service"));

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  hvt_puts("idle\n");
  for (;;) hvt_poll(10000000000ull, 0);
}
