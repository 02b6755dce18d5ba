// Retrainer: trains new model versions in the background while scoring goes
// on, then registers the bundle and swaps it in (through the writer thread,
// so the registry row is committed before the model serves). A failed or
// cancelled training leaves the current model serving. One training per
// stream at a time. Thread-safe.
#ifndef ANOMALYD_DAEMON_RETRAINER_H_
#define ANOMALYD_DAEMON_RETRAINER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/streams.h"
#include "daemon/writer.h"
#include "model/model.h"

namespace anomalyd {

struct RetrainJob {
  std::string stream;
  uint32_t version = 0;             // the version to create
  enum class Source { kCsv, kRows, kReservoir } source = Source::kCsv;
  std::string csv_path;             // kCsv
  Matrix rows;                      // kRows
  std::vector<std::string> names;   // kRows (empty: current model's or f0..)
  TrainOptions options;
};

class Retrainer {
 public:
  // `bundles_dir` holds <stream>/v<version> bundles; `db_path` is opened
  // read-only to read the reservoir.
  Retrainer(std::string bundles_dir, std::string db_path,
            StreamRegistry* streams, Writer* writer);
  ~Retrainer();  // Shutdown()s
  Retrainer(const Retrainer&) = delete;
  Retrainer& operator=(const Retrainer&) = delete;

  // Starts `job` in the background. FAILED_PRECONDITION when a training of
  // the stream is running.
  Status Start(RetrainJob job);
  // Asks the running training of `stream` to stop. NOT_FOUND when none.
  Status Cancel(const std::string& stream);
  // Blocks until the stream's training (if any) has ended; its outcome.
  Status Wait(const std::string& stream);
  // Waits at most `timeout`; false when the training is still running.
  bool WaitFor(const std::string& stream, std::chrono::milliseconds timeout,
               Status* outcome);
  bool Running(const std::string& stream) const;
  // Cancels every training and joins the threads.
  void Shutdown();

  // The directory of a stream's bundle version (stream names are escaped
  // so that any name is a safe path component).
  static std::string BundleDir(const std::string& bundles_dir,
                               const std::string& stream, uint32_t version);

  // Deletes what trainings killed while saving left in `bundles_dir`: the
  // temporary directories (".vN.tmp-*") Model::Save renames into place
  // once complete, so no registered bundle is ever one of them. Call at
  // start-up, before any training. Returns how many it deleted.
  static int RemoveUnfinishedBundles(const std::string& bundles_dir);

 private:
  struct Run {
    std::thread thread;
    std::atomic<bool> cancel{false};
    bool done = false;
    Status outcome;
  };
  void Train(RetrainJob job, Run* run);
  Status LoadData(RetrainJob& job);
  void Finish(const std::string& stream, Run* run, const Status& s);

  const std::string bundles_dir_;
  const std::string db_path_;
  StreamRegistry* streams_;
  Writer* writer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Run>> runs_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_RETRAINER_H_
