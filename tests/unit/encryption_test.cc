// ClassifyHost: what `check` calls local (an unencrypted session passes) and
// remote (an unencrypted session warns). Only real loopback addresses and
// sockets are local; a name is never trusted by its look. And libpq's TLS
// failures translated into a cause and a fix, never retried.
#include <gtest/gtest.h>

#include <cstdlib>

#include "pg/conninfo.h"
#include "pg/errors.h"

namespace pgcourier {
namespace {

TEST(HostKindTest, SocketsAreUnixSockets) {
  EXPECT_EQ(ClassifyHost(""), HostKind::kUnixSocket);
  EXPECT_EQ(ClassifyHost("/var/run/postgresql"), HostKind::kUnixSocket);
  EXPECT_EQ(ClassifyHost("/tmp"), HostKind::kUnixSocket);
  EXPECT_EQ(ClassifyHost("@abstract"), HostKind::kUnixSocket);
}

TEST(HostKindTest, LoopbackAddressesAndLocalhost) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "[::1]",
                           "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "localhost."}) {
    EXPECT_EQ(ClassifyHost(host), HostKind::kLoopback) << host;
  }
}

TEST(HostKindTest, EverythingElseIsRemote) {
  for (const char* host :
       {"10.0.0.2", "192.168.1.10", "0.0.0.0", "128.0.0.1", "::2", "fe80::1", "::ffff:10.0.0.1",
        "db.example.com", "127.example.com", "127.0.0.1.example.com", "localhost.example.com",
        "mylocalhost", "1270.0.0.1"}) {
    EXPECT_EQ(ClassifyHost(host), HostKind::kRemote) << host;
  }
}

TEST(HostKindTest, ConnInfoIsLocalOnlyWhenEveryHostIs) {
  EXPECT_TRUE(ConnInfo::Parse("host=127.0.0.1,localhost")->IsLocal());
  EXPECT_TRUE(ConnInfo::Parse("host=/tmp port=5432")->IsLocal());
  EXPECT_FALSE(ConnInfo::Parse("host=127.0.0.1,db.example.com")->IsLocal());
  EXPECT_FALSE(ConnInfo::Parse("postgresql://app@127.evil.example/shop")->IsLocal());
}

// A service file supplies what the string leaves out: the stored form, used
// to connect again by resume, status and cutover, must not replace it with
// libpq's defaults (the local socket, port 5432, the OS user).
TEST(RedactedServiceTest, LeavesHostPortAndUserToTheService) {
  for (const char* name : {"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGSERVICE"}) {
    ::unsetenv(name);
  }
  Result<ConnInfo> info = ConnInfo::Parse("service=old dbname=shop");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->Redacted(), "postgresql:///shop?service=old");
  Result<ConnInfo> again = ConnInfo::Parse(info->Redacted());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->Has("host"));
  EXPECT_FALSE(again->Has("port"));
  EXPECT_FALSE(again->Has("user"));
  EXPECT_EQ(again->Get("service"), "old");
  // What the string gives is kept.
  EXPECT_EQ(ConnInfo::Parse("service=old port=6000 user=app password=x")->Redacted(),
            "postgresql://app@/?port=6000&service=old");
  EXPECT_EQ(ConnInfo::Parse("service=old host=db.example port=6000")->Redacted(),
            "postgresql://db.example:6000/?service=old");
}

struct TlsFailure {
  const char* libpq_message;  // as libpq 15 prints it
  const char* cause;
  const char* fix;
};

TEST(TlsErrorTranslationTest, CertificateAndSslFailuresSayWhatToFix) {
  const TlsFailure failures[] = {
      {"connection to server at \"127.0.0.1\", port 5432 failed: SSL error: certificate verify "
       "failed\n",
       "not signed by the CA in sslrootcert", "sslmode=require"},
      {"connection to server at \"127.0.0.1\", port 5432 failed: server certificate for "
       "\"localhost\" (and 1 other name) does not match host name \"db.example\"\n",
       "does not name the host", "sslmode=verify-ca"},
      {"connection to server at \"127.0.0.1\", port 5432 failed: root certificate file "
       "\"/x/root.crt\" does not exist\nEither provide the file, use the system's trusted roots "
       "with sslrootcert=system, or change sslmode to disable server certificate verification.\n",
       "cannot read the CA file", "sslrootcert"},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  pg_hba.conf rejects "
       "connection for host \"127.0.0.1\", user \"app\", database \"shop\", no encryption\n",
       "without encryption", "sslmode=require"},
      {"invalid port number: \"99999\"\n", "not a port number", "65535"},
      {"invalid sslmode value: \"sometimes\"\n", "sslmode", "verify-full"},
  };
  // sslmode=prefer: the SSL attempt was refused as well, so encryption is
  // not the cause.
  Status both = TranslateConnectFailure(
      "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  pg_hba.conf rejects "
      "connection for host \"127.0.0.1\", user \"app\", database \"shop\", SSL encryption\n"
      "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  pg_hba.conf rejects "
      "connection for host \"127.0.0.1\", user \"app\", database \"shop\", no encryption\n",
      "source");
  EXPECT_NE(both.message().find("rejects this client"), std::string::npos) << both.message();
  for (const auto& f : failures) {
    Status s = TranslateConnectFailure(f.libpq_message, "source");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << f.libpq_message;
    EXPECT_FALSE(s.retryable()) << f.libpq_message;
    EXPECT_NE(s.message().find(f.cause), std::string::npos) << s.message();
    EXPECT_NE(s.hint().find(f.fix), std::string::npos) << s.hint();
  }
}

}  // namespace
}  // namespace pgcourier
