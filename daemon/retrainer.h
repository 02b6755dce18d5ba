// Retrainer: trains new model versions in the background while scoring goes
// on, then registers the bundle and swaps it in (through the writer thread,
// so the registry row is committed before the model serves). A failed or
// cancelled training leaves the current model serving.
//
// Bounds: one training per stream, at most max_trainings at once (each is
// a thread of its own, joined once it ends: a finished training holds no
// thread), and the CSV a training reads is opened by the caller and passed
// as a descriptor, never reopened by name. Thread-safe.
#ifndef ANOMALYD_DAEMON_RETRAINER_H_
#define ANOMALYD_DAEMON_RETRAINER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/metrics.h"
#include "daemon/state_dir.h"
#include "daemon/streams.h"
#include "daemon/writer_thread.h"
#include "model/model.h"
#include "storage/open.h"

namespace anomalyd {

// An open file descriptor, closed on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// Opens `path` for a retrain: once, non-blocking (a FIFO or a device can
// neither block the open nor the read), then checks the open file itself
// (fstat: a regular file of at most max_bytes) and makes it blocking again.
// No check-then-open race: what is checked is what is read. Errors:
// NOT_FOUND (no such file), PERMISSION_DENIED (not readable by the
// daemon), INVALID_ARGUMENT (not a regular file), TOO_LARGE, IO_ERROR.
Status OpenCsvForRetrain(const std::string& path, uint64_t max_bytes, UniqueFd* fd);

struct RetrainJob {
  std::string stream;
  uint32_t version = 0;  // reserved in the registry before the job starts
  enum class Source { kCsv, kRows, kReservoir } source = Source::kCsv;
  std::shared_ptr<UniqueFd> csv_fd;  // kCsv: the open file (OpenCsvForRetrain)
  std::string csv_path;              // kCsv: for messages
  Matrix rows;                       // kRows
  std::vector<std::string> names;    // kRows (empty: current model's or f0..)
  TrainOptions options;
  uint64_t max_csv_bytes = 0;        // kCsv: bound while reading (0: none)
  // Called once on the training thread when the job has ended (registered
  // and serving, or failed, or cancelled); may be empty.
  std::function<void(const Status&)> on_done;
};

struct RetrainerOptions {
  const StateDir* state = nullptr;  // bundles go to state->BundleRelPath
  // The daemon's store, read-only (ReadOnly(spec)): a retrain from the
  // reservoir opens a connection of its own with it.
  StoreSpec store;
  uint32_t max_trainings = 2;
  // Model-less streams whose training outcome status keeps (see
  // StreamRegistry::ForgetOldTrainings).
  uint32_t max_training_states = 64;
  // Counts each training's outcome; may be null. Must outlive the Retrainer.
  Metrics* metrics = nullptr;
};

class Retrainer {
 public:
  Retrainer(const RetrainerOptions& options, StreamRegistry* streams, Writer* writer);
  ~Retrainer();  // Shutdown()s
  Retrainer(const Retrainer&) = delete;
  Retrainer& operator=(const Retrainer&) = delete;

  // Whether Start would take a job for `stream` now: FAILED_PRECONDITION
  // when the stream is training, BUSY when max_trainings run.
  Status CanStart(const std::string& stream) const;
  // Starts `job` in the background (errors as CanStart, and INTERNAL when
  // no thread can be made). On error job.on_done is not called.
  Status Start(RetrainJob job);
  // Asks the running training of `stream` to stop (within one mini-batch,
  // or while its CSV is read). NOT_FOUND when none.
  Status Cancel(const std::string& stream);
  bool Running(const std::string& stream) const;
  // Cancels every training and joins the threads; later starts get
  // SHUTTING_DOWN.
  void Shutdown();

  // Deletes what trainings killed while saving left in `bundles_dir`: the
  // temporary directories (".vN.tmp-*") Model::Save renames into place
  // once complete, so no registered bundle is ever one of them. Call at
  // start-up, before any training. Returns how many it deleted.
  static int RemoveUnfinishedBundles(const std::string& bundles_dir);

 private:
  struct Run {
    std::thread thread;
    std::atomic<bool> cancel{false};
    std::atomic<bool> done{false};
  };
  // Joins and forgets the runs that have ended. REQUIRES: mu_ held.
  void ReapLocked();
  Status CanStartLocked(const std::string& stream) const;
  void Train(RetrainJob job, Run* run);
  Status LoadData(RetrainJob& job, const std::atomic<bool>& cancel);
  // Registers, activates and installs the saved bundle (on the writer
  // thread), and on success Finishes the run there, as the model goes in.
  Status Register(const RetrainJob& job, Run* run, const std::string& rel_path,
                  std::shared_ptr<const Model> model);
  void Finish(const RetrainJob& job, Run* run, const Status& s);

  const RetrainerOptions options_;
  StreamRegistry* streams_;
  Writer* writer_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Run>> runs_;  // guarded by mu_
  bool stopped_ = false;                              // guarded by mu_
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_RETRAINER_H_
