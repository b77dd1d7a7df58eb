import Foundation
import Testing
@testable import Events
import TestSupport

@Suite("Immutability and verification")
struct ImmutabilityTests {
    @Test("UPDATE, DELETE and TRUNCATE on the log are refused, and change nothing")
    func refused() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(3), to: "imm")
        let connection = try TestDatabase.connection(like: store.pool)
        defer { connection.close() }
        for statement in ["UPDATE events SET data = '{\"n\":42}' WHERE position = 2",
                          "DELETE FROM events WHERE position = 3",
                          "TRUNCATE events",
                          "UPDATE event_head SET position = 0",
                          "DELETE FROM event_head"] {
            #expect(throws: PostgresError.self, "\(statement)") { try connection.execute(unsafe: statement) }
            do { try connection.execute(unsafe: statement) } catch let error as PostgresError {
                #expect(error.sqlState == "42501", "\(statement)")
            }
        }
        #expect(try await store.read(after: 0).count == 3)
        #expect(try await store.verify().isSound)
    }

    @Test("verify finds the first tampered position after a superuser edits a row")
    func tamperedData() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(10), to: "tamper")
        #expect(try await store.verify() == EventStore.VerifyReport(checked: 10, verifiedThrough: 10, brokenAt: nil, problem: nil))
        let connection = try TestDatabase.connection(like: store.pool)
        defer { connection.close() }
        // A superuser can bypass the triggers only deliberately: exactly what verify exists to catch.
        try connection.execute(unsafe: "SET session_replication_role = replica")
        try connection.execute(unsafe: #"UPDATE events SET data = '{"n": 1000}' WHERE position = 6"#)
        let report = try await store.verify()
        #expect(report.brokenAt == 6)
        #expect(report.verifiedThrough == 5)
        #expect(report.problem == "hash mismatch")
        // Verifying from a later position does not see the earlier break.
        #expect(try await store.verify(from: 7).isSound)
    }

    @Test("verify finds a deleted event, a deleted tail and a version gap")
    func deletions() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(6), to: "del")
        let connection = try TestDatabase.connection(like: store.pool)
        defer { connection.close() }
        try connection.execute(unsafe: "SET session_replication_role = replica")
        try connection.execute(unsafe: "DELETE FROM events WHERE position = 6")
        var report = try await store.verify()
        #expect(report.brokenAt == 6)
        #expect(report.problem == "head does not match the last event")
        try connection.execute(unsafe: "DELETE FROM events WHERE position = 3")
        report = try await store.verify()
        #expect(report.brokenAt == 3)
        #expect(report.problem == "event missing")
    }

    @Test("verify works across batch boundaries")
    func batches() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        for _ in 0..<5 { try await store.append(sampleEvents(50), to: "b") }
        let seen = LockedArray()
        let report = try await store.verify(batch: 60) { seen.append($0) }
        #expect(report.isSound)
        #expect(report.checked == 250)
        #expect(seen.values == [60, 120, 180, 240, 250])
    }
}

final class LockedArray: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int64] = []
    func append(_ v: Int64) { lock.lock(); storage.append(v); lock.unlock() }
    var values: [Int64] { lock.lock(); defer { lock.unlock() }; return storage }
}
