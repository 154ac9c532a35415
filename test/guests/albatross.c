/* albatross: a unikernel shaped like the ones Albatross runs, with a block
 * device "storage" and a net device "service". It prints its command line
 * (Albatross puts --name=NAME first), what the tender attached (capacity,
 * block size, MAC, MTU), the first line of block 0, writes a marker into the
 * last block, sends one Ethernet frame on the tap (so the tap's counters
 * move), then either halts with the status of an `exit=N` word or says
 * "albatross: ready" and sleeps in POLL until it is stopped. */
#include "hvt.h"

HVT_MANIFEST(HVT_BLOCK("storage"), HVT_NET("service"));

#define MAX_BLOCK 32768u
static uint8_t block[MAX_BLOCK] __attribute__((aligned(4096)));
static uint8_t frame[60];

static const char MARKER[] = "albatross was here\n";

/* The status of the first "exit=N" word, or -1 (keep running) if none. */
static int64_t exit_word(const char *cmdline) {
  char word[64];
  int64_t status;
  while (hvt_next_word(&cmdline, word, sizeof word) > 0) {
    if (hvt_starts_with(word, "exit=") && hvt_parse_i64(word + 5, &status) == 0) return status;
  }
  return -1;
}

static void print_first_line(const uint8_t *p, uint64_t len) {
  uint64_t n = 0;
  while (n < len && n < 64 && p[n] != '\n' && p[n] >= ' ' && p[n] < 0x7f) n++;
  hvt_puts("albatross: block0=");
  hvt_write((const char *)p, n);
  hvt_puts("\n");
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  hvt_printf("albatross: cmdline=%s\n", cmdline);
  int blk = hvt_mft_find("storage", HVT_MFT_BLOCK_BASIC);
  int net = hvt_mft_find("service", HVT_MFT_NET_BASIC);
  if (blk < 0 || net < 0) hvt_abort("albatross: devices missing from the manifest copy");
  const struct hvt_mft_entry *b = &hvt_mft()->e[blk];
  const struct hvt_mft_entry *n = &hvt_mft()->e[net];
  const uint8_t *mac = n->u.net.mac;
  uint64_t bs = b->u.block.block_size;
  hvt_printf("albatross: storage capacity=%lu block_size=%lu\n", b->u.block.capacity, bs);
  hvt_printf("albatross: service mac=%02x:%02x:%02x:%02x:%02x:%02x mtu=%u\n", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5], n->u.net.mtu);
  if (bs == 0 || bs > MAX_BLOCK || b->u.block.capacity < bs) hvt_abort("albatross: unusable block device");

  if (hvt_block_read((uint64_t)blk, 0, block, bs) != HVT_OK) hvt_abort("albatross: block read failed");
  print_first_line(block, bs);
  memset(block, 0, bs);
  memcpy(block, MARKER, sizeof MARKER - 1);
  if (hvt_block_write((uint64_t)blk, b->u.block.capacity - bs, block, bs) != HVT_OK) {
    hvt_abort("albatross: block write failed");
  }

  /* Broadcast frame, EtherType 0x88B5 (local experimental), our MAC as source. */
  memset(frame, 0xff, 6);
  memcpy(frame + 6, mac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  memcpy(frame + 14, "albatross", 9);
  if (hvt_net_write((uint64_t)net, frame, sizeof frame) != HVT_OK) hvt_abort("albatross: net write failed");

  int64_t status = exit_word(cmdline);
  if (status >= 0) {
    hvt_printf("albatross: exiting with %ld\n", status);
    hvt_halt((int)status, 0);
  }
  hvt_puts("albatross: ready\n");
  for (;;) hvt_poll(10000000000ull, 0);
}
