// hvt-build: debug
/* gdb_target: the guest of the gdb stub tests (test/kvm/gdb*.test.ts),
 * built with -g -O0 and frame pointers so that gdb sees functions, lines,
 * locals and globals. `gdb_target.hvt MODE`:
 *
 *   calls  gdb_outer(2) → gdb_middle(3) → gdb_leaf(4); prints
 *          "outer=N value=V counter=C" (set gdb_value from gdb to change N
 *          and V), then "calls done"
 *   regs   loads known values into rax–r15 (not rsp) and RFLAGS (CF ZF SF
 *          OF), stops at gdb_regs_stop (a nop), then stores what the
 *          registers hold after it and prints them as "NAME=0x…" lines
 *   watch  stores 1, 2, 3 into gdb_watched (gdb_watch_writes), prints "watched=3"
 *   many   calls gdb_f1 … gdb_f6, each adds to gdb_counter; prints "many counter=C"
 *   spin   prints "spinning", counts gdb_spin_count in gdb_spin_loop until
 *          gdb_spin_flag is set, then prints "spun flag=F"
 *   poll   prints "polling", sleeps in 1 s POLLs until gdb_spin_flag is set
 *   fault  writes to address 8 (unmapped: no IDT, so the CPU triple-faults)
 */
#include "hvt.h"

HVT_MANIFEST();

volatile int gdb_value = 1;
volatile long gdb_counter;
const char gdb_greeting[] = "hello from gdb_target";
volatile long gdb_watched;
volatile long gdb_spin_flag, gdb_spin_count;
uint64_t gdb_regs_seen[16];

int gdb_leaf(int x) {
  int doubled = x * 2;
  gdb_counter++;
  return doubled + 1;
}

int gdb_middle(int x) {
  int r = gdb_leaf(x + 1);
  return r * 3;
}

int gdb_outer(int x) {
  int a = gdb_middle(x + 1);
  int b = a + gdb_value;
  return b;
}

void gdb_watch_writes(void) {
  gdb_watched = 1;
  gdb_watched = 2;
  gdb_watched = 3;
}

void gdb_f1(void) { gdb_counter += 1; }
void gdb_f2(void) { gdb_counter += 10; }
void gdb_f3(void) { gdb_counter += 100; }
void gdb_f4(void) { gdb_counter += 1000; }
void gdb_f5(void) { gdb_counter += 10000; }
void gdb_f6(void) { gdb_counter += 100000; }

void gdb_spin_loop(void) {
  while (!gdb_spin_flag) gdb_spin_count++;
}

/* rax rbx rcx rdx rsi rdi rbp r8–r15 get 0x<n>1<n>2…-style values; RFLAGS 0x8c3. */
void gdb_regs_probe(void);
__asm__(
    "  .pushsection .text.gdb_regs, \"ax\", @progbits\n"
    "  .globl gdb_regs_probe, gdb_regs_stop\n"
    "  .type gdb_regs_probe, @function\n"
    "gdb_regs_probe:\n"
    "  pushq %rbx\n  pushq %rbp\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movabsq $0x0a0a0a0a0a0a0a01, %rax\n"
    "  movabsq $0x0b0b0b0b0b0b0b02, %rbx\n"
    "  movabsq $0x0c0c0c0c0c0c0c03, %rcx\n"
    "  movabsq $0x0d0d0d0d0d0d0d04, %rdx\n"
    "  movabsq $0x5151515151515105, %rsi\n"
    "  movabsq $0xd1d1d1d1d1d1d106, %rdi\n"
    "  movabsq $0xb0b0b0b0b0b0b007, %rbp\n"
    "  movabsq $0x0808080808080808, %r8\n"
    "  movabsq $0x0909090909090909, %r9\n"
    "  movabsq $0x101010101010100a, %r10\n"
    "  movabsq $0x111111111111110b, %r11\n"
    "  movabsq $0x121212121212120c, %r12\n"
    "  movabsq $0x131313131313130d, %r13\n"
    "  movabsq $0x141414141414140e, %r14\n"
    "  movabsq $0x151515151515150f, %r15\n"
    "  pushq $0x8c3\n"
    "  popfq\n"
    "gdb_regs_stop:\n"
    "  nop\n"
    "  movq %rax, gdb_regs_seen+0(%rip)\n"
    "  movq %rbx, gdb_regs_seen+8(%rip)\n"
    "  movq %rcx, gdb_regs_seen+16(%rip)\n"
    "  movq %rdx, gdb_regs_seen+24(%rip)\n"
    "  movq %rsi, gdb_regs_seen+32(%rip)\n"
    "  movq %rdi, gdb_regs_seen+40(%rip)\n"
    "  movq %rbp, gdb_regs_seen+48(%rip)\n"
    "  movq %r8, gdb_regs_seen+56(%rip)\n"
    "  movq %r9, gdb_regs_seen+64(%rip)\n"
    "  movq %r10, gdb_regs_seen+72(%rip)\n"
    "  movq %r11, gdb_regs_seen+80(%rip)\n"
    "  movq %r12, gdb_regs_seen+88(%rip)\n"
    "  movq %r13, gdb_regs_seen+96(%rip)\n"
    "  movq %r14, gdb_regs_seen+104(%rip)\n"
    "  movq %r15, gdb_regs_seen+112(%rip)\n"
    "  pushfq\n"
    "  popq gdb_regs_seen+120(%rip)\n"
    "  pushq $0x2\n"
    "  popfq\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbp\n  popq %rbx\n"
    "  ret\n"
    "  .size gdb_regs_probe, . - gdb_regs_probe\n"
    "  .popsection\n");

static void regs(void) {
  static const char *const names[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9",
                                          "r10", "r11", "r12", "r13", "r14", "r15", "rflags" };
  gdb_regs_probe();
  for (int i = 0; i < 16; i++) hvt_printf("%s=0x%lx\n", names[i], gdb_regs_seen[i]);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  if (strcmp(cmdline, "calls") == 0) {
    int r = gdb_outer(2);
    hvt_printf("outer=%d value=%d counter=%ld\n", r, gdb_value, gdb_counter);
    hvt_printf("%s\n", gdb_greeting);
    hvt_puts("calls done\n");
  } else if (strcmp(cmdline, "regs") == 0) {
    regs();
  } else if (strcmp(cmdline, "watch") == 0) {
    gdb_watch_writes();
    hvt_printf("watched=%ld\n", gdb_watched);
  } else if (strcmp(cmdline, "many") == 0) {
    gdb_f1();
    gdb_f2();
    gdb_f3();
    gdb_f4();
    gdb_f5();
    gdb_f6();
    hvt_printf("many counter=%ld\n", gdb_counter);
  } else if (strcmp(cmdline, "spin") == 0) {
    hvt_puts("spinning\n");
    gdb_spin_loop();
    hvt_printf("spun flag=%ld\n", gdb_spin_flag);
  } else if (strcmp(cmdline, "poll") == 0) {
    hvt_puts("polling\n");
    while (!gdb_spin_flag) hvt_poll(1000000000ull, 0);
    hvt_printf("polled flag=%ld\n", gdb_spin_flag);
  } else if (strcmp(cmdline, "fault") == 0) {
    *(volatile long *)(uintptr_t)8 = 1;
    hvt_puts("not reached\n");
  } else {
    hvt_printf("gdb_target: unknown mode '%s'\n", cmdline);
    return 2;
  }
  return 0;
}
