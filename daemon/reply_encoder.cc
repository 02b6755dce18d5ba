#include "daemon/reply_encoder.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace anomalyd {

Status PresizeReply(const std::vector<ScorePart>& parts, PendingReply* reply) {
  size_t n = 0;
  for (const ScorePart& p : parts) n += p.rows();
  const int rows = static_cast<int>(n);
  pb::ScoreResponse* score = reply->response.mutable_score();
  if (!reply->columnar) {
    score->mutable_results()->Reserve(rows);
    for (int i = 0; i < rows; ++i) score->add_results();
    return Status::OK();
  }
  pb::ScoreColumns* c = score->mutable_columns();
  c->mutable_reconstruction()->Resize(rows, 0.0f);
  c->mutable_kl()->Resize(rows, 0.0f);
  c->mutable_score()->Resize(rows, 0.0f);
  c->mutable_p_value()->Resize(rows, 0.0);
  c->mutable_flagged()->Resize(rows, false);
  c->mutable_stored()->Resize(rows, false);
  c->mutable_threshold()->Resize(rows, 0.0f);
  c->mutable_model_version()->Resize(rows, 0u);
  if (reply->contributions) {
    for (const ScorePart& p : parts) {
      if (p.dim != parts.front().dim) {
        return Status::InvalidArgument(
            "a columnar reply with contributions needs records of one "
            "dimension; this request mixes streams of " +
            std::to_string(parts.front().dim) + " and " +
            std::to_string(p.dim) + " features");
      }
    }
    c->mutable_contributions()->Resize(
        rows * static_cast<int>(parts.front().dim), 0.0f);
  }
  return Status::OK();
}

namespace {

// Record `index` of a columnar reply from row `row` of the verdicts.
void SetColumns(uint32_t index, const StreamVerdicts& v, size_t row,
                bool contributions, pb::ScoreColumns* c) {
  const int i = static_cast<int>(index);
  const ScoreOutput& out = v.out;
  c->set_reconstruction(i, out.reconstruction[row]);
  c->set_kl(i, out.kl[row]);
  c->set_score(i, out.score[row]);
  c->set_p_value(i, out.p_value[row]);
  c->set_flagged(i, v.flagged[row] != 0);
  c->set_threshold(i, v.threshold);
  c->set_model_version(i, v.model_version);
  if (contributions) {
    const size_t d = v.dim;
    std::copy(out.contributions.begin() + row * d,
              out.contributions.begin() + (row + 1) * d,
              c->mutable_contributions()->begin() + index * d);
  }
}

// Record `index` of a per-record reply from row `row` of the verdicts.
void SetResult(uint32_t index, const std::string& id, const StreamVerdicts& v,
               size_t row, bool contributions, pb::ScoreResult* r) {
  const ScoreOutput& out = v.out;
  r->set_id(id);
  r->set_index(index);
  r->set_reconstruction(out.reconstruction[row]);
  r->set_kl(out.kl[row]);
  r->set_score(out.score[row]);
  r->set_flagged(v.flagged[row] != 0);
  r->set_threshold(v.threshold);
  r->set_model_version(v.model_version);
  r->set_p_value(out.p_value[row]);
  if (contributions) {
    const size_t d = v.dim;
    r->mutable_contributions()->Assign(
        out.contributions.begin() + row * d,
        out.contributions.begin() + (row + 1) * d);
  }
}

}  // namespace

void EncodeVerdicts(const ScorePart& part, const StreamVerdicts& v,
                    size_t first_row, PendingReply* reply) {
  pb::ScoreResponse* score = reply->response.mutable_score();
  if (reply->columnar) {
    pb::ScoreColumns* c = score->mutable_columns();
    for (size_t i = 0; i < part.rows(); ++i) {
      SetColumns(part.index[i], v, first_row + i, reply->contributions, c);
    }
  } else {
    auto* results = score->mutable_results();
    for (size_t i = 0; i < part.rows(); ++i) {
      SetResult(part.index[i], part.ids[i], v, first_row + i,
                reply->contributions,
                results->Mutable(static_cast<int>(part.index[i])));
    }
  }
}

void EncodeFailure(const Status& s, PendingReply* reply) {
  pb::Error* e = reply->response.mutable_error();
  e->set_code(s.code());
  e->set_message(s.message());
  e->set_record_index(-1);
}

void MarkStored(int index, PendingReply* reply) {
  pb::ScoreResponse* score = reply->response.mutable_score();
  if (reply->columnar) {
    score->mutable_columns()->set_stored(index, true);
  } else {
    score->mutable_results(index)->set_stored(true);
  }
}

void SendPending(ReplySink& outbox, PendingReply& pending) {
  if (pending.origin.endpoint == Endpoint::kIngest) return;
  if (pending.response.has_error() &&
      pending.response.error().code() != pb::OK) {
    pending.response.clear_score();
  }
  outbox.Reply(pending.origin, pending.response.SerializeAsString());
  if (pending.latency != nullptr) {
    pending.latency->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                      pending.received)
            .count());
  }
}

}  // namespace anomalyd
