// ReplyBudget: a bound, in bytes, on the replies queued inside ZeroMQ for
// each client of a ROUTER socket. ZeroMQ bounds a client's queue by message
// count only (sndhwm), and a client that sends large requests and never
// reads its replies could otherwise hold hundreds of MB of them.
//
// A reply is handed to ZeroMQ as a zero-copy message whose free callback
// (run by ZeroMQ, on its own I/O thread, once the bytes have gone to the
// kernel or the connection is dropped) gives its bytes back to the client's
// account; Make refuses a reply that would take the account past the
// bound. Not thread-safe except for that callback: one ReplyBudget per
// socket, used by the thread that owns the socket.
#ifndef ANOMALYD_DAEMON_REPLY_BUDGET_H_
#define ANOMALYD_DAEMON_REPLY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

namespace anomalyd {

class ReplyBudget {
 public:
  // Replies below this size are not counted: the socket's sndhwm bounds
  // them (10,000 x 4 KiB = 40 MiB a client at most), and sparing them the
  // bookkeeping keeps single-record replies as cheap as before.
  static constexpr size_t kCountedBytes = 4096;

  explicit ReplyBudget(uint64_t max_bytes_per_client) : max_(max_bytes_per_client) {}
  ReplyBudget(const ReplyBudget&) = delete;
  ReplyBudget& operator=(const ReplyBudget&) = delete;

  // Sets *out to a copy of data[0, size) charged to `client` (its routing
  // id). False, leaving *out alone, when the client's queued bytes plus
  // `size` would pass the bound. REQUIRES: size >= kCountedBytes.
  bool Make(const std::string& client, const void* data, size_t size,
            zmq::message_t* out) {
    std::shared_ptr<Account>& account = accounts_[client];
    if (!account) account = std::make_shared<Account>();
    const uint64_t queued = account->bytes.load(std::memory_order_relaxed);
    if (queued > 0 && queued + size > max_) return false;
    auto* ticket = new Ticket{account, size, std::make_unique<char[]>(size)};
    std::memcpy(ticket->copy.get(), data, size);
    account->bytes.fetch_add(size, std::memory_order_relaxed);
    *out = zmq::message_t(ticket->copy.get(), size, &Free, ticket);
    if (accounts_.size() > sweep_at_) Sweep();
    return true;
  }

  // Bytes charged to `client` and not yet freed by ZeroMQ (for tests).
  uint64_t queued(const std::string& client) const {
    auto it = accounts_.find(client);
    return it == accounts_.end() ? 0 : it->second->bytes.load();
  }

 private:
  struct Account {
    std::atomic<uint64_t> bytes{0};
  };
  struct Ticket {
    std::shared_ptr<Account> account;
    size_t size;
    std::unique_ptr<char[]> copy;
  };
  static void Free(void* /*data*/, void* hint) {
    auto* ticket = static_cast<Ticket*>(hint);
    ticket->account->bytes.fetch_sub(ticket->size, std::memory_order_relaxed);
    delete ticket;
  }
  // Forgets clients with nothing queued, so that the map is bounded by the
  // clients with replies in flight, not by every client ever seen.
  void Sweep() {
    for (auto it = accounts_.begin(); it != accounts_.end();) {
      if (it->second->bytes.load() == 0 && it->second.use_count() == 1) {
        it = accounts_.erase(it);
      } else {
        ++it;
      }
    }
    sweep_at_ = std::max<size_t>(1024, 2 * accounts_.size());
  }

  const uint64_t max_;
  std::unordered_map<std::string, std::shared_ptr<Account>> accounts_;
  size_t sweep_at_ = 1024;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_REPLY_BUDGET_H_
