/* abort_trap: installs its own GDT and IDT (the tender's GDT at 0x1000 is not
 * mapped in the guest page tables, so the CPU could not deliver an exception
 * through it), triggers a CPU exception and, like Solo5's bindings, HALTs
 * with status 255 and cookie = GPA of a trap frame (spec §10.8: CR2 @0,
 * error code @8, RIP @16, CS @24, RFLAGS @32, RSP @40, SS @48).
 *
 * The first command-line word picks the exception:
 *   ud2 (default)  #UD, vector 6
 *   div0           #DE, vector 0
 *   int3           #BP, vector 3 (a trap: RIP is after the instruction)
 *   pf-ro          #PF writing boot info at 0x10000 (read-only, CR0.WP=1)
 *   pf-low         #PF reading 0x1000 (tender GDT page, not mapped)
 *   pf-above       #PF reading mem_size (above guest memory, not mapped)
 * Before the exception it prints "expect: ..." with the values it predicts.
 */
#include "hvt.h"

HVT_MANIFEST();

struct trap_regs { uint64_t vector, ec, rip, cs, rflags, rsp, ss; };

static uint64_t gdt[3] __attribute__((aligned(16)));
static uint64_t idt[2 * 32] __attribute__((aligned(16)));
static uint64_t trap_frame[HVT_COOKIE_SIZE / 8] __attribute__((aligned(16)));

extern const char trap_stubs[];
extern const char trap_ud2[], trap_div0[], trap_int3_after[], trap_pf_write[], trap_pf_read[];

/* 32 stubs, 16 bytes apart: push a zero error code where the CPU does not
 * push one, push the vector, join trap_common. */
__asm__(
    "  .text\n"
    "  .balign 16\n"
    "trap_stubs:\n"
    "  .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "  .balign 16\n"
    "  .if (\\n == 8) | ((\\n >= 10) & (\\n <= 14)) | (\\n == 17) | (\\n == 21) | (\\n == 29) | (\\n == 30)\n"
    "  .else\n"
    "  pushq $0\n"
    "  .endif\n"
    "  pushq $\\n\n"
    "  jmp trap_common\n"
    "  .endr\n"
    "trap_common:\n"
    "  movq %rsp, %rdi\n"
    "  andq $-16, %rsp\n"
    "  call trap_handler\n"
    "  ud2\n");

__attribute__((noreturn, used)) void trap_handler(const struct trap_regs *r) {
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

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };

static void install_tables(void) {
  gdt[0] = 0;
  gdt[1] = 0x00AF99000000FFFFull; /* 64-bit code, selector 0x08 */
  gdt[2] = 0x00CF93000000FFFFull; /* data, selector 0x10 */
  struct dtr g = { sizeof gdt - 1, (uint64_t)(uintptr_t)gdt };
  __asm__ __volatile__(
      "lgdt %0\n\t"
      "pushq $0x08\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "lretq\n"
      "1:\n\t"
      "movl $0x10, %%eax\n\t"
      "movl %%eax, %%ds\n\t"
      "movl %%eax, %%es\n\t"
      "movl %%eax, %%ss\n\t"
      : : "m"(g) : "rax", "memory");
  for (int v = 0; v < 32; v++) {
    uint64_t h = (uint64_t)(uintptr_t)trap_stubs + 16 * (uint64_t)v;
    /* Interrupt gate: present, DPL 0, type 0xE, selector 0x08, IST 0. */
    idt[2 * v] = (h & 0xFFFF) | (0x08ull << 16) | (0x8Eull << 40) | ((h >> 16 & 0xFFFF) << 48);
    idt[2 * v + 1] = h >> 32;
  }
  struct dtr i = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
  __asm__ __volatile__("lidt %0" : : "m"(i) : "memory");
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[32];
  hvt_next_word(&cmdline, mode, sizeof mode);
  if (!mode[0]) memcpy(mode, "ud2", 4);
  install_tables();
  hvt_printf("abort_trap: mode %s, tables installed\n", mode);

  if (strcmp(mode, "ud2") == 0) {
    hvt_printf("expect: vector=6 rip=0x%lx\n", (uint64_t)(uintptr_t)trap_ud2);
    __asm__ __volatile__(".globl trap_ud2\ntrap_ud2: ud2");
  } else if (strcmp(mode, "div0") == 0) {
    hvt_printf("expect: vector=0 rip=0x%lx\n", (uint64_t)(uintptr_t)trap_div0);
    __asm__ __volatile__("xorl %%ecx, %%ecx\n\tmovl $1, %%eax\n\txorl %%edx, %%edx\n\t"
                         ".globl trap_div0\ntrap_div0: divl %%ecx" : : : "rax", "rcx", "rdx");
  } else if (strcmp(mode, "int3") == 0) {
    hvt_printf("expect: vector=3 rip=0x%lx\n", (uint64_t)(uintptr_t)trap_int3_after);
    __asm__ __volatile__("int3\n.globl trap_int3_after\ntrap_int3_after:");
  } else if (hvt_starts_with(mode, "pf-")) {
    uint64_t addr, ec;
    if (strcmp(mode, "pf-ro") == 0) { addr = HVT_BOOT_INFO_GPA; ec = 3; }       /* P|W */
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
