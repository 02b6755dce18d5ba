// The reply encoder: the one place that knows the shape of a score reply on
// the wire. A score request's reply (PendingReply::response) is sized when
// the request is taken, filled part by part from the engine's verdicts,
// marked as stored by the writer, and serialized once its last part is in.
// Two shapes: one pb::ScoreResult per record, or columns (pb::ScoreColumns,
// `columnar` requests). Ingest requests have no reply and are never passed
// here except to SendPending, which ignores them.
//
// Pure functions over one PendingReply; the caller is the one thread that
// holds the reply at that moment (see PendingReply).
#ifndef ANOMALYD_DAEMON_REPLY_ENCODER_H_
#define ANOMALYD_DAEMON_REPLY_ENCODER_H_

#include <cstddef>
#include <vector>

#include "daemon/outbox.h"
#include "daemon/protocol.h"
#include "daemon/work.h"
#include "engine/verdicts.h"
#include "proto/status.h"

namespace anomalyd {

// Sizes reply->response for the records of `parts`: one ScoreResult each,
// or one element of each column (contributions included when asked).
// INVALID_ARGUMENT for a columnar reply with contributions over parts of
// different dimensions (the reply is then unusable).
Status PresizeReply(const std::vector<ScorePart>& parts, PendingReply* reply);

// Writes the verdicts of `part`, whose records are rows [first_row,
// first_row + part.rows()) of `v`, into their places in the reply.
// REQUIRES: reply sized by PresizeReply; v.contributions when the reply
// asks for contributions.
void EncodeVerdicts(const ScorePart& part, const StreamVerdicts& v,
                    size_t first_row, PendingReply* reply);

// Sets the reply's error (it replaces the verdicts when sent).
void EncodeFailure(const Status& s, PendingReply* reply);

// Marks the record at request position `index` as stored.
void MarkStored(int index, PendingReply* reply);

// Sends the reply of `pending` (its error alone when it has one). No-op for
// ingest, which has nobody to answer.
void SendPending(ReplySink& outbox, PendingReply& pending);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_REPLY_ENCODER_H_
