/*
 * The net ring (docs/abi.md §13) from the guest's side, as Solo5 v0.12's
 * hvt bindings use it (bindings/hvt/net.c there): ring.c implements
 * hvt_s5_net_write / hvt_s5_net_read, which go through the ring when boot
 * info offers it (host_features bit 0 and net_ring != 0) and through the
 * NET_WRITE / NET_READ hypercalls otherwise. Hostile guests use the
 * structure and the barriers directly.
 */
#ifndef HVT_RING_H
#define HVT_RING_H

#include "hvt.h"

#define HVT_FEATURE_RING_IO 1u
#define HVT_RING_SIZE 1024u
#define HVT_RING_MASK (HVT_RING_SIZE - 1)
#define HVT_RING_BUF_SIZE 2048u /* the bindings' per-slot copy buffer */
#define HVT_RING_NET_WRITE 1u
#define HVT_RING_NET_READ 2u

struct hvt_ring_entry {
  uint32_t operation;
  uint32_t handle;
  uint64_t data; /* GPA of the frame buffer */
  uint32_t len;
  uint32_t id;
  uint64_t reserved;
};

struct hvt_ring_commit {
  uint32_t id;
  int32_t ret;
  uint32_t len;
  uint32_t reserved;
};

struct hvt_ring {
  volatile uint32_t ent_tail; /* guest */
  volatile uint32_t com_head; /* guest */
  uint8_t pad0[56];
  volatile uint32_t ent_head;   /* host */
  volatile uint32_t com_tail;   /* host */
  volatile uint32_t needs_kick; /* host */
  uint8_t pad1[52];
  struct hvt_ring_entry entries[HVT_RING_SIZE];
  struct hvt_ring_commit commits[HVT_RING_SIZE];
};
_Static_assert(sizeof(struct hvt_ring_entry) == 32, "ring entry");
_Static_assert(sizeof(struct hvt_ring_commit) == 16, "ring commit");
_Static_assert(__builtin_offsetof(struct hvt_ring, ent_head) == 64, "ent_head at 64");
_Static_assert(__builtin_offsetof(struct hvt_ring, entries) == 128, "entries at 128");
_Static_assert(sizeof(struct hvt_ring) == 49280, "ring is 49,280 bytes");

/* x86 barriers as the bindings use them: a compiler barrier orders stores
 * with stores and loads with loads (TSO); the store-load barrier before
 * reading needs_kick has to be MFENCE. */
static inline void hvt_wmb(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void hvt_rmb(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void hvt_mb(void) { __asm__ __volatile__("mfence" ::: "memory"); }
static inline void hvt_cpu_relax(void) { __asm__ __volatile__("pause" ::: "memory"); }
/* The kick: a 32-bit OUT of the ring id (0) to port 0x600. */
static inline void hvt_ring_kick(void) { hvt_outl(HVT_PORT_RING_KICK, 0); }

/* The ring boot info offers, or NULL (set by hvt_ring_init). */
extern struct hvt_ring *hvt_net_ring;
/* Reads boot info the way the bindings' net_init does; returns 1 if the ring is used. */
int hvt_ring_init(const struct hvt_boot_info *bi);
/* The bindings' ring_submit: publish one filled slot, MFENCE, kick if the host sleeps. */
void hvt_ring_submit(void);
/* solo5_net_write / solo5_net_read as the bindings implement them. */
int hvt_s5_net_write(uint64_t handle, const void *buf, size_t size);
int hvt_s5_net_read(uint64_t handle, void *buf, size_t size, size_t *read_size);

#endif
