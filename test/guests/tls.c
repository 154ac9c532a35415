/* tls: points FS base (MSR 0xC0000100) at a TLS block, writes and reads
 * through %fs:offset, and prints what it read back. */
#include "hvt.h"

HVT_MANIFEST();

#define MSR_FS_BASE 0xC0000100u

static uint64_t tls_block[8];

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  tls_block[2] = 0x1111222233334444ull;
  hvt_wrmsr(MSR_FS_BASE, (uint64_t)(uintptr_t)tls_block);
  uint64_t base = hvt_rdmsr(MSR_FS_BASE);
  uint64_t before, after;
  __asm__ __volatile__("movq %%fs:16, %0" : "=r"(before));
  __asm__ __volatile__("movq %0, %%fs:24" : : "r"(0xcafef00dd00dfeedull) : "memory");
  __asm__ __volatile__("movq %%fs:24, %0" : "=r"(after));
  hvt_printf("tls: fs_base %s\n", base == (uint64_t)(uintptr_t)tls_block ? "ok" : "FAIL");
  hvt_printf("tls: read 0x%lx\n", before);
  hvt_printf("tls: value=0x%lx block=0x%lx\n", after, tls_block[3]);
  int ok = base == (uint64_t)(uintptr_t)tls_block && before == 0x1111222233334444ull &&
           after == 0xcafef00dd00dfeedull && tls_block[3] == after;
  hvt_puts(ok ? "tls: ok\n" : "tls: FAIL\n");
  return ok ? 0 : 3;
}
