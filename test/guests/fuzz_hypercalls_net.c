/*
 * fuzz_hypercalls_net: fuzz_hypercalls.c with a net device "service"
 * (handle 2) besides the block device "storage": NET_WRITE and NET_READ
 * join the random calls (bad handles, including the block device's, give
 * EINVAL; reads give OK or AGAIN; frames of 14..65535 bytes go out), POLL
 * may report the net device, and one possible last call writes a frame
 * shorter than an Ethernet header, which the tap refuses (a host I/O error,
 * docs/abi.md §10.6). Usage and output are those of fuzz_hypercalls.c; run it with
 * --net:service=TAP.
 *
 * The build rebuilds this guest only when this file is newer than its
 * binary: test/fuzz/hypercalls.fuzz.test.ts touches it when
 * fuzz_hypercalls.c has changed.
 */
#define FUZZ_NET 1
#include "fuzz_hypercalls.c"
