import Foundation
import Synchronization
import Testing
@testable import Events
import TestSupport

@Suite("Append")
struct AppendTests {
    @Test("appends get gapless positions and contiguous versions from 1")
    func positionsAndVersions() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        let a = try await store.append(sampleEvents(3), to: "thing-a", expected: .noStream)
        let b = try await store.append(sampleEvents(2), to: "thing-b", expected: .noStream)
        #expect(a.streams == [AppendResult.Stream(stream: "thing-a", version: 3, firstPosition: 1, lastPosition: 3)])
        #expect(b.position == 5)
        #expect(b.version(of: "thing-b") == 2)
        let all = try await store.read(after: 0)
        #expect(all.map(\.position) == [1, 2, 3, 4, 5])
        #expect(all.map(\.version) == [1, 2, 3, 1, 2])
        #expect(try await store.headPosition() == 5)
        #expect(try await store.version(of: "thing-a") == 3)
        #expect(try await store.version(of: "missing") == 0)
    }

    @Test("stored events keep their data, metadata and both times")
    func roundTrip() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        let occurred = Date(timeIntervalSince1970: 1_762_583_400.123456)
        let event = EventData(type: "stock.dispatched", data: JSONText(#"{"quantity": 500, "item": "HSHETARPW406"}"#),
                              metadata: EventMetadata(actor: "officer-7", correlationID: "corr-1", causationID: "cmd-1", source: "api"),
                              occurredAt: occurred)
        let before = Date()
        try await store.append([event], to: "stock-MNL")
        let read = try #require(try await store.read(stream: "stock-MNL").first)
        #expect(read.id == event.id)
        #expect(read.type == "stock.dispatched")
        #expect(read.category == "stock")
        let data = try JSONSerialization.jsonObject(with: Data(read.data.text.utf8)) as? [String: Any]
        #expect(data?["quantity"] as? Int == 500)
        #expect(read.decodedMetadata == event.metadata)
        #expect(abs(read.occurredAt.timeIntervalSince(occurred)) < 0.000_001)
        #expect(read.recordedAt >= before.addingTimeInterval(-1))
        #expect(read.hash.count == 64)
    }

    @Test("each expected-version form is enforced and a conflict names the actual version")
    func expectedVersions() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "s-1", expected: .streamExists, actual: 0)) {
            try await store.append(sampleEvents(1), to: "s-1", expected: .streamExists)
        }
        try await store.append(sampleEvents(2), to: "s-1", expected: .noStream)
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "s-1", expected: .noStream, actual: 2)) {
            try await store.append(sampleEvents(1), to: "s-1", expected: .noStream)
        }
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "s-1", expected: .exact(1), actual: 2)) {
            try await store.append(sampleEvents(1), to: "s-1", expected: .exact(1))
        }
        try await store.append(sampleEvents(1), to: "s-1", expected: .exact(2))
        try await store.append(sampleEvents(1), to: "s-1", expected: .streamExists)
        try await store.append(sampleEvents(1), to: "s-1", expected: .any)
        #expect(try await store.version(of: "s-1") == 5)
        #expect(try await store.headPosition() == 5, "refused appends wrote nothing")
    }

    @Test("two writers with the same expected version: exactly one wins, every time")
    func concurrentConflicts() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        for round in 0..<20 {
            let stream = "race-\(round)"
            try await store.append(sampleEvents(1), to: stream)
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do { try await store.append(sampleEvents(1), to: stream, expected: .exact(1)); return true }
                        catch { return false }
                    }
                }
                var wins = 0
                for await won in group where won { wins += 1 }
                return wins
            }
            #expect(outcomes == 1, "round \(round)")
            #expect(try await store.version(of: stream) == 2)
        }
    }

    @Test("concurrent appends from many writers: gapless positions, contiguous versions, chain sound")
    func manyWriters() async throws {
        let store = try await TestDatabase.makeStore(poolSize: 4)
        defer { store.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<32 {
                group.addTask {
                    for i in 0..<25 {
                        try await store.append(sampleEvents(1 + i % 3), to: "w-\(w % 8)", expected: .any)
                    }
                }
            }
            try await group.waitForAll()
        }
        let all = try await store.read(after: 0, limit: 10_000)
        let expected = 32 * (0..<25).reduce(0) { $0 + 1 + $1 % 3 }
        #expect(all.count == expected)
        #expect(all.map(\.position) == Array(1...Int64(expected)))
        for stream in Set(all.map(\.stream)) {
            let versions = all.filter { $0.stream == stream }.map(\.version)
            #expect(versions == Array(1...Int64(versions.count)), "stream \(stream)")
        }
        let report = try await store.verify()
        #expect(report.isSound)
        #expect(report.checked == Int64(expected))
        #expect(store.writerStats.batches < expected, "group commit gathered appends into fewer transactions")
    }

    @Test("concurrent writers share each commit: the writer waits for the callers it just answered, so 16 writers fill batches of 16, not two alternating halves; a lone writer never waits")
    func writersShareCommits() async throws {
        // The wait is generous here (0.5 s: the suites running beside this one share the cooperative pool that resumes
        // the callers, and can make them late by milliseconds); coordd's is 200 µs. The last batch waits it out.
        func meanBatch(writers: Int, gatherMicros: Int) async throws -> (mean: Double, gathers: Int) {
            let pool = try await TestDatabase.makePool()
            defer { pool.close() }
            let store = EventStore(pool: pool, gatherMicros: gatherMicros)
            defer { store.close() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<writers {
                    group.addTask {
                        for _ in 0..<30 { try await store.append(sampleEvents(1), to: "share-\(w)", expected: .any) }
                    }
                }
                try await group.waitForAll()
            }
            let stats = store.writerStats
            #expect(stats.events == writers * 30)
            #expect(try await store.verify().isSound)
            return (Double(stats.events) / Double(max(1, stats.batches)), store.writerGathers)
        }
        let shared = try await meanBatch(writers: 16, gatherMicros: 500_000)
        #expect(shared.mean >= 12, "events per commit with 16 writers: \(shared.mean)")
        let lone = try await meanBatch(writers: 1, gatherMicros: 500_000)
        #expect(lone.mean == 1)
        #expect(lone.gathers == 0, "a lone writer's next append is sent at once")
    }

    @Test("a conflicting request in a batch fails alone; its neighbours commit")
    func conflictIsolatedInBatch() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(1), to: "shared")
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<40 {
                group.addTask {
                    // Request 0 expects a version the stream does not have.
                    let expected: ExpectedVersion = i == 0 ? .exact(7) : .any
                    let stream = i == 0 ? "shared" : "own-\(i)"
                    do { try await store.append(sampleEvents(1), to: stream, expected: expected); return (i, true) }
                    catch { return (i, false) }
                }
            }
            var out: [Int: Bool] = [:]
            for await (i, ok) in group { out[i] = ok }
            return out
        }
        #expect(results[0] == false)
        #expect((1..<40).allSatisfy { results[$0] == true })
        #expect(try await store.headPosition() == 40)
    }

    @Test("an atomic multi-stream append writes all streams or none")
    func multiStreamAtomic() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(1), to: "wh-MNL")
        let transfer = [
            StreamAppend(stream: "wh-MNL", expected: .exact(1), events: sampleEvents(1, type: "transfer.sent")),
            StreamAppend(stream: "wh-TAC", expected: .noStream, events: sampleEvents(1, type: "transfer.expected")),
        ]
        let result = try await store.append(transfer)
        #expect(result.version(of: "wh-MNL") == 2)
        #expect(result.version(of: "wh-TAC") == 1)
        // Same again: wh-MNL's expectation now fails, so wh-TAC must not receive its event either.
        let stale = transfer.map { StreamAppend(stream: $0.stream, expected: $0.expected, events: sampleEvents(1)) }
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "wh-MNL", expected: .exact(1), actual: 2)) {
            try await store.append(stale)
        }
        #expect(try await store.version(of: "wh-TAC") == 1)
        #expect(try await store.headPosition() == 3)
    }

    @Test("re-appending stored events returns the original result and writes nothing")
    func idempotentRetry() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        let events = sampleEvents(3)
        let first = try await store.append(events, to: "idem", expected: .noStream)
        try await store.append(sampleEvents(1), to: "other")
        // The retry carries the same stale expectation a client would resend; it must still succeed.
        let retry = try await store.append(events, to: "idem", expected: .noStream)
        #expect(retry.duplicate)
        #expect(retry.streams == first.streams)
        #expect(!first.duplicate)
        #expect(try await store.headPosition() == 4)
        // Concurrent retries of one new append: stored once.
        let fresh = sampleEvents(2)
        let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
            for _ in 0..<10 { group.addTask { try await store.append(fresh, to: "idem-2") } }
            var out: [AppendResult] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(Set(results.map(\.position)).count == 1)
        #expect(results.filter { !$0.duplicate }.count == 1)
        #expect(try await store.read(stream: "idem-2").count == 2)
    }

    @Test("the same event id with different content is refused")
    func idempotencyMismatch() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        var event = sampleEvents(1)[0]
        try await store.append([event], to: "mm")
        event.data = JSONText(#"{"n": 999}"#)
        await #expect(throws: EventStoreError.idempotencyMismatch(eventID: event.id)) {
            try await store.append([event], to: "mm")
        }
        // A retry that adds a new event to stored ones is not a retry either.
        let stored = try await store.read(stream: "mm")[0]
        let original = EventData(id: stored.id, type: stored.type, data: stored.data)
        await #expect(throws: EventStoreError.self) {
            try await store.append([original] + sampleEvents(1), to: "mm")
        }
        #expect(try await store.headPosition() == 1)
    }

    @Test("invalid input is refused with the field named, and nothing is written")
    func invalidInput() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        func field(_ body: () async throws -> Void) async -> String? {
            do { try await body(); return nil } catch let EventStoreError.invalidInput(field, _) { return field } catch { return "other: \(error)" }
        }
        #expect(await field { try await store.append(sampleEvents(1), to: "bad stream") } == "stream")
        #expect(await field { try await store.append(sampleEvents(1), to: "") } == "stream")
        #expect(await field { try await store.append(sampleEvents(1), to: "'; DROP TABLE events; --") } == "stream")
        #expect(await field { try await store.append(sampleEvents(1, type: "9bad"), to: "s") } == "type")
        #expect(await field { try await store.append([EventData(type: "t", data: JSONText("[1,2]"))], to: "s") } == "data")
        #expect(await field { try await store.append([EventData(type: "t", data: JSONText("{not json"))], to: "s") } == "data")
        #expect(await field { try await store.append([EventData(type: "t", data: JSONText(#"{"a":"\u0000"}"#))], to: "s") } == "data")
        #expect(await field { try await store.append([], to: "s") } == "events")
        let twice = sampleEvents(1)[0]
        #expect(await field { try await store.append([twice, twice], to: "s") } == "id")
        #expect(await field { try await store.append(sampleEvents(1), to: "s", expected: .exact(-1)) } == "expected")
        #expect(try await store.headPosition() == 0)
    }

    @Test("quotes, unicode, control characters and large values are stored exactly")
    func awkwardValues() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        let nasty = "O'Brien \"quoted\" \\ back; DROP TABLE events; -- 東京 🌀 \t\n\r \u{7f}"
        let invalidUTF8 = String(decoding: [0x66, 0xff, 0xfe, 0x6f], as: UTF8.self)  // repaired to U+FFFD on decoding
        let big = String(repeating: "x", count: 900_000)
        let payload = try JSONWriter.encode(["text": nasty, "wire": invalidUTF8, "big": big])
        try await store.append([EventData(type: "t", data: JSONText(payload), metadata: EventMetadata(actor: nasty))], to: "s-odd")
        let read = try #require(try await store.read(stream: "s-odd").first)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(read.data.text.utf8))
        #expect(decoded["text"] == nasty)
        #expect(decoded["wire"] == "f\u{FFFD}\u{FFFD}o")
        #expect(decoded["big"]?.count == 900_000)
        #expect(read.decodedMetadata.actor == nasty)
        let tooBig = String(repeating: "x", count: EventStore.maxEventDataBytes + 1)
        await #expect(throws: EventStoreError.self) {
            try await store.append([EventData(type: "t", data: JSONText(try JSONWriter.encode(["big": tooBig])))], to: "s-odd")
        }
        #expect(try await store.verify().isSound)
    }

    @Test("a request whose value the server refuses fails alone, even inside a batch")
    func serverRefusalIsolated() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        // Year 318857: a valid Swift date, but beyond timestamptz's range, so only the server refuses it.
        let bad = EventData(type: "t", data: JSONText("{}"), occurredAt: Date(timeIntervalSince1970: 1e13))
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await store.append([bad], to: "bad")) != nil }
            for i in 0..<20 { group.addTask { (try? await store.append(sampleEvents(1), to: "good-\(i)")) != nil } }
            var ok = 0
            for await success in group where success { ok += 1 }
            return ok
        }
        #expect(outcomes == 20)
        #expect(try await store.headPosition() == 20)
    }

    @Test("an append decided on a queued one is written only if that one was, even when a foreign write leaves the stream at the version it expects")
    func speculationDependencies() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        // Another process on the same log: its write is one this store's caller never saw.
        let other = EventStore(pool: PostgresPool(configuration: store.pool.configuration))
        defer { other.close() }
        try await store.append(sampleEvents(1), to: "card", expected: .noStream)
        try await other.append(sampleEvents(1), to: "card", expected: .exact(1))

        // One batch: a filler keeps the writer busy, so the chain and a bystander are sent together behind it.
        // P1 was decided on version 1 and conflicts; P2 (decided on P1's state) expects version 2, which the
        // foreign write happens to give: without the dependency it would commit on a state that never existed.
        let filler = try store.enqueue([StreamAppend(stream: "filler", expected: .any, events: sampleEvents(900))])
        let s1 = Speculation(), s2 = Speculation(), s3 = Speculation()
        let p1 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(1), events: sampleEvents(1))], speculation: s1)
        let p2 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(2), events: sampleEvents(1))], speculation: s2, after: [s1])
        let p3 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(3), events: sampleEvents(1))], speculation: s3, after: [s2])
        let bystander = try store.enqueue([StreamAppend(stream: "elsewhere", expected: .noStream, events: sampleEvents(1))])
        _ = try await filler.value()
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "card", expected: .exact(1), actual: 2)) { try await p1.value() }
        await #expect(throws: EventStoreError.speculationFailed) { try await p2.value() }
        await #expect(throws: EventStoreError.speculationFailed) { try await p3.value() }
        #expect(try await bystander.value().version(of: "elsewhere") == 1)
        #expect([s1.status, s2.status, s3.status] == [.failed, .failed, .failed])
        #expect(try await store.version(of: "card") == 2)

        // A producer that already failed: its dependent fails when it is taken, and writes nothing.
        let s4 = Speculation()
        let p4 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(1), events: sampleEvents(1))], speculation: s4)
        await #expect(throws: EventStoreError.self) { try await p4.value() }
        let p5 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(2), events: sampleEvents(1))], after: [s4])
        await #expect(throws: EventStoreError.speculationFailed) { try await p5.value() }
        #expect(try await store.version(of: "card") == 2)

        // A chain whose producers are written commits whole, in one batch or across two.
        let resolved = Mutex<[Bool]>([])
        let s6 = Speculation { _, committed in resolved.withLock { $0.append(committed) } }
        let p6 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(2), events: sampleEvents(1))], speculation: s6)
        let p7 = try store.enqueue([StreamAppend(stream: "card", expected: .exact(3), events: sampleEvents(2))], after: [s6])
        #expect(try await p6.value().version(of: "card") == 3)
        #expect(try await p7.value().version(of: "card") == 5)
        #expect(s6.status == .committed && resolved.withLock { $0 } == [true])
        #expect(try await store.read(stream: "card").map(\.version) == [1, 2, 3, 4, 5])
    }

}

@Suite("Set-based append")
struct SetBasedAppendTests {
    func request(_ streams: [(String, String, [(String, String)])]) -> String {
        let parts = streams.map { stream, expected, events in
            let evs = events.map { id, data in
                #"{"id":"\#(id)","type":"test.happened","data":\#(data),"metadata":{"actor":"t"},"occurred_at":"2026-11-09T00:00:00Z"}"#
            }
            return #"{"stream":"\#(stream)","expected":"\#(expected)","events":[\#(evs.joined(separator: ","))]}"#
        }
        return #"{"streams":[\#(parts.joined(separator: ","))]}"#
    }

    func id(_ n: Int) -> String { String(format: "00000000-0000-0000-0000-%012d", n) }

    /// Each row of `result` as one line, its columns joined by spaces (NULL as "-").
    func lines(_ result: PostgresResult) throws -> [String] {
        try (0..<result.count).map { i in
            try (0..<result.columnCount).map { try result.decodeOptional(i, $0, as: String.self) ?? "-" }.joined(separator: " ")
        }
    }

    @Test("decides a batch of independent requests exactly as the request-by-request function does")
    func sameAsSequential() async throws {
        let setup = "[" + [
            request([("a", "no_stream", [(id(1), #"{"n":1}"#)])]),
            request([("b", "no_stream", [(id(2), #"{"n":2}"#), (id(3), #"{"n":3}"#)])]),
        ].joined(separator: ",") + "]"
        let batch = "[" + [
            request([("c", "no_stream", [(id(10), #"{"n":10}"#), (id(11), #"{"n":11}"#)])]),        // ok, two events
            request([("a", "5", [(id(12), #"{"n":12}"#)])]),                                        // conflict
            request([("x", "any", [(id(1), #"{"n":1}"#)])]),                                         // stored id, other stream: mismatch
            request([("b", "2", [(id(2), #"{"n":2}"#)])]),                                           // duplicate (ids checked first)
            request([("d", "no_stream", [(id(3), #"{"n":"other"}"#)])]),                             // mismatch
            request([("e", "no_stream", [(id(13), #"{"n":13}"#)]), ("f", "exists", [(id(14), #"{"n":14}"#)])]),  // conflict on f only
            request([("g", "any", [(id(15), #"{"n":15}"#)]), ("h", "0", [(id(16), #"{"n":16}"#)])]),              // ok, two streams
            request([("i", "no_stream", [])]),                                                        // no events: nothing to say
        ].joined(separator: ",") + "]"

        func run(_ function: String) async throws -> ([String], [String]) {
            let pool = try await TestDatabase.makePool()
            defer { pool.close() }
            return try await pool.withConnection { c in
                _ = try c.query("SELECT * FROM coord_append_sequential(\(JSONText(setup))::jsonb)")
                let r = try c.query(SQL(unsafe: "SELECT req, stream, outcome, version, first_position, last_position FROM \(function)(") + "\(JSONText(batch))::jsonb)")
                let rows = try lines(r).sorted()
                let events = try lines(c.query("SELECT position, stream, version, id, data::text FROM events ORDER BY position"))
                let verified = try c.query("SELECT broken_at FROM coord_verify(1, 1000)")
                #expect(try verified.decodeOptional(0, 0, as: Int64.self) == nil)
                return (rows, events)
            }
        }
        let fast = try await run("coord_append")
        let sequential = try await run("coord_append_sequential")
        #expect(fast.0 == sequential.0)
        #expect(fast.1 == sequential.1)
        #expect(fast.0.contains("1 c ok 2 4 5") && fast.0.contains("2 a conflict 1 - -") && fast.0.contains("4 b duplicate 1 2 2"))
        #expect(fast.0.contains("6 f conflict 0 - -") && !fast.0.contains { $0.hasPrefix("6 e") })
        #expect(fast.1.count == 3 + 4)
    }

    typealias Request = (streams: [(String, String, [(String, String)])], receipt: String?)

    /// `batch` as coord_write's jsonb and as coord_write_arrays' arguments.
    func encode(_ batch: [Request]) -> (json: String, arrays: SQL) {
        let json = "[" + batch.map { r in
            var one = request(r.streams)
            if let receipt = r.receipt {
                one.removeLast()
                one += #","receipt":{"id":"\#(receipt)","hash":"h-\#(receipt)","answer":"a-\#(receipt)"}}"#
            }
            return one
        }.joined(separator: ",") + "]"
        var a = [PostgresArrayLiteral](repeating: PostgresArrayLiteral(), count: 13)
        for (index, r) in batch.enumerated() {
            for (stream, expected, events) in r.streams {
                a[0].append(index + 1); a[1].append(stream)
                switch expected {
                case "any": a[2].appendNull()
                case "no_stream": a[2].append(0)
                case "exists": a[2].append(-1)
                default: a[2].append(Int(expected)!)
                }
                a[3].append(events.count)
                for (id, data) in events {
                    a[4].append(id); a[5].append("test.happened"); a[6].append(data); a[7].append(#"{"actor":"t"}"#)
                    a[8].append("2026-11-09T00:00:00Z")
                }
            }
            if let receipt = r.receipt {
                a[9].append(index + 1); a[10].append(receipt); a[11].append("h-" + receipt); a[12].append("a-" + receipt)
            }
        }
        let arrays: SQL = """
            coord_write_arrays(\(a[0])::int[], \(a[1])::text[], \(a[2])::bigint[], \(a[3])::int[], \(a[4])::uuid[], \(a[5])::text[],
                               \(a[6])::jsonb[], \(a[7])::jsonb[], \(a[8])::timestamptz[], \(a[9])::int[], \(a[10])::uuid[],
                               \(a[11])::text[], \(a[12])::text[])
            """
        return (json, arrays)
    }

    /// Runs `setup` through coord_write, then `batch` through `lean` (coord_write_arrays) or coord_write; returns the
    /// outcome rows, the stored events and the stored receipts.
    func outcome(setup: [Request], batch: [Request], lean: Bool) async throws -> (rows: [String], events: [String], receipts: [String]) {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        return try await pool.withConnection { c in
            if !setup.isEmpty { _ = try c.query("SELECT * FROM coord_write(\(JSONText(encode(setup).json))::jsonb)") }
            let (json, arrays) = encode(batch)
            let r = try c.query("SELECT req, stream, outcome, version, first_position, last_position FROM " + (lean ? arrays : "coord_write(\(JSONText(json))::jsonb)"))
            let rows = try lines(r).sorted()
            let events = try lines(c.query("SELECT position, stream, version, id, type, data::text, metadata::text, occurred_at::text FROM events ORDER BY position"))
            let receipts = try lines(c.query("SELECT id, request_hash, answer FROM command_receipts ORDER BY id"))
            #expect(try c.query("SELECT broken_at FROM coord_verify(1, 1000)").decodeOptional(0, 0, as: Int64.self) == nil)
            #expect(try c.query("SELECT count(*) FROM coord_verify_state(10)").decode(0, 0, as: Int64.self) == 0)
            return (rows, events, receipts)
        }
    }

    @Test("the lean writer decides independent requests, and stores their receipts, exactly as coord_write does")
    func leanSameAsWrite() async throws {
        let setup: [Request] = [
            ([("a", "no_stream", [(id(1), #"{"n":1}"#)])], nil),
            ([("b", "no_stream", [(id(2), #"{"n":2}"#), (id(3), #"{"n":3}"#)])], nil),
            ([("k", "no_stream", [(id(4), #"{"n":4}"#)])], nil),
        ]
        let batch: [Request] = [
            ([("c", "no_stream", [(id(10), #"{"n":10}"#), (id(11), #"{"n":"\"quoted\" \\ back"}"#)])], id(900)),  // ok, two events
            ([("k", "5", [(id(12), #"{"n":12}"#)])], id(901)),                                                   // conflict: no receipt
            ([("e", "no_stream", [(id(13), #"{"n":13}"#)]), ("f", "exists", [(id(14), #"{"n":14}"#)])], id(902)),  // conflict on f only
            ([("g", "any", [(id(15), #"{"n":15}"#)]), ("h", "0", [(id(16), #"{"n":16}"#)])], id(903)),          // ok, two streams
            ([("b", "2", [(id(17), #"{"n":17}"#)]), ("i", "no_stream", [])], nil),                              // ok; i has no events
            ([("j", "exists", [(id(18), #"{"n":18}"#)])], nil),                                                 // conflict
            ([("a", "exists", [(id(19), "{}")])], id(904)),                                                     // ok
        ]
        let lean = try await outcome(setup: setup, batch: batch, lean: true)
        let write = try await outcome(setup: setup, batch: batch, lean: false)
        #expect(lean.rows == write.rows)
        #expect(lean.events == write.events)
        #expect(lean.receipts == write.receipts)
        #expect(lean.rows.contains("1 c ok 2 5 6") && lean.rows.contains("2 k conflict 1 - -") && lean.rows.contains("3 f conflict 0 - -"))
        #expect(lean.rows.contains("5 b ok 3 9 9") && !lean.rows.contains { $0.hasPrefix("5 i") } && lean.rows.contains("7 a ok 2 10 10"))
        #expect(lean.events.count == 4 + 6)
        #expect(lean.receipts.count == 3 && !lean.receipts.contains { $0.hasPrefix(id(901)) || $0.hasPrefix(id(902)) })
    }

    @Test("the lean writer decides requests on one stream (a hot stock card) in order, exactly as coord_write does")
    func leanDependentSameAsWrite() async throws {
        let setup: [Request] = [([("s", "no_stream", [(id(1), #"{"n":1}"#)])], nil)]
        let batch: [Request] = [
            ([("s", "1", [(id(10), #"{"n":10}"#)])], id(900)),                                     // ok: s at 2
            ([("s", "2", [(id(11), #"{"n":11}"#), (id(12), #"{"n":12}"#)])], id(901)),             // ok: s at 4
            ([("s", "2", [(id(13), #"{"n":13}"#)])], id(902)),                                     // conflict: s is at 4
            ([("s", "4", [(id(14), #"{"n":14}"#)])], nil),                                         // ok: s at 5
            ([("s", "5", [(id(15), #"{"n":15}"#)]), ("t", "no_stream", [(id(16), #"{"n":16}"#)])], id(903)),  // ok: s 6, t 1
            ([("t", "exists", [(id(17), #"{"n":17}"#)]), ("u", "no_stream", [(id(18), #"{"n":18}"#)])], nil),  // ok: t 2, u 1
            ([("s", "any", [(id(19), #"{"n":19}"#)]), ("t", "0", [(id(20), #"{"n":20}"#)])], id(904)),       // conflict on t only
            ([("u", "no_stream", [(id(21), #"{"n":21}"#)])], nil),                                  // conflict: u at 1
            ([("s", "6", [(id(22), #"{"n":22}"#)])], id(905)),                                     // ok: the conflicts left s at 6
        ]
        let lean = try await outcome(setup: setup, batch: batch, lean: true)
        let write = try await outcome(setup: setup, batch: batch, lean: false)
        #expect(lean.rows == write.rows)
        #expect(lean.events == write.events)
        #expect(lean.receipts == write.receipts)
        #expect(lean.rows.contains("3 s conflict 4 - -") && lean.rows.contains("7 t conflict 2 - -") && lean.rows.contains("8 u conflict 1 - -"))
        #expect(lean.rows.contains("9 s ok 7 10 10") && !lean.rows.contains { $0.hasPrefix("7 s") })
        #expect(lean.receipts.count == 4 && !lean.receipts.contains { $0.hasPrefix(id(902)) || $0.hasPrefix(id(904)) })
    }

    @Test("the lean writer hands back, having written nothing, a batch with an id twice or an id already stored")
    func leanResends() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        try await pool.withConnection { c in
            _ = try c.query("SELECT * FROM coord_write(\(JSONText(encode([([("a", "no_stream", [(id(1), "{}")])], nil)]).json))::jsonb)")
            let batches: [[Request]] = [
                [([("s", "any", [(id(2), "{}")])], nil), ([("t", "any", [(id(2), "{}")])], nil)],         // id twice
                [([("s", "any", [(id(2), "{}")])], id(901)), ([("t", "any", [(id(1), "{}")])], nil)],     // id stored
            ]
            for batch in batches {
                let r = try c.query("SELECT req, stream, outcome FROM " + encode(batch).arrays)
                #expect(r.count == 1)
                #expect(try r.decode(0, 2, as: String.self) == "resend")
                #expect(try r.decodeOptional(0, 0, as: Int.self) == nil)
            }
            #expect(try c.query("SELECT position FROM event_head").decode(0, 0, as: Int64.self) == 1)
            #expect(try c.query("SELECT count(*) FROM command_receipts").decode(0, 0, as: Int64.self) == 0)
            #expect(try c.query("SELECT count(*) FROM streams").decode(0, 0, as: Int64.self) == 1)
        }
    }

    @Test("the lean writer refuses arrays that do not describe one batch, and writes nothing")
    func leanRefusesBadArrays() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        try await pool.withConnection { c in
            let e = "{00000000-0000-0000-0000-000000000001}"
            let calls: [SQL] = [
                // two events announced, one given
                "SELECT * FROM coord_write_arrays('{1}', '{s}', '{NULL}', '{2}', \(e)::uuid[], '{t.x}', '{\"{}\"}', '{\"{}\"}', '{2026-11-09T00:00:00Z}', '{}', '{}', '{}', '{}')",
                // a type missing
                "SELECT * FROM coord_write_arrays('{1}', '{s}', '{NULL}', '{1}', \(e)::uuid[], '{}', '{\"{}\"}', '{\"{}\"}', '{2026-11-09T00:00:00Z}', '{}', '{}', '{}', '{}')",
                // a receipt without its answer
                "SELECT * FROM coord_write_arrays('{1}', '{s}', '{NULL}', '{1}', \(e)::uuid[], '{t.x}', '{\"{}\"}', '{\"{}\"}', '{2026-11-09T00:00:00Z}', '{1}', \(e)::uuid[], '{h}', '{}')",
                // a negative count
                "SELECT * FROM coord_write_arrays('{1,1}', '{s,t}', '{NULL,NULL}', '{2,-1}', \(e)::uuid[], '{t.x}', '{\"{}\"}', '{\"{}\"}', '{2026-11-09T00:00:00Z}', '{}', '{}', '{}', '{}')",
                // nothing at all
                "SELECT * FROM coord_write_arrays('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
            ]
            for call in calls {
                var state: String?
                do { _ = try c.query(call) } catch let error as PostgresError { state = error.sqlState }
                #expect(state == "22023")
            }
            #expect(try c.query("SELECT position FROM event_head").decode(0, 0, as: Int64.self) == 0)
        }
    }
}
