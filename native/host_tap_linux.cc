// Linux tap devices (spec §12.2): attach by name with the reference's checks,
// MTU queries, best-effort offload switch-off. Frames are read and written
// with readFd/writeFd (host_io_posix.cc).
// Errors are thrown with errno so TypeScript can print the reference's
// "Could not attach interface: IFACE: strerror".
#include "native_util.h"

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ukvm {

static bool NameArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowType(info.Env(), "expected an interface name");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->size() >= IFNAMSIZ) {
    ThrowErrno(info.Env(), "ifname", ENAMETOOLONG);
    return false;
  }
  return true;
}

// Runs one interface ioctl on a throwaway AF_INET datagram socket.
static int IfIoctl(unsigned long req, struct ifreq* ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int r = ioctl(s, req, ifr);
  int e = errno;
  close(s);
  errno = e;
  return r;
}

// tapAttach(name): the interface must exist and be up (so opening never
// creates one); then /dev/net/tun, non-blocking, TUNSETIFF IFF_TAP|IFF_NO_PI.
static Napi::Value TapAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!NameArg(info, 0, &name)) return env.Undefined();
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (if_nametoindex(name.c_str()) == 0) {
    ThrowErrno(env, "if_nametoindex", ENOENT);
    return env.Undefined();
  }
  if (IfIoctl(SIOCGIFFLAGS, &ifr) < 0) {
    ThrowErrno(env, "SIOCGIFFLAGS", errno);
    return env.Undefined();
  }
  if (!(ifr.ifr_flags & (IFF_UP | IFF_RUNNING))) {
    ThrowErrno(env, "SIOCGIFFLAGS", ENETDOWN);
    return env.Undefined();
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, "open", errno);
    return env.Undefined();
  }
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "TUNSETIFF", e);
    return env.Undefined();
  }
  if (strncmp(ifr.ifr_name, name.c_str(), IFNAMSIZ) != 0) {
    close(fd);
    ThrowErrno(env, "TUNSETIFF", EINVAL);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// tapName(fd): the interface a tap descriptor is bound to (TUNGETIFF).
static Napi::Value TapName(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    ThrowErrno(info.Env(), "TUNGETIFF", errno);
    return info.Env().Undefined();
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  if (!(ifr.ifr_flags & IFF_TAP)) {
    ThrowErrno(info.Env(), "TUNGETIFF", EINVAL);
    return info.Env().Undefined();
  }
  return Napi::String::New(info.Env(), ifr.ifr_name);
}

// ifMtu(name): SIOCGIFMTU.
static Napi::Value IfMtu(const Napi::CallbackInfo& info) {
  std::string name;
  if (!NameArg(info, 0, &name)) return info.Env().Undefined();
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (IfIoctl(SIOCGIFMTU, &ifr) < 0) {
    ThrowErrno(info.Env(), "SIOCGIFMTU", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), ifr.ifr_mtu);
}

// disableOffloads(name): GRO and GSO off, best effort (frames read from the
// tap then never exceed the MTU-sized buffers guests use). Returns whether
// both calls succeeded.
static Napi::Value DisableOffloads(const Napi::CallbackInfo& info) {
  std::string name;
  if (!NameArg(info, 0, &name)) return info.Env().Undefined();
  bool ok = true;
  for (uint32_t cmd : {static_cast<uint32_t>(ETHTOOL_SGRO), static_cast<uint32_t>(ETHTOOL_SGSO)}) {
    struct ethtool_value ev;
    ev.cmd = cmd;
    ev.data = 0;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&ev);
    if (IfIoctl(SIOCETHTOOL, &ifr) < 0) ok = false;
  }
  return Napi::Boolean::New(info.Env(), ok);
}

// setNonBlocking(fd): O_NONBLOCK on, and close-on-exec (an inherited @FD).
static Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    ThrowErrno(info.Env(), "fcntl", errno);
  }
  return info.Env().Undefined();
}

void RegisterTap(Napi::Env env, Napi::Object exports) {
  exports.Set("tapAttach", Napi::Function::New(env, TapAttach));
  exports.Set("tapName", Napi::Function::New(env, TapName));
  exports.Set("ifMtu", Napi::Function::New(env, IfMtu));
  exports.Set("disableOffloads", Napi::Function::New(env, DisableOffloads));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking));
}

}  // namespace ukvm
