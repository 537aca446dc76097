// EtcdClient: a client of one etcd member's HTTP/JSON gRPC gateway (/v3/kv/..., /v3/cluster/...,
// /metrics, /health) over one keep-alive connection (one libcurl easy handle), for the etcd
// comparison benchmark. Keys and values travel base64-encoded, as the gateway wants them.
//
// Errors: calls return false / nullopt / -1 and set error() to one line: the transport error
// ("Couldn't connect to server"), or "HTTP <code>: <body>", or "bad reply: <why>".
// Thread-safety: none; one client per thread (each holds its own connection).
// curl_global_init must have run (EtcdClient::GlobalInit) before the first client is made.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace clustermgr::bench {

class EtcdClient {
 public:
  // Calls curl_global_init once per process; call from main() before threads start.
  static void GlobalInit();

  // `base_url`, e.g. "http://127.0.0.1:2379".
  explicit EtcdClient(std::string base_url);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const std::string& base_url() const { return base_url_; }
  const std::string& error() const { return error_; }

  // A put (linearizable; acknowledged once committed by a quorum and applied by this member).
  bool Put(const std::string& key, const std::string& value);
  // Puts all pairs in one transaction (etcd allows up to 128 operations per txn by default).
  bool PutMany(const std::vector<std::pair<std::string, std::string>>& kvs);
  // A serializable read of `key` at this member: its value, "" with *found false when absent;
  // nullopt on error.
  std::optional<std::string> GetSerializable(const std::string& key, bool* found);
  // The number of keys with `prefix` this member holds (serializable, count only); -1 on error.
  std::int64_t CountSerializable(const std::string& prefix);

  // Cluster membership. Ids are etcd's uint64 member ids.
  struct Member {
    std::uint64_t id = 0;
    std::string name;
    std::vector<std::string> peer_urls;
  };
  std::optional<std::vector<Member>> Members();
  bool RemoveMember(std::uint64_t id);
  bool AddMember(const std::string& peer_url);

  // True when /health says {"health":"true"}.
  bool Healthy();
  // Sum of the samples of a Prometheus counter on /metrics (all label sets); nullopt on error.
  std::optional<double> MetricSum(const std::string& name);

 private:
  // POSTs `body` (GETs when body is null) to base_url + path; the reply body on HTTP 200.
  std::optional<std::string> Request(const std::string& path, const std::string* body);

  std::string base_url_;
  void* curl_ = nullptr;     // CURL*
  void* headers_ = nullptr;  // curl_slist*
  std::string error_;
};

std::string Base64(const std::string& in);

}  // namespace clustermgr::bench
