/* The guest side of the net ring, as Solo5 v0.12's hvt bindings do it
 * (see ring.h): writes are copied into a per-slot buffer in BSS and not
 * waited for; a read is submitted and then spun on until its commit comes;
 * frames over 2048 bytes go by hypercall. Linked only into guests that use
 * it (--gc-sections drops the 2 MiB of write buffers otherwise). */
#include "ring.h"

struct hvt_ring *hvt_net_ring;
static uint32_t ring_req_id;
static uint8_t write_bufs[HVT_RING_SIZE][HVT_RING_BUF_SIZE];

int hvt_ring_init(const struct hvt_boot_info *bi) {
  hvt_net_ring = 0;
  ring_req_id = 0;
  if ((bi->host_features & HVT_FEATURE_RING_IO) && bi->net_ring != 0)
    hvt_net_ring = (struct hvt_ring *)(uintptr_t)bi->net_ring;
  return hvt_net_ring != 0;
}

void hvt_ring_submit(void) {
  struct hvt_ring *r = hvt_net_ring;
  hvt_wmb();
  r->ent_tail++;
  /* Store ent_tail, then load needs_kick: only MFENCE keeps that order. */
  hvt_mb();
  if (r->needs_kick) hvt_ring_kick();
}

int hvt_s5_net_write(uint64_t handle, const void *buf, size_t size) {
  struct hvt_ring *r = hvt_net_ring;
  if (r) {
    /* Flow control: at most 1023 entries outstanding. */
    while ((uint32_t)(r->ent_tail - r->ent_head) >= HVT_RING_SIZE - 1) hvt_cpu_relax();
    uint32_t idx = r->ent_tail & HVT_RING_MASK;
    struct hvt_ring_entry *e = &r->entries[idx];
    if (size <= HVT_RING_BUF_SIZE) {
      memcpy(write_bufs[idx], buf, size);
      e->operation = HVT_RING_NET_WRITE;
      e->handle = (uint32_t)handle;
      e->data = (uint64_t)(uintptr_t)write_bufs[idx];
      e->len = (uint32_t)size;
      e->id = ring_req_id++;
      hvt_ring_submit();
      return HVT_OK; /* no commit for writes */
    }
  }
  return hvt_net_write(handle, buf, size);
}

int hvt_s5_net_read(uint64_t handle, void *buf, size_t size, size_t *read_size) {
  struct hvt_ring *r = hvt_net_ring;
  if (!r) {
    uint64_t len = size;
    int ret = hvt_net_read(handle, buf, &len);
    *read_size = len;
    return ret;
  }
  if ((uint32_t)(r->ent_tail - r->ent_head) >= HVT_RING_SIZE - 1) hvt_abort("net ring full at a read");
  uint32_t idx = r->ent_tail & HVT_RING_MASK;
  struct hvt_ring_entry *e = &r->entries[idx];
  e->operation = HVT_RING_NET_READ;
  e->handle = (uint32_t)handle;
  e->data = (uint64_t)(uintptr_t)buf;
  e->len = (uint32_t)size;
  e->id = ring_req_id++;
  hvt_ring_submit();
  while (r->com_head == r->com_tail) hvt_cpu_relax();
  hvt_rmb();
  struct hvt_ring_commit *c = &r->commits[r->com_head & HVT_RING_MASK];
  int ret = c->ret;
  *read_size = c->len;
  r->com_head++;
  return ret;
}
