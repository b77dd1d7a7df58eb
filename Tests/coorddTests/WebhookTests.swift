import Coordination
import Events
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// A webhook endpoint on loopback: records every request it gets, answers what it is told to; can go down and come
/// back on the same port.
final class Receiver: @unchecked Sendable {
    struct Received: Sendable {
        let id: String
        let timestamp: String
        let signature: String
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var type: String { json["type"] as? String ?? "" }
        var alert: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    }

    let port: UInt16
    private var server: HTTPServer?
    private let lock = NSLock()
    private var received: [Received] = []
    /// The status to answer (200 unless told otherwise).
    private var answer = 200

    /// Answers every request with a 307 to this URL, when set.
    private let redirect: String?

    init(port: UInt16 = Loopback.freePort(), up: Bool = true, redirect: String? = nil) throws {
        self.port = port
        self.redirect = redirect
        if up { try start() }
    }

    func start() throws {
        var config = HTTPServerConfiguration()
        config.port = port
        let redirect = self.redirect
        let server = HTTPServer(configuration: config, logger: .silent) { [self] request in
            if let redirect {
                _ = record(Received(id: request.header("webhook-id") ?? "", timestamp: "", signature: "", body: ""))
                return HTTPResponse(status: 307, headers: [("Location", redirect)])
            }
            return HTTPResponse(status: record(Received(id: request.header("webhook-id") ?? "", timestamp: request.header("webhook-timestamp") ?? "",
                                                 signature: request.header("webhook-signature") ?? "",
                                                 body: String(decoding: request.body, as: UTF8.self))))
        }
        try server.start()
        self.server = server
    }

    func stop() {
        _ = server?.shutdown(grace: 0.5)
        server = nil
    }

    private func record(_ r: Received) -> Int {
        lock.lock()
        defer { lock.unlock() }
        received.append(r)
        return answer
    }

    func answer(_ status: Int) { lock.lock(); answer = status; lock.unlock() }
    var all: [Received] { lock.lock(); defer { lock.unlock() }; return received }
    var url: String { "http://127.0.0.1:\(port)/hooks/coord" }

    /// Waits until `condition` holds of what was received (up to `seconds`).
    func wait(_ seconds: Double = 15, until condition: ([Received]) -> Bool) async throws -> [Received] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(all) { return all }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return all
    }
}

/// The Standard Webhooks 1.0 verification, written from the specification in Python (hmac, base64, the spec's own
/// steps): the secret's bytes are the base64 after `whsec_`; the signed content is `id.timestamp.body`; the header is
/// a space-separated list of `v1,<base64>`; the timestamp must be within five minutes. Prints "ok" or why not.
enum ReferenceVerifier {
    static let script = #"""
    import base64, hmac, hashlib, sys, time
    secret, msg_id, timestamp, signatures, body = sys.argv[1:6]
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    if abs(time.time() - int(timestamp)) > 300:
        print("timestamp outside tolerance"); sys.exit(1)
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()).decode()
    for sig in signatures.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            print("ok"); sys.exit(0)
    print("no matching signature"); sys.exit(1)
    """#

    static func verify(secret: String, _ r: Receiver.Received) async throws -> String {
        let argv = OutsideTools.pythonArgv
        let exe = argv[0].hasPrefix("/") ? argv : ["/usr/bin/env"] + argv
        let out = try await runBlocking { try Subprocess.run(exe + ["-c", script, secret, r.id, r.timestamp, r.signature, r.body]) }
        return out.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite("Webhooks", .serialized)
struct WebhookTests {
    static func settings(allowPrivate: Bool = true) throws -> WebhookSettings {
        var s = WebhookSettings()
        s.box = try SecretBox(key: (0..<32).map { _ in UInt8.random(in: 0...255) })
        s.allowPrivate = allowPrivate
        (s.retryBase, s.retryCap, s.poll) = (0.3, 1.5, 0.1)
        return s
    }

    /// A daemon with a warehouse, an item with levels (minimum 100) and 150 on hand, and a response.
    static func seeded(_ settings: WebhookSettings) async throws -> TestDaemon {
        let d = try await TestDaemon(webhooks: settings)
        let t = d.operatorToken
        #expect(try await d.call("POST", "/v1/warehouses", token: t, body: #"{"code":"MNL","name":"Manila hub","country":"PHL","kind":"global_hub"}"#).status == 201)
        #expect(try await d.call("POST", "/v1/items", token: t, body: #"{"code":"HSHETARPW406","name":"Tarpaulin","unit":"piece"}"#).status == 201)
        #expect(try await d.call("PUT", "/v1/warehouses/MNL/levels/HSHETARPW406", token: t, body: #"{"minimum":100,"target":200}"#).status == 200)
        #expect(try await d.call("POST", "/v1/stock/receipts", token: t, body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":150,"source":"donation"}"#).status == 200)
        #expect(try await d.call("POST", "/v1/responses", token: t,
                                 body: #"{"id":"PHL-2026-TC-01","name":"Typhoon","country":"PHL","hazard":"typhoon","severity":"orange","declared_at":"2026-11-08T06:30:00Z"}"#).status == 201)
        try await d.settle()
        return d
    }

    static func subscribe(_ d: TestDaemon, _ url: String, kinds: [String]? = nil) async throws -> (id: String, secret: String) {
        let kindsJSON = kinds.map { ",\"kinds\":[" + $0.map { "\"\($0)\"" }.joined(separator: ",") + "]" } ?? ""
        let r = try await d.call("POST", "/v1/webhooks", token: d.admin, body: #"{"url":"\#(url)","description":"duty phone""# + kindsJSON + "}")
        #expect(r.status == 201, "\(r.body)")
        return (r.json["id"] as? String ?? "", r.json["secret"] as? String ?? "")
    }

    /// A receiver, a seeded daemon, and a subscription of the one to the other.
    static func subscribed() async throws -> (Receiver, TestDaemon, (id: String, secret: String)) {
        let receiver = try Receiver()
        let d = try await seeded(try settings())
        return (receiver, d, try await subscribe(d, receiver.url))
    }

    static func dispatch(_ d: TestDaemon, _ quantity: Int) async throws {
        let r = try await d.call("POST", "/v1/stock/dispatches", token: d.operatorToken,
                                 body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":\#(quantity),"destination":"Tacloban"}"#)
        #expect(r.status == 200, "\(r.body)")
    }

    @Test("a dispatch below the minimum raises an alert; it is delivered signed as Standard Webhooks, and a reference verifier accepts it")
    func signedDelivery() async throws {
        let (receiver, d, hook) = try await Self.subscribed()
        defer { receiver.stop(); Task { await d.stop() } }
        #expect(hook.secret.hasPrefix("whsec_"))
        // The secret is in the creation's answer only: not in lists, not in the database in plain text.
        let listed = try await d.call("GET", "/v1/webhooks", token: d.admin)
        #expect(listed.status == 200 && !listed.body.contains(hook.secret) && listed.body.contains(hook.id))
        let stored = try await d.store.pool.withConnection { c in try c.query("SELECT secret_sealed FROM webhooks").decode(0, 0, as: String.self) }
        #expect(!stored.contains(String(hook.secret.dropFirst(6))))

        try await Self.dispatch(d, 60)   // 150 - 60 = 90 < 100
        let got = try await receiver.wait { $0.contains { $0.type == "alert.raised" } }
        let raised = try #require(got.first { $0.type == "alert.raised" })
        #expect(raised.alert["kind"] as? String == "stock.below_minimum")
        #expect(raised.alert["subject"] as? String == "MNL:HSHETARPW406")
        #expect(raised.id.hasPrefix("msg_"))
        #expect(try await ReferenceVerifier.verify(secret: hook.secret, raised) == "ok")
        // A tampered body or another secret does not verify.
        let forged = Receiver.Received(id: raised.id, timestamp: raised.timestamp, signature: raised.signature,
                                       body: raised.body.replacingOccurrences(of: "below", with: "above"))
        #expect(try await ReferenceVerifier.verify(secret: hook.secret, forged) != "ok")
        #expect(try await ReferenceVerifier.verify(secret: "whsec_" + Data(repeating: 7, count: 24).base64EncodedString(), raised) != "ok")
        // The alert the API lists is the one delivered.
        let alerts = try await d.call("GET", "/v1/alerts?kind=stock.below_minimum", token: d.viewer)
        let listedAlert = try #require((alerts.json["items"] as? [[String: Any]])?.first)
        #expect(listedAlert["id"] as? String == raised.alert["id"] as? String)
        #expect(listedAlert["status"] as? String == "open")

        // A receipt back over the minimum clears it: delivered as alert.cleared with the same alert id.
        #expect(try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                 body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":50,"source":"donation"}"#).status == 200)
        let after = try await receiver.wait { $0.contains { $0.type == "alert.cleared" } }
        let cleared = try #require(after.first { $0.type == "alert.cleared" })
        #expect(cleared.alert["id"] as? String == raised.alert["id"] as? String)
        #expect(cleared.alert["cleared_at"] as? String != nil)
        #expect(try await ReferenceVerifier.verify(secret: hook.secret, cleared) == "ok")
        try await d.settle()
        let open = try await d.call("GET", "/v1/alerts?kind=stock.below_minimum", token: d.viewer)
        #expect((open.json["items"] as? [Any])?.isEmpty == true)
        let clearedList = try await d.call("GET", "/v1/alerts?status=cleared", token: d.viewer)
        // Two: this one, and the one the levels raised before the first receipt (before the subscription: never sent).
        #expect((clearedList.json["items"] as? [Any])?.count == 2)

        // A ping from the API (POST /v1/webhooks/{id}/test) arrives signed too.
        let ping = try await d.call("POST", "/v1/webhooks/\(hook.id)/test", token: d.admin)
        #expect(ping.status == 202)
        let pings = try await receiver.wait { $0.contains { $0.type == "ping" } }
        let p = try #require(pings.first { $0.type == "ping" })
        #expect(p.id == ping.json["delivery"] as? String)
        #expect(try await ReferenceVerifier.verify(secret: hook.secret, p) == "ok")
        // Deliveries are listed with their attempts; /metrics counts them. The receiver records a request before it
        // answers, and coordd records the attempt after the answer: on a busy machine the last one can still be
        // in flight for a moment (seen in CI: the ping pending 0.3 s after it arrived).
        var items: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(15)
        repeat {
            let deliveries = try await d.call("GET", "/v1/webhooks/\(hook.id)/deliveries", token: d.admin)
            items = deliveries.json["items"] as? [[String: Any]] ?? []
            if items.count == 3, items.allSatisfy({ $0["status"] as? String != "pending" }) { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        } while Date() < deadline
        #expect(items.count == 3 && items.allSatisfy { $0["status"] as? String == "delivered" && $0["attempts"] as? Int == 1 })
        #expect((items.first?["attempt_log"] as? [[String: Any]])?.first?["status_code"] as? Int == 200)
        let metrics = try await d.call("GET", "/metrics")
        #expect(metrics.body.contains("coord_webhook_attempts_total{outcome=\"delivered\"} 3"))
        #expect(metrics.body.contains("coord_webhook_queue_depth 0"))
        // Only admins manage subscriptions.
        #expect(try await d.call("GET", "/v1/webhooks", token: d.operatorToken).status == 403)
    }

    @Test("the receiver failing, then down for 30 s, then up: delivered, with the same webhook-id on every attempt")
    func receiverDownThenUp() async throws {
        let (receiver, d, hook) = try await Self.subscribed()
        defer { receiver.stop(); Task { await d.stop() } }
        receiver.answer(500)
        try await Self.dispatch(d, 60)
        _ = try await receiver.wait { $0.count >= 2 }
        receiver.stop()
        let downSince = Date()
        try await Task.sleep(nanoseconds: 30_000_000_000)
        receiver.answer(200)
        try receiver.start()
        let got = try await receiver.wait(20) { $0.count >= 3 }
        #expect(Date().timeIntervalSince(downSince) >= 30)
        #expect(got.count >= 3)
        #expect(Set(got.map(\.id)).count == 1, "one webhook-id on every attempt: \(Set(got.map(\.id)))")
        // Delivered: its attempts are all kept, the refused connections among them.
        var delivery: [String: Any] = [:]
        for _ in 0..<100 {
            let r = try await d.call("GET", "/v1/webhooks/\(hook.id)/deliveries", token: d.admin)
            delivery = (r.json["items"] as? [[String: Any]])?.first ?? [:]
            if delivery["status"] as? String == "delivered" { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        #expect(delivery["status"] as? String == "delivered")
        let log = delivery["attempt_log"] as? [[String: Any]] ?? []
        #expect(log.count == delivery["attempts"] as? Int && log.count > got.count, "attempts while down are logged too")
        #expect(log.contains { $0["error"] as? String == "connection refused" })
        #expect(log.last?["status_code"] as? Int == 200)
    }

    @Test("a projection rebuild finds the same alerts with the same ids and times, and sends nothing again")
    func rebuildSendsNothing() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let d = try await Self.seeded(try Self.settings())
        defer { Task { await d.stop() } }
        _ = try await Self.subscribe(d, receiver.url)
        try await Self.dispatch(d, 60)
        #expect(try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                 body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":50,"source":"donation"}"#).status == 200)
        try await Self.dispatch(d, 70)
        let sent = try await receiver.wait { $0.count >= 3 }
        #expect(sent.count == 3)
        try await d.settle()
        let before = try await d.call("GET", "/v1/alerts?status=all", token: d.viewer).body
        let requested = Date()
        #expect(try await d.call("POST", "/v1/projections/alerts/rebuild", token: d.admin).status == 202)
        var rebuilt = false
        for _ in 0..<200 where !rebuilt {
            let p = try await d.call("GET", "/v1/projections", token: d.admin)
            let row = (p.json["items"] as? [[String: Any]])?.first { $0["name"] as? String == "alerts" }
            if let at = (row?["rebuilt_at"] as? String).flatMap(Timestamp.parse), at > requested, row?["status"] as? String == "running" { rebuilt = true }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(rebuilt)
        let after = try await d.call("GET", "/v1/alerts?status=all", token: d.viewer).body
        #expect(after == before)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        #expect(receiver.all.count == 3, "nothing sent again")
        let rows: Int = try await d.store.pool.withConnection { c in try c.query("SELECT count(*)::int FROM webhook_deliveries").decode(0, 0) }
        #expect(rows == 3)
    }

    @Test("410 Gone disables the subscription: later alerts are not sent to it")
    func goneDisables() async throws {
        let (receiver, d, hook) = try await Self.subscribed()
        defer { receiver.stop(); Task { await d.stop() } }
        receiver.answer(410)
        try await Self.dispatch(d, 60)
        _ = try await receiver.wait { $0.count >= 1 }
        var disabled = false
        for _ in 0..<100 where !disabled {
            let r = try await d.call("GET", "/v1/webhooks/\(hook.id)", token: d.admin)
            disabled = r.json["enabled"] as? Bool == false && (r.json["disabled_reason"] as? String ?? "").contains("410")
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(disabled)
        receiver.answer(200)
        #expect(try await d.call("POST", "/v1/webhooks/\(hook.id)/test", token: d.admin).status == 202)
        try await Self.dispatch(d, 10)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        #expect(receiver.all.count == 1, "nothing more after the 410")
        let failed = try await d.call("GET", "/v1/webhooks/\(hook.id)/deliveries?status=failed", token: d.admin)
        #expect((failed.json["items"] as? [[String: Any]])?.first?["last_status"] as? Int == 410)
    }

    @Test("the live feed carries event: alert as alerts are raised and cleared; a feed narrowed to event types does not")
    func liveFeedAlerts() async throws {
        let d = try await Self.seeded(try Self.settings())
        defer { Task { await d.stop() } }
        let port = d.port, viewer = d.viewer
        let head = try await d.store.headPosition()
        let (feed, narrowed) = try await offPool { () -> (SendableBox<HTTPClient>, SendableBox<HTTPClient>) in
            let c = try HTTPClient(port: port)
            c.send("GET /v1/events/live?after=\(head) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(viewer)\r\n\r\n")
            _ = c.read(until: "retry: 2000")
            let n = try HTTPClient(port: port)
            n.send("GET /v1/events/live?after=\(head)&type=stock.dispatched HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(viewer)\r\n\r\n")
            _ = n.read(until: "retry: 2000")
            return (SendableBox(c), SendableBox(n))
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        try await Self.dispatch(d, 60)
        let text = try await offPool { feed.value.read(until: "alert.raised") }
        #expect(text.contains("event: stock.dispatched"))
        #expect(text.contains("event: alert\ndata: {\"type\":\"alert.raised\",\"alert\":{\"id\":\"stock.below_minimum:MNL:HSHETARPW406@"), "\(text)")
        let other = try await offPool { narrowed.value.read(until: "stock.dispatched") }
        #expect(other.contains("event: stock.dispatched"))
        try await Task.sleep(nanoseconds: 1_000_000_000)
        try await Self.dispatch(d, 1)
        let more = try await offPool { narrowed.value.read(until: "\"quantity\": 1,") }
        #expect(!(other + more).contains("event: alert"), "a feed of stock.dispatched only")
    }

    @Test("a redirect is not followed: the attempt fails with its 3xx, and the address it points to gets nothing")
    func redirectsNotFollowed() async throws {
        let target = try Receiver()
        defer { target.stop() }
        let bouncer = try Receiver(redirect: target.url)
        defer { bouncer.stop() }
        let d = try await Self.seeded(try Self.settings())
        defer { Task { await d.stop() } }
        let hook = try await Self.subscribe(d, bouncer.url)
        #expect(try await d.call("POST", "/v1/webhooks/\(hook.id)/test", token: d.admin).status == 202)
        _ = try await bouncer.wait { $0.count >= 2 }
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(bouncer.all.count >= 2, "retried")
        #expect(target.all.isEmpty, "never followed")
        let r = try await d.call("GET", "/v1/webhooks/\(hook.id)/deliveries", token: d.admin)
        let delivery = (r.json["items"] as? [[String: Any]])?.first ?? [:]
        #expect(delivery["status"] as? String == "pending" && delivery["last_status"] as? Int == 307, "\(delivery)")
    }

    @Test("an attempt after coordd began stopping fails as one (FoundationNetworking traps on a task of an invalidated session)")
    func attemptAfterStop() async throws {
        let sender = WebhookSender(connectTimeout: 1, timeout: 2, perHost: 1)
        sender.invalidate()
        sender.invalidate()
        let (status, error) = await sender.post(URL(string: "http://127.0.0.1:9/x")!, headers: [], body: [])
        #expect(status == nil && error == "coordd is stopping")
    }

    @Test("coordd writes the day's clock.ticked once, also with two coordd on one database")
    func clockTicksOnce() async throws {
        let pool = try await TestDatabase.makePool(poolSize: 12, sets: Coordination.migrationSets)
        let a = try await TestDaemon(pool: pool, clockTicks: true)
        let b = try await TestDaemon(pool: pool, clockTicks: true)
        defer { Task { await a.stop(); await b.stop() } }
        var ticks: [RecordedEvent] = []
        for _ in 0..<100 where ticks.isEmpty {
            ticks = try await a.store.read(after: 0, limit: 10, filter: EventFilter(types: [ClockTicked.eventType]))
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        try await Task.sleep(nanoseconds: 1_000_000_000)
        ticks = try await a.store.read(after: 0, limit: 10, filter: EventFilter(types: [ClockTicked.eventType]))
        #expect(ticks.count == 1)
        #expect(ticks.first?.stream == Clock.stream(Day(Date())))
        #expect(ticks.first.map { (try? EventCodec.decode($0)) == .clockTicked(ClockTicked(day: Day(Date()))) } == true)
    }

    @Test("URLs to loopback, link-local and private addresses are refused without the setting; bad bodies change nothing")
    func privateRefused() async throws {
        let d = try await TestDaemon(webhooks: try Self.settings(allowPrivate: false))
        defer { Task { await d.stop() } }
        for url in ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x", "http://192.168.0.10/x", "http://172.16.5.4/x",
                    "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://[fe80::1]/x", "http://[fd00::1]/x", "http://100.64.0.1/x",
                    "http://0.0.0.0/x", "http://[::ffff:127.0.0.1]/x"] {
            let r = try await d.call("POST", "/v1/webhooks", token: d.admin, body: #"{"url":"\#(url)"}"#)
            #expect(r.status == 422, "\(url): \(r.status)")
            #expect(r.body.contains("\"field\":\"url\"") && r.body.contains("private"), "\(url): \(r.body)")
        }
        for (body, field) in [(#"{"url":"ftp://example.org/x"}"#, "url"), (#"{"url":"https://user:pw@8.8.8.8/x"}"#, "url"),
                              (#"{"url":"https://8.8.8.8/x","kinds":["stock.nope"]}"#, "kinds"), (#"{"url":"https://8.8.8.8/x","kinds":[]}"#, "kinds"),
                              (#"{"url":"https://8.8.8.8/x","colour":"red"}"#, "colour"), (#"{"kinds":["task.overdue"]}"#, "url"),
                              (#"{"url":42}"#, "url")] {
            let r = try await d.call("POST", "/v1/webhooks", token: d.admin, body: body)
            #expect(r.status == 422 && r.body.contains("\"field\":\"\(field)\""), "\(body): \(r.status) \(r.body)")
        }
        #expect(try await d.call("POST", "/v1/webhooks", token: d.admin, body: "{nope").status == 400)
        #expect(try await d.call("POST", "/v1/webhooks", token: d.operatorToken, body: #"{"url":"https://8.8.8.8/x"}"#).status == 403)
        #expect(try await d.call("DELETE", "/v1/webhooks/wh_nope", token: d.admin).status == 404)
        #expect(try await d.call("POST", "/v1/webhooks/wh_nope/test", token: d.admin).status == 404)
        #expect(try await d.call("GET", "/v1/webhooks/wh_nope/deliveries", token: d.admin).status == 404)
        let list = try await d.call("GET", "/v1/webhooks", token: d.admin)
        #expect((list.json["items"] as? [Any])?.isEmpty == true, "nothing was created")
        // A public address is accepted (nothing is sent until an alert), and can be removed.
        let ok = try await d.call("POST", "/v1/webhooks", token: d.admin, body: #"{"url":"https://8.8.8.8/hooks","kinds":["task.overdue"]}"#)
        #expect(ok.status == 201)
        #expect(try await d.call("DELETE", "/v1/webhooks/\(ok.json["id"] as? String ?? "")", token: d.admin).status == 204)
        // The address policy itself.
        for a in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"] { #expect(AddressPolicy.isPublic(a), "\(a)") }
        for a in ["127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.1.1", "169.254.1.1", "100.100.0.1", "::1", "fe80::1", "fc00::1",
                  "::ffff:10.0.0.1", "224.0.0.1", "0.0.0.0", "::"] { #expect(!AddressPolicy.isPublic(a), "\(a)") }
    }
}

/// Delivery across processes: coordd killed between enqueue and delivery, and two coordd on one database.
@Suite("Webhooks across processes", .serialized)
struct WebhookProcessTests {
    static func keyFile() throws -> String {
        let path = NSTemporaryDirectory() + "coord-secret-\(UUID().uuidString).key"
        try SecretBox.createKeyFile(path)
        return path
    }

    static let environment = ["COORD_WEBHOOK_ALLOW_PRIVATE": "1", "COORD_WEBHOOK_RETRY_BASE": "0.3", "COORD_WEBHOOK_RETRY_CAP": "1"]

    /// A migrated schema with an admin and an operator token, and a key file: what a coordd process here runs with.
    struct Setup {
        let pool: PostgresPool
        let schema: String, admin: String, officer: String
        let key: String
        /// The child processes' environment: the key, private addresses allowed, short retries.
        var environment: [String: String] { WebhookProcessTests.environment.merging(["COORD_SECRET_KEY_FILE": key]) { _, new in new } }
        func close() { pool.close(); try? FileManager.default.removeItem(atPath: key) }
    }

    static func prepare() async throws -> Setup {
        let pool = try await TestDatabase.makePool(poolSize: 4, sets: Coordination.migrationSets)
        let tokens = TokenStore(pool: pool)
        let admin = try await tokens.create(subject: "admin", role: .admin).token
        let officer = try await tokens.create(subject: "officer", role: .operator).token
        return Setup(pool: pool, schema: pool.configuration.schema!, admin: admin, officer: officer, key: try keyFile())
    }

    static func overdueTask(_ d: ChildDaemon, _ token: String, _ i: Int) async throws -> Int {
        try await runBlocking {
            try d.call("POST", "/v1/tasks", token: token,
                       body: #"{"id":"T-\#(i)","response":"R1","cluster":"WSH","title":"Water trucking","priority":"urgent","due":"2026-01-01"}"#).status
        }
    }

    static func declare(_ d: ChildDaemon, _ token: String) async throws {
        let r = try await runBlocking {
            try d.call("POST", "/v1/responses", token: token,
                       body: #"{"id":"R1","name":"Flood","country":"PHL","hazard":"flood","severity":"orange","declared_at":"2026-11-08T06:30:00Z"}"#)
        }
        #expect(r.status == 201)
    }

    @Test("coordd killed with SIGKILL between enqueue and delivery: delivered after the restart")
    func sigkillBeforeDelivery() async throws {
        let setup = try await Self.prepare()
        defer { setup.close() }
        let (pool, schema, admin, officer, env) = (setup.pool, setup.schema, setup.admin, setup.officer, setup.environment)
        let receiver = try Receiver(up: false)
        defer { receiver.stop() }
        let first = try ChildDaemon(schema: schema, port: Loopback.freePort(), environment: env)
        defer { first.kill(SIGKILL) }
        try await runBlocking { try first.waitReady() }
        try await Self.declare(first, officer)
        let created = try await runBlocking { try first.call("POST", "/v1/webhooks", token: admin, body: #"{"url":"\#(receiver.url)"}"#) }
        #expect(created.status == 201)
        let secret = created.json["secret"] as? String ?? ""
        #expect(try await Self.overdueTask(first, officer, 1) == 201)
        // Enqueued, and an attempt against a receiver that is not there yet recorded (so no lease of the dead process
        // holds it: a lease it held would lapse only after the attempt's timeout and 30 s).
        var attempted = false
        for _ in 0..<400 where !attempted {
            attempted = try await pool.withConnection { c in
                try c.query("""
                    SELECT count(*)::int FROM webhook_deliveries d WHERE d.status = 'pending' AND d.lease_until IS NULL
                      AND EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.delivery = d.id)
                    """).decode(0, 0, as: Int.self) == 1
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(attempted)
        first.kill(SIGKILL)
        try receiver.start()
        let second = try ChildDaemon(schema: schema, port: Loopback.freePort(), environment: env)
        defer { second.kill(SIGKILL) }
        let got = try await receiver.wait(60) { $0.contains { $0.type == "alert.raised" } }
        let raised = try #require(got.first { $0.type == "alert.raised" })
        #expect(raised.alert["kind"] as? String == "task.overdue")
        #expect(try await ReferenceVerifier.verify(secret: secret, raised) == "ok", "the restarted coordd signs with the same sealed secret")
        #expect(Set(got.map(\.id)).count == 1)
    }

    @Test("two coordd processes on one database: each alert is delivered once")
    func twoProcessesOneDelivery() async throws {
        let setup = try await Self.prepare()
        defer { setup.close() }
        let (schema, admin, officer, env) = (setup.schema, setup.admin, setup.officer, setup.environment)
        let receiver = try Receiver()
        defer { receiver.stop() }
        let a = try ChildDaemon(schema: schema, port: Loopback.freePort(), environment: env)
        let b = try ChildDaemon(schema: schema, port: Loopback.freePort(), environment: env)
        defer { a.kill(SIGKILL); b.kill(SIGKILL) }
        try await runBlocking { try a.waitReady(); try b.waitReady() }
        try await Self.declare(a, officer)
        let created = try await runBlocking { try a.call("POST", "/v1/webhooks", token: admin, body: #"{"url":"\#(receiver.url)"}"#) }
        #expect(created.status == 201)
        for i in 0..<30 { #expect(try await Self.overdueTask(i % 2 == 0 ? a : b, officer, i) == 201) }
        let got = try await receiver.wait(30) { $0.count >= 30 }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let all = receiver.all
        #expect(all.count == 30, "one delivery per alert, not one per process: \(all.count)")
        #expect(Set(all.map(\.id)).count == all.count)
        #expect(Set(all.compactMap { $0.alert["id"] as? String }).count == 30)
        _ = got
    }

    /// An HTTPS endpoint on loopback (Python's http.server with ssl), recording each request as a JSON line.
    static let httpsServer = #"""
    import http.server, json, ssl, sys
    port, cert, key, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            with open(log, "a") as f:
                f.write(json.dumps({"id": self.headers.get("webhook-id"), "timestamp": self.headers.get("webhook-timestamp"),
                                    "signature": self.headers.get("webhook-signature"), "body": body}) + "\n")
            self.send_response(204); self.end_headers()
        def log_message(self, *args): pass
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    """#

    @Test("HTTPS: delivered to an endpoint whose certificate chains to a trusted CA; refused (TLS handshake failed) when it does not")
    func https() async throws {
        guard getuid() == 0, let openssl = OutsideTools.find("openssl"), let unshare = OutsideTools.find("unshare") else {
            print("SKIPPED: the HTTPS test needs root (a private mount namespace trusts its test CA) and openssl")
            return
        }
        let dir = NSTemporaryDirectory() + "coord-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A test CA, a server certificate for 127.0.0.1 signed by it, and a self-signed one nobody trusts.
        let steps = [
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem", "-days", "2", "-subj", "/CN=coord test CA"],
            [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr", "-subj", "/CN=127.0.0.1"],
            ["/bin/sh", "-c", "printf 'subjectAltName=IP:127.0.0.1\\n' > \"$0\"/ext.cnf", dir],
            [openssl, "x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
             "-out", "\(dir)/server.pem", "-days", "2", "-extfile", "\(dir)/ext.cnf"],
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/rogue.key", "-out", "\(dir)/rogue.pem", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            ["/bin/sh", "-c", "cat /etc/ssl/certs/ca-certificates.crt \"$0\"/ca.pem > \"$0\"/bundle.pem", dir],
        ]
        for step in steps {
            let out = try await runBlocking { try Subprocess.run(step) }
            #expect(out.status == 0, "\(step.joined(separator: " ")): \(out.output)")
        }
        let python = OutsideTools.pythonArgv
        let exe = python[0].hasPrefix("/") ? python : ["/usr/bin/env"] + python
        let (trustedPort, roguePort) = (Loopback.freePort(), Loopback.freePort())
        let env = ProcessInfo.processInfo.environment
        let trusted = try Subprocess.spawn(exe + ["-c", Self.httpsServer, String(trustedPort), "\(dir)/server.pem", "\(dir)/server.key", "\(dir)/trusted.log"], environment: env)
        let rogue = try Subprocess.spawn(exe + ["-c", Self.httpsServer, String(roguePort), "\(dir)/rogue.pem", "\(dir)/rogue.key", "\(dir)/rogue.log"], environment: env)
        defer { for pid in [trusted, rogue] { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) } }

        let setup = try await Self.prepare()
        defer { setup.close() }
        let (schema, admin) = (setup.schema, setup.admin)
        var daemonEnv = setup.environment
        daemonEnv["COORD_TEST_CA_BUNDLE"] = "\(dir)/bundle.pem"
        // coordd in a mount namespace of its own where the system's CA bundle also holds the test CA: the machine's
        // trust store is untouched.
        let wrapper = [unshare, "-m", "/bin/sh", "-c", #"mount --bind "$COORD_TEST_CA_BUNDLE" /etc/ssl/certs/ca-certificates.crt && exec "$0" "$@""#]
        let d = try ChildDaemon(schema: schema, port: Loopback.freePort(), wrapper: wrapper, environment: daemonEnv)
        defer { d.kill(SIGKILL) }
        try await runBlocking { try d.waitReady() }
        func subscribe(_ port: UInt16) async throws -> (String, String) {
            let r = try await runBlocking { try d.call("POST", "/v1/webhooks", token: admin, body: #"{"url":"https://127.0.0.1:\#(port)/coord"}"#) }
            #expect(r.status == 201, "\(r.body)")
            let id = r.json["id"] as? String ?? ""
            #expect(try await runBlocking { try d.call("POST", "/v1/webhooks/\(id)/test", token: admin).status } == 202)
            return (id, r.json["secret"] as? String ?? "")
        }
        let (_, secret) = try await subscribe(trustedPort)
        let (rogueID, _) = try await subscribe(roguePort)
        var lines: [String] = []
        for _ in 0..<300 where lines.isEmpty {
            lines = ((try? String(contentsOfFile: "\(dir)/trusted.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let first = try #require(lines.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] })
        let received = Receiver.Received(id: first["id"] ?? "", timestamp: first["timestamp"] ?? "", signature: first["signature"] ?? "", body: first["body"] ?? "")
        #expect(received.type == "ping")
        #expect(try await ReferenceVerifier.verify(secret: secret, received) == "ok")
        var lastError = ""
        for _ in 0..<200 where lastError.isEmpty {
            let r = try await runBlocking { try d.call("GET", "/v1/webhooks/\(rogueID)/deliveries", token: admin) }
            lastError = ((r.json["items"] as? [[String: Any]])?.first?["last_error"] as? String) ?? ""
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(lastError.hasPrefix("TLS handshake failed") && lastError.contains("certificate"), "\(lastError)")
        #expect(((try? String(contentsOfFile: "\(dir)/rogue.log", encoding: .utf8)) ?? "").isEmpty, "nothing reached the untrusted endpoint")
    }
}
