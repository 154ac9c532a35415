// Plain descriptor I/O on guest-memory views, cheaper than fs.writeSync's
// JavaScript validation on the hypercall path (the views are checked in
// TypeScript before they get here): read, write, positional transfers, the
// size of a file, close, opening a file, and the C library's strerror.
#include "native_util.h"

#include <cstdint>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

namespace ukvm {

static bool ViewArg(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* len) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), "expected a Uint8Array");
    return false;
  }
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

// writeFd(fd, bytes): one write(2). Returns bytes written, -1 for EAGAIN, or
// -2 when a signal interrupted it (so a SIGTERM can end a run blocked on a
// full stdout pipe).
static Napi::Value WriteFd(const Napi::CallbackInfo& info) {
  int fd;
  uint8_t* data;
  size_t len;
  if (!ArgInt(info, 0, &fd) || !ViewArg(info, 1, &data, &len)) return info.Env().Undefined();
  ssize_t n = write(fd, data, len);
  if (n < 0 && errno == EINTR) return Napi::Number::New(info.Env(), -2);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(info.Env(), -1);
    ThrowErrno(info.Env(), "write", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// waitWritable(fd, wakeFd, timeoutMs): poll(2) until fd can take a write
// (or has an error or hang-up to report), wakeFd is readable (the run must
// end) or timeoutMs passes (-1: no limit). A negative fd makes it a sleep
// that a stop or signal cuts short. Returns 1 writable, 0 timed out, -1 woken,
// -2 interrupted by a signal.
static Napi::Value WaitWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    ThrowType(env, "expected (fd, wakeFd, timeoutMs)");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int wake = info[1].As<Napi::Number>().Int32Value();
  double ms = info[2].As<Napi::Number>().DoubleValue();
  int timeout = ms < 0 ? -1 : ms > 2147483647.0 ? 2147483647 : static_cast<int>(ms);
  struct pollfd p[2];
  p[0].fd = fd < 0 ? -1 : fd;  // poll ignores negative descriptors
  p[0].events = POLLOUT;
  p[0].revents = 0;
  p[1].fd = wake < 0 ? -1 : wake;
  p[1].events = POLLIN;
  p[1].revents = 0;
  int n = poll(p, 2, timeout);
  if (n < 0 && errno == EINTR) return Napi::Number::New(env, -2);
  if (n < 0) {
    ThrowErrno(env, "poll", errno);
    return env.Undefined();
  }
  if (p[1].revents) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, p[0].revents ? 1 : 0);
}

// realtimeInto(bytes, offset): stores CLOCK_REALTIME in ns as a little-endian
// u64 at bytes[offset] (WALLTIME without a BigInt per call).
static Napi::Value RealtimeInto(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t len;
  uint64_t off;
  if (!ViewArg(info, 0, &data, &len) || !ArgSize(info, 1, &off)) return info.Env().Undefined();
  if (off > len || len - off < 8) {
    ThrowType(info.Env(), "offset outside the view");
    return info.Env().Undefined();
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  memcpy(data + off, &ns, 8);  // x86_64 and aarch64 hosts are little-endian
  return info.Env().Undefined();
}

static bool PositionArg(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  bool lossless = false;
  if (info.Length() <= i || !info[i].IsBigInt() ||
      (*out = info[i].As<Napi::BigInt>().Uint64Value(&lossless), !lossless) || *out > INT64_MAX) {
    ThrowType(info.Env(), "expected a non-negative BigInt position below 2^63");
    return false;
  }
  return true;
}

// Positional transfer of all of `bytes`, retried after partial transfers.
// Returns the byte count moved (short at end of file, when the device takes
// no more, or when a signal interrupted it after some bytes), -2 when a signal
// interrupted it before any byte moved; throws on an I/O error. A signal is
// not retried here: the caller decides whether the run is ending.
template <bool WRITE>
static Napi::Value Transfer(const Napi::CallbackInfo& info) {
  int fd;
  uint8_t* data;
  size_t len;
  uint64_t pos;
  if (!ArgInt(info, 0, &fd) || !ViewArg(info, 1, &data, &len) || !PositionArg(info, 2, &pos)) {
    return info.Env().Undefined();
  }
  size_t done = 0;
  while (done < len) {
    ssize_t n = WRITE ? pwrite(fd, data + done, len - done, static_cast<off_t>(pos + done))
                      : pread(fd, data + done, len - done, static_cast<off_t>(pos + done));
    if (n < 0 && errno == EINTR) return Napi::Number::New(info.Env(), done ? static_cast<double>(done) : -2);
    if (n < 0) {
      ThrowErrno(info.Env(), WRITE ? "pwrite" : "pread", errno);
      return info.Env().Undefined();
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(done));
}

// seekEnd(fd): size of a file or block device (lseek to the end), as BigInt.
static Napi::Value SeekEnd(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) {
    ThrowErrno(info.Env(), "lseek", errno);
    return info.Env().Undefined();
  }
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(end));
}

// strerror(errno): the C library's text, so messages read like the
// reference's (+errno) ones rather than libuv's wording.
static Napi::Value StrError(const Napi::CallbackInfo& info) {
  int e;
  if (!ArgInt(info, 0, &e)) return info.Env().Undefined();
  return Napi::String::New(info.Env(), strerror(e));
}

// readFd(fd, bytes): one read(2). Returns bytes read, -1 for EAGAIN (or 0
// bytes), -2 when interrupted by a signal.
static Napi::Value ReadFd(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd) || info.Length() < 2 || !info[1].IsTypedArray()) {
    ThrowType(info.Env(), "expected (fd, Uint8Array)");
    return info.Env().Undefined();
  }
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  ssize_t n = read(fd, a.Data(), a.ByteLength());
  if (n < 0 && errno == EINTR) return Napi::Number::New(info.Env(), -2);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Number::New(info.Env(), -1);
  if (n < 0) {
    ThrowErrno(info.Env(), "read", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), n == 0 ? -1 : static_cast<double>(n));
}

// closeFd(fd)
static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  if (close(fd) < 0) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// openFile(path, writable): open(2) of an existing file, read-only or
// read/write, close-on-exec; a directory is refused with EISDIR whatever the
// mode (a read-only open of one would succeed). Native rather than Node's fs
// so that the one close(2) that ends it (closeFd) is the only one: in a
// worker thread Node tracks the descriptors its fs opened and closes them
// again when the thread ends.
static Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    ThrowType(env, "expected (path, writable)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) {
    ThrowErrno(env, "open", EINVAL);
    return env.Undefined();
  }
  int flags = (info[1].As<Napi::Boolean>().Value() ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  int fd;
  do {
    fd = open(path.c_str(), flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    ThrowErrno(env, "open", errno);
    return env.Undefined();
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    ThrowErrno(env, "open", EISDIR);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

void RegisterIo(Napi::Env env, Napi::Object exports) {
  exports.Set("strerror", Napi::Function::New(env, StrError));
  exports.Set("preadAll", Napi::Function::New(env, Transfer<false>));
  exports.Set("pwriteAll", Napi::Function::New(env, Transfer<true>));
  exports.Set("seekEnd", Napi::Function::New(env, SeekEnd));
  exports.Set("writeFd", Napi::Function::New(env, WriteFd));
  exports.Set("readFd", Napi::Function::New(env, ReadFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("openFile", Napi::Function::New(env, OpenFile));
  exports.Set("waitWritable", Napi::Function::New(env, WaitWritable));
  exports.Set("realtimeInto", Napi::Function::New(env, RealtimeInto));
}

}  // namespace ukvm
