#include "test/support/http_test_util.h"

#include <cstdlib>
#include <fstream>

#include "test/support/cluster.h"

namespace clustermgr::test {

HttpReply Curl(std::vector<std::string> args, std::chrono::seconds timeout) {
  std::vector<std::string> all = {"-sS",
                                  "-D",
                                  "/dev/stderr",
                                  "-o",
                                  "-",
                                  "-w",
                                  "\n%{http_code}",
                                  "--max-time",
                                  std::to_string(timeout.count())};
  all.insert(all.end(), args.begin(), args.end());
  CommandResult r = RunCommand("/usr/bin/curl", all, timeout + std::chrono::seconds(5));
  HttpReply out;
  const size_t nl = r.out.rfind('\n');
  out.body = nl == std::string::npos ? "" : r.out.substr(0, nl);
  out.status = std::atoi(r.out.substr(nl == std::string::npos ? 0 : nl + 1).c_str());
  out.headers = r.err;
  if (r.exit_code != 0) out.error = r.ToString();
  return out;
}

Status MakeCa(const std::string& dir, const std::string& ca) {
  CommandResult r =
      RunCommand("/usr/bin/openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                      "-subj", "/CN=" + ca, "-keyout", dir + "/" + ca + ".key",
                                      "-out", dir + "/" + ca + ".pem"});
  return r.exit_code == 0 ? Status::Ok() : Status(Code::kInternal, r.ToString());
}

Status MakeCert(const std::string& dir, const std::string& ca, const std::string& name,
                const std::string& subject, bool server) {
  const std::string base = dir + "/" + name;
  CommandResult req =
      RunCommand("/usr/bin/openssl", {"req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                                      "-keyout", base + ".key", "-out", base + ".csr"});
  if (req.exit_code != 0) return Status(Code::kInternal, req.ToString());
  std::ofstream(base + ".ext") << (server ? "subjectAltName=IP:127.0.0.1\n"
                                          : "extendedKeyUsage=clientAuth\n");
  CommandResult sign = RunCommand(
      "/usr/bin/openssl", {"x509", "-req", "-in", base + ".csr", "-CA", dir + "/" + ca + ".pem",
                           "-CAkey", dir + "/" + ca + ".key", "-CAcreateserial", "-days", "2",
                           "-extfile", base + ".ext", "-out", base + ".pem"});
  return sign.exit_code == 0 ? Status::Ok() : Status(Code::kInternal, sign.ToString());
}

}  // namespace clustermgr::test
