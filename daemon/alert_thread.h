// AlertSender: the thread that delivers alerts to Alertmanager and webhooks.
//
// The anomalies table is its durable input: it reads committed anomalies in
// id order after its cursor (its own read-only Store), shapes them into
// incidents (AlertShaper), and saves the cursor, the shaping state and the
// notifications to deliver in one transaction (Store::SaveAlerts, run on
// the writer thread). Then it delivers what is due from the outbox, and
// settles it (delivered rows deleted, failed ones rescheduled with
// exponential backoff, dead letters after alerts.max_attempts), again on
// the writer thread. A crash at any point repeats at most the deliveries
// that were not settled: at least once, never lost. docs/alerts.md.
//
// Thread-safe: Start, Stop, SetShaping and Stats may be called from any
// thread; the work runs on the sender's own thread.
#ifndef ANOMALYD_DAEMON_ALERT_THREAD_H_
#define ANOMALYD_DAEMON_ALERT_THREAD_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "daemon/alert_shaper.h"
#include "daemon/alert_stats.h"
#include "daemon/http_post.h"
#include "daemon/streams.h"
#include "daemon/writer_thread.h"
#include "storage/store.h"

namespace anomalyd {

struct AlertSenderOptions {
  AlertOptions alerts;                                 // [alerts]
  std::map<std::string, AlertShaping> stream_shaping;  // [streams.NAME.alerts]
  std::string instance;                                // the instance label: this host's name
  std::string webhook_secret;                          // HMAC key; "" = unsigned
};

class AlertSender {
 public:
  // The receivers `options` names, in the order their sink names number
  // them: "alertmanager", then "webhook:0", "webhook:1", ...
  struct Sink {
    std::string name;
    std::string url;  // the full URL posted to
    bool alertmanager = false;
  };
  static std::vector<Sink> Sinks(const AlertOptions& options);

  // `reader`: a read-only Store of the database `writer` writes. `poster`
  // null: the real HTTP client.
  AlertSender(AlertSenderOptions options, std::unique_ptr<Store> reader, Writer* writer,
              const StreamRegistry* streams, std::unique_ptr<HttpPoster> poster = nullptr);
  ~AlertSender();  // Stop()s
  AlertSender(const AlertSender&) = delete;
  AlertSender& operator=(const AlertSender&) = delete;

  // Loads the checkpoint and starts the thread. The store's errors (CORRUPT
  // when the saved state does not parse).
  Status Start();
  // Ends the thread after the delivery in progress (each is bounded by
  // alerts.timeout_s). What is not settled is delivered after a restart.
  // REQUIRES: the writer is still running.
  void Stop();

  // New shaping rules and webhook secret (SIGHUP); receivers and delivery
  // settings stay as they were started.
  void Reload(const AlertShaping& defaults, const std::map<std::string, AlertShaping>& streams,
              const std::string& webhook_secret);

  AlertStats Stats() const;

 private:
  void Run();
  // One pass; true when there may be more work at once (a full read).
  bool Round();
  // Reads and shapes new anomalies, ticks, saves. False on a storage error
  // (the pass is undone and repeated later).
  bool Shape(int64_t now_us, bool* more);
  void Deliver(int64_t now_us);
  // Runs `f` on the writer thread (the one that writes the store) and waits.
  Status OnWriter(std::function<Status(Store&)> f);
  const std::vector<std::string>& FeatureNames(const AnomalyRow& row);
  bool Suppressed(const AnomalyRow& row) const;
  std::vector<OutboxRow> ToOutbox(const std::vector<AlertShaper::Notification>& notes) const;
  HttpHeaders HeadersFor(const Sink& sink, const OutboxRow& row) const;

  AlertSenderOptions options_;
  const std::vector<Sink> sinks_;
  std::unique_ptr<Store> reader_;
  Writer* writer_;
  const StreamRegistry* streams_;
  std::unique_ptr<HttpPoster> poster_;

  // Sender thread only.
  AlertShaper shaper_;
  int64_t cursor_ = 0;
  std::string saved_state_;  // the state as last saved
  std::map<std::string, std::pair<uint32_t, std::vector<std::string>>> names_;  // by stream
  bool warned_ = false;  // a storage error was logged; cleared on success

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  // A Reload waiting for the sender thread. GUARDED_BY(mu_)
  std::unique_ptr<AlertSenderOptions> reload_;
  AlertStats stats_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_ALERT_THREAD_H_
