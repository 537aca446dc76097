#include "mgr/http/gateway.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>

namespace clustermgr::mgr::http {
namespace {

// A stand-in for the event loop: records each call and answers it at once from `answer`.
class FakeLoop {
 public:
  std::function<Answer(const Call&)> answer = [](const Call&) {
    return Answer(net::RpcReply::Ok());
  };
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  Gateway::Submit Submit(Gateway** gateway) {
    return [this, gateway](Call call) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        calls_.push_back(call);
      }
      if (call.reply_to.request_id != 0)
        (*gateway)->Complete(call.reply_to.request_id, answer(call));
    };
  }

 private:
  std::mutex mu_;
  std::vector<Call> calls_;
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GatewayOptions o;
    o.bind = "127.0.0.1:0";
    o.fixed = {"127.0.0.1:7373", false, "127.0.0.1:9007"};
    auto g = Gateway::Start(o, loop_.Submit(&raw_), [](std::string_view text) {
      return text == "{}" || text.front() == '{' ? std::string() : std::string("bad vars");
    });
    ASSERT_TRUE(g.ok()) << g.status().message();
    gateway_ = std::move(g).value();
    raw_ = gateway_.get();
    const std::string port = gateway_->address().substr(gateway_->address().rfind(':') + 1);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", std::stoi(port));
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& type = "application/json") {
    return client_->Post(path.c_str(), body, type.c_str());
  }

  FakeLoop loop_;
  Gateway* raw_ = nullptr;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(GatewayTest, PostBecomesTheRpcRequestWithTheCallerAndAnswersEmpty) {
  auto res = Post("/commission/nodes",
                  R"({"nodes":["n-1"],"host_group":"service-master","extra_vars":" "})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "");
  ASSERT_EQ(loop_.calls().size(), 1u);
  const Call call = loop_.calls()[0];
  EXPECT_EQ(Describe(call.caller), "loopback");
  EXPECT_EQ(call.caller.kind, HttpCaller::Kind::kLoopback);
  EXPECT_TRUE(call.reply_to.gateway);
  const auto& req = std::get<net::CommissionRequest>(std::get<net::RpcRequest>(call.ask));
  EXPECT_EQ(req.names, std::vector<std::string>{"n-1"});
  EXPECT_EQ(req.group, "service-master");
  EXPECT_EQ(req.extra_vars, "{}");  // blank means {}
}

TEST_F(GatewayTest, RefusalsAre500WithTheTextAndANewline) {
  loop_.answer = [](const Call&) {
    return Answer(net::RpcReply::Error(Code::kNotFound, "no such thing"));
  };
  auto res = Post("/globals", R"({"extra_vars":"{}"})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->body, "no such thing\n");
  auto bad = Post("/globals", R"({"extra_vars":"[]"})");
  EXPECT_EQ(bad->body, "bad vars\n");
  auto job = client_->Get("/info/job/first");
  EXPECT_EQ(job->status, 500);
  EXPECT_EQ(job->body, "Invalid or empty job label specified: \"first\"\n");
}

TEST_F(GatewayTest, RoutesAsThePredecessorsRouterDid) {
  auto unknown = client_->Get("/nothing/here");
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(unknown->body, "404 page not found\n");
  // POST routes need Content-Type exactly application/json.
  EXPECT_EQ(Post("/globals", "{}", "application/json; charset=utf-8")->status, 404);
  EXPECT_EQ(client_->Delete("/globals")->status, 404);
  EXPECT_EQ(client_->Get("/globals")->status, 404);
  EXPECT_EQ(Post("/info/nodes", "{}")->status, 404);
  auto redirect = client_->Get("//info//nodes");
  EXPECT_EQ(redirect->status, 301);
  EXPECT_EQ(redirect->get_header_value("Location"), "/info/nodes");
  EXPECT_TRUE(loop_.calls().empty());
}

TEST_F(GatewayTest, BodiesAreBounded) {
  auto res = Post("/globals", std::string(kMaxBodyBytes + 1, ' '));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_TRUE(loop_.calls().empty());
}

TEST_F(GatewayTest, MonitorEventIsQueuedWithoutWaiting) {
  auto bad = Post("/monitor/event", R"({"monitor_event":{"name":"Joined"}})");
  EXPECT_EQ(bad->status, 500);
  EXPECT_EQ(bad->body, "Invalid or empty event name specified: \"Joined\"\n");
  auto ok = Post("/monitor/event", R"({"monitor_event":{"name":"disappeared","nodes":[]}})");
  EXPECT_EQ(ok->status, 200);
  ASSERT_EQ(loop_.calls().size(), 1u);
  EXPECT_TRUE(std::get<MonitorEvent>(loop_.calls()[0].ask).disappeared);
  EXPECT_EQ(loop_.calls()[0].reply_to.request_id, 0u);
}

TEST_F(GatewayTest, HealthAndMetricsAskTheLoop) {
  loop_.answer = [](const Call& c) -> Answer {
    if (std::holds_alternative<MetricsScrape>(c.ask)) {
      return std::vector<MetricFamily>{{"up", "Up", MetricFamily::Type::kGauge, {{{}, 1}}, {}}};
    }
    return Health{false, "catching up with mgr-2"};
  };
  auto metrics = client_->Get("/metrics");
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "# HELP up Up\n# TYPE up gauge\nup 1\n");
  auto ready = client_->Get("/readyz");
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "catching up with mgr-2\n");
}

TEST_F(GatewayTest, NodeJsonWithBytesThatAreNotUtf8IsStillServed) {
  loop_.answer = [](const Call&) {
    net::NodeInfo n;
    n.name = "n-1";
    n.monitoring = {{"NodeLabel", "bad \xff\xfe bytes"}};
    return Answer(net::RpcReply::Ok(n));
  };
  auto res = client_->Get("/info/node/n-1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(nlohmann::json::parse(res->body)["monitoring_state"]["label"],
            "bad \uFFFD\uFFFD bytes");
  loop_.answer = [](const Call&) {
    net::NodeInfo n;
    n.name = "n-1";
    n.monitoring = {{"NodeLabel", "bad \xff\xfe bytes"}};
    return Answer(net::RpcReply::Ok(net::NodeList{{n}}));
  };
  auto all = client_->Get("/info/nodes");
  ASSERT_TRUE(all);
  EXPECT_EQ(nlohmann::json::parse(all->body)["n-1"]["monitoring_state"]["label"],
            "bad \uFFFD\uFFFD bytes");
}

TEST(GatewayOptionsCheck, NonLoopbackNeedsTlsOrInsecure) {
  GatewayOptions o;
  o.bind = "9007";
  EXPECT_TRUE(CheckGatewayOptions(o).ok());
  EXPECT_EQ(ParseBind("9007").value().host, "127.0.0.1");
  o.bind = "0.0.0.0:9007";
  EXPECT_EQ(CheckGatewayOptions(o).code(), Code::kInvalidArgument);
  o.insecure = true;
  EXPECT_TRUE(CheckGatewayOptions(o).ok());
  o.insecure = false;
  o.tls_cert = "c.pem";
  EXPECT_EQ(CheckGatewayOptions(o).message(),
            "--http-tls-cert, --http-tls-key and --http-client-ca go together (TLS with client "
            "certificates)");
  o.tls_key = "k.pem";
  o.client_ca = "ca.pem";
  EXPECT_TRUE(CheckGatewayOptions(o).ok());
  o.bind = "host:99999";
  EXPECT_FALSE(CheckGatewayOptions(o).ok());
}

}  // namespace
}  // namespace clustermgr::mgr::http
