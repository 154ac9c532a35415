/* sse: SSE2 and AVX arithmetic.
 *
 * SSE is usable at entry (CR4.OSFXSR); AVX is not, so at CPL 0 the guest
 * checks CPUID (leaf 1 ECX: bit 26 XSAVE, bit 28 AVX; leaf 0xD: XCR0 may hold
 * x87|SSE|AVX), sets CR4.OSXSAVE and XCR0 = 7 with XSETBV.
 *
 * The vector code is hand-written assembly (the rest of the guest is built
 * with -mgeneral-regs-only) and runs at CPL 3 (runtime x86.c), coming back
 * to CPL 0 with a deliberate #UD (ud2): on PVM `int $0x80` from this CPL-3
 * code comes back as #UD anyway (not understood; a smaller experiment
 * delivered it), so the exception is the dependable way back. Reason, observed on this machine's KVM (PVM): CPL-0
 * guest code is executed by an instruction emulator that implements few
 * SSE/x87 instructions (addpd, xorpd, stmxcsr, fld1 and int3 all end the VM
 * with "internal error, suberror 1"), while CPL-3 code runs on the CPU. On
 * ordinary KVM both ways work; `sse.hvt cpl0` runs the SSE part at CPL 0 to
 * show the difference.
 *
 * Inputs a = {1.5, 2.25, -3.0, 10.0}, b = {4.0, 2.0, 0.5, -7.0}; results are
 * printed multiplied by 4 and truncated to integers:
 *   (a+b)*4 = 22 17 -10 12     (a*b)*4 = 24 18 -6 -280
 */
#include "hvt.h"

HVT_MANIFEST();

static const uint64_t in_a[4] = { 0x3FF8000000000000ull, 0x4002000000000000ull,
                                  0xC008000000000000ull, 0x4024000000000000ull };
static const uint64_t in_b[4] = { 0x4010000000000000ull, 0x4000000000000000ull,
                                  0x3FE0000000000000ull, 0xC01C000000000000ull };

static int64_t sse_out[8], avx_out[8];
static uint64_t scratch[8] __attribute__((aligned(32)));
static int have_avx;
static uint32_t xcr0;
static volatile int user_done;
static uint64_t user_stack[1024] __attribute__((aligned(16)));

/* void sse_math(const uint64_t a[4], const uint64_t b[4], int64_t out[8],
 *               uint64_t scratch[8]): out = (a+b)*4, (a*b)*4 */
void sse_math(const uint64_t *, const uint64_t *, int64_t *, uint64_t *);
/* void avx_math(...): the same with 256-bit vaddpd/vmulpd */
void avx_math(const uint64_t *, const uint64_t *, int64_t *, uint64_t *);
__asm__(
    "  .pushsection .text.sse_math, \"ax\", @progbits\n"
    "  .globl sse_math\n"
    "sse_math:\n"
    "  movupd (%rdi), %xmm0\n"
    "  movupd 16(%rdi), %xmm1\n"
    "  movupd (%rsi), %xmm2\n"
    "  movupd 16(%rsi), %xmm3\n"
    "  movapd %xmm0, %xmm4\n"
    "  movapd %xmm1, %xmm5\n"
    "  addpd %xmm2, %xmm0\n"
    "  addpd %xmm3, %xmm1\n"
    "  mulpd %xmm2, %xmm4\n"
    "  mulpd %xmm3, %xmm5\n"
    "  movl $4, %eax\n"
    "  cvtsi2sdl %eax, %xmm6\n"
    "  unpcklpd %xmm6, %xmm6\n"
    "  mulpd %xmm6, %xmm0\n"
    "  mulpd %xmm6, %xmm1\n"
    "  mulpd %xmm6, %xmm4\n"
    "  mulpd %xmm6, %xmm5\n"
    "  movupd %xmm0, (%rcx)\n"
    "  movupd %xmm1, 16(%rcx)\n"
    "  movupd %xmm4, 32(%rcx)\n"
    "  movupd %xmm5, 48(%rcx)\n"
    "  .irp i, 0,8,16,24,32,40,48,56\n"
    "  cvttsd2si \\i(%rcx), %rax\n"
    "  movq %rax, \\i(%rdx)\n"
    "  .endr\n"
    "  ret\n"
    "  .globl avx_math\n"
    "avx_math:\n"
    "  vmovupd (%rdi), %ymm0\n"
    "  vmovupd (%rsi), %ymm1\n"
    "  vaddpd %ymm1, %ymm0, %ymm2\n"
    "  vmulpd %ymm1, %ymm0, %ymm3\n"
    "  movl $4, %eax\n"
    "  vcvtsi2sdl %eax, %xmm7, %xmm7\n"
    "  vmovddup %xmm7, %xmm7\n"
    "  vinsertf128 $1, %xmm7, %ymm7, %ymm7\n"
    "  vmulpd %ymm7, %ymm2, %ymm2\n"
    "  vmulpd %ymm7, %ymm3, %ymm3\n"
    "  vmovupd %ymm2, (%rcx)\n"
    "  vmovupd %ymm3, 32(%rcx)\n"
    "  .irp i, 0,8,16,24,32,40,48,56\n"
    "  vcvttsd2si \\i(%rcx), %rax\n"
    "  movq %rax, \\i(%rdx)\n"
    "  .endr\n"
    "  vzeroupper\n"
    "  ret\n"
    "  .popsection\n");

static void print_results(const char *what, const int64_t *o) {
  hvt_printf("%s: sum*4 = %ld %ld %ld %ld, prod*4 = %ld %ld %ld %ld\n", what,
             o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]);
}

/* Runs at CPL 3: no hypercalls here. */
static void user_main(void) {
  sse_math(in_a, in_b, sse_out, scratch);
  if (have_avx) {
    uint32_t hi;
    __asm__ __volatile__("xgetbv" : "=a"(xcr0), "=d"(hi) : "c"(0));
    if ((xcr0 & 7) == 7) avx_math(in_a, in_b, avx_out, scratch);
  }
  user_done = 1;
  __asm__ __volatile__("ud2" ::: "memory");
  for (;;) {}
}

static void on_trap(const struct hvt_trap_regs *r) {
  if (r->vector != 6 || (r->cs & 3) != 3 || !user_done) {
    hvt_printf("sse: FAIL, exception vector=%lu ec=0x%lx rip=0x%lx cs=0x%lx\n",
               r->vector, r->ec, r->rip, r->cs);
    hvt_halt(1, 0);
  }
  hvt_printf("sse: back from CPL %lu\n", r->cs & 3);
  print_results("SSE", sse_out);
  if (have_avx) hvt_printf("xcr0=0x%x\n", xcr0);
  if (have_avx && (xcr0 & 7) == 7) print_results("AVX", avx_out);
  else hvt_puts("AVX: not supported\n");
  hvt_halt(0, 0);
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
  __asm__ __volatile__("mov %0, %%cr4" : : "r"(cr4 | (1ull << 18)) : "memory"); /* OSXSAVE */
  __asm__ __volatile__("xsetbv" : : "c"(0), "a"(7), "d"(0) : "memory");
  /* XGETBV is read back at CPL 3 (user_main): PVM cannot emulate it. */
  return 1;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  if (strcmp(cmdline, "cpl0") == 0) {
    sse_math(in_a, in_b, sse_out, scratch);
    print_results("SSE at CPL 0", sse_out);
    return 0;
  }
  hvt_trap_install(on_trap);
  have_avx = strcmp(cmdline, "noavx") != 0 && enable_avx();
  hvt_enter_user(user_main, (uint64_t)(uintptr_t)&user_stack[1024]);
}
