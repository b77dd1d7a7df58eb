import Coordination
import Events
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import coordd

/// Who may see personal data, and for how long a token works (API.md v1.1 "Scopes and personal data"; docs/PRIVACY.md).
@Suite("Personal data and token expiry")
struct PrivacyTests {
    static let name = "Maria Dela Cruz"
    static let email = "maria.delacruz@example.org"
    static let reason = "medical leave"

    /// A daemon with one person (name, email, a leave reason) deployed to a response.
    static func seeded(logger: Logger = .silent) async throws -> TestDaemon {
        let d = try await TestDaemon(logger: logger)
        let t = d.operatorToken
        #expect(try await d.call("POST", "/v1/responses", token: t,
                                 body: #"{"id":"R1","name":"Floods","country":"PHL","hazard":"flood","severity":"orange","declared_at":"2026-11-08T06:30:00Z"}"#).status == 201)
        #expect(try await d.call("POST", "/v1/people", token: t,
                                 body: #"{"id":"P-1","name":"\#(name)","email":"\#(email)","profiles":["WASH"]}"#).status == 201)
        #expect(try await d.call("POST", "/v1/people/P-1/unavailability", token: t,
                                 body: #"{"from":"2027-01-10","to":"2027-01-20","reason":"\#(reason)"}"#).status == 200)
        #expect(try await d.call("POST", "/v1/deployments", token: t,
                                 body: #"{"id":"D-1","person":"P-1","response":"R1","profile":"WASH","start":"2026-12-05","end":"2026-12-30"}"#).status == 201)
        try await d.settle()
        return d
    }

    static func hasPersonalData(_ text: String) -> Bool { text.contains(name) || text.contains(email) || text.contains(reason) }

    @Test("a viewer (and an operator without personal-data access) sees person ids only: lists, exports, the person, the log, a stream, the feed, answers")
    func viewerSeesIDs() async throws {
        let d = try await Self.seeded()
        defer { Task { await d.stop() } }
        let plainOperator = try await TokenStore(pool: d.store.pool).create(subject: "partner", role: .operator).token
        for token in [d.viewer, plainOperator] {
            for path in ["/v1/deployments?format=csv", "/v1/deployments?format=hxl", "/v1/deployments", "/v1/people", "/v1/people?format=csv",
                         "/v1/people/P-1", "/v1/events", "/v1/events?format=csv", "/v1/streams/person-P-1"] {
                let r = try await d.call("GET", path, token: token)
                #expect(r.status == 200, "\(path): \(r.status)")
                #expect(!Self.hasPersonalData(r.body), "\(path) shows personal data: \(r.body.prefix(400))")
                #expect(r.body.contains("P-1"), "\(path) shows the person id")
            }
            #expect(!Self.hasPersonalData(try await d.call("GET", "/v1/responses/R1/timeline", token: token).body))
            // A search cannot probe names.
            let search = try await d.call("GET", "/v1/people?q=maria", token: token)
            #expect((search.json["items"] as? [Any])?.isEmpty == true)
            #expect((try await d.call("GET", "/v1/people?q=p-1", token: token).json["items"] as? [Any])?.count == 1)
            // The live feed, from the start of the log.
            let port = d.port
            let feed = try await offPool { () -> String in
                let c = try HTTPClient(port: port)
                c.send("GET /v1/events/live?after=0 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
                return c.read(until: "deployment.requested")
            }
            #expect(feed.contains("person.registered") && feed.contains("person.unavailability_added"))
            #expect(!Self.hasPersonalData(feed), "the feed shows personal data")
        }
        // An operator without the access registers someone: its answer does not echo the name.
        let answer = try await d.call("POST", "/v1/people", token: plainOperator, body: #"{"id":"P-2","name":"\#(Self.name)","profiles":["IM"]}"#)
        #expect(answer.status == 201 && !Self.hasPersonalData(answer.body) && answer.body.contains("\"name\":null"))
        // Nothing was recorded as a read of personal data.
        let reads: Int = try await d.store.pool.withConnection { c in try c.query("SELECT count(*)::int FROM personal_data_reads").decode(0, 0) }
        #expect(reads == 0)
    }

    @Test("with personal-data access the names are there, and every read is recorded: who, which people, which route; the record holds no name")
    func readsAreRecorded() async throws {
        let lines = Mutex<[String]>([])
        let d = try await Self.seeded(logger: Logger(label: "coordd", level: .debug) { line in lines.withLock { $0.append(line) } })
        defer { Task { await d.stop() } }
        // A refusal about the person names ids only.
        let overlap = try await d.call("POST", "/v1/deployments", token: d.operatorToken,
                                       body: #"{"id":"D-2","person":"P-1","response":"R1","profile":"WASH","start":"2026-12-10","end":"2026-12-20"}"#)
        #expect(overlap.status == 409 && overlap.body.contains("D-1") && !Self.hasPersonalData(overlap.body))
        for path in ["/v1/people", "/v1/people/P-1", "/v1/deployments?format=csv", "/v1/events", "/v1/streams/person-P-1"] {
            let r = try await d.call("GET", path, token: d.admin)
            #expect(r.status == 200 && r.body.contains(Self.name), "\(path)")
        }
        #expect((try await d.call("GET", "/v1/people?q=maria", token: d.admin).json["items"] as? [Any])?.count == 1)
        let rows = try await d.store.pool.withConnection { c in
            try c.query("SELECT subject, route, people::text, request_id FROM personal_data_reads ORDER BY id").rows.map {
                [try $0.decode(0, as: String.self), try $0.decode(1, as: String.self), try $0.decode(2, as: String.self), try $0.decode(3, as: String.self)]
            }
        }
        #expect(rows.count == 6, "\(rows)")
        #expect(rows.allSatisfy { $0[0] == "admin-1" && $0[2] == "{P-1}" && !$0[3].isEmpty })
        #expect(Set(rows.map { $0[1] }) == ["GET /v1/people", "GET /v1/people/:id", "GET /v1/deployments", "GET /v1/events", "GET /v1/streams/:stream"])
        let leaked: Int = try await d.store.pool.withConnection { c in
            try c.query("SELECT count(*)::int FROM personal_data_reads r WHERE r::text LIKE '%' || \(Self.name) || '%'").decode(0, 0)
        }
        #expect(leaked == 0)
        let logged = lines.withLock { $0 }
        #expect(logged.count > 10, "requests were logged")
        #expect(!logged.contains(where: Self.hasPersonalData), "no log line holds a name, an email or a reason")
    }

    @Test("caught-up feeds are sent new events by the shared tail reader: a viewer's feed shows a new person's id only, one with personal-data access shows the name and records the read")
    func attachedFeeds() async throws {
        let d = try await Self.seeded()
        defer { Task { await d.stop() } }
        let port = d.port, head = try await d.store.headPosition()
        let readsBefore: Int = try await d.store.pool.withConnection { c in try c.query("SELECT count(*)::int FROM personal_data_reads").decode(0, 0) }
        var feeds: [SendableClient] = []
        for token in [d.viewer, d.admin] {
            feeds.append(try await offPool { () -> SendableClient in
                let c = try RawClient(port: port)
                c.send("GET /v1/events/live?after=\(head) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
                _ = c.read(until: "retry:")
                return SendableClient(c)
            })
        }
        let fanout = d.app.fanout
        for _ in 0..<500 where fanout.attachedCount < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(fanout.attachedCount == 2, "both feeds wait on the reader")
        #expect(try await d.call("POST", "/v1/people", token: d.operatorToken, body: #"{"id":"P-2","name":"\#(Self.name)","email":"\#(Self.email)","profiles":["IM"]}"#).status == 201)
        #expect(try await d.call("POST", "/v1/responses", token: d.operatorToken,
                                 body: #"{"id":"R2","name":"Quake","country":"PHL","hazard":"earthquake","severity":"red","declared_at":"2026-11-20T01:00:00Z"}"#).status == 201)
        let opened = feeds
        let texts = try await offPool { opened.map { $0.value.read(until: "response.declared", deadline: Date().addingTimeInterval(10)) } }
        for text in texts {
            let events = text.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") }
            #expect(events == ["event: person.registered", "event: response.declared"], "\(events)")
        }
        #expect(texts[0].contains("P-2") && !Self.hasPersonalData(texts[0]), "the viewer's feed shows no name: \(texts[0])")
        #expect(texts[1].contains(Self.name) && texts[1].contains(Self.email))
        // The feed that showed a name recorded it (its own task, after sending), and went back to the reader.
        var rows: [[String]] = []
        for _ in 0..<500 {
            rows = try await d.store.pool.withConnection { c in
                try c.query("SELECT route, people::text FROM personal_data_reads ORDER BY id OFFSET \(readsBefore)").rows.map { [try $0.decode(0), try $0.decode(1)] }
            }
            if !rows.isEmpty, fanout.attachedCount == 2 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(rows == [["GET /v1/events/live", "{P-2}"]])
        #expect(fanout.attachedCount == 2)
    }

    @Test("an expired token is refused, and so is the console session it opened; a viewer never gets personal-data access")
    func expiry() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        try await d.settle()
        let tokens = TokenStore(pool: d.store.pool, cacheSeconds: 60)
        // A check that ends before the token lapses must pass; one that ends after it may be refused either way (a
        // loaded machine can take that long), so only the former is judged. The wait after them is until it lapsed.
        let lapses = Date().addingTimeInterval(20)
        let (_, short) = try await tokens.create(subject: "visiting-team", role: .operator, expiresIn: 20)
        let app = d.app
        let session = try await app.sessions.open(token: short)
        if Date() < lapses { #expect(session != nil) }
        let before = try await d.call("GET", "/v1/stock", token: short).status
        if Date() < lapses { #expect(before == 200) }
        let cached = try await tokens.authenticate(short)
        if Date() < lapses { #expect(cached != nil) }
        while Date() < lapses.addingTimeInterval(0.5) { try await Task.sleep(nanoseconds: 100_000_000) }
        #expect(try await d.call("GET", "/v1/stock", token: short).status == 401)
        #expect(try await tokens.authenticate(short) == nil, "not even from the cache")
        if let (cookie, _) = session {
            #expect(try await d.call("GET", "/v1/stock", headers: ["Cookie": "coord_session=\(cookie)"]).status == 401)
        }
        await #expect(throws: DomainError.self) { _ = try await tokens.create(subject: "donor", role: .viewer, personalData: true) }
        #expect(TokenStore.duration("90s") == 90 && TokenStore.duration("12h") == 43_200 && TokenStore.duration("30d") == 2_592_000)
        for bad in ["", "10", "h", "-5m", "5w", "1.5h", "99999d"] { #expect(TokenStore.duration(bad) == nil, "\(bad)") }
    }

    /// Rows of every table of the schema whose text holds `value` (each table read whole, as a row's text).
    static func tablesHolding(_ value: String, _ pool: PostgresPool) async throws -> [String] {
        try await pool.withConnection { c in
            try c.query("""
                SELECT t.table_name FROM information_schema.tables t
                WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                  AND (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I r WHERE r::text LIKE %L',
                                                                  t.table_schema, t.table_name, '%' || \(value) || '%'), false, true, '')))[1]::text::int > 0
                ORDER BY 1
                """).rows.map { try $0.decode(0) }
        }
    }

    @Test("erasure: afterwards no table, answer, export, replay or read model holds the name, email or reason; the erasure is in the log; the chain verifies")
    func erasure() async throws {
        let d = try await Self.seeded()
        defer { Task { await d.stop() } }
        let t = d.admin
        // A correction quoting the name, and a retried registration: the receipt keeps the answer with the name.
        #expect(try await d.call("POST", "/v1/people/P-1/amend", token: t, body: #"{"email":"m.dc@example.org","reason":"was \#(Self.name)'s old address"}"#).status == 200)
        let body = #"{"id":"P-3","name":"Other Person","profiles":["IM"]}"#
        #expect(try await d.call("POST", "/v1/people", token: t, body: body, headers: ["Idempotency-Key": "reg-p3"]).status == 201)
        #expect(try await d.call("POST", "/v1/people/P-1/unavailability", token: t, body: #"{"from":"2027-03-01","to":"2027-03-05","reason":"family matter"}"#,
                                 headers: ["Idempotency-Key": "leave-2"]).status == 200)
        try await d.settle()
        #expect(try await Self.tablesHolding(Self.name, d.store.pool).contains("events"))
        #expect(try await Self.tablesHolding("family matter", d.store.pool).contains("command_receipts"))
        let head: Int64 = try await d.store.pool.withConnection { c in try c.query("SELECT position FROM event_head").decode(0, 0) }

        let outcome = try await Erasure.erase(person: "P-1", reason: "request DPO-2026-17", actor: "dpo-bangkok", store: d.store)
        #expect(outcome.redacted == 4 && outcome.position == head + 1 && !outcome.already, "\(outcome)")
        try await d.settle()
        for value in [Self.name, Self.email, Self.reason, "m.dc@example.org", "family matter"] {
            let holding = try await Self.tablesHolding(value, d.store.pool)
            #expect(holding.isEmpty, "\(value) is still in \(holding)")
        }
        let leaked: Int = try await d.store.pool.withConnection { c in
            try c.query("SELECT count(*)::int FROM events WHERE data::text LIKE '%' || \(Self.name) || '%'").decode(0, 0)
        }
        #expect(leaked == 0)
        // Another person's data is untouched.
        #expect(try await Self.tablesHolding("Other Person", d.store.pool).contains("events"))
        // The chain verifies over the whole log; the anchors' head is unchanged but for the erasure itself.
        let report = try await d.store.verify()
        #expect(report.isSound && report.checked == head + 1, "\(report)")
        #expect(try await d.store.verifyState().isEmpty)
        // The erasure is recorded: who, when, why, without the data.
        let recorded = try await d.call("GET", "/v1/streams/person-P-1", token: t)
        #expect(recorded.body.contains("person.erased") && recorded.body.contains("request DPO-2026-17") && recorded.body.contains("dpo-bangkok"))
        // Every answer, export and replay, to a token with personal-data access: [erased] where the data was.
        for path in ["/v1/people/P-1", "/v1/people?format=csv", "/v1/deployments?format=csv", "/v1/events?format=csv", "/v1/streams/person-P-1",
                     "/v1/responses/R1/timeline", "/v1/responses/R1/review?format=md", "/v1/responses/R1/state"] {
            let r = try await d.call("GET", path, token: t)
            #expect(r.status == 200 && !Self.hasPersonalData(r.body) && !r.body.contains("family matter"), "\(path): \(r.body.prefix(300))")
        }
        #expect(try await d.call("GET", "/v1/people/P-1", token: t).body.contains("\"name\":\"[erased]\""))
        // The retried command answers from its receipt, without the data.
        let retry = try await d.call("POST", "/v1/people/P-1/unavailability", token: t, body: #"{"from":"2027-03-01","to":"2027-03-05","reason":"family matter"}"#,
                                     headers: ["Idempotency-Key": "leave-2"])
        #expect(!retry.body.contains("family matter") && !Self.hasPersonalData(retry.body), "\(retry.body)")
        // The record takes no new personal data; the person can still be deployed by id.
        #expect(try await d.call("POST", "/v1/people/P-1/amend", token: t, body: #"{"name":"\#(Self.name)"}"#).status == 409)
        // A rebuild from the redacted log gives the same roster; running the erasure again changes nothing.
        #expect(try await d.call("POST", "/v1/projections/surge/rebuild", token: t).status == 202)
        try await Task.sleep(nanoseconds: 500_000_000)
        try await d.settle()
        #expect(try await Self.tablesHolding(Self.name, d.store.pool).isEmpty)
        let again = try await Erasure.erase(person: "P-1", reason: "again", actor: "dpo-bangkok", store: d.store)
        #expect(again.already && again.redacted == 0)
        #expect(try await d.store.verify().isSound)
        // The log's own guard: an event's data cannot be changed but through a listed redaction.
        await #expect(throws: (any Error).self) {
            try await d.store.pool.withConnection { c in try c.query("UPDATE events SET data = '{}' WHERE position = 1") }
        }
        await #expect(throws: (any Error).self) {
            try await d.store.pool.withConnection { c in try c.query("SELECT coord_redact(1, '{}'::jsonb, \(outcome.position))") }
        }
    }
}
