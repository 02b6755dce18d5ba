// The bodies of alert notifications (daemon/alert_format.h).
#include "daemon/alert_format.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "common/iso_time.h"

namespace anomalyd {
namespace {

AlertShaper::Notification Firing() {
  AlertShaper::Notification n;
  n.at_us = 1'700'000'100'000'000;
  pb::Incident& inc = n.incident;
  inc.set_id(7);
  inc.set_stream("web \"edge\"");
  inc.set_count(500);
  inc.set_first_scored_us(1'700'000'000'123'456);
  inc.set_last_scored_us(1'700'000'090'000'000);
  inc.set_max_score(42.5);
  inc.set_max_record_id("req-9");
  inc.set_threshold(3.25f);
  inc.set_model_version(2);
  inc.add_top_features("latency");
  inc.add_top_features("cpu");
  inc.set_firing(true);
  return n;
}

TEST(AlertFormatTest, TimesAreRfc3339) {
  EXPECT_EQ(Iso(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(Iso(1'700'000'000'123'456), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(Iso(-1), "1969-12-31T23:59:59.999Z");
}

TEST(AlertFormatTest, AlertmanagerBodyIsAnArrayOfOnePostableAlert) {
  AlertShaping sh;
  sh.renotify_every_s = 600;
  const std::string body = AlertmanagerBody(Firing(), "host1", sh);
  ASSERT_EQ(body.front(), '[');
  ASSERT_EQ(body.back(), ']');
  pb::AlertmanagerAlert a;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body.substr(1, body.size() - 2), &a).ok())
      << body;
  EXPECT_EQ(a.labels().at("alertname"), kAlertName);
  EXPECT_EQ(a.labels().at("stream"), "web \"edge\"");
  EXPECT_EQ(a.labels().at("instance"), "host1");
  EXPECT_EQ(a.labels().count("feature"), 0u);
  EXPECT_EQ(a.annotations().at("count"), "500");
  EXPECT_EQ(a.annotations().at("top_features"), "latency,cpu");
  EXPECT_EQ(a.starts_at(), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(a.ends_at(), Iso(1'700'000'100'000'000 + 3 * 600'000'000LL));
  EXPECT_NE(body.find("\"startsAt\""), std::string::npos);  // Alertmanager's names
  EXPECT_EQ(body.find("generatorURL"), std::string::npos);  // empty: left out
}

TEST(AlertFormatTest, ResolvedEndsWhenItResolved) {
  AlertShaper::Notification n = Firing();
  n.resolved = true;
  AlertShaping sh;
  const std::string body = AlertmanagerBody(n, "h", sh);
  EXPECT_NE(body.find("\"endsAt\":\"" + Iso(n.at_us) + "\""), std::string::npos) << body;
  sh.renotify_every_s = 0;
  EXPECT_EQ(AlertmanagerBody(Firing(), "h", sh).find("endsAt"), std::string::npos);
}

TEST(AlertFormatTest, WebhookBodyHasEveryField) {
  AlertShaper::Notification n = Firing();
  n.repeat = true;
  const std::string body = WebhookBody(n, "host1");
  pb::AlertNotification m;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &m).ok()) << body;
  EXPECT_EQ(m.format(), 1u);
  EXPECT_EQ(m.status(), "firing");
  EXPECT_TRUE(m.repeat());
  EXPECT_EQ(m.incident().count(), 500u);
  EXPECT_EQ(m.incident().stream(), "web \"edge\"");
  EXPECT_NE(body.find("\"feature\":\"\""), std::string::npos);  // present though empty
}

// RFC 4231, test case 2.
TEST(AlertFormatTest, HmacSha256KnownAnswer) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace anomalyd
