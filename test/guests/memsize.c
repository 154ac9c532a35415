/* memsize: prints the boot info, checks the manifest copy and the data
 * segment, then writes and reads back words at the top of guest memory (the
 * 16 bytes above the entry stack frame) and just below its stack. */
#include "hvt.h"

HVT_MANIFEST();

static int check(volatile uint64_t *p, uint64_t v) {
  *p = v;
  uint64_t r = *p;
  hvt_printf("wrote 0x%lx at 0x%lx, read 0x%lx\n", v, (uint64_t)(uintptr_t)p, r);
  return r == v;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)cmdline;
  hvt_printf("mem_size=%lu\n", bi->mem_size);
  hvt_printf("kernel_end=%lu\n", bi->kernel_end);
  hvt_printf("cpu_cycle_freq=%lu\n", bi->cpu_cycle_freq);
  hvt_printf("cmdline=0x%lx mft=0x%lx\n", bi->cmdline, bi->mft);
  hvt_printf("host_features=%u net_ring=0x%lx\n", bi->host_features, bi->net_ring);
  const struct hvt_mft *m = hvt_mft();
  hvt_printf("mft version=%u entries=%u type0=0x%x\n", m->version, m->entries, m->e[0].type);
  hvt_printf("data_marker=0x%lx\n", hvt_data_marker);

  uint64_t sp;
  __asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
  int ok = check((volatile uint64_t *)(uintptr_t)(bi->mem_size - 16), 0x0123456789abcdefull);
  ok &= check((volatile uint64_t *)(uintptr_t)(bi->mem_size - 8), 0xfedcba9876543210ull);
  ok &= check((volatile uint64_t *)(uintptr_t)((sp & ~0xfffull) - 0x1000), 0x5a5a5a5a5a5a5a5aull);
  hvt_puts(ok ? "memory: ok\n" : "memory: FAIL\n");
  return ok ? 0 : 3;
}
