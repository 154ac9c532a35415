/* wtext: stores into its own (read-only) text segment. The tender must stop
 * it with "host/guest translation fault: rip=<the store>" and exit 1. */
#include "hvt.h"

HVT_MANIFEST();

extern const char wtext_store[];

static void target(void) {}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)&target;
  hvt_printf("wtext: writing to 0x%lx, store at 0x%lx\n", (uint64_t)(uintptr_t)p,
             (uint64_t)(uintptr_t)wtext_store);
  __asm__ __volatile__(".globl wtext_store\nwtext_store:\n\tmovl $0xdeadbeef, (%0)"
                       : : "r"(p) : "memory");
  hvt_puts("wtext: FAIL, the store went through\n");
  return 2;
}
