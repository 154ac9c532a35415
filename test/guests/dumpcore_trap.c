// hvt-build: debug
/* dumpcore_trap: a CPU exception in a nested application function, caught
 * by the guest's own trap handler (runtime x86.c), which HALTs with status
 * 255 and the trap frame as the cookie, as Solo5's bindings do (docs/abi.md
 * §10.8). The dumpcore tests (test/kvm/dumpcore.test.ts) check that the core
 * shows the faulting function and instruction, not the handler.
 *
 * The first command-line word picks the exception:
 *   ud2 (default)  #UD at dumpcore_fault_ud2
 *   pf             #PF reading 0x1000 (not mapped) at dumpcore_fault_pf
 * Before it, "expect: rip=0x..." names the faulting instruction; the handler
 * prints "trap: vector=N rip=0x...".
 *
 * Built with -g -O0 and frame pointers. The handler is compiled without a
 * frame pointer and issues the HALT itself, and the runtime's dispatcher
 * (-O2) leaves rbp alone, so rbp at the HALT is still the faulting frame's:
 * with the trap frame's rip and rsp that lets gdb unwind past the fault.
 */
#include "hvt.h"

HVT_MANIFEST();

static uint64_t trap_frame[HVT_COOKIE_SIZE / 8] __attribute__((aligned(16)));
static volatile struct hvt_hc_halt halt_args;

extern const char dumpcore_fault_ud2[], dumpcore_fault_pf[];

__attribute__((noreturn, optimize("omit-frame-pointer"))) static void on_trap(const struct hvt_trap_regs *r) {
  uint64_t cr2;
  __asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
  trap_frame[0] = cr2;
  trap_frame[1] = r->ec;
  trap_frame[2] = r->rip;
  trap_frame[3] = r->cs;
  trap_frame[4] = r->rflags;
  trap_frame[5] = r->rsp;
  trap_frame[6] = r->ss;
  hvt_printf("trap: vector=%lu rip=0x%lx rsp=0x%lx\n", r->vector, r->rip, r->rsp);
  halt_args.cookie = (uint64_t)(uintptr_t)trap_frame;
  halt_args.exit_status = 255;
  /* The OUT of hvt_hypercall() written out here: at -O0 that inline
   * function is a real call, whose frame would replace rbp. */
  for (;;) {
    __asm__ __volatile__("outl %0, %1" : : "a"((uint32_t)(uintptr_t)&halt_args),
                         "Nd"((uint16_t)(HVT_PORT_BASE + HVT_HC_HALT)) : "memory");
  }
}

__attribute__((noinline)) static void fault_here(int pf, int depth) {
  volatile int fault_depth = depth;
  (void)fault_depth;
  if (pf) {
    __asm__ __volatile__(".globl dumpcore_fault_pf\ndumpcore_fault_pf: movq 0x1000, %%rax" : : : "rax", "memory");
  } else {
    __asm__ __volatile__(".globl dumpcore_fault_ud2\ndumpcore_fault_ud2: ud2" : : : "memory");
  }
}

__attribute__((noinline)) static void app_level2(int pf, int depth) {
  fault_here(pf, depth + 1);
}

__attribute__((noinline)) static void app_level1(int pf, int depth) {
  app_level2(pf, depth + 1);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char mode[16];
  hvt_next_word(&cmdline, mode, sizeof mode);
  int pf = strcmp(mode, "pf") == 0;
  if (!pf && mode[0] && strcmp(mode, "ud2") != 0) {
    hvt_printf("dumpcore_trap: unknown mode %s\n", mode);
    return 1;
  }
  hvt_trap_install(on_trap);
  hvt_printf("expect: rip=0x%lx\n", (uint64_t)(uintptr_t)(pf ? dumpcore_fault_pf : dumpcore_fault_ud2));
  app_level1(pf, 1);
  hvt_puts("dumpcore_trap: FAIL, no exception\n");
  return 2;
}
