/* sse: SSE2 and AVX arithmetic. SSE is enabled at entry (CR4.OSFXSR); AVX is
 * not, so the guest checks CPUID, sets CR4.OSXSAVE and XCR0 = x87|SSE|AVX
 * itself before running 256-bit instructions. All vector work is inline
 * assembly on buffers in BSS.
 *
 * PVM quirk: on this machine's KVM (PVM) an SSE instruction executed right
 * after the first touch of a page can kill the VM ("internal error, suberror
 * 1"), so every page the vector code uses (its buffers and the stack below
 * us) is first written with ordinary integer stores.
 */
// hvt-build: sse
#include "hvt.h"

HVT_MANIFEST();

/* Doubles, kept as their bit patterns: only the inline assembly treats them
 * as floating point. */
static uint64_t va[4] __attribute__((aligned(32)));
static uint64_t vb[4] __attribute__((aligned(32)));
static uint64_t vsum[4] __attribute__((aligned(32)));
static uint64_t vprod[4] __attribute__((aligned(32)));
static uint64_t four; /* 4.0 */
static int64_t ints[4];

/* IEEE-754 bit patterns of 1.5, 2.25, -3.0, 10.0 and 4.0, 2.0, 0.5, -7.0,
 * stored with integer moves so that no SSE instruction touches them first. */
static const uint64_t a_bits[4] = { 0x3FF8000000000000ull, 0x4002000000000000ull,
                                    0xC008000000000000ull, 0x4024000000000000ull };
static const uint64_t b_bits[4] = { 0x4010000000000000ull, 0x4000000000000000ull,
                                    0x3FE0000000000000ull, 0xC01C000000000000ull };

static void load_inputs(void) {
  for (int i = 0; i < 4; i++) {
    ((volatile uint64_t *)va)[i] = a_bits[i];
    ((volatile uint64_t *)vb)[i] = b_bits[i];
  }
}

/* Results are scaled by 4 and truncated to integers by cvttsd2si. */
static void print_results(const char *what) {
  for (int i = 0; i < 4; i++) {
    __asm__ __volatile__("movsd %1, %%xmm2\n\tmulsd %2, %%xmm2\n\tcvttsd2si %%xmm2, %0"
                         : "=r"(ints[i]) : "m"(vsum[i]), "m"(four) : "xmm2");
  }
  hvt_printf("%s sum*4: %ld %ld %ld %ld\n", what, ints[0], ints[1], ints[2], ints[3]);
  for (int i = 0; i < 4; i++) {
    __asm__ __volatile__("movsd %1, %%xmm2\n\tmulsd %2, %%xmm2\n\tcvttsd2si %%xmm2, %0"
                         : "=r"(ints[i]) : "m"(vprod[i]), "m"(four) : "xmm2");
  }
  hvt_printf("%s prod*4: %ld %ld %ld %ld\n", what, ints[0], ints[1], ints[2], ints[3]);
}

static void clear_outputs(void) {
  hvt_touch(vsum, sizeof vsum);
  hvt_touch(vprod, sizeof vprod);
  hvt_touch(ints, sizeof ints);
  *(volatile uint64_t *)&four = 0x4010000000000000ull;
}

static void run_sse(void) {
  clear_outputs();
  load_inputs();
  __asm__ __volatile__(
      "movapd 0(%0), %%xmm0\n\t"
      "movapd 16(%0), %%xmm1\n\t"
      "movapd 0(%1), %%xmm2\n\t"
      "movapd 16(%1), %%xmm3\n\t"
      "movapd %%xmm0, %%xmm4\n\t"
      "movapd %%xmm1, %%xmm5\n\t"
      "addpd %%xmm2, %%xmm0\n\t"
      "addpd %%xmm3, %%xmm1\n\t"
      "mulpd %%xmm2, %%xmm4\n\t"
      "mulpd %%xmm3, %%xmm5\n\t"
      "movapd %%xmm0, 0(%2)\n\t"
      "movapd %%xmm1, 16(%2)\n\t"
      "movapd %%xmm4, 0(%3)\n\t"
      "movapd %%xmm5, 16(%3)\n\t"
      : : "r"(va), "r"(vb), "r"(vsum), "r"(vprod)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "memory");
  print_results("SSE");
}

static int enable_avx(void) {
  uint32_t r[4];
  hvt_cpuid(1, 0, r);
  int xsave = (r[2] >> 26) & 1, avx = (r[2] >> 28) & 1;
  hvt_printf("cpuid: xsave=%d avx=%d\n", xsave, avx);
  if (!xsave || !avx) return 0;
  hvt_cpuid(0xD, 0, r);
  if ((r[0] & 7) != 7) {
    hvt_printf("cpuid: xcr0 mask 0x%x lacks x87|SSE|AVX\n", r[0]);
    return 0;
  }
  uint64_t cr4;
  __asm__ __volatile__("mov %%cr4, %0" : "=r"(cr4));
  cr4 |= 1ull << 18; /* OSXSAVE */
  __asm__ __volatile__("mov %0, %%cr4" : : "r"(cr4) : "memory");
  __asm__ __volatile__("xsetbv" : : "c"(0), "a"(7), "d"(0) : "memory");
  uint32_t lo, hi;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  hvt_printf("xcr0=0x%x\n", lo);
  return lo == 7;
}

static void run_avx(void) {
  clear_outputs();
  load_inputs();
  __asm__ __volatile__(
      "vmovapd (%0), %%ymm0\n\t"
      "vmovapd (%1), %%ymm1\n\t"
      "vaddpd %%ymm1, %%ymm0, %%ymm2\n\t"
      "vmulpd %%ymm1, %%ymm0, %%ymm3\n\t"
      "vmovapd %%ymm2, (%2)\n\t"
      "vmovapd %%ymm3, (%3)\n\t"
      "vzeroupper\n\t"
      : : "r"(va), "r"(vb), "r"(vsum), "r"(vprod)
      : "xmm0", "xmm1", "xmm2", "xmm3", "memory");
  print_results("AVX");
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  /* Pre-touch the 64 KiB of stack below this frame with integer stores. */
  uint64_t sp;
  __asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
  hvt_touch((void *)(uintptr_t)(sp - 0x10000), 0x10000 - 256);
  run_sse();
  if (enable_avx()) run_avx();
  else hvt_puts("AVX: not supported\n");
  return 0;
}
