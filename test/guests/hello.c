/* hello: prints a greeting and its command line, exits 0. */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  hvt_puts("Hello, world\n");
  hvt_printf("cmdline: %s\n", cmdline);
  return 0;
}
