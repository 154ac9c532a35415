/* net_two: the net_echo responder (see net_echo.c) on two NET_BASIC devices,
 * "a" (handle 1) and "b" (handle 2), each with its own IPv4 address:
 *
 *   net_two.hvt IPA IPB [N]
 *
 * Every frame is answered on the device it came in on, so a test can ping
 * both addresses at once through two taps. Build note: build.mjs only
 * watches this file, so test/kvm/net.test.ts rebuilds net_two.hvt when
 * net_echo.c is newer than it.
 */
#include "hvt.h"

HVT_MANIFEST(HVT_NET("a"), HVT_NET("b"));
#define NET_ECHO_NAMES "a", "b"
#define NET_ECHO_PROG "net_two"

#include "net_echo.c"
