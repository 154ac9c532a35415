/* debug: the guest of the debug-primitive tests (test/kvm/debug.test.ts).
 *
 * `debug.hvt MODE`. Each mode first prints the addresses the test needs as
 * name=0x… lines, then stops at an "arm" point: a PUTS of "arm MODE\n" issued
 * by the mode's assembly itself, so that the test sets up registers or debug
 * state exactly before a known instruction sequence. The sequences are
 * hand-written assembly (instruction boundaries are the global labels); all
 * of it runs at CPL 0, where this machine's PVM emulates every instruction.
 *
 *   regs   registers loaded with known values at the arm exit; the test reads
 *          them, writes others, and the guest prints what it then holds
 *   sregs  FS base set to 0x12345000 with WRMSR, then control registers,
 *          descriptor tables and selectors printed (as state.c), then an arm
 *          exit; after it the FS base (which the test may have changed) again
 *   fpu    XMM0–XMM15 loaded with distinct bytes (moves only), then arm
 *   step   arm, then nop / mov / add / lea / jmp / mov / ret
 *   hw     arm, then a call of debug_hw_target (an execution breakpoint)
 *   watch  arm, then a store to debug_watch_var (a write watchpoint)
 *   int3   arm, then an int3 at debug_int3_at (a software breakpoint)
 *   spin   prints "spinning", counts until debug_spin_flag becomes non-zero
 *   poll   a 10 s POLL, then a 200 ms one; prints both results
 *   user-watch, user-int3
 *          arm at CPL 0, then at CPL 3 (runtime x86.c, which PVM runs on the
 *          CPU, not emulated) a store to debug_watch_var, or an int3; then
 *          ud2, whose #UD the guest's own handler reports ("trap vector=6")
 *          before it halts
 */
#include "hvt.h"

HVT_MANIFEST();

#define MSR_FS_BASE 0xC0000100u

/* Results the assembly stores: rax rbx rcx rdx rsi rdi rbp r8..r15 rflags. */
uint64_t debug_probe_out[16];
volatile uint64_t debug_watch_var __attribute__((aligned(8)));
volatile uint64_t debug_spin_flag, debug_spin_count;
static const uint8_t xmm_pattern[256] __attribute__((aligned(16))) = {
#define ROW(r) r * 16 + 0, r * 16 + 1, r * 16 + 2, r * 16 + 3, r * 16 + 4, r * 16 + 5, r * 16 + 6, r * 16 + 7, \
               r * 16 + 8, r * 16 + 9, r * 16 + 10, r * 16 + 11, r * 16 + 12, r * 16 + 13, r * 16 + 14, r * 16 + 15
  ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7),
  ROW(8), ROW(9), ROW(10), ROW(11), ROW(12), ROW(13), ROW(14), ROW(15),
#undef ROW
};

/* Every sequence takes rdi = a PUTS argument ("arm MODE\n") and issues it
 * itself, so the instruction after the OUT is the sequence's first. */
void debug_regs_probe(volatile struct hvt_hc_puts *arm);
uint64_t debug_step_seq(volatile struct hvt_hc_puts *arm);
uint64_t debug_hw_seq(volatile struct hvt_hc_puts *arm);
void debug_watch_seq(volatile struct hvt_hc_puts *arm);
uint64_t debug_int3_seq(volatile struct hvt_hc_puts *arm);
void debug_fpu_seq(volatile struct hvt_hc_puts *arm, const uint8_t *pattern);
void debug_user_watch(void);
void debug_user_int3(void);
extern char debug_user_store[], debug_user_after[], debug_user_int3_at[], debug_user_int3_after[];
extern char debug_regs_out[], debug_step_0[], debug_step_1[], debug_step_2[], debug_step_3[], debug_step_4[],
    debug_step_5[], debug_step_end[], debug_hw_target[], debug_watch_store[], debug_watch_after[], debug_int3_at[],
    debug_int3_after[];

#define ARM "  movq %rdi, %rax\n  movl $0x502, %edx\n  outl %eax, (%dx)\n"
__asm__(
    "  .pushsection .text.debug_seqs, \"ax\", @progbits\n"
    "  .globl debug_regs_probe, debug_regs_out\n"
    "debug_regs_probe:\n"
    "  pushq %rbx\n  pushq %rbp\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movabsq $0x1111111111111101, %rbx\n"
    "  movabsq $0x2222222222222202, %rcx\n"
    "  movabsq $0x3333333333333303, %rsi\n"
    "  movabsq $0x5555555555555505, %rbp\n"
    "  movabsq $0x8888888888888808, %r8\n"
    "  movabsq $0x9999999999999909, %r9\n"
    "  movabsq $0xaaaaaaaaaaaaaa0a, %r10\n"
    "  movabsq $0xbbbbbbbbbbbbbb0b, %r11\n"
    "  movabsq $0xcccccccccccccc0c, %r12\n"
    "  movabsq $0xdddddddddddddd0d, %r13\n"
    "  movabsq $0xeeeeeeeeeeeeee0e, %r14\n"
    "  movabsq $0xffffffffffffff0f, %r15\n"
    "  movq %rdi, %rax\n"
    "  movl $0x502, %edx\n"
    "debug_regs_out:\n"
    "  outl %eax, (%dx)\n"
    "  movq %rax, debug_probe_out+0(%rip)\n"
    "  movq %rbx, debug_probe_out+8(%rip)\n"
    "  movq %rcx, debug_probe_out+16(%rip)\n"
    "  movq %rdx, debug_probe_out+24(%rip)\n"
    "  movq %rsi, debug_probe_out+32(%rip)\n"
    "  movq %rdi, debug_probe_out+40(%rip)\n"
    "  movq %rbp, debug_probe_out+48(%rip)\n"
    "  movq %r8, debug_probe_out+56(%rip)\n"
    "  movq %r9, debug_probe_out+64(%rip)\n"
    "  movq %r10, debug_probe_out+72(%rip)\n"
    "  movq %r11, debug_probe_out+80(%rip)\n"
    "  movq %r12, debug_probe_out+88(%rip)\n"
    "  movq %r13, debug_probe_out+96(%rip)\n"
    "  movq %r14, debug_probe_out+104(%rip)\n"
    "  movq %r15, debug_probe_out+112(%rip)\n"
    "  pushfq\n"
    "  popq debug_probe_out+120(%rip)\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbp\n  popq %rbx\n"
    "  ret\n"

    "  .globl debug_step_seq, debug_step_0, debug_step_1, debug_step_2, debug_step_3, debug_step_4, debug_step_5, debug_step_end\n"
    "debug_step_seq:\n" ARM
    "debug_step_0: nop\n"
    "debug_step_1: movl $1, %eax\n"
    "debug_step_2: addl %eax, %eax\n"
    "debug_step_3: leal 3(%rax), %ecx\n"
    "debug_step_4: jmp debug_step_5\n"
    "  nop\n"
    "debug_step_5: movl %ecx, %eax\n"
    "debug_step_end: ret\n"

    "  .globl debug_hw_seq, debug_hw_target\n"
    "debug_hw_seq:\n" ARM
    "  nop\n"
    "  call debug_hw_target\n"
    "  ret\n"
    "debug_hw_target:\n"
    "  movl $7, %eax\n"
    "  ret\n"

    "  .globl debug_watch_seq, debug_watch_store, debug_watch_after\n"
    "debug_watch_seq:\n" ARM
    "  nop\n"
    "debug_watch_store: movq $42, debug_watch_var(%rip)\n"
    "debug_watch_after: nop\n"
    "  ret\n"

    "  .globl debug_int3_seq, debug_int3_at, debug_int3_after\n"
    "debug_int3_seq:\n" ARM
    "  nop\n"
    "debug_int3_at: int3\n"
    "debug_int3_after: movl $9, %eax\n"
    "  ret\n"

    "  .globl debug_user_watch, debug_user_store, debug_user_after\n"
    "debug_user_watch:\n"
    "debug_user_store: movq $43, debug_watch_var(%rip)\n"
    "debug_user_after: nop\n"
    "  ud2\n"
    "  .globl debug_user_int3, debug_user_int3_at, debug_user_int3_after\n"
    "debug_user_int3:\n"
    "debug_user_int3_at: int3\n"
    "debug_user_int3_after: nop\n"
    "  ud2\n"

    "  .globl debug_fpu_seq\n"
    "debug_fpu_seq:\n"
    "  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
    "  movdqa \\i*16(%rsi), %xmm\\i\n"
    "  .endr\n" ARM
    "  ret\n"
    "  .popsection\n");

static volatile struct hvt_hc_puts arm;

static volatile struct hvt_hc_puts *arm_for(const char *text) {
  arm.data = (uint64_t)(uintptr_t)text;
  arm.len = strlen(text);
  return &arm;
}

static void regs(void) {
  hvt_printf("regs_out=%p arm=%p\n", (void *)debug_regs_out, (void *)&arm);
  debug_regs_probe(arm_for("arm regs\n"));
  static const char *const names[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9",
                                          "r10", "r11", "r12", "r13", "r14", "r15", "rflags" };
  for (int i = 0; i < 16; i++) hvt_printf("%s=0x%lx\n", names[i], debug_probe_out[i]);
}

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };

static void sregs(void) {
  hvt_wrmsr(MSR_FS_BASE, 0x12345000);
  uint64_t cr0, cr3, cr4;
  __asm__ __volatile__("mov %%cr0, %0" : "=r"(cr0));
  __asm__ __volatile__("mov %%cr3, %0" : "=r"(cr3));
  __asm__ __volatile__("mov %%cr4, %0" : "=r"(cr4));
  struct dtr g, i;
  __asm__ __volatile__("sgdt %0" : "=m"(g));
  __asm__ __volatile__("sidt %0" : "=m"(i));
  uint16_t cs, ss, ds;
  __asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
  __asm__ __volatile__("mov %%ss, %0" : "=r"(ss));
  __asm__ __volatile__("mov %%ds, %0" : "=r"(ds));
  hvt_printf("cr0=0x%lx cr3=0x%lx cr4=0x%lx efer=0x%lx\n", cr0, cr3, cr4, hvt_rdmsr(0xC0000080u));
  hvt_printf("gdt=0x%lx/0x%x idt=0x%lx/0x%x cs=0x%x ss=0x%x ds=0x%x\n", g.base, g.limit, i.base, i.limit, cs, ss, ds);
  hvt_puts("arm sregs\n");
  hvt_printf("fs_base=0x%lx\n", hvt_rdmsr(MSR_FS_BASE));
}

static void spin(void) {
  hvt_printf("flag=%p count=%p\n", (void *)&debug_spin_flag, (void *)&debug_spin_count);
  hvt_puts("spinning\n");
  while (!debug_spin_flag) debug_spin_count++;
  hvt_printf("continued flag=%lu\n", debug_spin_flag);
}

static void poll(void) {
  hvt_puts("polling\n");
  int first = hvt_poll(10000000000ull, 0);
  int second = hvt_poll(200000000ull, 0);
  hvt_printf("poll ret=%d then ret=%d\n", first, second);
}

static uint64_t user_stack[512] __attribute__((aligned(16)));

static void on_trap(const struct hvt_trap_regs *r) {
  hvt_printf("trap vector=%lu rip=0x%lx cpl=%lu var=%lu\n", r->vector, r->rip, r->cs & 3, debug_watch_var);
  hvt_halt(0, 0);
}

static void user(const char *what, void (*fn)(void)) {
  hvt_trap_install(on_trap);
  hvt_puts(what);
  hvt_enter_user(fn, (uint64_t)(uintptr_t)&user_stack[512]);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  if (strcmp(cmdline, "regs") == 0) {
    regs();
  } else if (strcmp(cmdline, "sregs") == 0) {
    sregs();
  } else if (strcmp(cmdline, "fpu") == 0) {
    debug_fpu_seq(arm_for("arm fpu\n"), xmm_pattern);
  } else if (strcmp(cmdline, "step") == 0) {
    hvt_printf("step=%p,%p,%p,%p,%p,%p,%p\n", (void *)debug_step_0, (void *)debug_step_1, (void *)debug_step_2,
               (void *)debug_step_3, (void *)debug_step_4, (void *)debug_step_5, (void *)debug_step_end);
    hvt_printf("result=%lu\n", debug_step_seq(arm_for("arm step\n")));
  } else if (strcmp(cmdline, "hw") == 0) {
    hvt_printf("target=%p\n", (void *)debug_hw_target);
    hvt_printf("result=%lu\n", debug_hw_seq(arm_for("arm hw\n")));
  } else if (strcmp(cmdline, "watch") == 0) {
    hvt_printf("var=%p store=%p after=%p\n", (void *)&debug_watch_var, (void *)debug_watch_store,
               (void *)debug_watch_after);
    debug_watch_seq(arm_for("arm watch\n"));
    hvt_printf("var=%lu\n", debug_watch_var);
  } else if (strcmp(cmdline, "int3") == 0) {
    hvt_printf("at=%p after=%p\n", (void *)debug_int3_at, (void *)debug_int3_after);
    hvt_printf("result=%lu\n", debug_int3_seq(arm_for("arm int3\n")));
  } else if (strcmp(cmdline, "spin") == 0) {
    spin();
  } else if (strcmp(cmdline, "poll") == 0) {
    poll();
  } else if (strcmp(cmdline, "user-watch") == 0) {
    hvt_printf("var=%p store=%p after=%p\n", (void *)&debug_watch_var, (void *)debug_user_store,
               (void *)debug_user_after);
    user("arm user-watch\n", debug_user_watch);
  } else if (strcmp(cmdline, "user-int3") == 0) {
    hvt_printf("at=%p after=%p\n", (void *)debug_user_int3_at, (void *)debug_user_int3_after);
    user("arm user-int3\n", debug_user_int3);
  } else {
    hvt_printf("debug: unknown mode '%s'\n", cmdline);
    return 2;
  }
  return 0;
}
