/*
 * block_hostile: misuses the block hypercalls on the device "storage" in the
 * way the first command-line word asks (docs/abi.md §9.3, §10.5). Modes that the
 * tender must stop print "expect: gpa=0x... sz=N" (what the tender's
 * "Invalid guest access" line must name) and then issue the hypercall; if
 * the guest survives it prints "survived" and exits 2. mem_size is
 * bi->mem_size.
 *
 *   data-outside         BLOCK_READ into mem_size-100, len 512       fatal
 *   write-data-outside   BLOCK_WRITE from mem_size-100, len 512      fatal, disk untouched
 *   data-high            BLOCK_READ into 2^32 + a valid buffer       fatal (no truncation)
 *   data-end-at-memsize  BLOCK_READ into mem_size-16, len 16         fatal (end == mem_size, §9.3)
 *   data-end-ok          BLOCK_READ into mem_size-16, len 15         control: ret 0, prints the bytes
 *   struct-outside       BLOCK_READ structure at mem_size-20         fatal, sz=40
 *   write-struct-outside BLOCK_WRITE structure at mem_size+4096      fatal, sz=40
 *   data-in-text         BLOCK_READ into the read-only text segment  fatal, tender must not crash
 *   write-from-rodata    BLOCK_WRITE from read-only data (512 bytes) control: ret 0, disk holds
 *                        "block_hostile rodata block\n" then zeros
 *   einval-before-data   bad handle / offset past capacity / huge len, each with a data
 *                        address outside memory: must be EINVAL (2), not fatal (§10.5: the
 *                        handle and range are checked before the data buffer)
 *   write-then-spin SEED BLOCK_WRITE block 0 with the pattern of SEED (as in block_rw.c),
 *                        prints "written" once the hypercall returned OK, then spins
 *                        forever (the test SIGKILLs the tender and reads the disk)
 *
 * Controls print "block_hostile: ok" and exit 0.
 */
#include "hvt.h"

HVT_MANIFEST(HVT_BLOCK("storage"));

static uint8_t buf[4096] __attribute__((aligned(4096)));

static const char rodata_block[512] __attribute__((aligned(512))) = "block_hostile rodata block\n";

static void text_target(void) {}

static volatile struct hvt_hc_block_io io;

static uint32_t pattern_state(uint32_t seed, uint64_t block) {
  uint32_t s = (seed * 0x9E3779B1u) ^ ((uint32_t)(block + 1) * 0x85EBCA6Bu);
  return s ? s : 0x6B43A9B5u;
}

static void pattern(uint8_t *p, uint32_t len, uint32_t seed, uint64_t block) {
  uint32_t s = pattern_state(seed, block);
  for (uint32_t i = 0; i < len; i += 4) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    p[i] = (uint8_t)s;
    p[i + 1] = (uint8_t)(s >> 8);
    p[i + 2] = (uint8_t)(s >> 16);
    p[i + 3] = (uint8_t)(s >> 24);
  }
}

static void expect(uint64_t gpa, uint64_t sz) {
  hvt_printf("expect: gpa=0x%lx sz=%lu\n", gpa, sz);
}

/* Issues BLOCK_READ/WRITE through the static structure; returns ret. */
static int issue(unsigned nr, uint64_t handle, uint64_t offset, uint64_t data, uint64_t len) {
  io.handle = handle;
  io.offset = offset;
  io.data = data;
  io.len = len;
  io.ret = -1;
  hvt_hypercall(nr, &io);
  return io.ret;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[32], num[24];
  hvt_next_word(&cmdline, mode, sizeof mode);
  hvt_printf("mode: %s\n", mode);
  hvt_touch(buf, sizeof buf);
  const uint64_t top = bi->mem_size;
  int hi = hvt_mft_find("storage", HVT_MFT_BLOCK_BASIC);
  if (hi < 0) {
    hvt_puts("block_hostile: no block device 'storage'\n");
    return 1;
  }
  const uint64_t h = (uint64_t)hi;
  const uint64_t cap = hvt_mft()->e[hi].u.block.capacity;
  const uint64_t bs = hvt_mft()->e[hi].u.block.block_size;
  const uint64_t b = (uint64_t)(uintptr_t)buf;

  if (strcmp(mode, "data-outside") == 0) {
    expect(top - 100, 512);
    issue(HVT_HC_BLOCK_READ, h, 0, top - 100, 512);
  } else if (strcmp(mode, "write-data-outside") == 0) {
    expect(top - 100, 512);
    issue(HVT_HC_BLOCK_WRITE, h, 0, top - 100, 512);
  } else if (strcmp(mode, "data-high") == 0) {
    expect((1ull << 32) + b, 512);
    issue(HVT_HC_BLOCK_READ, h, 0, (1ull << 32) + b, 512);
  } else if (strcmp(mode, "data-end-at-memsize") == 0 || strcmp(mode, "data-end-ok") == 0) {
    /* [mem_size-16, mem_size) lies above the entry stack frame: unused. */
    int at_end = strcmp(mode, "data-end-at-memsize") == 0;
    if (at_end) expect(top - 16, 16);
    int r = issue(HVT_HC_BLOCK_READ, h, 0, top - 16, at_end ? 16 : 15);
    if (!at_end) {
      const uint8_t *p = (const uint8_t *)(uintptr_t)(top - 16);
      hvt_printf("ret=%d bytes:", r);
      for (int i = 0; i < 15; i++) hvt_printf(" %02x", p[i]);
      hvt_puts("\n");
      if (r != HVT_OK) return 1;
      hvt_puts("block_hostile: ok\n");
      return 0;
    }
  } else if (strcmp(mode, "struct-outside") == 0) {
    expect(top - 20, 40);
    hvt_outl(HVT_PORT_BASE + HVT_HC_BLOCK_READ, (uint32_t)(top - 20));
  } else if (strcmp(mode, "write-struct-outside") == 0) {
    expect(top + 4096, 40);
    hvt_outl(HVT_PORT_BASE + HVT_HC_BLOCK_WRITE, (uint32_t)(top + 4096));
  } else if (strcmp(mode, "data-in-text") == 0) {
    uint64_t t = (uint64_t)(uintptr_t)&text_target;
    expect(t, 512);
    issue(HVT_HC_BLOCK_READ, h, 0, t, 512);
  } else if (strcmp(mode, "write-from-rodata") == 0) {
    int r = issue(HVT_HC_BLOCK_WRITE, h, 0, (uint64_t)(uintptr_t)rodata_block, 512);
    hvt_printf("ret=%d\n", r);
    if (r != HVT_OK) return 1;
    hvt_puts("block_hostile: ok\n");
    return 0;
  } else if (strcmp(mode, "einval-before-data") == 0) {
    const struct { const char *what; uint64_t handle, offset, data, len; } cases[] = {
      { "handle 0", 0, 0, top + 4096, 512 },
      { "handle 1000", 1000, 0, top + 4096, 512 },
      { "handle 2^63", 1ull << 63, 0, ~0ull, 512 },
      { "offset capacity", h, cap, top + 4096, 512 },
      { "offset past capacity", h, cap + bs, top - 100, 512 },
      { "range past capacity", h, cap - 256, top - 100, 512 },
      { "len 2^63", h, 0, top - 100, 1ull << 63 },
      { "len 2^64-1", h, 0, 0x200000, ~0ull },
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      for (unsigned nr = HVT_HC_BLOCK_WRITE; nr <= HVT_HC_BLOCK_READ; nr++) {
        int r = issue(nr, cases[i].handle, cases[i].offset, cases[i].data, cases[i].len);
        if (r != HVT_EINVAL) {
          hvt_printf("block_hostile: FAIL %s %s: ret=%d, expected 2\n",
                     nr == HVT_HC_BLOCK_READ ? "read" : "write", cases[i].what, r);
          fails++;
        }
      }
    }
    if (fails) return 1;
    hvt_puts("block_hostile: ok\n");
    return 0;
  } else if (strcmp(mode, "write-then-spin") == 0) {
    int64_t seed;
    hvt_next_word(&cmdline, num, sizeof num);
    if (hvt_parse_i64(num, &seed) != 0 || bs > sizeof buf) {
      hvt_puts("usage: block_hostile.hvt write-then-spin SEED (block size <= 4096)\n");
      return 2;
    }
    pattern(buf, (uint32_t)bs, (uint32_t)seed, 0);
    int r = hvt_block_write(h, 0, buf, bs);
    if (r != HVT_OK) {
      hvt_printf("block_hostile: FAIL write ret=%d\n", r);
      return 1;
    }
    hvt_puts("written\n");
    for (;;) __asm__ __volatile__("pause");
  } else {
    hvt_printf("block_hostile: unknown mode '%s'\n", mode);
    return 1;
  }
  hvt_puts("survived\n");
  return 2;
}
