// HTTP from tests: curl runs against a gateway, and a throw-away PKI (openssl) for TLS with
// client certificates.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/status.h"

namespace clustermgr::test {

struct HttpReply {
  int status = 0;  // 0: no HTTP answer (curl failed: see `error`)
  std::string body;
  std::string error;
  std::string headers;
};

// One curl run. `args` come after the common ones; the URL is among them.
HttpReply Curl(std::vector<std::string> args,
               std::chrono::seconds timeout = std::chrono::seconds(30));

// openssl req/x509 into `dir`: a self-signed CA `ca` (dir/ca.pem, dir/ca.key).
Status MakeCa(const std::string& dir, const std::string& ca);
// A certificate dir/name.pem (key dir/name.key) with `subject` ("/O=ops/CN=alice") signed by
// `ca`: a server certificate for 127.0.0.1, or a client one.
Status MakeCert(const std::string& dir, const std::string& ca, const std::string& name,
                const std::string& subject, bool server);

}  // namespace clustermgr::test
