// Guest RAM as one mapping that several threads' JavaScript can hold at once
// (native/guest_mapping.cc): the VM's thread gets it as an ArrayBuffer (as
// before), and a device's I/O thread (the net ring's consumer, a worker
// thread with its own V8 isolate) as a SharedArrayBuffer over the same
// pages, without a copy. The mapping is reference counted and unmapped when
// the last of those buffers is collected, so no thread can ever touch guest
// memory that is gone.
#pragma once
#include "native_util.h"

#include <cstddef>

namespace ukvm {

// An ArrayBuffer over the mmap'd guest RAM [p, p + len); takes ownership.
Napi::ArrayBuffer GuestMappingBuffer(Napi::Env env, void* p, size_t len);

// The VM is closed: the ArrayBuffer of GuestMappingBuffer(p, len) lets go
// of the pages now (its caller detaches it); they are unmapped at once, or
// when the last SharedArrayBuffer over them goes. False if [p, p + len) is
// no such buffer's (or was released already).
bool ReleaseGuestMapping(void* p, size_t len);

}  // namespace ukvm
