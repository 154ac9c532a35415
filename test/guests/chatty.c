/* chatty: prints without end, for tests of a console nobody reads.
 * `chatty.hvt` writes 64-byte lines; `chatty.hvt big` writes 256 KiB (of NUL
 * bytes: filling them in would take seconds of emulated guest code) per PUTS,
 * more than a pipe holds, so a blocked write can come back short, and `big N`
 * N such blocks, each numbered in its first 8 bytes; `chatty.hvt N` (a number)
 * writes N lines. Both then say "done" and exit 0, for counting what arrived:
 * the numbers keep every line and block distinct, so lost or doubled output
 * shows. */
#include "hvt.h"

HVT_MANIFEST();

static char big[256 * 1024];

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  hvt_puts("chatty\n");
  if (hvt_starts_with(cmdline, "big")) {
    /* "big N": N blocks, each starting with its number (8 bytes, little
     * endian), then "done\n"; plain "big": without end. */
    int64_t blocks = -1;
    if (cmdline[3] == ' ' && hvt_parse_i64(cmdline + 4, &blocks) != 0) blocks = -1;
    for (int64_t n = 0; blocks < 0 || n < blocks; n++) {
      for (int i = 0; i < 8; i++) big[i] = (char)((uint64_t)n >> (8 * i));
      hvt_write(big, sizeof big);
    }
    hvt_puts("done\n");
    return 0;
  }
  int64_t lines = -1;
  if (cmdline[0] != '\0' && hvt_parse_i64(cmdline, &lines) != 0) lines = -1;
  for (int64_t n = 0; lines < 0 || n < lines; n++) {
    /* 64 bytes: "line 0000000000000042 " and padding. */
    hvt_printf("line %016lx ...........................................\n", (unsigned long)n);
  }
  hvt_puts("done\n");
  return 0;
}
