@testable import Coordination
@testable import Events
import Foundation
import Synchronization
import Testing
import TestSupport

/// Encodes with Foundation's encoder configured as `JSONWriter.makeEncoder()`: the reference output.
private func foundationJSON<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try JSONWriter.makeEncoder().encode(value), as: UTF8.self)
}

@Suite("Canonical JSON and idempotency digests")
struct CanonicalJSONTests {
    struct Edge: Encodable {
        var plain = "MNL"
        var escapes = "q\"\\/\u{1}\u{8}\u{c}\n\r\t\u{1f}é\u{2028}😀"
        var numbers: [Double] = [14.0, 11.2, 0.1 + 0.2, 1e-5, 1e21, -0.0, 125, 123_456_789_012.5, -7.25]
        var ints: [Int64] = [0, -1, Int64.max, Int64.min]
        var missing: String? = nil
        var present: Int? = 3
        var when = Date(timeIntervalSince1970: 1_794_000_000.123456)
        var whole = Date(timeIntervalSince1970: 1_794_000_000)
        var myURLProperty = true
        var correlationID = "c"
        var nested: [[String: Int]] = [["b": 2, "a": 1], [:]]
        var empty: [String] = []
        var day = Day("2026-11-08")!
    }

    @Test("matches Foundation's encoder byte for byte: escapes, numbers, dates, key case and order, nesting")
    func edgeCases() throws {
        #expect(try CanonicalJSON.encode(Edge()) == foundationJSON(Edge()))
        #expect(try CanonicalJSON.encode(["z": 1, "a": 2]) == foundationJSON(["z": 1, "a": 2]))
        #expect(throws: EncodingError.self) { try CanonicalJSON.encode([Double.nan]) }
    }

    @Test("matches Foundation's encoder for every command, event payload and resource state of the demo scenario")
    func demoScenario() async throws {
        var compared = 0
        for line in DemoScenario.lines {
            let command = try CommandCatalog.decode(name: line.command, json: line.bodyJSON)
            #expect(try CanonicalJSON.encode(command) == foundationJSON(command), "\(line.command)")
            compared += 1
        }
        let service = try await makeService()
        _ = try await DemoScenario.load(into: service)
        let events = try await service.store.read(after: 0, limit: 10_000)
        for event in events {
            let payload = try EventCodec.decode(event).payload
            func compare<P: EventPayload>(_ p: P) throws { #expect(try CanonicalJSON.encode(p) == foundationJSON(p), "\(event.type)") }
            try compare(payload)
            compared += 1
        }
        for stream in Set(events.map(\.stream)) {
            let runner = service.runner
            let (a, b): (String, String)
            switch EventStore.category(of: stream) {
            case "response": let s = try await runner.load(stream, as: ResponseState.self, fresh: true).0; (a, b) = (try CanonicalJSON.encode(s), try foundationJSON(s))
            case "deployment": let s = try await runner.load(stream, as: DeploymentState.self, fresh: true).0; (a, b) = (try CanonicalJSON.encode(s), try foundationJSON(s))
            case "task": let s = try await runner.load(stream, as: TaskState.self, fresh: true).0; (a, b) = (try CanonicalJSON.encode(s), try foundationJSON(s))
            case "person": let s = try await runner.load(stream, as: PersonState.self, fresh: true).0; (a, b) = (try CanonicalJSON.encode(s), try foundationJSON(s))
            case "transfer": let s = try await runner.load(stream, as: TransferState.self, fresh: true).0; (a, b) = (try CanonicalJSON.encode(s), try foundationJSON(s))
            case "stock": let s = try await runner.load(stream, as: StockState.self, fresh: true).0; (a, b) = (try CanonicalJSON.encode(s), try foundationJSON(s))
            default: continue
            }
            #expect(a == b, "\(stream)")
            compared += 1
        }
        #expect(compared > 900)
    }

    @Test("receipts and dispatches, events and commands, render their own JSON exactly as CanonicalJSON renders them, over thousands of values; the codec stores that text")
    func directEncoding() throws {
        var rng = SplitMix(seed: 11)
        let strings = ["", "W00", "HSHETARPW406", "a\"b", "back\\slash", "tab\there", "line\nbreak", "\u{1}", "\u{7f}", "caf\u{e9}", "日本",
                       "🙂", "slash/ok", "</script>", "  spaced  "]
        let numbers: [Int64] = [0, 1, -1, 500, Int64.max, Int64.min, 1_000_000]
        func string() -> String { strings[rng.next(strings.count)] + (rng.next(3) == 0 ? strings[rng.next(strings.count)] : "") }
        func maybe() -> String? { rng.next(3) == 0 ? nil : string() }
        var compared = 0
        for _ in 0..<3000 {
            let receipt = StockReceived(warehouse: string(), item: string(), quantity: numbers[rng.next(numbers.count)], source: string(),
                                        reference: maybe(), donor: maybe(),
                                        expiry: rng.next(2) == 0 ? nil : Day(daysSinceEpoch: rng.next(Day.plausible.count) + Day.plausible.lowerBound))
            let dispatch = StockDispatched(warehouse: string(), item: string(), quantity: numbers[rng.next(numbers.count)], destination: string(),
                                           response: maybe(), reference: maybe(), transport: maybe())
            #expect(receipt.canonicalJSON == (try CanonicalJSON.encode(receipt)), "\(receipt)")
            #expect(dispatch.canonicalJSON == (try CanonicalJSON.encode(dispatch)), "\(dispatch)")
            // Their commands, whose canonical text is the idempotency digest: a re-sent command must digest as before.
            let at: Date? = rng.next(2) == 0 ? nil : Date(timeIntervalSince1970: Double(rng.next(4_000_000_000)) + Double(rng.next(1_000_000)) / 1e6)
            let receive = ReceiveStock(warehouse: receipt.warehouse, item: receipt.item, quantity: receipt.quantity, source: receipt.source,
                                       reference: receipt.reference, donor: receipt.donor, expiry: receipt.expiry, occurredAt: at)
            let send = DispatchStock(warehouse: dispatch.warehouse, item: dispatch.item, quantity: dispatch.quantity, destination: dispatch.destination,
                                     response: dispatch.response, reference: dispatch.reference, transport: dispatch.transport, occurredAt: at)
            #expect(CoordinationService.canonical(receive) == (try CanonicalJSON.encode(receive)), "\(receive)")
            #expect(CoordinationService.canonical(send) == (try CanonicalJSON.encode(send)), "\(send)")
            // What the codec stores is that text, and it reads back as the same payload.
            let stored = try EventCodec.event(receipt, id: UUID(), metadata: EventMetadata(actor: "t"), occurredAt: Date())
            #expect(stored.data.text == receipt.canonicalJSON)
            #expect(try EventCodec.decode(StockReceived.self, data: Data(stored.data.text.utf8), version: 1, position: 0) == receipt)
            compared += 4
        }
        #expect(compared == 12000)
    }

    @Test("receipts and dispatches read from their fields are what Decodable makes of the same text, over thousands of shapes; the stored shape takes that path")
    func directPayloads() throws {
        let values: [String?] = [nil, "null", #""W00""#, #""""#, "5", "-3", "0", "5.0", "1e3", "true", "[]", "{}", #""2026-03-01""#,
                                 #""2026-02-30""#, #""1800-01-01""#, "99999999999999999999", #""a\"b""#, #""\u00e9""#]
        var rng = SplitMix(seed: 7)
        func check<P: DirectlyDecodedPayload>(_: P.Type, _ base: [(String, String)]) throws {
            func json(_ shape: [String?]) -> String {
                "{" + zip(base, shape).compactMap { field, value in value.map { "\"\(field.0)\": \($0)" } }.joined(separator: ", ") + "}"
            }
            var shapes: [[String?]] = [base.map(\.1)]
            for k in base.indices { for v in values { var s: [String?] = base.map(\.1); s[k] = v; shapes.append(s) } }
            for _ in 0..<2000 { shapes.append(base.map { rng.next(4) != 0 ? $0.1 : values[rng.next(values.count)] }) }
            var direct = 0, refused = 0
            for shape in shapes {
                let text = json(shape)
                let fast = (try? JSONValue.parse(text)).flatMap(JSONFields.init).flatMap(P.init(fields:))
                let reference = try? FastJSONDecoder.decode(P.self, from: Data(text.utf8))
                if let fast { direct += 1; #expect(fast == reference, "\(text)") }
                // The codec as a whole (direct, else Decodable) answers what Decodable alone did: the same payload, or an error.
                let codec = try? DomainEvent.registry[P.eventType]!.decode(text, 1, 0)
                let old = try? EventCodec.decode(P.self, data: Data(text.utf8), version: 1, position: 0)
                #expect(codec.flatMap { $0.payload as? P } == old, "\(text)")
                if old == nil { refused += 1 }
            }
            #expect(direct > 300 && refused > 300, "both paths exercised: \(direct) direct, \(refused) refused")
            // The shape jsonb stores takes the direct path.
            #expect(P(fields: JSONFields(try JSONValue.parse(json(base.map(\.1))))!) != nil)
        }
        try check(StockReceived.self, [("warehouse", #""W00""#), ("item", #""ITEM01""#), ("quantity", "100"), ("source", #""donation""#),
                                       ("reference", #""GRN-1""#), ("donor", #""ECHO""#), ("expiry", #""2027-06-30""#)])
        try check(StockDispatched.self, [("warehouse", #""W00""#), ("item", #""ITEM01""#), ("quantity", "10"), ("destination", #""site""#),
                                         ("response", #""R1""#), ("reference", #""WB-1""#), ("transport", #""truck""#)])
    }

    @Test("a fold reads the actor from stored metadata as a full parse does, escapes, nesting and odd shapes included")
    func metadataActor() throws {
        for (text, actor) in [(#"{"actor": "ops@example.org", "source": "api"}"#, "ops@example.org"), (#"{"actor": ""}"#, ""),
                              (#"{"actor": "a\"b\\c", "source": "api"}"#, #"a"b\c"#), (#"{"actor": "caf\u00e9"}"#, "café"),
                              (#"{"x": {"actor": "nested"}, "actor": "top"}"#, "top"), (#"{"source": "api"}"#, nil), (#"{"actor": 5}"#, nil),
                              (#"{"actor": null}"#, nil), (#"{"actor": "unterminated"#, nil), ("{}", nil)] as [(String, String?)] {
            let event = RecordedEvent(position: 1, stream: "s", version: 1, id: UUID(), type: "t", data: JSONText("{}"),
                                      metadata: JSONText(text), occurredAt: Date(), recordedAt: Date(), hash: "")
            #expect(event.actor == actor, "\(text)")
        }
    }

    @Test("the fast decoder reads every demo command and stored payload exactly as Foundation's does, and refuses what it is unsure of")
    func fastDecoder() async throws {
        for line in DemoScenario.lines {
            let type = try #require(CommandCatalog.byName[line.command])
            func check<C: DomainCommand>(_ t: C.Type) throws {
                let fast = try FastJSONDecoder.decode(C.self, from: line.bodyJSON)
                let reference = try JSONWriter.makeDecoder().decode(C.self, from: line.bodyJSON)
                #expect(try CanonicalJSON.encode(fast) == CanonicalJSON.encode(reference), "\(line.command)")
            }
            try check(type)
        }
        let service = try await makeService()
        _ = try await DemoScenario.load(into: service)
        for event in try await service.store.read(after: 0, limit: 10_000) {
            let type = try #require(DomainEvent.registry[event.type]?.type)
            func check<P: EventPayload>(_ t: P.Type) throws {
                // Stored text comes back in jsonb's spacing: {"a": 1, "b": "x"}.
                let fast = try FastJSONDecoder.decode(P.self, from: Data(event.data.text.utf8))
                let reference = try JSONWriter.makeDecoder().decode(P.self, from: Data(event.data.text.utf8))
                #expect(try CanonicalJSON.encode(fast) == CanonicalJSON.encode(reference), "\(event.type)")
            }
            try check(type)
        }
        struct Sample: Decodable { var quantity: Int64; var leadOrg: String?; var at: Date?; var tags: [String]? }
        let good = Data(#" {"quantity": 5, "lead_org": "IOM", "at": "2026-11-08T06:30:00Z", "tags": ["a", "b"]} "#.utf8)
        let sample = try FastJSONDecoder.decode(Sample.self, from: good)
        #expect(sample.quantity == 5 && sample.leadOrg == "IOM" && sample.at == Timestamp.parse("2026-11-08T06:30:00Z") && sample.tags == ["a", "b"])
        for unsure in [#"{"quantity": 5.0}"#, #"{"quantity": 1e3}"#, #"{"quantity": "5"}"#, #"{"quantity": 05}"#,
                       #"{"quantity": 5, "lead_org": "a"b"}"#, #"{"quantity": 5,}"#, #"{"quantity": 5} x"#, #"{"at": "yesterday", "quantity": 1}"#,
                       #"{"lead_org": "x"}"#, #"[1]"#, #"{"quantity": 5, "lead_org": "\ud800"}"#] {
            #expect(throws: (any Error).self, "\(unsure)") { try FastJSONDecoder.decode(Sample.self, from: Data(unsure.utf8)) }
        }
        // A repeated key is refused outright (which value was meant is not ours to guess), whatever the decoder.
        #expect(throws: JSONValue.Invalid.self) { try FastJSONDecoder.decode(Sample.self, from: Data(#"{"quantity": 5, "quantity": 6}"#.utf8)) }
        // Escapes decode as the reference does.
        for text in [#"{"quantity": 5, "lead_org": "a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#] {
            let fast = try FastJSONDecoder.decode(Sample.self, from: Data(text.utf8))
            let reference = try JSONWriter.makeDecoder().decode(Sample.self, from: Data(text.utf8))
            #expect(fast.quantity == reference.quantity && fast.leadOrg == reference.leadOrg, "\(text)")
        }
        #expect(try FastJSONDecoder.decode(Sample.self, from: Data(#"{"quantity": 1, "lead_org": "a\"b"}"#.utf8)).leadOrg == "a\"b")
    }

    @Test("a projection's slim read of metadata answers the actor and schema version a full read does, for every shape; the projections ask for it")
    func slimMetadataRead() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        let store = EventStore(pool: pool)
        defer { store.close() }
        let shapes: [EventMetadata] = [
            EventMetadata(actor: "ops@example.org", correlationID: "c-1", causationID: "x", source: "api", idempotencyKey: "k", requestHash: "d"),
            EventMetadata(actor: "a\"b\\c", source: "api", schemaVersion: 2), EventMetadata(actor: "café 😀"), EventMetadata(source: "import"),
            EventMetadata(), EventMetadata(actor: "", schemaVersion: 3), EventMetadata(correlationID: "only", schemaVersion: 7),
        ]
        for (i, m) in shapes.enumerated() {
            try await store.append([EventData(type: "thing.happened", data: JSONText(#"{"n": \#(i)}"#), metadata: m)], to: "slim-\(i)", expected: .any)
        }
        // One with nothing but an actor.
        try await store.append([EventData(type: "thing.happened", data: JSONText("{}"), metadata: EventMetadata(actor: "z"))], to: "slim-x", expected: .any)
        let full = try await store.read(after: 0, limit: 100)
        let keys = StockProjection().metadataKeys
        #expect(keys == ["actor", "schema_version"])
        #expect(Coordination.projections.allSatisfy { $0.metadataKeys == keys })
        let slim = try await store.read(after: 0, limit: 100, filter: EventFilter(metadataKeys: ["schema_version", "actor", "actor"]))
        #expect(slim.count == full.count && full.count == shapes.count + 1)
        for (f, s) in zip(full, slim) {
            #expect(s.position == f.position && s.id == f.id && s.data == f.data && s.occurredAt == f.occurredAt && s.recordedAt == f.recordedAt && s.hash == f.hash)
            #expect(s.actor == f.actor, "\(f.metadata.text)")
            #expect(EventCodec.schemaVersion(ofMetadata: s.metadata.text) == EventCodec.schemaVersion(ofMetadata: f.metadata.text), "\(f.metadata.text)")
            // Only the keys asked for, with the values the full object has.
            let fo = try JSONValue.parse(f.metadata.text), so = try JSONValue.parse(s.metadata.text)
            #expect(Set(so.keys ?? []) == Set((fo.keys ?? []).filter { ["actor", "schema_version"].contains($0) }), "\(s.metadata.text)")
            for key in so.keys ?? [] { #expect(String(describing: so[key]) == String(describing: fo[key]), "\(key)") }
        }
        // The same filtered by type, through the batched read a rebuild uses.
        var batched: [RecordedEvent] = []
        try await store.forEach(after: 0, filter: EventFilter(types: ["thing.happened"], metadataKeys: ["actor"]), until: .position(100), batchSize: 3) { batched.append($0) }
        #expect(batched.map(\.actor) == full.map(\.actor))
    }

    @Test("idempotency ids and request digests equal PostgreSQL's md5 of the same text")
    func md5MatchesPostgres() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        for (actor, key, body) in [("officer-1", "waybill-WB-0042", #"{"quantity":5}"#), ("Ñandú 😀", "ключ", ""),
                                   ("a", String(repeating: "k", count: 200), String(repeating: "x", count: 1000))] {
            let (ids, digest) = CommandRunner.idempotencyIDs(actor: actor, command: "stock.dispatch", key: key, body: body)
            let base = actor + "\u{1f}stock.dispatch\u{1f}" + key
            let r = try await pool.withConnection { c in
                try c.query("SELECT md5(\(base) || chr(31) || '0')::uuid, md5(\(base) || chr(31) || '7')::uuid, md5(\(body))")
            }
            #expect(ids.first == (try r.decode(0, 0, as: UUID.self)))
            #expect(ids[7] == (try r.decode(0, 1, as: UUID.self)))
            #expect(digest == (try r.decode(0, 2, as: String.self)))
        }
        // Every length around the 56- and 64-byte block boundaries, twice over.
        let texts = (0...140).map { String(repeating: "é", count: $0 / 2) + String(repeating: "x", count: $0 % 2) }
        let expected = try await pool.withConnection { c in
            try c.query("SELECT md5(t) FROM unnest(\(texts)::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n").rows.map { try $0.decode(0, as: String.self) }
        }
        #expect(texts.map(MD5.hex) == expected)
    }
}

@Suite("Bulk import")
struct ImportTests {
    /// Import lines for the seed data and `receipts` receipts of 10 tarpaulins at MNL.
    static func lines(receipts: Int) -> [String] {
        [#"{"command":"warehouse.register","code":"MNL","name":"Manila hub","country":"PHL","kind":"global_hub","pcode":"PH1339"}"#,
         #"{"command":"item.register","code":"HSHETARPW406","name":"Tarpaulin","unit":"piece","category":"shelter"}"#,
         #"{"command":"response.declare","id":"PHL-2026-TC-01","name":"Typhoon","country":"PHL","hazard":"typhoon","severity":"orange","declared_at":"2026-11-08T08:30:00Z"}"#]
            + (1...receipts).map { #"{"command":"stock.receive","warehouse":"MNL","item":"HSHETARPW406","quantity":10,"reference":"GRN-\#($0)","source":"donation"}"# }
    }

    @Test("staged import of the demo scenario writes the same streams, types, data and times as running it command by command")
    func sameAsOneByOne() async throws {
        let slow = try await makeService()
        _ = try await DemoScenario.load(into: slow)
        let fast = try await makeService()
        let report = try await CommandImporter(store: fast.store, actor: "demo", maxBatchEvents: 50)
            .run(DemoScenario.lines.map(\.json), keepGoing: false)
        #expect(report.failures.isEmpty)
        #expect(report.imported == DemoScenario.lines.count)
        #expect(report.batches > 5, "several staged transactions")
        func content(_ s: CoordinationService) async throws -> [String] {
            // A line without occurred_at happened when it was run: the two loads differ there by their run times.
            try await s.store.read(after: 0, limit: 10_000).map {
                "\($0.stream) v\($0.version) \($0.type) \($0.data.text) \(abs($0.occurredAt.timeIntervalSinceNow) < 600 ? "now" : "\($0.occurredAt)")"
            }.sorted()
        }
        #expect(try await content(fast) == content(slow))
        #expect(try await fast.store.verify().isSound)
        // A re-run finds every line already written.
        let again = try await CommandImporter(store: fast.store, actor: "demo").run(DemoScenario.lines.map(\.json), keepGoing: false)
        #expect(again.alreadyPresent == DemoScenario.lines.count && again.imported == 0)
    }

    @Test("another writer changes a stream under a staged batch: nothing of it is written, its lines are decided again on fresh reads")
    func conflictFallsBack() async throws {
        let s = try await makeService()
        // Chunk 1: the seed and 20 receipts (200 on hand). Between the chunks, another writer receives 5 more.
        // Chunk 2: a dispatch of 205, which only the fresh state allows.
        let lines = Self.lines(receipts: 20) + [#"{"command":"stock.dispatch","warehouse":"MNL","item":"HSHETARPW406","quantity":205,"reference":"WB-1","destination":"Site A","response":"PHL-2026-TC-01"}"#]
        let other = try TestDatabase.connection(like: s.store.pool)
        defer { other.close() }
        let batch = #"[{"streams":[{"stream":"stock-MNL:HSHETARPW406","expected":"any","events":[{"id":"\#(UUID().lowercasedString)","type":"stock.received","data":{"warehouse":"MNL","item":"HSHETARPW406","quantity":5,"reference":"GRN-X","source":"donation"},"metadata":{"actor":"other"},"occurred_at":"2026-11-09T00:00:00Z"}]}]}]"#
        let importer = CommandImporter(store: s.store, actor: "importer", chunkLines: 23)
        // The progress callback runs after a chunk is decided and before its batch is written.
        let report = try await importer.run(lines, keepGoing: false) { done in
            if done == 23 { _ = try? other.query("SELECT * FROM coord_append(\(batch)::jsonb)") }
        }
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.imported == lines.count)
        #expect(report.linesRetriedAlone >= 23, "the conflicting batch was decided again")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 0)
        #expect(try await s.store.verify().isSound)
        let again = try await CommandImporter(store: s.store, actor: "importer").run(lines, keepGoing: false)
        #expect(again.alreadyPresent == lines.count)
    }

    @Test("the next batch is decided while two wait to be written; when the older one meets a conflict, the younger writes nothing and both are decided again")
    func twoBatchesInFlight() async throws {
        let s = try await makeService()
        // Batches of 5 events, chunks of 10 lines: the first chunk fills two batches. Another session holds the bulk
        // writers' lock, so neither can be written; a pipelined importer still decides the whole chunk and reports it.
        let lines = Self.lines(receipts: 17)
        let other = try TestDatabase.connection(like: s.store.pool)
        defer { other.close() }
        let bulkLock: SQL = "hashtextextended(current_schema() || '.coord_bulk_append', 11)"
        try other.query("SELECT pg_advisory_lock(" + bulkLock + ")")
        let batch = #"[{"streams":[{"stream":"stock-MNL:HSHETARPW406","expected":"any","events":[{"id":"\#(UUID().lowercasedString)","type":"stock.received","data":{"warehouse":"MNL","item":"HSHETARPW406","quantity":5,"reference":"GRN-X","source":"donation"},"metadata":{"actor":"other"},"occurred_at":"2026-11-09T00:00:00Z"}]}]}]"#
        // (released, whether the first chunk was decided while both its batches waited for the lock)
        let state = Mutex((released: false, decidedWhileHeld: false))
        let release = Task {
            // An importer that waits for each batch before deciding the next stalls at the lock: let it go on.
            try? await Task.sleep(nanoseconds: 15_000_000_000)
            state.withLock { st in
                if !st.released { _ = try? other.query("SELECT pg_advisory_unlock(" + bulkLock + ")"); st.released = true }
            }
        }
        let importer = CommandImporter(store: s.store, actor: "importer", maxBatchEvents: 5, chunkLines: 10)
        let report = try await importer.run(lines, keepGoing: false) { done in
            guard done == 10 else { return }
            state.withLock { st in
                guard !st.released else { return }
                // The stock card the first batch creates now exists: that batch, and the one decided on it, are stale.
                _ = try? other.query("SELECT * FROM coord_append(\(batch)::jsonb)")
                _ = try? other.query("SELECT pg_advisory_unlock(" + bulkLock + ")")
                st = (released: true, decidedWhileHeld: true)
            }
        }
        release.cancel()
        #expect(state.withLock { $0.decidedWhileHeld }, "the first chunk was decided while its first batch waited to be written")
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.imported == lines.count)
        #expect(report.linesRetriedAlone >= 15, "both stale batches and the one staged after them were decided again: \(report.linesRetriedAlone)")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 5 + 17 * 10)
        let card = try await s.store.read(stream: "stock-MNL:HSHETARPW406", from: 1, limit: 100)
        #expect(card.count == 18, "each receipt once, and the other writer's")
        #expect(try await s.store.verify().isSound)
    }

    @Test("a dispatch beyond stock on hand is refused and writes nothing; repeated keys are found, changed bodies refused")
    func invariantsAndKeys() async throws {
        let s = try await makeService()
        let receive = #"{"command":"stock.receive","warehouse":"MNL","item":"HSHETARPW406","quantity":10,"reference":"GRN-K","source":"donation","idempotency_key":"k1"}"#
        let lines = Self.lines(receipts: 2) + [
            #"{"command":"stock.dispatch","warehouse":"MNL","item":"HSHETARPW406","quantity":21,"reference":"WB-1","destination":"Site A"}"#,
            #"{"command":"stock.dispatch","warehouse":"MNL","item":"HSHETARPW406","quantity":20,"reference":"WB-2","destination":"Site A"}"#,
            #"{"command":"stock.dispatch","warehouse":"MNL","item":"HSHETARPW406","quantity":1,"reference":"WB-3","destination":"Site A"}"#,
            receive, receive,
            receive.replacingOccurrences(of: #""quantity":10"#, with: #""quantity":11"#),
            #"{"command":"stock.receive","warehouse":"NOPE","item":"HSHETARPW406","quantity":1,"reference":"GRN-N","source":"donation"}"#,
            "{not json",
        ]
        let report = try await CommandImporter(store: s.store, actor: "importer").run(lines, keepGoing: true)
        #expect(report.failures.map(\.line) == [6, 8, 11, 12, 13])
        #expect(report.failures[0].reason.contains("insufficient") || report.failures[0].reason.contains("stock"))
        #expect(report.failures[2].reason.contains("idempotency"))
        #expect(report.imported == 7 && report.alreadyPresent == 1)
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 10)
        #expect(try await s.store.verify().isSound)
    }
}

@Suite("Staged append")
struct StagedAppendTests {
    static func event(_ n: Int) -> EventData {
        EventData(type: "bench.appended", data: JSONText(#"{"n":\#(n)}"#), metadata: EventMetadata(actor: "test"))
    }

    @Test("writes many commands' appends in order with the chain; a stale version or a stored id writes nothing")
    func outcomes() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append([Self.event(0)], to: "s-1", expected: .noStream)
        let batch = [StreamAppend(stream: "s-1", expected: .exact(1), events: [Self.event(1), Self.event(2)]),
                     StreamAppend(stream: "s-2", expected: .noStream, events: [Self.event(3)]),
                     StreamAppend(stream: "s-1", expected: .exact(3), events: [Self.event(4)])]
        #expect(try await store.appendStaged(batch) == .appended(first: 2, last: 5))
        #expect(try await store.version(of: "s-1") == 4)
        #expect(try await store.read(stream: "s-1").map(\.version) == [1, 2, 3, 4])

        let stale = [StreamAppend(stream: "s-2", expected: .exact(1), events: [Self.event(5)]),
                     StreamAppend(stream: "s-1", expected: .exact(2), events: [Self.event(6)])]
        #expect(try await store.appendStaged(stale) == .conflict(stream: "s-1"))
        let stored = try await store.read(stream: "s-2")[0]
        let again = [StreamAppend(stream: "s-3", expected: .noStream,
                                  events: [EventData(id: stored.id, type: "bench.appended", data: JSONText("{}"))])]
        #expect(try await store.appendStaged(again) == .duplicate(eventID: stored.id.lowercasedString))
        #expect(try await store.headPosition() == 5)
        // Out of order in the batch itself: refused before anything is sent.
        await #expect(throws: EventStoreError.self) {
            try await store.appendStaged([StreamAppend(stream: "s-4", expected: .noStream, events: [Self.event(7)]),
                                          StreamAppend(stream: "s-4", expected: .exact(5), events: [Self.event(8)])])
        }
        try await store.append([Self.event(9)], to: "s-2", expected: .exact(1))
        #expect(try await store.verify().isSound)
    }
}
