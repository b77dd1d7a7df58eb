@testable import Coordination
@testable import Events
import Foundation
import Testing
import TestSupport

/// Random JSON text with the variety a payload can hold: keys of every length and script, escapes written
/// several ways, numbers of every form jsonb keeps as written, nesting, and random whitespace.
private struct JSONCorpus {
    var rng: SplitMix
    let alphabet = ["a", "b", "z", "_", "1", "é", "ß", "漢", "😀", " ", "/", "-"]

    mutating func key() -> String {
        (0..<rng.next(9)).map { _ in alphabet[rng.next(alphabet.count)] }.joined()
    }

    mutating func string() -> String {
        let pieces = ["x", "Tacloban", "é", "\\u00e9", "\\n", "\\t", "\\\"", "\\\\", "\\/", "/", "\\u0001", "\\u001f", "\\b", "\\f", "\\r",
                      "😀", "\\ud83d\\ude00", "\u{7f}", "\\u2028", " "]
        return "\"" + (0..<rng.next(6)).map { _ in pieces[rng.next(pieces.count)] }.joined() + "\""
    }

    mutating func number() -> String {
        let forms = ["0", "7", "-3", "457", "12.5", "0.10", "-0.5", "100.000", "123456789012345678901234567890", "1.0"]
        return forms[rng.next(forms.count)]
    }

    mutating func space() -> String { ["", "", " ", "\n  "][rng.next(4)] }

    mutating func value(depth: Int) -> String {
        switch depth > 3 ? rng.next(4) : rng.next(7) {
        case 0: return string()
        case 1: return number()
        case 2: return ["true", "false", "null"][rng.next(3)]
        case 3: return string()
        case 4: return "[" + (0..<rng.next(4)).map { _ in space() + value(depth: depth + 1) + space() }.joined(separator: ",") + "]"
        default: return object(depth: depth)
        }
    }

    mutating func object(depth: Int) -> String {
        var keys: [String] = []
        for _ in 0..<rng.next(7) {
            let k = key()
            if !keys.contains(k) { keys.append(k) }
        }
        return "{" + keys.map { space() + "\"\($0)\"" + space() + ":" + space() + value(depth: depth + 1) }.joined(separator: ",") + "}"
    }
}

@Suite("Hash chain computed before the COPY")
struct ChainTests {
    @Test("SHA-256 equals PostgreSQL's sha256 at every length around the block boundaries")
    func sha256MatchesPostgres() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        let texts = (0...140).map { String(repeating: "é", count: $0 / 2) + String(repeating: "x", count: $0 % 2) }
            + [String(repeating: "0123456789", count: 100)]
        let expected = try await pool.withConnection { c in
            try c.query("SELECT encode(sha256(convert_to(t, 'UTF8')), 'hex') FROM unnest(\(texts)::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n")
                .rows.map { try $0.decode(0, as: String.self) }
        }
        #expect(texts.map { Hex.string(SHA256.digest(Array($0.utf8))) } == expected)
        #expect(Hex.string(SHA256.digest([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("JSONBText prints what PostgreSQL prints for jsonb, over 3,000 random documents, and declines what it cannot be sure of")
    func jsonbTextMatchesPostgres() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        var corpus = JSONCorpus(rng: SplitMix(seed: 20261130))
        let documents = (0..<3_000).map { _ in corpus.object(depth: 0) }
            + [#"{"b":1,"a":2,"cc":3,"aa":{"z":[],"y":{}}}"#, #"[]"#, #"{}"#, #""x""#, "12.50", #"{"k":"\u00e9\/\"\\"}"#,
               #"{"end":"2027-01-31","start":"2027-01-25","person":"SURGE-0065","cluster":"SHL"}"#]
        let expected = try await pool.withConnection { c in
            try c.query("SELECT d::jsonb::text FROM unnest(\(documents)::text[]) WITH ORDINALITY AS u(d, n) ORDER BY n")
                .rows.map { try $0.decode(0, as: String.self) }
        }
        var rendered = 0
        for (document, printed) in zip(documents, expected) {
            guard let mine = JSONBText.render(document) else { continue }
            rendered += 1
            #expect(mine == printed, "\(document)")
        }
        // Keys with escapes are declined; everything else in the corpus is rendered.
        #expect(rendered > 2_000)
        for unsure in [#"{"a":1,"a":2}"#, #"{"n":1e3}"#, #"{"n":-0}"#, #"{"n":-0.0}"#, #"{"s":"\u0000"}"#, #"{"k\n":1}"#, #"{"a":1"#, "01"] {
            #expect(JSONBText.render(unsure) == nil, "\(unsure)")
        }
    }

    @Test("event metadata renders as PostgreSQL prints it")
    func metadataMatchesPostgres() async throws {
        let pool = try await TestDatabase.makePool()
        defer { pool.close() }
        let all = [EventMetadata(actor: "officer \"1\"\n", correlationID: "c-1", causationID: "ca", source: "import",
                                 idempotencyKey: "k\\é😀", requestHash: "abc", schemaVersion: 2),
                   EventMetadata(), EventMetadata(actor: "a", schemaVersion: 3), EventMetadata(source: "api", idempotencyKey: "x")]
        let expected = try await pool.withConnection { c in
            try c.query("SELECT d::jsonb::text FROM unnest(\(all.map(\.json))::text[]) WITH ORDINALITY AS u(d, n) ORDER BY n")
                .rows.map { try $0.decode(0, as: String.self) }
        }
        for (m, printed) in zip(all, expected) {
            var out: [UInt8] = []
            m.appendJSONB(to: &out)
            #expect(String(decoding: out, as: UTF8.self) == printed)
        }
    }

    static func event(_ n: Int, data: String? = nil) -> EventData {
        EventData(type: n % 2 == 0 ? "bench.even" : "bench.odd", data: JSONText(data ?? #"{"n":\#(n),"note":"line\n\#(n)","b":[1,{"z":2,"a":"é"}]}"#),
                  metadata: EventMetadata(actor: "test", correlationID: "c-\(n)"))
    }

    @Test("batches chained in Swift from a predicted head, a wrong prediction, and a tampered chain all leave a sound log")
    func predictedChain() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append([Self.event(0)], to: "c-1", expected: .noStream)
        let head = try await store.chainHead()
        #expect(head.position == 1)

        // Two batches prepared back to back, the second predicted from the first's end.
        let first = try EventStore.prepareStaged([StreamAppend(stream: "c-1", expected: .exact(1), events: (1...50).map { Self.event($0) }),
                                                  StreamAppend(stream: "c-2", expected: .noStream, events: [Self.event(51)])], after: head)
        #expect(first.hashInputs != nil && first.end?.position == 52)
        let second = try EventStore.prepareStaged([StreamAppend(stream: "c-2", expected: .exact(1), events: [Self.event(52)])], after: first.end)
        #expect(try await store.appendStaged(first).outcome == .appended(first: 2, last: 52))
        let written = try await store.appendStaged(second)
        #expect(written.outcome == .appended(first: 53, last: 53))
        #expect(written.end == second.end)

        // Another writer appends between preparing and writing: the chain is computed again from the real head.
        let third = try EventStore.prepareStaged([StreamAppend(stream: "c-3", expected: .noStream, events: [Self.event(53), Self.event(54)])],
                                                 after: written.end)
        try await store.append([Self.event(55)], to: "c-2", expected: .exact(2))
        #expect(try await store.appendStaged(third).outcome == .appended(first: 55, last: 56))

        // A chain that disagrees with PostgreSQL's (here: tampered input) is refused and written the v3 way.
        var tampered = try EventStore.prepareStaged([StreamAppend(stream: "c-4", expected: .noStream, events: [Self.event(56)])],
                                                    after: try await store.chainHead())
        var input = tampered.hashInputs!
        input[input.count - 2] ^= 1  // a digit of the occurred time
        tampered = PreparedStagedAppend(bodies: tampered.bodies, bodyEnds: tampered.bodyEnds, hashInputs: input,
                                        hashInputEnds: tampered.hashInputEnds, checks: tampered.checks, streams: tampered.streams, ids: tampered.ids)
        #expect(try await store.appendStaged(tampered) == (.appended(first: 57, last: 57), nil))

        // JSON the renderer declines (an exponent): PostgreSQL chains it.
        let declined = try EventStore.prepareStaged([StreamAppend(stream: "c-5", expected: .noStream,
                                                                  events: [Self.event(57, data: #"{"x":1e3,"y":"z"}"#)])], after: nil)
        #expect(declined.hashInputs == nil)
        #expect(try await store.appendStaged(declined).outcome == .appended(first: 58, last: 58))

        #expect(try await store.verify().isSound)
        #expect(try await store.version(of: "c-1") == 51)
        #expect(try await store.version(of: "c-2") == 3)
        #expect(try await store.read(stream: "c-3").map(\.position) == [55, 56])
    }
}

private func == (a: (outcome: StagedAppendOutcome, end: ChainHead?), b: (StagedAppendOutcome, ChainHead?)) -> Bool {
    a.outcome == b.0 && a.end == b.1
}
