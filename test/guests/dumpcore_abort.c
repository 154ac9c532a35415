// hvt-build: debug
/* dumpcore_abort: aborts (HALT status 255, no cookie) from three nested
 * application functions, the way solo5_abort() ends a unikernel, for the
 * dumpcore tests (test/kvm/dumpcore.test.ts) to read back with gdb.
 *
 * Built with -g -O0 and frame pointers. Before aborting it leaves values the
 * tests look for in the core: a global (dumpcore_marker), locals of each
 * frame, and a byte in the very last byte of guest memory (above the initial
 * stack pointer, mem_size - 8, so nothing else uses it). It prints them as
 * name=value lines first. With the argument "exit" it returns 0 instead
 * (status 0 leaves no core).
 */
#include "hvt.h"

HVT_MANIFEST();

volatile uint64_t dumpcore_marker;
#define MARKER 0xc0de5eedf00dull
#define LAST_BYTE 0xa5

/* HALT with status 255 and no cookie, issued here rather than in the
 * runtime (built without debug information) so that the innermost frame is
 * one gdb can unwind through. */
__attribute__((noinline, noreturn)) static void guest_abort(void) {
  volatile struct hvt_hc_halt h = { .cookie = 0, .exit_status = 255 };
  for (;;) hvt_hypercall(HVT_HC_HALT, &h);
}

__attribute__((noinline)) static void app_inner(int depth, uint64_t key) {
  volatile int inner_depth = depth;
  volatile uint64_t inner_key = key;
  hvt_printf("inner_depth=%d inner_key=0x%lx\n", inner_depth, inner_key);
  dumpcore_marker = MARKER;
  guest_abort();
}

__attribute__((noinline)) static void app_middle(int depth) {
  app_inner(depth + 1, 0x1234abcdull * (uint64_t)depth);
}

__attribute__((noinline)) static void app_outer(int depth) {
  app_middle(depth + 1);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  volatile uint8_t *last = (volatile uint8_t *)(uintptr_t)(bi->mem_size - 1);
  *last = LAST_BYTE;
  hvt_printf("mem_size=0x%lx marker=0x%lx marker_at=%p last_byte=0x%x\n", bi->mem_size, (uint64_t)MARKER,
             (void *)&dumpcore_marker, *last);
  if (strcmp(cmdline, "exit") == 0) return 0;
  app_outer(1);
  return 1;
}
