/* spin: says so, then loops forever without any exit to the tender. */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  hvt_puts("spinning\n");
  for (;;) __asm__ __volatile__("" ::: "memory");
}
