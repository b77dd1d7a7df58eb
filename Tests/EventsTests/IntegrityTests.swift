import Foundation
import Testing
@testable import Events
import TestSupport

@Suite("Integrity beyond the chain")
struct IntegrityTests {
    @Test("HMAC-SHA256 matches RFC 4231's test vectors")
    func hmac() {
        // Test case 2: key "Jefe", data "what do ya want for nothing?".
        #expect(Hex.string(HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a 131-byte key (longer than a block), hashed first.
        let key = [UInt8](repeating: 0xaa, count: 131)
        #expect(Hex.string(HMAC.sha256(key: key, message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("verify finds a stream row, a head or a checkpoint that disagrees with the events, which the chain does not cover")
    func stateChecks() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(5), to: "s-1")
        try await store.append(sampleEvents(2), to: "s-2")
        #expect(try await store.verifyState().isEmpty)
        let c = try TestDatabase.connection(like: store.pool)
        defer { c.close() }
        try c.execute(unsafe: "UPDATE streams SET version = 3 WHERE stream = 's-1'")
        try c.execute(unsafe: "INSERT INTO projection_checkpoints (name, version, position) VALUES ('stock', 1, 99)")
        let problems = try await store.verifyState()
        #expect(problems.contains { $0.problem == "stream row does not match its events" && $0.subject == "s-1" })
        #expect(problems.contains { $0.problem == "projection checkpoint is past the head" && $0.subject == "stock" })
        #expect(!problems.contains { $0.subject == "s-2" })
    }

    @Test("anchors kept outside the database catch what a superuser can do inside it: a recomputed chain, a cut tail, a forged anchor")
    func anchors() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(10), to: "a-1")
        let key = Array("a key the database never sees".utf8)
        let early = try await store.anchor(key: key)
        try await store.append(sampleEvents(5), to: "a-1")
        let late = try await store.anchor(key: key)
        #expect(try await store.check(anchors: [early, late], key: key).isEmpty)
        #expect(ChainAnchor(line: "2026-12-01T09:00:00Z notice coordd: chain anchor " + late.line) == late, "read back from a log line")

        // A superuser edits event 4 and recomputes the chain from there, head included: the chain verifies...
        let c = try TestDatabase.connection(like: store.pool)
        defer { c.close() }
        try c.execute(unsafe: "SET session_replication_role = replica")
        try c.execute(unsafe: #"UPDATE events SET data = '{"n": 4000}' WHERE position = 4"#)
        try c.execute(unsafe: """
            DO $$ DECLARE r record; prev bytea;
            BEGIN
                SELECT hash INTO prev FROM events WHERE position = 3;
                FOR r IN SELECT * FROM events WHERE position >= 4 ORDER BY position LOOP
                    prev := coord_event_hash(prev, r.position, r.stream, r.version, r.id, r.type, r.data, r.metadata, r.occurred_at, r.recorded_at);
                    UPDATE events SET hash = prev WHERE position = r.position;
                END LOOP;
                UPDATE event_head SET hash = prev;
            END $$
            """)
        #expect(try await store.verify().isSound, "the chain alone cannot tell")
        // ... but both anchored heads now have other hashes.
        let rewritten = try await store.check(anchors: [early, late], key: key)
        #expect(rewritten.count == 2 && rewritten.allSatisfy { $0.problem.contains("another hash") })

        // The tail cut and the head moved back: the later anchor's position is gone.
        let fresh = try await TestDatabase.makeStore()
        defer { fresh.close() }
        try await fresh.append(sampleEvents(8), to: "b-1")
        let anchor = try await fresh.anchor()
        let d = try TestDatabase.connection(like: fresh.pool)
        defer { d.close() }
        try d.execute(unsafe: "SET session_replication_role = replica")
        try d.execute(unsafe: "DELETE FROM events WHERE position > 5")
        try d.execute(unsafe: "UPDATE event_head SET position = 5, hash = (SELECT hash FROM events WHERE position = 5)")
        try d.execute(unsafe: "UPDATE streams SET version = 5, last_position = 5")
        let cutChain = try await fresh.verify(), cutState = try await fresh.verifyState()
        #expect(cutChain.isSound && cutState.isEmpty, "consistent after the cut")
        #expect(try await fresh.check(anchors: [anchor], key: nil).first?.problem.contains("no longer in the log") == true)

        // An anchor changed by hand no longer carries a MAC its key gives.
        var forged = late
        forged = ChainAnchor(position: forged.position, hash: String(repeating: "0", count: 64), recordedAt: forged.recordedAt, mac: forged.mac)
        #expect(!forged.isSigned(by: key) && late.isSigned(by: key))
    }
}
