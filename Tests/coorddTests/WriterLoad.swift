import Coordination
import Events
import Foundation
import Synchronization
import Testing
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// Clients writing through faults, as field staff on a bad day do: each sends a command under its own
/// Idempotency-Key and retries it (at the next coordd, after 50 ms) until it gets a definitive answer. Even writers
/// dispatch one kit from MNL/KIT (the answer carries the balance, so a retry that ran again would differ); odd
/// ones create a task in response R1. The first definitive answer to each key is kept, with when the attempt
/// that got it was sent.
/// Background threads that loop until told to stop: `stop()` asks them and waits until every one has returned.
final class StoppableThreads: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    /// Starts `count` threads running `body(index, running)`; `body` should return once `running()` is false.
    func start(_ count: Int = 1, _ body: @escaping @Sendable (Int, _ running: () -> Bool) -> Void) {
        started.add(count, ordering: .relaxed)
        for i in 0..<count {
            Thread { [self] in
                defer { finished.add(1, ordering: .relaxed) }
                body(i) { !stopping.load(ordering: .relaxed) }
            }.start()
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        while finished.load(ordering: .relaxed) < started.load(ordering: .relaxed) { usleep(10_000) }
    }
}

final class WriterLoad: @unchecked Sendable {
    struct Answer: Sendable {
        /// "PATH BODY", to send again.
        let request: String
        let status: Int
        let text: String
        /// When the answered attempt was sent (seconds since 1970).
        let sentAt: Double
    }

    private let lock = NSLock()
    private var answers: [String: Answer] = [:]
    private var retryCount = 0
    /// Attempts that got no definitive answer, by status (0: no HTTP answer at all), and 503s without Retry-After.
    private var unanswered: [Int: Int] = [:]
    private var withoutRetryAfter = 0
    private let threads = StoppableThreads()
    let writers: Int

    init(writers: Int = 32) { self.writers = writers }

    var snapshot: [String: Answer] { lock.withLock { answers } }
    /// The answers that were not definitive, by status (0: the connection failed or was refused).
    var refusals: [Int: Int] { lock.withLock { unanswered } }

    /// What a client met meanwhile was only ever "retry": 503 with Retry-After, or no answer from a coordd that was
    /// down; never a 500 or another error for a command that was fine.
    func expectOnlyRetryableRefusals() {
        let (by, missing) = lock.withLock { (unanswered, withoutRetryAfter) }
        #expect(by.keys.allSatisfy { $0 == 503 || $0 == 0 }, "attempts without a definitive answer, by status: \(by)")
        #expect(missing == 0, "\(missing) answers of 503 without Retry-After")
    }
    var retries: Int { lock.withLock { retryCount } }

    /// Starts the writers; `targets` gives the coordd ports to try, read again on every attempt.
    func start(token: String, targets: @escaping @Sendable () -> [UInt16]) {
        threads.start(writers) { [self] w, running in
            var i = 0
            while running() {
                i += 1
                let key = "w\(w)-\(i)"
                let (path, body) = w % 2 == 0
                    ? ("/v1/stock/dispatches", #"{"warehouse":"MNL","item":"KIT","quantity":1,"destination":"Tacloban","response":"R1"}"#)
                    : ("/v1/tasks", #"{"id":"T-\#(key)","response":"R1","cluster":"WSH","title":"Water point \#(i)","priority":"low"}"#)
                var attempt = 0
                while true {
                    let ports = targets()
                    let port = ports[(w + attempt) % ports.count]
                    attempt += 1
                    let sent = Date().timeIntervalSince1970
                    let r = try? HTTPClient.call(port: port, "POST", path, headers: ["Authorization": "Bearer \(token)", "Idempotency-Key": key], body: body)
                    if let r, [200, 201, 409, 422].contains(r.status) {
                        lock.withLock { answers[key] = Answer(request: path + " " + body, status: r.status, text: r.body, sentAt: sent) }
                        break
                    }
                    lock.withLock {
                        retryCount += 1
                        unanswered[r?.status ?? 0, default: 0] += 1
                        if r?.status == 503 && r?.headers["retry-after"] == nil { withoutRetryAfter += 1 }
                    }
                    usleep(50_000)
                }
            }
        }
    }

    /// Stops the writers after their current command and waits for them.
    func finish() async throws {
        try await runBlocking { [threads] in threads.stop() }
    }

    /// Kits on the MNL/KIT card before the load.
    static let initialStock: Int64 = 1_000_000

    /// What the writers need: the MNL warehouse with `initialStock` kits, response R1; an operator token for the
    /// writers and an admin one for reading.
    static func seed(_ store: EventStore) async throws -> (token: String, viewer: String) {
        let service = CoordinationService(store: store)
        let ctx = CommandContext(actor: "setup", source: "test")
        _ = try await service.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "global_hub"), ctx)
        _ = try await service.execute(RegisterItem(code: "KIT", name: "Hygiene kit", unit: "kit"), ctx)
        _ = try await service.execute(ReceiveStock(warehouse: "MNL", item: "KIT", quantity: initialStock, source: "procurement"), ctx)
        _ = try await service.execute(DeclareResponse(id: "R1", name: "Flood", country: "PHL", hazard: "flood", severity: "orange", declaredAt: Date()), ctx)
        let token = try await TokenStore(pool: store.pool).create(subject: "officer", role: .operator).token
        let viewer = try await TokenStore(pool: store.pool).create(subject: "viewer", role: .admin).token
        return (token, viewer)
    }

    var dispatched: Int { snapshot.values.filter { $0.request.hasPrefix("/v1/stock") && $0.status == 200 }.count }
    var created: Int { snapshot.values.filter { $0.request.hasPrefix("/v1/tasks") && $0.status == 201 }.count }

    /// Nothing acknowledged is lost and nothing ran twice: the log holds exactly one event per answered key (besides
    /// `others`, keys written outside this load), the chain is sound and positions are gapless. Returns the log.
    func expectLogHoldsExactlyTheAcknowledged(_ store: EventStore, others: Set<String> = []) async throws -> [RecordedEvent] {
        let answers = snapshot
        let events = try await store.read(after: 0, limit: 1_000_000)
        let keys = events.compactMap(\.decodedMetadata.idempotencyKey)
        #expect(keys.count == Set(keys).count, "no key was executed twice")
        let acknowledged = Set(answers.filter { [200, 201].contains($0.value.status) }.keys)
        let lost = acknowledged.subtracting(keys)
        let unanswered = Set(keys).subtracting(acknowledged).subtracting(others)
        #expect(lost.isEmpty && unanswered.isEmpty,
                "every acknowledged command is in the log, and only those: lost \(lost.sorted().prefix(5)) (\(lost.count)), in the log unanswered \(unanswered.sorted().prefix(5)) (\(unanswered.count))")
        #expect(try await store.verify().isSound, "the chain is sound")
        #expect(events.map(\.position) == Array(1...Int64(events.count)), "positions are gapless")
        #expect(answers.values.filter { $0.request.hasPrefix("/v1/stock") }.allSatisfy { $0.text.contains(#""warehouse":"MNL","#) && $0.text.contains(#""item":"KIT""#) },
                "a dispatch's answer names its card")
        return events
    }

    /// Retries get the original answers, refusals included (up to `sample` keys, sent to `port`).
    func expectRetriesGetTheOriginalAnswers(port: UInt16, token: String, sample: Int = 200) async throws {
        for (key, original) in snapshot.prefix(sample) {
            let parts = original.request.split(separator: " ", maxSplits: 1)
            let again = try await runBlocking {
                try HTTPClient.call(port: port, "POST", String(parts[0]), headers: ["Authorization": "Bearer \(token)", "Idempotency-Key": key], body: String(parts[1]))
            }
            #expect(again.status == original.status && again.body == original.text, "\(key): \(again.status) \(again.body) against \(original.status) \(original.text)")
        }
    }

    /// Waits (up to 20 s) until every projection runs with no lag, as `port` reports them.
    static func projectionsSettle(port: UInt16, token: String) async throws -> Bool {
        for _ in 0..<200 {
            let r = try? await runBlocking { try TestDaemon.blockingCall(port: port, "GET", "/v1/projections", token: token, body: nil, headers: [:]) }
            let items = r?.json["items"] as? [[String: Any]] ?? []
            if items.count == Coordination.projections.count && items.allSatisfy({ ($0["lag_events"] as? Int) == 0 && ($0["status"] as? String) == "running" }) {
                return true
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        return false
    }

    /// The positions up to `head` a live feed from the start delivers through `port`.
    /// What a feed's positions got wrong against 1...head: how many, the first out of place, repeats, the last.
    static func describe(_ fed: [Int], head: Int) -> String {
        let firstWrong = zip(fed, 1...head).first { $0 != $1 }
        let repeats = fed.count - Set(fed).count
        return "\(fed.count) of \(head) events, last \(fed.last.map(String.init) ?? "none"), \(repeats) repeated, "
            + (firstWrong.map { "position \($0.1) read as \($0.0)" } ?? "none out of place")
    }

    static func feedPositions(port: UInt16, token: String, head: Int) async throws -> [Int] {
        let feed = try await runBlocking { () -> String in
            let c = try RawClient(port: port, receiveTimeout: 10)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nLast-Event-ID: 0\r\n\r\n")
            return c.read(until: "id: \(head)\n")
        }
        // What came after `head` in the same read (events written since) is not this check's.
        return feed.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }.filter { $0 <= head }
    }
}
