#include "pg/errors.h"

#include <array>
#include <string_view>

namespace pgcourier {
namespace {

struct Translation {
  std::string_view needle;  // substring of libpq's or the server's message
  StatusCode code;
  std::string_view sqlstate;
  std::string_view cause;
  std::string_view fix;
  // The entry does not apply when the message also holds this.
  std::string_view unless = {};
};

// Ordered: the first match wins. libpq's own messages are in English because
// pgcourier never calls setlocale(); the server's depend on its lc_messages.
constexpr std::array<Translation, 26> kTranslations = {{
    {"server does not support SSL, but SSL was required", StatusCode::kInvalidArgument, "08P01",
     "the server does not accept SSL connections, but sslmode asks for SSL",
     "for a local server use sslmode=disable or sslmode=prefer; for a remote one enable ssl on the "
     "server (ssl = on with a certificate)"},
    // Certificate checks (verify-ca, verify-full) give the same answer every
    // time: not retried.
    {"certificate verify failed", StatusCode::kInvalidArgument, "08001",
     "the server's certificate is not signed by the CA in sslrootcert (or it expired)",
     "set sslrootcert to the CA certificate that signed the server's (the provider publishes it), "
     "or use sslmode=require to encrypt without verifying the server"},
    {"does not match host name", StatusCode::kInvalidArgument, "08001",
     "the server's certificate does not name the host in the connection string",
     "connect with a host name the certificate names (see the message), or use sslmode=verify-ca "
     "to check the CA but not the host name"},
    {"root certificate file", StatusCode::kInvalidArgument, "08001",
     "cannot read the CA file that sslmode=verify-ca/verify-full needs",
     "give sslrootcert the path of the CA certificate file (default ~/.postgresql/root.crt), "
     "sslrootcert=system for the system's CAs, or use sslmode=require"},
    {"invalid port number", StatusCode::kInvalidArgument, "08001",
     "the port in the connection string is not a port number",
     "give a port between 1 and 65535 (host:port in a URI, port=... in key=value)"},
    {"for connection option", StatusCode::kInvalidArgument, "08001",
     "a value in the connection string is not valid for its option",
     "correct the option named in the message"},
    {"invalid sslmode value", StatusCode::kInvalidArgument, "08001",
     "sslmode has a value libpq does not know",
     "use one of disable, allow, prefer, require, verify-ca, verify-full"},
    // pg_hba.conf lines that need SSL ("hostssl"): the message ends with
    // "no encryption".
    // With sslmode=prefer libpq tries SSL first: when that attempt was
    // refused too ("SSL encryption"), encryption is not the problem.
    {"no encryption", StatusCode::kInvalidArgument, "28000",
     "the server's pg_hba.conf does not let this client in without encryption",
     "connect with sslmode=require (or verify-full with sslrootcert): the server may accept this "
     "client over SSL (hostssl lines); otherwise add a pg_hba.conf line for it",
     "SSL encryption"},
    {"password authentication failed", StatusCode::kInvalidArgument, "28P01",
     "the server rejected the password",
     "check the user name and password (in the URI, PGPASSWORD or ~/.pgpass); on managed services "
     "copy the connection string again from the provider's console"},
    {"no password supplied", StatusCode::kInvalidArgument, "28P01",
     "the server asks for a password and none was given",
     "put it in ~/.pgpass (mode 0600) or PGPASSWORD rather than on the command line"},
    {"no pg_hba.conf entry", StatusCode::kInvalidArgument, "28000",
     "the server's pg_hba.conf has no line that lets this client in",
     "add a pg_hba.conf line for this client address, user and database (then reload), or allow "
     "this machine's IP address in the provider's network settings; if the message says "
     "\"no encryption\", add sslmode=require"},
    {"pg_hba.conf rejects connection", StatusCode::kInvalidArgument, "28000",
     "the server's pg_hba.conf rejects this client",
     "change the server's pg_hba.conf line for this client address, user and database (then "
     "reload), or connect as another user"},
    {"Name or service not known", StatusCode::kInvalidArgument, "08001",
     "the host name could not be resolved",
     "check the spelling of the host name and that this machine can resolve it (DNS, VPN)"},
    {"could not translate host name", StatusCode::kInvalidArgument, "08001",
     "the host name could not be resolved",
     "check the spelling of the host name and that this machine can resolve it (DNS, VPN)"},
    {"Connection refused", StatusCode::kConnectionFailed, "08001",
     "nothing accepts connections at that address and port",
     "check that the server runs, the port is right, and listen_addresses includes this "
     "interface"},
    {"No such file or directory", StatusCode::kConnectionFailed, "08001",
     "no server listens on that unix socket",
     "check that the server runs and the socket directory and port are right, or give "
     "host=127.0.0.1"},
    {"timeout expired", StatusCode::kTimeout, "08001", "the server did not answer in time",
     "check host, port and firewall or allow-list rules; a serverless server waking from sleep "
     "can be slow: raise --connect-timeout"},
    {"too many clients already", StatusCode::kConnectionFailed, "53300",
     "the server has no free connection slots",
     "close idle connections, use a direct (not pooled) endpoint with more slots, raise "
     "max_connections, or lower --jobs"},
    {"remaining connection slots are reserved", StatusCode::kConnectionFailed, "53300",
     "the server's free connection slots are reserved for privileged roles",
     "close idle connections, raise max_connections, or lower --jobs"},
    {"too many connections for role", StatusCode::kConnectionFailed, "53300",
     "the role's connection limit is reached",
     "close that role's idle connections or raise its limit (ALTER ROLE ... CONNECTION LIMIT)"},
    {"the database system is starting up", StatusCode::kConnectionFailed, "57P03",
     "the server is still starting", "wait a moment and try again"},
    // After a crash the server replays WAL before it lets anyone in: PostgreSQL
    // 14+ says "not yet accepting connections", older ones "in recovery mode".
    {"the database system is not yet accepting connections", StatusCode::kConnectionFailed, "57P03",
     "the server is recovering and does not accept connections yet",
     "wait until its recovery ends, or raise --connect-timeout"},
    {"the database system is in recovery mode", StatusCode::kConnectionFailed, "57P03",
     "the server is recovering and does not accept connections yet",
     "wait until its recovery ends, or raise --connect-timeout"},
    {"the database system is shutting down", StatusCode::kConnectionFailed, "57P03",
     "the server is shutting down", "wait until it is back and try again"},
    {"does not exist", StatusCode::kInvalidArgument, "3D000",
     "the database or role named in the connection string does not exist",
     "check the dbname and user in the connection string"},
    {"server closed the connection unexpectedly", StatusCode::kConnectionFailed, "08006",
     "the server closed the connection during start-up",
     "check the server's log; a connection pooler in between may refuse this client"},
}};

std::string FirstLine(const std::string& message) {
  std::string line = message.substr(0, message.find('\n'));
  // libpq prefixes "connection to server at ... failed: "; keep the reason.
  static constexpr std::string_view kFailed = "failed: ";
  size_t at = line.find(kFailed);
  if (at != std::string::npos) line = line.substr(at + kFailed.size());
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

}  // namespace

Status TranslateConnectFailure(const std::string& libpq_message, const std::string& who) {
  std::string reason = FirstLine(libpq_message);
  for (const auto& t : kTranslations) {
    if (libpq_message.find(t.needle) != std::string::npos &&
        (t.unless.empty() || libpq_message.find(t.unless) == std::string::npos)) {
      return Status(t.code,
                    "cannot connect to " + who + ": " + std::string(t.cause) + " (" + reason + ")",
                    std::string(t.fix), std::string(t.sqlstate));
    }
  }
  // A FATAL error the server sent while starting the session is its answer,
  // not a network hiccup: trying again would get the same answer.
  bool from_server = libpq_message.find("FATAL:") != std::string::npos;
  return Status(from_server ? StatusCode::kFailedPrecondition : StatusCode::kConnectionFailed,
                "cannot connect to " + who + ": " + reason,
                "check the connection string, and that the server runs and is reachable from here",
                "08001");
}

}  // namespace pgcourier
