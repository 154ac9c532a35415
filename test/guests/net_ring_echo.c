/* net_ring_echo: net_echo (see net_echo.c) with its frames through the Solo5
 * bindings' net functions (runtime/ring.c): the shared ring of docs/abi.md
 * §13 when the tender offers it, else the hypercalls. Build note: build.mjs
 * only watches this file; test/kvm/net-ring.test.ts rebuilds it when
 * net_echo.c is newer. */
#include "hvt.h"

HVT_MANIFEST(HVT_NET("service"));
#define NET_ECHO_NAMES "service"
#define NET_ECHO_PROG "net_echo"
#define NET_ECHO_RING 1

#include "net_echo.c"
