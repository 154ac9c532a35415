/* state: prints the guest-visible entry state (docs/abi.md §7, §19.2) as key=value
 * lines: registers at entry (saved by _start), control registers, EFER,
 * descriptor tables and segment selectors, for the tests to compare. */
#include "hvt.h"

HVT_MANIFEST();

#define MSR_EFER 0xC0000080u

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };

static const char *const names[HVT_ENTRY_NREGS] = {
  "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
  "r10", "r11", "r12", "r13", "r14", "r15", "rflags",
};

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)cmdline;
  for (int i = 0; i < HVT_ENTRY_NREGS; i++) hvt_printf("%s=0x%lx\n", names[i], hvt_entry_regs[i]);
  uint64_t cr0, cr3, cr4;
  __asm__ __volatile__("mov %%cr0, %0" : "=r"(cr0));
  __asm__ __volatile__("mov %%cr3, %0" : "=r"(cr3));
  __asm__ __volatile__("mov %%cr4, %0" : "=r"(cr4));
  hvt_printf("cr0=0x%lx\ncr3=0x%lx\ncr4=0x%lx\n", cr0, cr3, cr4);
  hvt_printf("efer=0x%lx\n", hvt_rdmsr(MSR_EFER));
  struct dtr g, i;
  __asm__ __volatile__("sgdt %0" : "=m"(g));
  __asm__ __volatile__("sidt %0" : "=m"(i));
  hvt_printf("gdtr=0x%lx/0x%x\nidtr=0x%lx/0x%x\n", g.base, g.limit, i.base, i.limit);
  uint16_t cs, ss, ds, es, fs, gs;
  __asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
  __asm__ __volatile__("mov %%ss, %0" : "=r"(ss));
  __asm__ __volatile__("mov %%ds, %0" : "=r"(ds));
  __asm__ __volatile__("mov %%es, %0" : "=r"(es));
  __asm__ __volatile__("mov %%fs, %0" : "=r"(fs));
  __asm__ __volatile__("mov %%gs, %0" : "=r"(gs));
  hvt_printf("cs=0x%x ss=0x%x ds=0x%x es=0x%x fs=0x%x gs=0x%x\n", cs, ss, ds, es, fs, gs);
  hvt_printf("mem_size=0x%lx\n", bi->mem_size);
  /* The return slot above the entry RSP reads as zero. */
  hvt_printf("ret_slot=0x%lx\n", *(volatile uint64_t *)(uintptr_t)(bi->mem_size - 8));
  return 0;
}
