/* secret: leaves a secret in guest memory, or searches all of its memory for
 * one, so a test can show that nothing of one VM reaches the next VM that
 * runs in the same worker thread.
 *
 *   write N   fills every free page (kernel_end up to 64 KiB below the
 *             stack) with the 8-byte secret of N, says "written", exits 0
 *   scan N    reads every 8-byte word of guest memory (0x10000, the first mapped
 *             page, to mem_size) and
 *             says "found 0x<gpa>" for the first one equal to the secret
 *             of N, or "clean"; exits 0
 *   plant N   stores the secret once, in the middle of free memory, then
 *             scans as "scan" does: shows that the scan finds what is there
 *
 * The secret of N is never stored by "scan": it keeps secret ^ MASK and
 * compares each word ^ MASK with it, so its own stack cannot match. */
#include "hvt.h"

HVT_MANIFEST();

#define MASK 0xa5a5a5a5a5a5a5a5ull

/* A value that never appears in the command line's text (a mixed hash of N). */
static uint64_t secret_of(uint64_t n) {
  uint64_t x = (n + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 31);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[8];
  char num[24];
  const char *p = cmdline;
  hvt_next_word(&p, mode, sizeof mode);
  hvt_next_word(&p, num, sizeof num);
  int64_t n;
  if (hvt_parse_i64(num, &n) != 0) {
    hvt_puts("usage: write N | scan N | plant N\n");
    return 2;
  }
  if (strcmp(mode, "write") == 0) {
    uint64_t sp;
    __asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
    uint64_t from = (bi->kernel_end + 4095) & ~4095ull;
    uint64_t to = (sp & ~4095ull) - 0x10000;
    uint64_t s = secret_of((uint64_t)n);
    for (uint64_t a = from; a + 8 <= to; a += 8) *(volatile uint64_t *)(uintptr_t)a = s;
    hvt_printf("written %lu pages\n", (to - from) / 4096);
    return 0;
  }
  if (strcmp(mode, "plant") == 0) {
    uint64_t at = ((bi->kernel_end + bi->mem_size) / 2) & ~7ull;
    *(volatile uint64_t *)(uintptr_t)at = secret_of((uint64_t)n);
  }
  if (strcmp(mode, "scan") == 0 || strcmp(mode, "plant") == 0) {
    uint64_t masked = secret_of((uint64_t)n) ^ MASK;
    /* Below 0x10000 nothing is mapped (docs/abi.md: page tables). */
    for (uint64_t a = 0x10000; a + 8 <= bi->mem_size; a += 8) {
      if ((*(volatile uint64_t *)(uintptr_t)a ^ MASK) == masked) {
        hvt_printf("found 0x%lx\n", a);
        return 0;
      }
    }
    hvt_puts("clean\n");
    return 0;
  }
  hvt_puts("usage: write N | scan N | plant N\n");
  return 2;
}
