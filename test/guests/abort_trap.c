/* abort_trap: installs its own GDT and IDT (runtime x86.c: the tender's GDT
 * at 0x1000 is not mapped in the guest page tables, so the CPU could not
 * deliver an exception through it), triggers a CPU exception and, like
 * Solo5's bindings, HALTs with status 255 and cookie = GPA of a trap frame
 * (docs/abi.md §10.8: CR2 @0, error code @8, RIP @16, CS @24, RFLAGS @32, RSP @40,
 * SS @48, in a 512-byte area).
 *
 * The first command-line word picks the exception:
 *   ud2 (default)  #UD, vector 6
 *   div0           #DE, vector 0
 *   pf-ro          #PF writing boot info at 0x10000 (read-only, CR0.WP=1)
 *   pf-low         #PF reading 0x1000 (tender GDT page, not mapped)
 *   pf-above       #PF reading mem_size (above guest memory, not mapped)
 * (No int3 mode: PVM's CPL-0 emulator cannot emulate INT3 and ends the VM
 * with an internal error.) Before the exception it prints "expect: ..."
 * with the values it predicts; the handler prints "trap: ...".
 */
#include "hvt.h"

HVT_MANIFEST();

static uint64_t trap_frame[HVT_COOKIE_SIZE / 8] __attribute__((aligned(16)));

extern const char trap_ud2[], trap_div0[], trap_pf_write[], trap_pf_read[];

static void on_trap(const struct hvt_trap_regs *r) {
  uint64_t cr2;
  __asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
  trap_frame[0] = cr2;
  trap_frame[1] = r->ec;
  trap_frame[2] = r->rip;
  trap_frame[3] = r->cs;
  trap_frame[4] = r->rflags;
  trap_frame[5] = r->rsp;
  trap_frame[6] = r->ss;
  hvt_printf("trap: vector=%lu ec=0x%lx rip=0x%lx cr2=0x%lx cs=0x%lx ss=0x%lx rflags=0x%lx rsp=0x%lx\n",
             r->vector, r->ec, r->rip, cr2, r->cs, r->ss, r->rflags, r->rsp);
  hvt_printf("trap: cookie=0x%lx\n", (uint64_t)(uintptr_t)trap_frame);
  hvt_halt(255, (uint64_t)(uintptr_t)trap_frame);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[32];
  hvt_next_word(&cmdline, mode, sizeof mode);
  if (!mode[0]) memcpy(mode, "ud2", 4);
  hvt_trap_install(on_trap);
  hvt_printf("abort_trap: mode %s, tables installed\n", mode);

  if (strcmp(mode, "ud2") == 0) {
    hvt_printf("expect: vector=6 rip=0x%lx\n", (uint64_t)(uintptr_t)trap_ud2);
    __asm__ __volatile__(".globl trap_ud2\ntrap_ud2: ud2");
  } else if (strcmp(mode, "div0") == 0) {
    hvt_printf("expect: vector=0 rip=0x%lx\n", (uint64_t)(uintptr_t)trap_div0);
    __asm__ __volatile__("xorl %%ecx, %%ecx\n\tmovl $1, %%eax\n\txorl %%edx, %%edx\n\t"
                         ".globl trap_div0\ntrap_div0: divl %%ecx" : : : "rax", "rcx", "rdx");
  } else if (hvt_starts_with(mode, "pf-")) {
    uint64_t addr, ec;
    if (strcmp(mode, "pf-ro") == 0) { addr = HVT_BOOT_INFO_GPA; ec = 3; } /* present, write */
    else if (strcmp(mode, "pf-low") == 0) { addr = 0x1000; ec = 0; }
    else if (strcmp(mode, "pf-above") == 0) { addr = bi->mem_size; ec = 0; }
    else { hvt_printf("abort_trap: unknown mode %s\n", mode); return 1; }
    const char *at = ec & 2 ? trap_pf_write : trap_pf_read;
    hvt_printf("expect: vector=14 ec=0x%lx rip=0x%lx cr2=0x%lx\n", ec, (uint64_t)(uintptr_t)at, addr);
    if (ec & 2) {
      __asm__ __volatile__(".globl trap_pf_write\ntrap_pf_write: movq %%rax, (%0)" : : "r"(addr) : "memory");
    } else {
      __asm__ __volatile__(".globl trap_pf_read\ntrap_pf_read: movq (%0), %%rax" : : "r"(addr) : "rax", "memory");
    }
  } else {
    hvt_printf("abort_trap: unknown mode %s\n", mode);
    return 1;
  }
  hvt_puts("abort_trap: FAIL, no exception\n");
  return 2;
}
