// Waiting on POLL's wait sets without blocking the thread, for several VMs
// sharing one thread (monitor/library/scheduler.ts). Each thread that wants
// it has one hub: an epoll descriptor of its own, watched by one uv_poll_t
// in the thread's libuv loop (a worker's loop in a library worker). A VM's
// wait set (itself an epoll descriptor, readable when any member is, the
// vCPU's wake eventfd included, so a stop or SIGINT/SIGTERM ends the wait)
// is a member of the hub with EPOLLONESHOT: arming a watch is one epoll_ctl,
// it disarms itself when it fires, and cancelling is one epoll_ctl.
//
// Why a hub rather than a uv_poll_t per wait set: uv_poll_init makes an
// ioctl (FIONBIO) that a confined thread may not make, and VMs are built on
// confined threads; the hub is made once, before confinement
// (waitsetHub()), and afterwards only epoll_ctl and epoll_wait are needed.
// Callbacks run through napi_make_callback (a callback scope: microtasks run
// after it), never after cancel or close; the hub's handle is referenced
// only while a watch is armed, so an idle thread can still end; an
// environment that ends with the hub open closes it through an async
// cleanup hook, so its loop closes cleanly.
#include "native_util.h"

#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include <unordered_map>

namespace ukvm {
namespace {

struct Watcher {
  int fd = -1;
  Napi::FunctionReference callback;
  bool armed = false;
};

struct Hub {
  int ep = -1;
  uv_poll_t poll;
  napi_env env = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  // By id: JavaScript never holds a pointer, so a stale id finds nothing.
  std::unordered_map<double, Watcher*> live;
  double next = 1;
  int armed = 0;
};
thread_local Hub* t_hub = nullptr;

void SetArmed(Hub* h, Watcher* w, bool on) {
  if (w->armed == on) return;
  w->armed = on;
  h->armed += on ? 1 : -1;
  // The loop stays alive for an armed watch only.
  if (h->armed > 0) uv_ref(reinterpret_cast<uv_handle_t*>(&h->poll));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&h->poll));
}

int Ctl(Hub* h, int op, Watcher* w, double id, bool in) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = in ? (EPOLLONESHOT | EPOLLIN) : static_cast<uint32_t>(EPOLLONESHOT);
  ev.data.u64 = static_cast<uint64_t>(id);
  return epoll_ctl(h->ep, op, w->fd, &ev);
}

void OnHubClosed(uv_handle_t* handle) {
  Hub* h = static_cast<Hub*>(handle->data);
  close(h->ep);
  if (h->hook) napi_remove_async_cleanup_hook(h->hook);
  delete h;
}

// The environment is ending: drop every watcher, close the hub.
void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  Hub* h = static_cast<Hub*>(arg);
  for (auto& [id, w] : h->live) {
    w->callback.Reset();
    delete w;
  }
  h->live.clear();
  if (t_hub == h) t_hub = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnHubClosed);
}

void OnHub(uv_poll_t* p, int, int) {
  Hub* h = static_cast<Hub*>(p->data);
  struct epoll_event evs[64];
  int n = epoll_wait(h->ep, evs, 64, 0);
  if (n <= 0) return;  // none (another turn took them) or EINTR: the loop calls again while readable
  Napi::Env env(h->env);
  for (int i = 0; i < n; i++) {
    // Looked up for each event: a callback may close any watcher.
    auto it = h->live.find(static_cast<double>(evs[i].data.u64));
    if (it == h->live.end() || !it->second->armed) continue;
    Watcher* w = it->second;
    SetArmed(h, w, false);  // EPOLLONESHOT disabled it in the kernel already
    Napi::HandleScope scope(env);
    w->callback.MakeCallback(env.Global(), {Napi::Number::New(env, static_cast<double>(evs[i].events))});
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }
}

Hub* ThisHub(const Napi::CallbackInfo& info) {
  Hub* h = t_hub;
  return h != nullptr && h->env == info.Env() ? h : nullptr;
}

Watcher* Find(const Napi::CallbackInfo& info, Hub** hub, double* id) {
  Hub* h = ThisHub(info);
  *id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (h == nullptr) return nullptr;
  *hub = h;
  auto it = h->live.find(*id);
  return it == h->live.end() ? nullptr : it->second;
}

}  // namespace

// waitsetHub(): makes this thread's hub if it has none (epoll_create1,
// uv_poll_init, uv_poll_start). Call it before the thread is confined.
static Napi::Value WaitsetHub(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ThisHub(info) != nullptr) return env.Undefined();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    ThrowType(env, "no event loop on this thread");
    return env.Undefined();
  }
  Hub* h = new Hub();
  h->ep = epoll_create1(EPOLL_CLOEXEC);
  if (h->ep < 0) {
    int e = errno;
    delete h;
    ThrowErrno(env, "epoll_create1", e);
    return env.Undefined();
  }
  int r = uv_poll_init(loop, &h->poll, h->ep);
  if (r != 0) {
    close(h->ep);
    delete h;
    ThrowErrno(env, "uv_poll_init", -r);
    return env.Undefined();
  }
  h->poll.data = h;
  h->env = env;
  r = uv_poll_start(&h->poll, UV_READABLE, OnHub);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnHubClosed);  // an initialised handle goes through the loop
    ThrowErrno(env, "uv_poll_start", -r);
    return env.Undefined();
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(&h->poll));
  if (napi_add_async_cleanup_hook(env, OnEnvCleanup, h, &h->hook) != napi_ok) h->hook = nullptr;
  t_hub = h;
  return env.Undefined();
}

// waitsetWatcher(epfd, callback): a watcher of epfd in this thread's hub
// (one epoll_ctl), not armed; returns its id. callback(events) runs on this
// thread once per waitsetWatch() after which epfd became readable. Throws
// if this thread has no hub (waitsetHub) or epfd is already watched.
static Napi::Value WaitsetWatcher(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ep;
  if (!ArgInt(info, 0, &ep)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsFunction()) {
    ThrowType(env, "expected (epfd, callback)");
    return env.Undefined();
  }
  Hub* h = ThisHub(info);
  if (h == nullptr) {
    ThrowType(env, "this thread has no watch hub (waitsetHub() before confinement)");
    return env.Undefined();
  }
  Watcher* w = new Watcher();
  w->fd = ep;
  double id = h->next++;
  if (Ctl(h, EPOLL_CTL_ADD, w, id, false) < 0) {
    int e = errno;
    delete w;
    ThrowErrno(env, "epoll_ctl", e);
    return env.Undefined();
  }
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  h->live[id] = w;
  return Napi::Number::New(env, id);
}

// waitsetWatch(id): arms the watcher once (one-shot); false if it is closed.
static Napi::Value WaitsetWatch(const Napi::CallbackInfo& info) {
  Hub* h = nullptr;
  double id;
  Watcher* w = Find(info, &h, &id);
  if (w == nullptr) return Napi::Boolean::New(info.Env(), false);
  if (Ctl(h, EPOLL_CTL_MOD, w, id, true) < 0) {
    ThrowErrno(info.Env(), "epoll_ctl", errno);
    return info.Env().Undefined();
  }
  SetArmed(h, w, true);
  return Napi::Boolean::New(info.Env(), true);
}

// waitsetCancel(id): disarms; true if a watch was pending (its callback will
// not run), false if none was (fired, never armed, or closed).
static Napi::Value WaitsetCancel(const Napi::CallbackInfo& info) {
  Hub* h = nullptr;
  double id;
  Watcher* w = Find(info, &h, &id);
  if (w == nullptr || !w->armed) return Napi::Boolean::New(info.Env(), false);
  SetArmed(h, w, false);  // whatever the kernel says: an event for it is ignored from now on
  Ctl(h, EPOLL_CTL_MOD, w, id, false);
  return Napi::Boolean::New(info.Env(), true);
}

// waitsetUnwatch(id): removes the watcher (its callback never runs again);
// twice, or an unknown id, does nothing. Call it before closing epfd.
static Napi::Value WaitsetUnwatch(const Napi::CallbackInfo& info) {
  Hub* h = nullptr;
  double id;
  Watcher* w = Find(info, &h, &id);
  if (w == nullptr) return info.Env().Undefined();
  SetArmed(h, w, false);
  epoll_ctl(h->ep, EPOLL_CTL_DEL, w->fd, nullptr);  // fails only if epfd is gone already: then so is its membership
  h->live.erase(id);
  w->callback.Reset();
  delete w;
  return info.Env().Undefined();
}

void RegisterWaitWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("waitsetHub", Napi::Function::New(env, WaitsetHub));
  exports.Set("waitsetWatcher", Napi::Function::New(env, WaitsetWatcher));
  exports.Set("waitsetWatch", Napi::Function::New(env, WaitsetWatch));
  exports.Set("waitsetCancel", Napi::Function::New(env, WaitsetCancel));
  exports.Set("waitsetUnwatch", Napi::Function::New(env, WaitsetUnwatch));
}

}  // namespace ukvm
