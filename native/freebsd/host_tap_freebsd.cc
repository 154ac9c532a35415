// FreeBSD tap devices: attach by name (/dev/NAME, the device node of an
// existing, up tap interface), the interface name of a tap descriptor
// (TAPGIFNAME), MTU queries (SIOCGIFMTU), non-blocking inherited descriptors.
// Contracts as host_tap_linux.cc (native/binding/host.ts); frames are read
// and written with readFd/writeFd (host_io_posix.cc). FreeBSD taps have no
// GRO/GSO to switch off, so there is no disableOffloads here.
#include "../native_util.h"
#include "fbsd_sys.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace ukvm {

static bool NameArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowType(info.Env(), "expected an interface name");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->size() >= fbsd::kIfNameSize) {
    ThrowErrno(info.Env(), "ifname", ENAMETOOLONG);
    return false;
  }
  // The name becomes a path under /dev: no directory parts.
  if (out->empty() || out->find('/') != std::string::npos || *out == "." || *out == "..") {
    ThrowErrno(info.Env(), "ifname", EINVAL);
    return false;
  }
  return true;
}

// One interface ioctl on a throwaway datagram socket.
static int IfIoctl(unsigned long req, struct ifreq* ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int r = ioctl(s, req, ifr);
  int e = errno;
  close(s);
  errno = e;
  return r;
}

static void SetName(struct ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof *ifr);
  memcpy(ifr->ifr_name, name.c_str(), name.size());  // shorter than IFNAMSIZ: NUL-terminated
}

// tapAttach(name): the interface must exist and be up; then /dev/NAME,
// read/write, non-blocking, close-on-exec.
static Napi::Value TapAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!NameArg(info, 0, &name)) return env.Undefined();
  struct ifreq ifr;
  SetName(&ifr, name);
  if (IfIoctl(fbsd::kSiocGifFlags, &ifr) < 0) {
    ThrowErrno(env, "SIOCGIFFLAGS", errno == ENXIO ? ENOENT : errno);
    return env.Undefined();
  }
  int flags = static_cast<unsigned short>(ifr.ifr_ifru.ifru_flags[0]);
  if (!(flags & (fbsd::kIffUp | fbsd::kIffRunning))) {
    ThrowErrno(env, "SIOCGIFFLAGS", ENETDOWN);
    return env.Undefined();
  }
  std::string path = "/dev/" + name;
  int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, "open", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// tapName(fd): TAPGIFNAME, the interface behind a tap descriptor.
static Napi::Value TapName(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, fbsd::kTapGifName, &ifr) < 0) {
    ThrowErrno(info.Env(), "TAPGIFNAME", errno);
    return info.Env().Undefined();
  }
  ifr.ifr_name[fbsd::kIfNameSize - 1] = 0;
  return Napi::String::New(info.Env(), ifr.ifr_name);
}

// ifMtu(name): SIOCGIFMTU.
static Napi::Value IfMtu(const Napi::CallbackInfo& info) {
  std::string name;
  if (!NameArg(info, 0, &name)) return info.Env().Undefined();
  struct ifreq ifr;
  SetName(&ifr, name);
  if (IfIoctl(fbsd::kSiocGifMtu, &ifr) < 0) {
    ThrowErrno(info.Env(), "SIOCGIFMTU", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), ifr.ifr_ifru.ifru_mtu);
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

// kickPipe(): the net ring's kick on FreeBSD (§18: a pipe instead of an
// eventfd), both ends close-on-exec. The read end stays blocking: the ring's
// consumer thread sleeps in read(2) on it, as on Linux on its eventfd. The
// write end is non-blocking, so a kick from the vCPU loop never blocks: a
// full pipe (EAGAIN) already holds a pending wake-up. Returns [readFd, writeFd].
static Napi::Value KickPipe(const Napi::CallbackInfo& info) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    ThrowErrno(info.Env(), "pipe2", errno);
    return info.Env().Undefined();
  }
  int fl = fcntl(p[1], F_GETFL);
  if (fl < 0 || fcntl(p[1], F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    ThrowErrno(info.Env(), "fcntl", e);
    return info.Env().Undefined();
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), p[0]));
  out.Set(1u, Napi::Number::New(info.Env(), p[1]));
  return out;
}

void RegisterTap(Napi::Env env, Napi::Object exports) {
  exports.Set("tapAttach", Napi::Function::New(env, TapAttach));
  exports.Set("tapName", Napi::Function::New(env, TapName));
  exports.Set("ifMtu", Napi::Function::New(env, IfMtu));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking));
  exports.Set("kickPipe", Napi::Function::New(env, KickPipe));
}

}  // namespace ukvm
