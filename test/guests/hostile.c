/* hostile: misbehaves in the way the first command-line word asks, to check
 * that the tender stays in control (docs/abi.md §9.2, §9.3). Each mode prints
 * "mode: NAME" and, where useful, "expect: ..." with the address and size
 * the tender should reject, then acts. A mode the tender gets right never
 * returns; if the guest survives it prints "survived" and exits 0 (a
 * `*-ok` control mode) or 2 (the tender accepted something it should not).
 *
 * mem_size below is bi->mem_size.
 *   puts-struct-outside  PUTS struct at mem_size                 gpa=mem_size sz=16
 *   puts-data-outside    PUTS data at mem_size+4096, len 5       gpa=mem_size+0x1000 sz=5
 *   puts-data-straddle   PUTS data at mem_size-4, len 8          gpa=mem_size-4 sz=8
 *   puts-wrap            data 0x200000, len 2^64-0x100 (wraps)   gpa=0x200000 sz=18446744073709551360
 *   puts-end-at-memsize  data mem_size-16, len 16 (end=mem_size; rejected, docs/abi.md §9.3)
 *   puts-end-ok          data mem_size-16, len 15 (control: prints "top-of-memory!")
 *   walltime-outside     WALLTIME struct at mem_size-4           gpa=mem_size-4 sz=8
 *   poll-outside         POLL struct at mem_size-8               gpa=mem_size-8 sz=24
 *   halt-outside         HALT struct at mem_size+4096            gpa=mem_size+0x1000 sz=16
 *   halt-cookie-outside  HALT cookie at mem_size-256             gpa=mem_size-256 sz=512
 *   walltime-into-text   WALLTIME struct in the read-only text   gpa=<printed> sz=8
 *   hypercall-0          32-bit OUT to port 0x500                num=0
 *   hypercall-unregistered  BLOCK_WRITE, no block device        num=4
 *   port-509, port-600   32-bit OUT to 0x509 / 0x600
 *   in                   32-bit IN from 0x502
 *   out8, out16          8-/16-bit OUT to 0x502
 *   triple-fault         ud2 with no IDT installed (exit reason 8)
 */
#include "hvt.h"

HVT_MANIFEST();

extern const char hostile_ud2[];

static void text_target(void) {}

static volatile struct hvt_hc_puts msg;

static void puts_at(uint64_t data, uint64_t len) {
  msg.data = data;
  msg.len = len;
  hvt_hypercall(HVT_HC_PUTS, &msg);
}

static void expect(uint64_t gpa, uint64_t sz) {
  hvt_printf("expect: gpa=0x%lx sz=%lu\n", gpa, sz);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[48];
  hvt_next_word(&cmdline, mode, sizeof mode);
  hvt_printf("mode: %s\n", mode);
  const uint64_t top = bi->mem_size;
  const uint32_t ok_gpa = (uint32_t)(uintptr_t)&msg;
  msg.data = (uint64_t)(uintptr_t)"hostile\n";
  msg.len = 8;

  if (strcmp(mode, "puts-struct-outside") == 0) {
    expect(top, 16);
    hvt_outl(HVT_PORT_BASE + HVT_HC_PUTS, (uint32_t)top);
  } else if (strcmp(mode, "puts-data-outside") == 0) {
    expect(top + 0x1000, 5);
    puts_at(top + 0x1000, 5);
  } else if (strcmp(mode, "puts-data-straddle") == 0) {
    expect(top - 4, 8);
    puts_at(top - 4, 8);
  } else if (strcmp(mode, "puts-wrap") == 0) {
    expect(0x200000, 0 - 0x100ull);
    puts_at(0x200000, 0 - 0x100ull);
  } else if (strcmp(mode, "puts-end-at-memsize") == 0 || strcmp(mode, "puts-end-ok") == 0) {
    /* [mem_size-16, mem_size) lies above the entry stack frame: unused. */
    char *p = (char *)(uintptr_t)(top - 16);
    memcpy(p, "top-of-memory!\n!", 16);
    int at_end = strcmp(mode, "puts-end-at-memsize") == 0;
    if (at_end) expect(top - 16, 16);
    puts_at(top - 16, at_end ? 16 : 15);
    if (!at_end) {
      hvt_puts("survived\n");
      return 0;
    }
  } else if (strcmp(mode, "walltime-outside") == 0) {
    expect(top - 4, 8);
    hvt_outl(HVT_PORT_BASE + HVT_HC_WALLTIME, (uint32_t)(top - 4));
  } else if (strcmp(mode, "poll-outside") == 0) {
    expect(top - 8, 24);
    hvt_outl(HVT_PORT_BASE + HVT_HC_POLL, (uint32_t)(top - 8));
  } else if (strcmp(mode, "halt-outside") == 0) {
    expect(top + 0x1000, 16);
    hvt_outl(HVT_PORT_BASE + HVT_HC_HALT, (uint32_t)(top + 0x1000));
  } else if (strcmp(mode, "halt-cookie-outside") == 0) {
    expect(top - 256, 512);
    volatile struct hvt_hc_halt h = { .cookie = top - 256, .exit_status = 0 };
    hvt_hypercall(HVT_HC_HALT, &h);
  } else if (strcmp(mode, "walltime-into-text") == 0) {
    uint64_t t = (uint64_t)(uintptr_t)&text_target;
    expect(t, 8);
    hvt_outl(HVT_PORT_BASE + HVT_HC_WALLTIME, (uint32_t)t);
  } else if (strcmp(mode, "hypercall-0") == 0) {
    hvt_outl(HVT_PORT_BASE + 0, ok_gpa);
  } else if (strcmp(mode, "hypercall-unregistered") == 0) {
    volatile struct hvt_hc_block_io b = { .handle = 1, .data = ok_gpa, .len = 512 };
    hvt_hypercall(HVT_HC_BLOCK_WRITE, &b);
  } else if (strcmp(mode, "port-509") == 0) {
    hvt_outl(0x509, ok_gpa);
  } else if (strcmp(mode, "port-600") == 0) {
    hvt_outl(HVT_PORT_RING_KICK, 0);
  } else if (strcmp(mode, "in") == 0) {
    (void)hvt_inl(HVT_PORT_BASE + HVT_HC_PUTS);
  } else if (strcmp(mode, "out8") == 0) {
    hvt_outb(HVT_PORT_BASE + HVT_HC_PUTS, (uint8_t)ok_gpa);
  } else if (strcmp(mode, "out16") == 0) {
    hvt_outw(HVT_PORT_BASE + HVT_HC_PUTS, (uint16_t)ok_gpa);
  } else if (strcmp(mode, "triple-fault") == 0) {
    hvt_printf("expect: rip=0x%lx\n", (uint64_t)(uintptr_t)hostile_ud2);
    __asm__ __volatile__(".globl hostile_ud2\nhostile_ud2: ud2");
  } else {
    hvt_printf("hostile: unknown mode '%s'\n", mode);
    return 1;
  }
  hvt_puts("survived\n");
  return 2;
}
