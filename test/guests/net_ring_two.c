/* net_ring_two: net_two (two devices "a" and "b", see net_two.c) with its
 * frames through the Solo5 bindings' net functions: both devices over the
 * one shared ring (docs/abi.md §13.1) when the tender offers it. */
#include "hvt.h"

HVT_MANIFEST(HVT_NET("a"), HVT_NET("b"));
#define NET_ECHO_NAMES "a", "b"
#define NET_ECHO_PROG "net_two"
#define NET_ECHO_RING 1

#include "net_echo.c"
