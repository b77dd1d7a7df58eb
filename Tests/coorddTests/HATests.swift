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

/// coord on PostgreSQL's streaming replication under pg_auto_failover (`make test-ha`): a monitor, a primary and
/// its synchronous standby on this machine (scripts/ha-formation.sh), two coordd on a multi-host URL.
/// Run only with COORD_HA=1, since it needs pg_autoctl and root (or the postgres user).
@Suite("Streaming replication and fail-over", .serialized, .enabled(if: ProcessInfo.processInfo.environment["COORD_HA"] == "1"))
struct HATests {
    /// A formation of scripts/ha-formation.sh, removed by `down`.
    struct Formation {
        let directory: String
        let port: Int
        static let script = OutsideTools.repo + "/scripts/ha-formation.sh"

        /// A formation on three free ports. A set-up that fails is printed with its logs and tried once more on
        /// other ports (a port taken meanwhile by another test's server, a standby whose first base backup failed).
        static func up() throws -> Formation {
            var failure: FormationError?
            for _ in 0..<2 {
                // Three consecutive ports that nothing listens on.
                var port = 0
                for _ in 0..<50 {
                    let p = Int.random(in: 20_000...60_000)
                    if (0..<3).allSatisfy({ (try? Loopback.connect(port: UInt16(p + $0), receiveTimeout: 1)).map { close($0); return false } ?? true }) { port = p; break }
                }
                let f = Formation(directory: "/tmp/coord-ha-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", port: port)
                let out = try Subprocess.run([script, "up", f.directory, String(port)])
                if out.status == 0 {
                    print(out.output.trimmingCharacters(in: .whitespacesAndNewlines))
                    return f
                }
                print("ha-formation up failed, trying once more:\n\(out.output)")
                _ = try? Subprocess.run([script, "down", f.directory])
                failure = FormationError(output: out.output)
            }
            throw failure!
        }

        func down() { _ = try? Subprocess.run([Self.script, "down", directory]) }
        func kill(_ node: String) throws { _ = try Subprocess.run([Self.script, "kill", directory, node]) }
        func state() -> String { (try? Subprocess.run([Self.script, "state", directory]).output) ?? "" }

        /// Both nodes, the primary first as libpq tries them; writes go to whichever is primary.
        var writeURL: String { "postgres://postgres@127.0.0.1:\(port + 1),127.0.0.1:\(port + 2)/coord?target_session_attrs=read-write&connect_timeout=2" }
        /// Reads prefer a standby, and fall back to the primary when none is up.
        var readURL: String { "postgres://postgres@127.0.0.1:\(port + 2),127.0.0.1:\(port + 1)/coord?target_session_attrs=prefer-standby&connect_timeout=2" }
        func nodeURL(_ n: Int) -> String { "postgres://postgres@127.0.0.1:\(port + n)/coord?connect_timeout=2" }
    }

    @Test("the primary lost under 32 writers: the standby is promoted, writes resume, nothing acknowledged is lost, retries are exactly once, the chain verifies, read models converge; Coord-Min-Position reads see their writes on the standby")
    func failover() async throws {
        let formation = try Formation.up()
        defer { formation.down() }
        let coordctl = OutsideTools.binary("coordctl")
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = formation.writeURL
        env["COORD_LOG_LEVEL"] = "warning"
        let migrated = try Subprocess.run([coordctl, "migrate"], environment: env)
        #expect(migrated.status == 0, "coordctl migrate on a multi-host URL: \(migrated.output)")

        let pool = PostgresPool(configuration: try PostgresConfiguration(connectionString: formation.writeURL, applicationName: "coord-test", poolSize: 4),
                                acquireTimeout: 5)
        defer { pool.close() }
        let store = EventStore(pool: pool)
        defer { store.close() }
        let (token, viewer) = try await WriterLoad.seed(store)

        // Two coordd on the multi-host URL, delivering webhooks; the first serves its lists from the standby.
        let key = try WebhookProcessTests.keyFile()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let hooks = WebhookProcessTests.environment.merging(["COORD_SECRET_KEY_FILE": key]) { _, new in new }
        let reader = try ChildDaemon(schema: nil, port: Loopback.freePort(), databaseURL: formation.writeURL,
                                     environment: hooks.merging(["COORD_READ_DATABASE_URL": formation.readURL]) { _, new in new })
        let writer = try ChildDaemon(schema: nil, port: Loopback.freePort(), databaseURL: formation.writeURL, environment: hooks)
        defer { reader.kill(SIGKILL); writer.kill(SIGKILL) }
        try await runBlocking { try reader.waitReady(); try writer.waitReady() }
        let receiver = try Receiver()
        defer { receiver.stop() }
        let subscribed = try await runBlocking { try writer.call("POST", "/v1/webhooks", token: viewer, body: #"{"url":"\#(receiver.url)"}"#) }
        #expect(subscribed.status == 201, "webhook subscription: \(subscribed.body)")
        // An alert before the loss is delivered (an urgent task already overdue raises one).
        #expect(try await WebhookProcessTests.overdueTask(writer, token, 9001) == 201)
        let before = try await receiver.wait(30) { $0.contains { $0.type == "alert.raised" } }
        #expect(before.contains { $0.type == "alert.raised" }, "a webhook before the fail-over")

        try await readYourWritesOnTheStandby(formation, reader: reader, token: token, viewer: viewer)

        // 32 writers with Idempotency-Keys through both; the primary's machine is lost four seconds in.
        let load = WriterLoad()
        let ports = [reader.port, writer.port]
        load.start(token: token) { ports }
        try await Task.sleep(nanoseconds: 4_000_000_000)
        let beforeKill = load.snapshot.count
        // A probe of what clients and operators see meanwhile: when a primary accepts writes again, and /readyz.
        let probe = OutageProbe(writeURL: formation.writeURL, readyPort: writer.port)
        try formation.kill("node1")
        // From when nothing of the old primary runs any more: an attempt sent after this can only reach a new one.
        let killed = Date().timeIntervalSince1970
        probe.start(after: killed)
        // Writes resume: an answer to an attempt sent after the kill (only the new primary can have given it).
        var resumed: Double?
        for _ in 0..<600 where resumed == nil {
            try await Task.sleep(nanoseconds: 100_000_000)
            resumed = load.snapshot.values.filter { $0.sentAt > killed && [200, 201].contains($0.status) }.map(\.sentAt).min()
        }
        guard let resumed else {
            Issue.record("writes did not resume within 60 s of losing the primary:\n\(formation.state())")
            try await load.finish()
            return
        }
        try await Task.sleep(nanoseconds: 3_000_000_000)
        try await load.finish()
        let promoted = probe.stop()
        print(formation.state())

        let noPrimary = promoted.map { $0 - killed } ?? -1
        let writesResumed = resumed - killed
        print(String(format: "ha fail-over: no primary for %.1f s, writes resumed %.1f s after the primary was lost; %d commands answered (%d before the loss), %d dispatches and %d tasks acknowledged, %d retries",
                     noPrimary, writesResumed, load.snapshot.count, beforeKill, load.dispatched, load.created, load.retries)
              + " (" + load.refusals.sorted { $0.key < $1.key }.map { "\($0.key == 0 ? "no answer" : String($0.key)): \($0.value)" }.joined(separator: ", ") + ")")
        #expect(promoted != nil, "the standby was promoted")
        #expect(probe.sawNotReady, "/readyz said not ready while no primary was reachable")
        #expect(load.retries > 0, "the loss was felt")
        #expect((load.refusals[503] ?? 0) > 0, "commands in flight at the loss ended with 503: \(load.refusals)")
        load.expectOnlyRetryableRefusals()

        // Every acknowledged write is on the new primary, once; the chain and positions hold.
        let events = try await load.expectLogHoldsExactlyTheAcknowledged(store, others: Set((1...Self.receipts).map { "receipt-\($0)" }))
        let verified = try Subprocess.run([coordctl, "verify"], environment: env)
        #expect(verified.status == 0, "coordctl verify on the new primary: \(verified.output)")
        try await load.expectRetriesGetTheOriginalAnswers(port: writer.port, token: token)

        // Read models converge on the new primary, through both coordd (the reader's lists now come from it too).
        #expect(try await WriterLoad.projectionsSettle(port: writer.port, token: viewer), "projections caught up after the fail-over")
        for d in [reader, writer] {
            let stock = try await runBlocking { try d.call("GET", "/v1/stock?warehouse=MNL&item=KIT", token: viewer) }
            let onHand = ((stock.json["items"] as? [[String: Any]])?.first?["on_hand"] as? Int) ?? -1
            #expect(Int64(onHand) == WriterLoad.initialStock + Int64(Self.receipts) - Int64(load.dispatched),
                    "on hand \(onHand) at :\(d.port) after \(load.dispatched) acknowledged dispatches")
            let ready = try await runBlocking { try d.call("GET", "/readyz", token: nil) }
            #expect(ready.status == 200, "ready again: \(ready.body)")
        }
        // Webhook delivery resumed on the new primary: an alert raised after the fail-over reaches the receiver.
        #expect(try await WebhookProcessTests.overdueTask(writer, token, 9002) == 201)
        let after = try await receiver.wait(60) { $0.filter { $0.type == "alert.raised" }.count >= 2 }
        #expect(after.filter { $0.type == "alert.raised" }.count >= 2, "a webhook after the fail-over: \(after.map(\.type))")

        let head = events.count
        let fed = try await WriterLoad.feedPositions(port: reader.port, token: viewer, head: head)
        #expect(fed == Array(1...head), "a live feed from the start delivers every event once, in order, across the fail-over: \(WriterLoad.describe(fed, head: head))")
    }

    static let receipts = 40

    /// A write acknowledged by the primary, read at once with its position from a coordd whose lists come from the
    /// standby: the answer includes it. The standby confirms the read came from it.
    func readYourWritesOnTheStandby(_ formation: Formation, reader: ChildDaemon, token: String, viewer: String) async throws {
        var expected = WriterLoad.initialStock
        var stale = 0
        for i in 1...Self.receipts {
            let body = #"{"warehouse":"MNL","item":"KIT","quantity":1,"source":"procurement"}"#
            let w = try await runBlocking {
                try TestDaemon.blockingCall(port: reader.port, "POST", "/v1/stock/receipts", token: token, body: body, headers: ["Idempotency-Key": "receipt-\(i)"])
            }
            #expect(w.status == 200, "receipt \(i): \(w.status) \(w.body)")
            expected += 1
            let position = w.json["position"] as? Int ?? 0
            // Without the header the standby may trail (counted, not asserted: it depends on the machine's speed).
            let quick = try await runBlocking { try reader.call("GET", "/v1/stock?warehouse=MNL&item=KIT", token: viewer) }
            if ((quick.json["items"] as? [[String: Any]])?.first?["on_hand"] as? Int).map(Int64.init) != expected { stale += 1 }
            let r = try await runBlocking {
                try TestDaemon.blockingCall(port: reader.port, "GET", "/v1/stock?warehouse=MNL&item=KIT", token: viewer, body: nil,
                                            headers: ["Coord-Min-Position": String(position)])
            }
            let onHand = ((r.json["items"] as? [[String: Any]])?.first?["on_hand"] as? Int).map(Int64.init)
            #expect(r.status == 200 && onHand == expected, "read with Coord-Min-Position \(position): \(r.status), on hand \(onHand ?? -1), expected \(expected)")
        }
        print("read-your-writes on the standby: \(Self.receipts) reads with Coord-Min-Position saw their write; \(stale) reads without it did not yet")
        let standby = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: formation.nodeURL(2), applicationName: "coord-test"))
        defer { standby.close() }
        let inRecovery: Bool = try standby.query("SELECT pg_is_in_recovery()").decode(0, 0)
        let readers: Int = try standby.query("SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'coordd-reads'").decode(0, 0)
        #expect(inRecovery && readers > 0, "the lists were read from the standby (\(readers) coordd-reads sessions there)")
        // A position the log has not reached: 503 with Retry-After after the two seconds' wait.
        let far = try await runBlocking {
            try TestDaemon.blockingCall(port: reader.port, "GET", "/v1/stock", token: viewer, body: nil, headers: ["Coord-Min-Position": "999999999"])
        }
        #expect(far.status == 503 && far.headers["retry-after"] != nil, "a position not yet reached: \(far.status)")
    }
}

struct FormationError: Error, CustomStringConvertible {
    let output: String
    var description: String { "ha-formation up failed: \(output)" }
}

/// Watches an outage from outside: when a libpq connection to the multi-host URL reaches a primary again, and
/// whether coordd's /readyz said not ready meanwhile.
final class OutageProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var promotedAt: Double?
    private var notReady = false
    private let threads = StoppableThreads()
    let writeURL: String
    let readyPort: UInt16

    init(writeURL: String, readyPort: UInt16) {
        self.writeURL = writeURL
        self.readyPort = readyPort
    }

    var sawNotReady: Bool { lock.withLock { notReady } }

    func start(after killed: Double) {
        threads.start { [self] _, running in
            while running() {
                if let r = try? TestDaemon.blockingCall(port: readyPort, "GET", "/readyz", token: nil, body: nil, headers: [:]), r.status == 503 {
                    lock.withLock { notReady = true }
                }
                if lock.withLock({ promotedAt }) == nil, let config = try? PostgresConfiguration(connectionString: writeURL, applicationName: "coord-probe"),
                   let c = try? PostgresConnection(configuration: config) {
                    if (try? c.query("SELECT NOT pg_is_in_recovery()").decode(0, 0, as: Bool.self)) == true {
                        let now = Date().timeIntervalSince1970
                        if now > killed { lock.withLock { promotedAt = now } }
                    }
                    c.close()
                }
                usleep(100_000)
            }
        }
    }

    /// Stops the probe; when a primary accepted connections again (seconds since 1970), if it did.
    func stop() -> Double? {
        threads.stop()
        return lock.withLock { promotedAt }
    }
}
