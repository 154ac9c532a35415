/* spin: says "spinning", then loops forever without any exit to the tender.
 * `spin.hvt poll` says "polling" instead and sleeps in 10-second POLLs, so
 * that the tender waits in the host rather than in KVM_RUN. */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  if (strcmp(cmdline, "poll") == 0) {
    hvt_puts("polling\n");
    for (;;) hvt_poll(10000000000ull, 0);
  }
  hvt_puts("spinning\n");
  for (;;) __asm__ __volatile__("" ::: "memory");
}
