#include "peersock/ice/agent.hpp"

#include <gio/gio.h>
#include <nice/agent.h>
#include <nice/interfaces.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/text.hpp"

namespace peersock::ice {
namespace {

using log::Layer;

// The numeric addresses of a resolver answer. libnice 0.1.21 wants IP literals.
std::vector<std::string> address_texts(GList* addresses) {
  std::vector<std::string> out;
  for (GList* l = addresses; l != nullptr; l = l->next) {
    g_autofree char* text = g_inet_address_to_string(G_INET_ADDRESS(l->data));
    out.emplace_back(text);
  }
  return out;
}

std::string address_text(const NiceAddress& address) {
  char buf[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&address, buf);
  return buf;
}

std::string endpoint_text(const NiceAddress& address) {
  std::string a = address_text(address);
  if (a.find(':') != std::string::npos) a = "[" + a + "]";
  return fmt::format("{}:{}", a, nice_address_get_port(&address));
}

const char* type_text(NiceCandidateType type) {
  switch (type) {
    case NICE_CANDIDATE_TYPE_HOST: return "host";
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: return "srflx";
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE: return "prflx";
    case NICE_CANDIDATE_TYPE_RELAYED: return "relay";
  }
  return "?";
}

// libnice 0.1.21 does not say over which transport a relay candidate reaches
// its TURN server, but it encodes it in the type preference (the top byte of
// the priority): 30 for TURN over UDP, 20 for TURN over TCP/TLS.
constexpr uint32_t kTypePreferenceRelayedUdp = 30;

SelectedPath make_path(const NiceCandidate& local, const NiceCandidate& remote) {
  SelectedPath path;
  path.local = endpoint_text(local.addr);
  path.remote = endpoint_text(remote.addr);
  path.local_type = type_text(local.type);
  path.remote_type = type_text(remote.type);
  path.relayed = local.type == NICE_CANDIDATE_TYPE_RELAYED || remote.type == NICE_CANDIDATE_TYPE_RELAYED;
  path.transport = local.transport == NICE_CANDIDATE_TRANSPORT_UDP ? "udp" : "tcp";
  if (local.type == NICE_CANDIDATE_TYPE_RELAYED) {
    NiceAddress server;
    nice_address_init(&server);
    nice_candidate_relay_address(&local, &server);
    if (nice_address_is_valid(&server)) path.relay_server = endpoint_text(server);
    path.relay_transport = (local.priority >> 24) == kTypePreferenceRelayedUdp ? "udp" : "tcp";
  }
  return path;
}

}  // namespace

Agent::Agent(bool controlling, const config::Settings& settings, AgentCallbacks callbacks)
    : agent_(nice_agent_new(g_main_context_get_thread_default(), NICE_COMPATIBILITY_RFC5245)),
      callbacks_(std::move(callbacks)),
      settings_(settings) {
  if (!agent_) throw Error(ExitCode::failure, "cannot create the ICE agent");
  // ICE-TCP host candidates are off: the datagram path is UDP, and TURN over
  // TCP still covers networks that block UDP.
  g_object_set(agent_.get(), "controlling-mode", controlling ? TRUE : FALSE, "ice-tcp", FALSE, "upnp", FALSE, nullptr);
  // Ta, the pacing of new STUN transactions (checks and gathering): 5 ms, the
  // least RFC 8445 §14.2 allows, not libnice's 20 ms. The checks of a pair
  // list go out one per Ta, so on a relayed path the pair that works waited
  // behind the others: symmetric x symmetric with 100 ms to the relay, ICE
  // took 0.45 s from the peer's candidates to connected at 20 ms and 0.34 s
  // at 5 ms (tests/bench/setup_timeline.py, median of 5). A session's pair
  // list is a few dozen pairs at most.
  g_object_set(agent_.get(), "stun-pacing-timer", guint{5}, nullptr);

  stream_ = nice_agent_add_stream(agent_.get(), 1);
  if (stream_ == 0) throw Error(ExitCode::failure, "cannot add an ICE stream");
  if (settings.force_relay) g_object_set(agent_.get(), "force-relay", TRUE, nullptr);
  relay_disabled_ = settings.no_relay && settings.turn.enabled();
  stun_ = settings.stun.enabled();
  turn_ = settings.turn.enabled() && !settings.no_relay;

  // libnice ignores loopback interfaces. On a machine (or namespace) with no
  // other interface, use loopback so that two local peers can still connect.
  GList* ips = nice_interfaces_get_local_ips(FALSE);
  if (ips == nullptr) {
    NiceAddress lo;
    nice_address_init(&lo);
    nice_address_set_from_string(&lo, "127.0.0.1");
    nice_agent_add_local_address(agent_.get(), &lo);
    loopback_only_ = true;
  }
  g_list_free_full(ips, g_free);

  g_signal_connect(agent_.get(), "candidate-gathering-done", G_CALLBACK(&Agent::on_gathering_done), this);
  g_signal_connect(agent_.get(), "new-candidate-full", G_CALLBACK(&Agent::on_new_candidate), this);
  g_signal_connect(agent_.get(), "component-state-changed", G_CALLBACK(&Agent::on_state), this);
  g_signal_connect(agent_.get(), "new-selected-pair-full", G_CALLBACK(&Agent::on_selected_pair), this);
  nice_agent_attach_recv(agent_.get(), stream_, 1, g_main_context_get_thread_default(), &Agent::on_recv, this);
}

// The members release themselves (pending lookups end with
// G_IO_ERROR_CANCELLED and do not touch `this`); the agent must first stop
// calling us and close its sockets.
Agent::~Agent() {
  cancellable_.cancel();
  gather_grace_.reset();
  direct_.reset();
  direct_socket_.reset();
  nice_agent_attach_recv(agent_.get(), stream_, 1, g_main_context_get_thread_default(), nullptr, nullptr);
  g_signal_handlers_disconnect_by_data(agent_.get(), this);
  nice_agent_close_async(agent_.get(), nullptr, nullptr);
}

// Host names are looked up asynchronously (the main loop keeps running);
// numeric hosts need no lookup. Gathering starts when every lookup has
// answered, after callbacks_.resolved.
void Agent::gather() {
  auto lookup = [&](const std::string& host, std::vector<std::string>& out, const char* what) {
    if (g_hostname_is_ip_address(host.c_str())) {
      out = {host};
      return;
    }
    ++lookups_pending_;
    struct Ctx {
      Agent* agent;
      std::vector<std::string>* out;
      std::string host;
      const char* what;
    };
    g_autoptr(GResolver) resolver = g_resolver_get_default();
    g_resolver_lookup_by_name_async(
        resolver, host.c_str(), cancellable_.get(),
        [](GObject* source, GAsyncResult* result, gpointer data) {
          c_boundary("a STUN/TURN name lookup", [&] {
            std::unique_ptr<Ctx> ctx(static_cast<Ctx*>(data));
            g_autoptr(GError) error = nullptr;
            GList* addresses = g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);
            if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;  // agent is gone
            Agent* agent = ctx->agent;
            if (addresses == nullptr) {
              // Not fatal: a name that does not resolve (a typo, no DNS on this
              // network) only costs that server's candidates; the others go on,
              // and no path at all ends the run later (exit 4).
              agent->unresolved_.push_back(fmt::format("{} server {}", ctx->what, text::quote(ctx->host)));
              // GLib's message repeats the name ("Error resolving “x”: reason");
              // the reason is the resolver's own text.
              std::string_view why = error ? error->message : "no address";
              if (const size_t colon = why.rfind(": "); colon != std::string_view::npos) why.remove_prefix(colon + 2);
              log::warning("server-unresolved",
                           fmt::format("warning: cannot resolve {} server {} ({}); going on without {}", ctx->what,
                                       text::quote(ctx->host), why,
                                       ctx->what == std::string_view("STUN") ? "server-reflexive candidates"
                                                                             : "relay candidates"));
            } else {
              *ctx->out = address_texts(addresses);
              g_resolver_free_addresses(addresses);
            }
            if (--agent->lookups_pending_ == 0) agent->resolved_then_gather();
          });
        },
        new Ctx{this, &out, host, what});
  };
  if (stun_) lookup(settings_.stun.host, stun_addresses_, "STUN");
  if (turn_) lookup(settings_.turn.host, turn_addresses_, "TURN");
  if (lookups_pending_ == 0) resolved_then_gather();
}

void Agent::resolved_then_gather() {
  if (callbacks_.resolved) callbacks_.resolved();
  start_gathering();
}

void Agent::fail_setup(const Error& error) {
  if (setup_failed_) return;
  setup_failed_ = true;
  if (callbacks_.setup_failed) callbacks_.setup_failed(error);
}

void Agent::start_gathering() {
  if (setup_failed_) return;
  if (stun_ && !stun_addresses_.empty()) {
    // When the STUN server is also our TURN server (same address and port,
    // e.g. one coturn), libnice hands the binding response to the TURN
    // socket's handler and the srflx discovery only ends at its 2 s timeout.
    // The TURN allocation reports the same mapped address and libnice makes
    // the srflx candidate from it, so the separate STUN request is skipped.
    const std::string& stun = stun_addresses_.front();
    bool same_as_turn = turn_ && settings_.stun.port == settings_.turn.port &&
                        std::find(turn_addresses_.begin(), turn_addresses_.end(), stun) != turn_addresses_.end();
    if (!same_as_turn) {
      g_object_set(agent_.get(), "stun-server", stun.c_str(), "stun-server-port",
                   static_cast<guint>(settings_.stun.port), nullptr);
    }
  }
  for (const auto& address : turn_addresses_) {
    for (auto type : {NICE_RELAY_TYPE_TURN_UDP, NICE_RELAY_TYPE_TURN_TCP}) {
      nice_agent_set_relay_info(agent_.get(), stream_, 1, address.c_str(), settings_.turn.port,
                                settings_.turn_user.c_str(), settings_.turn_password.c_str(), type);
    }
  }
  if (!nice_agent_gather_candidates(agent_.get(), stream_)) {
    fail_setup(Error(ExitCode::no_path, "ICE: cannot gather candidates (no usable network interface)"));
  }
}

Description Agent::local_description() const {
  Description d;
  d.version = std::min(kOurVersion, settings_.protocol_version);
  gchar* ufrag = nullptr;
  gchar* pwd = nullptr;
  nice_agent_get_local_credentials(agent_.get(), stream_, &ufrag, &pwd);
  d.ufrag = ufrag ? ufrag : "";
  d.password = pwd ? pwd : "";
  g_free(ufrag);
  g_free(pwd);
  GSList* candidates = nice_agent_get_local_candidates(agent_.get(), stream_, 1);
  for (GSList* l = candidates; l != nullptr; l = l->next) {
    auto* c = static_cast<NiceCandidate*>(l->data);
    if (d.candidates.size() >= kMaxCandidates) break;
    Candidate out;
    out.foundation = c->foundation;
    out.address = address_text(c->addr);
    out.port = nice_address_get_port(&c->addr);
    out.transport = static_cast<Transport>(c->transport);
    out.priority = c->priority;
    out.type = static_cast<CandidateType>(c->type);
    // A base without a port (relay over TURN-TCP) is left out: it means
    // nothing to the peer, and earlier builds refuse base port 0.
    if (nice_address_is_valid(&c->base_addr) && !nice_address_equal(&c->base_addr, &c->addr) &&
        nice_address_get_port(&c->base_addr) != 0) {
      out.base_address = address_text(c->base_addr);
      out.base_port = nice_address_get_port(&c->base_addr);
    }
    d.candidates.push_back(std::move(out));
  }
  g_slist_free_full(candidates, reinterpret_cast<GDestroyNotify>(&nice_candidate_free));
  return d;
}

void Agent::set_remote(const Description& remote) {
  if (!nice_agent_set_remote_credentials(agent_.get(), stream_, remote.ufrag.c_str(), remote.password.c_str())) {
    throw CounterpartyError("the peer's ICE credentials were rejected");
  }
  GSList* list = nullptr;
  for (const auto& c : remote.candidates) {
    NiceCandidate* n = nice_candidate_new(static_cast<NiceCandidateType>(c.type));
    n->stream_id = stream_;
    n->component_id = 1;
    n->transport = static_cast<NiceCandidateTransport>(c.transport);
    n->priority = c.priority;
    g_strlcpy(n->foundation, c.foundation.c_str(), NICE_CANDIDATE_MAX_FOUNDATION);
    bool ok = nice_address_set_from_string(&n->addr, c.address.c_str());
    nice_address_set_port(&n->addr, c.port);
    if (ok && c.base_address) {
      ok = nice_address_set_from_string(&n->base_addr, c.base_address->c_str());
      nice_address_set_port(&n->base_addr, c.base_port.value_or(0));
    }
    if (!ok) {  // body.cpp validated these already; belt and braces
      nice_candidate_free(n);
      continue;
    }
    list = g_slist_append(list, n);
  }
  int added = nice_agent_set_remote_candidates(agent_.get(), stream_, 1, list);
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(&nice_candidate_free));
  log::debug(Layer::ice, "peer offered {} candidates, {} accepted", remote.candidates.size(), added);
  if (added <= 0) {
    // Nothing to check against: fail now instead of waiting for libnice.
    failed_ = true;
    if (callbacks_.failed) callbacks_.failed();
  }
}

void Agent::send(std::span<const uint8_t> datagram) {
  if (!connected_) return;
  nice_agent_send(agent_.get(), stream_, 1, static_cast<guint>(datagram.size()),
                  reinterpret_cast<const gchar*>(datagram.data()));
}

void Agent::send_batch(std::span<const uint8_t> bytes, std::span<const size_t> sizes) {
  if (!connected_ || sizes.empty()) return;
  if (direct_) {
    if (direct_->send(bytes, sizes)) return;
    // The socket failed us: libnice from now on (it knows what to do).
    log::debug(Layer::ice, "direct UDP sending stopped; using libnice");
    direct_.reset();
  }
  // One call for the whole batch (libnice's sendmmsg analogue). What the
  // socket does not take now is dropped, as UDP would: QUIC retransmits.
  std::vector<GOutputVector> vectors(sizes.size());
  std::vector<NiceOutputMessage> messages(sizes.size());
  size_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    vectors[i] = {bytes.data() + offset, sizes[i]};
    messages[i] = {&vectors[i], 1};
    offset += sizes[i];
  }
  GError* error = nullptr;
  gint sent =
      nice_agent_send_messages_nonblocking(agent_.get(), stream_, 1, messages.data(), messages.size(), nullptr, &error);
  if (error != nullptr) g_error_free(error);
  if (sent >= 0 && static_cast<size_t>(sent) < sizes.size()) ++dropped_;
}

// libnice may switch pairs after the first one connected (aggressive
// nomination): follow it, so that we never send past the selected pair.
void Agent::use_pair(const NiceCandidate& local, const NiceCandidate& remote) {
  direct_.reset();
  direct_socket_.reset();
  if (!settings_.direct_send || local.type == NICE_CANDIDATE_TYPE_RELAYED ||
      local.transport != NICE_CANDIDATE_TRANSPORT_UDP || remote.transport != NICE_CANDIDATE_TRANSPORT_UDP) {
    return;  // TURN (libnice frames it) or TCP: libnice sends
  }
  direct_socket_.reset(nice_agent_get_selected_socket(agent_.get(), stream_, 1));
  if (!direct_socket_) return;
  sockaddr_storage to{};
  nice_address_copy_to_sockaddr(&remote.addr, reinterpret_cast<sockaddr*>(&to));
  socklen_t len = to.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  int fd = g_socket_get_fd(direct_socket_.get());
  // Bursts of a fast transfer (a write pass sends up to 64 datagrams at
  // once) overflowed the default 208 KiB receive buffer now and then. Ask
  // for 4 MiB: the forced variant needs CAP_NET_ADMIN, the plain one is
  // capped by net.core.rmem_max / wmem_max.
  int want = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
  }
  direct_.emplace(fd, to, len);
  log::debug(Layer::ice, "sending directly on the pair's UDP socket");
}

void Agent::on_selected_pair(NiceAgent*, guint, guint, NiceCandidate* local, NiceCandidate* remote, gpointer self) {
  c_boundary("the ICE pair selection", [&] {
    auto* agent = static_cast<Agent*>(self);
    if (local != nullptr && remote != nullptr && agent->connected_) agent->use_pair(*local, *remote);
  });
}

std::optional<SelectedPath> Agent::selected_path() const {
  if (!connected_) return std::nullopt;
  NiceCandidate* local = nullptr;
  NiceCandidate* remote = nullptr;
  if (!nice_agent_get_selected_pair(agent_.get(), stream_, 1, &local, &remote)) return std::nullopt;
  return make_path(*local, *remote);
}

std::string Agent::tried() const {
  std::string out = "host";
  if (stun_ && !stun_addresses_.empty()) out += ", srflx";
  if (turn_ && !turn_addresses_.empty()) out += ", relay";
  if (!turn_) out += relay_disabled_ ? "; TURN disabled by --no-relay" : "; no TURN server configured";
  for (const auto& server : unresolved_) out += fmt::format("; {} did not resolve", server);
  // libnice skips interfaces that are down or not yet running (e.g. right
  // after boot or in a fresh container): say so, it is the likely cause.
  if (loopback_only_) out += "; no network interface was up, so this side offered only 127.0.0.1";
  return out;
}

void Agent::on_gathering_done(NiceAgent*, guint, gpointer self) {
  c_boundary("the ICE gathering", [&] {
    auto* agent = static_cast<Agent*>(self);
    log::debug(Layer::ice, "gathering done");
    agent->gathered();
  });
}

// Gathering ends only when every discovery has answered or timed out. Where
// UDP is blocked, the STUN and TURN-over-UDP requests never answer and
// libnice gives up on them after 2 s, while the TURN-over-TCP relay -- the
// path that will be used -- arrived after a few round trips: measured in the
// NAT lab (udp-blocked x restricted), gathering took 2.0 s of the 2.25 s
// setup. So a relay candidate in hand starts a grace period, and the
// description goes out when it ends, with what was gathered by then. What
// comes later is not sent (no trickle): at worst a better path is missed,
// never the relay that works.
//
// How long: where UDP works, the UDP relay (and with it the srflx
// candidate, which libnice takes from the same TURN answer) comes first and
// the TCP relay within about one more round trip: 300 ms. A TCP relay
// first means UDP is blocked -- or that a UDP request was lost: libnice
// retransmits it after 500 ms (STUN_TIMER_DEFAULT_TIMEOUT). With 300 ms
// then, a lossy path lost its srflx and UDP relay candidates (NAT lab,
// restricted x cone with 2 % loss per crossing: both sides ended up relayed
// over the peer's TURN/TCP relay). So a TCP relay first waits 600 ms: the
// TCP relay takes one round trip more than the UDP one (the TCP handshake),
// so a UDP relay delayed by one retransmission arrives about 500 ms minus a
// round trip after it. A UDP relay arriving meanwhile ends the wait 300 ms
// after its arrival instead (by then the srflx is in too). Setup to the
// first byte, udp-blocked x restricted, `pytest -s test_nat_matrix.py -k
// udp_blocked` on the 2-core machine with CI running alongside: 0.64-0.84 s
// with 300 ms, 0.99-1.02 s with 600 ms, 1.27-1.34 s with 900 ms (three runs
// each); rerun idle with 600 ms: 1.01 s.
constexpr guint kGatherGraceMs = 300;
constexpr guint kGatherGraceTcpFirstMs = 600;

void Agent::on_new_candidate(NiceAgent*, NiceCandidate* candidate, gpointer self) {
  c_boundary("an ICE candidate", [&] {
    auto* agent = static_cast<Agent*>(self);
    if (agent->gathered_ || candidate->type != NICE_CANDIDATE_TYPE_RELAYED) return;
    const bool over_udp = (candidate->priority >> 24) == kTypePreferenceRelayedUdp;
    if (over_udp && !agent->udp_relay_seen_) {
      agent->udp_relay_seen_ = true;
      agent->gather_grace_ = g_timeout_add(kGatherGraceMs, &Agent::on_gather_grace, agent);
    } else if (!agent->gather_grace_) {
      agent->gather_grace_ = g_timeout_add(kGatherGraceTcpFirstMs, &Agent::on_gather_grace, agent);
    }
  });
}

gboolean Agent::on_gather_grace(gpointer self) {
  return c_boundary("the ICE gathering", [&]() -> gboolean {
    auto* agent = static_cast<Agent*>(self);
    agent->gather_grace_.fired();
    if (!agent->gathered_) log::debug(Layer::ice, "gathering: a relay candidate is in hand; not waiting for the rest");
    agent->gathered();
    return G_SOURCE_REMOVE;
  });
}

void Agent::gathered() {
  if (gathered_) return;
  gathered_ = true;
  gather_grace_.reset();
  if (callbacks_.gathering_done) callbacks_.gathering_done();
}

void Agent::on_state(NiceAgent* nice, guint stream, guint component, guint state, gpointer self) {
  c_boundary("an ICE state change", [&] {
    auto* agent = static_cast<Agent*>(self);
    log::debug(Layer::ice, "component state {}", nice_component_state_to_string(static_cast<NiceComponentState>(state)));
    if ((state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) && !agent->connected_) {
      agent->connected_ = true;
      SelectedPath path;
      NiceCandidate* local = nullptr;
      NiceCandidate* remote = nullptr;
      if (nice_agent_get_selected_pair(nice, stream, component, &local, &remote)) {
        path = make_path(*local, *remote);
        agent->use_pair(*local, *remote);
      }
      if (agent->callbacks_.connected) agent->callbacks_.connected(path);
    } else if (state == NICE_COMPONENT_STATE_FAILED && !agent->failed_) {
      agent->failed_ = true;
      if (agent->callbacks_.failed) agent->callbacks_.failed();
    }
  });
}

void Agent::on_recv(NiceAgent*, guint, guint, guint len, gchar* buf, gpointer self) {
  c_boundary("an ICE datagram", [&] {
    auto* agent = static_cast<Agent*>(self);
    if (agent->callbacks_.datagram) agent->callbacks_.datagram({reinterpret_cast<const uint8_t*>(buf), len});
  });
}

}  // namespace peersock::ice
