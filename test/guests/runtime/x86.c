/*
 * CPU tables for guests that take exceptions or run code in user mode
 * (abort_trap, sse). Only linked into a guest that calls these functions
 * (--gc-sections).
 *
 * hvt_trap_install() loads a GDT of our own (the tender's GDT at 0x1000 is
 * not mapped in the guest page tables, so the CPU could not use it to deliver
 * an exception), a 64-bit TSS whose RSP0 is a private kernel stack, and an
 * IDT with the 32 exception vectors plus vector 0x80, which user mode may
 * raise with `int $0x80` to come back to CPL 0.
 *
 * hvt_enter_user() switches to identity-mapped page tables of our own with
 * the U/S bit set (the tender's have none) and IRETs to CPL 3. On this
 * machine's KVM (PVM) CPL-3 code runs natively while CPL-0 code is emulated,
 * and the emulator implements few SSE/AVX instructions: see sse.c.
 */
#include "hvt.h"

/* GDT: null, kernel code 0x08, kernel data 0x10, user data 0x18, user code
 * 0x20, TSS 0x28 (16 bytes). Kernel code/data match the tender's (§7.2). */
static uint64_t gdt[7] __attribute__((aligned(16)));
static uint64_t idt[2 * 256] __attribute__((aligned(16)));
static uint32_t tss[26] __attribute__((aligned(16)));
static uint64_t kstack[2048] __attribute__((aligned(16)));
/* User page tables: PML4, PDPT, 4 PDs of 2 MiB pages = the first 4 GiB. */
static uint64_t upml4[512] __attribute__((aligned(4096)));
static uint64_t updpt[512] __attribute__((aligned(4096)));
static uint64_t upd[4][512] __attribute__((aligned(4096)));

static hvt_trap_handler_t trap_handler;

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };

extern const char hvt_trap_stubs[], hvt_trap_stub_0x80[];

/* 32 exception stubs, 16 bytes apart, then the 0x80 stub: push a zero error
 * code where the CPU pushes none, push the vector, call the C handler with a
 * pointer to the frame on a 16-byte aligned stack. */
__asm__(
    "  .pushsection .text.hvt_trap_stubs, \"ax\", @progbits\n"
    "  .balign 16\n"
    "hvt_trap_stubs:\n"
    "  .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "  .balign 16\n"
    "  .if (\\n == 8) | ((\\n >= 10) & (\\n <= 14)) | (\\n == 17) | (\\n == 21) | (\\n == 29) | (\\n == 30)\n"
    "  .else\n"
    "  pushq $0\n"
    "  .endif\n"
    "  pushq $\\n\n"
    "  jmp hvt_trap_common\n"
    "  .endr\n"
    "  .balign 16\n"
    "hvt_trap_stub_0x80:\n"
    "  pushq $0\n"
    "  pushq $0x80\n"
    "hvt_trap_common:\n"
    "  movq %rsp, %rdi\n"
    "  andq $-16, %rsp\n"
    "  call hvt_trap_dispatch\n"
    "  ud2\n"
    "  .popsection\n");

__attribute__((noreturn, used)) void hvt_trap_dispatch(const struct hvt_trap_regs *r) {
  trap_handler(r);
  hvt_printf("trap handler returned (vector=%lu)\n", r->vector);
  hvt_halt(255, 0);
}

static void set_gate(unsigned v, uint64_t h, unsigned dpl) {
  /* Interrupt gate: present, type 0xE, selector 0x08, IST 0. */
  idt[2 * v] = (h & 0xFFFF) | (0x08ull << 16) | ((0x8Eull | (uint64_t)dpl << 5) << 40) |
               ((h >> 16 & 0xFFFF) << 48);
  idt[2 * v + 1] = h >> 32;
}

void hvt_trap_install(hvt_trap_handler_t handler) {
  trap_handler = handler;
  gdt[0] = 0;
  gdt[1] = 0x00AF99000000FFFFull; /* 64-bit code, DPL 0 */
  gdt[2] = 0x00CF93000000FFFFull; /* data, DPL 0 */
  gdt[3] = 0x00CFF3000000FFFFull; /* data, DPL 3 */
  gdt[4] = 0x00AFFB000000FFFFull; /* 64-bit code, DPL 3 */
  uint64_t t = (uint64_t)(uintptr_t)tss;
  uint64_t sp0 = (uint64_t)(uintptr_t)&kstack[2048];
  tss[1] = (uint32_t)sp0; /* RSP0 */
  tss[2] = (uint32_t)(sp0 >> 32);
  tss[25] = (uint32_t)sizeof tss << 16; /* I/O bitmap base past the limit: no ports */
  gdt[5] = (sizeof tss - 1) | ((t & 0xFFFFFF) << 16) | (0x89ull << 40) | ((t >> 24 & 0xFF) << 56);
  gdt[6] = t >> 32;
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
      "movw $0x28, %%ax\n\t"
      "ltr %%ax\n\t"
      : : "m"(g) : "rax", "memory");
  for (unsigned v = 0; v < 32; v++) set_gate(v, (uint64_t)(uintptr_t)hvt_trap_stubs + 16 * v, 0);
  set_gate(0x80, (uint64_t)(uintptr_t)hvt_trap_stub_0x80, 3);
  struct dtr i = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
  __asm__ __volatile__("lidt %0" : : "m"(i) : "memory");
}

void hvt_enter_user(void (*fn)(void), uint64_t stack_top) {
  uint64_t mem = hvt_bi->mem_size;
  upml4[0] = (uint64_t)(uintptr_t)updpt | 7; /* P, RW, U */
  for (unsigned i = 0; i < 4; i++) updpt[i] = (uint64_t)(uintptr_t)upd[i] | 7;
  for (uint64_t a = 0; a < mem && a < (4ull << 30); a += 0x200000) {
    upd[a >> 30][(a >> 21) & 511] = a | 0x87; /* P, RW, U, PS */
  }
  __asm__ __volatile__("mov %0, %%cr3" : : "r"((uint64_t)(uintptr_t)upml4) : "memory");
  __asm__ __volatile__(
      "movl $0x1b, %%eax\n\t"
      "movl %%eax, %%ds\n\t"
      "movl %%eax, %%es\n\t"
      "pushq $0x1b\n\t" /* SS */
      "pushq %0\n\t"    /* RSP */
      "pushq $0x2\n\t"  /* RFLAGS: IF clear */
      "pushq $0x23\n\t" /* CS */
      "pushq %1\n\t"    /* RIP */
      "iretq"
      : : "r"(stack_top & ~0xFull), "r"((uint64_t)(uintptr_t)fn) : "rax", "memory");
  __builtin_unreachable();
}
