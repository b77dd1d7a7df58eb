import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

/// Scoped tokens (API.md v1.1 "Scopes and personal data"; docs/PRIVACY.md): writes outside the scope are refused
/// with 403 `out-of-scope` and write nothing; reads outside it are filtered out, in lists, exports, resources,
/// replay, streams, the log and the live feed.
@Suite("Scoped tokens")
struct ScopeTests {
    /// Two countries: Manila (PHL) with a typhoon response, Kathmandu (NPL) with an earthquake response; stock,
    /// tasks and deployments in both, and a transfer from Manila to Kathmandu.
    static func seeded() async throws -> TestDaemon {
        let d = try await TestDaemon()
        let t = d.admin
        for (path, body) in [
            ("/v1/warehouses", #"{"code":"MNL","name":"Manila hub","country":"PHL","kind":"global_hub"}"#),
            ("/v1/warehouses", #"{"code":"KTM","name":"Kathmandu","country":"NPL","kind":"national"}"#),
            ("/v1/items", #"{"code":"TARP","name":"Tarpaulin","unit":"piece"}"#),
            ("/v1/responses", #"{"id":"PHL-TC","name":"Typhoon","country":"PHL","hazard":"typhoon","severity":"orange","declared_at":"2026-11-08T06:30:00Z"}"#),
            ("/v1/responses", #"{"id":"NPL-EQ","name":"Earthquake","country":"NPL","hazard":"earthquake","severity":"red","declared_at":"2026-11-09T06:30:00Z"}"#),
            ("/v1/people", #"{"id":"P-1","name":"Ana","profiles":["WASH"]}"#),
            ("/v1/people", #"{"id":"P-2","name":"Bikash","profiles":["WASH"]}"#),
        ] {
            let r = try await d.call("POST", path, token: t, body: body)
            #expect(r.status == 201, "\(path) \(body): \(r.body)")
        }
        for (path, body) in [
            ("/v1/stock/receipts", #"{"warehouse":"MNL","item":"TARP","quantity":500,"source":"procurement"}"#),
            ("/v1/stock/receipts", #"{"warehouse":"KTM","item":"TARP","quantity":300,"source":"procurement"}"#),
            ("/v1/tasks", #"{"id":"T-PHL","response":"PHL-TC","cluster":"WSH","title":"Latrines","priority":"high"}"#),
            ("/v1/tasks", #"{"id":"T-NPL","response":"NPL-EQ","cluster":"SHL","title":"Tents","priority":"high"}"#),
            ("/v1/deployments", #"{"id":"D-PHL","person":"P-1","response":"PHL-TC","profile":"WASH","start":"2026-12-05","end":"2026-12-30"}"#),
            ("/v1/deployments", #"{"id":"D-NPL","person":"P-2","response":"NPL-EQ","profile":"WASH","start":"2026-12-05","end":"2026-12-30"}"#),
            ("/v1/stock/transfers", #"{"id":"X-1","from":"MNL","to":"KTM","item":"TARP","quantity":50}"#),
        ] {
            let r = try await d.call("POST", path, token: t, body: body)
            #expect([200, 201].contains(r.status), "\(path) \(body): \(r.body)")
        }
        // Kathmandu below a minimum: an alert of its own.
        #expect(try await d.call("PUT", "/v1/warehouses/KTM/levels/TARP", token: t, body: #"{"minimum":1000,"target":2000}"#).status == 200)
        try await d.settle()
        return d
    }

    static func token(_ d: TestDaemon, _ role: Role, _ scope: Scope) async throws -> String {
        try await TokenStore(pool: d.store.pool).create(subject: "scoped-\(role.rawValue)", role: role, scope: scope).token
    }

    /// Whether a text holds anything of Nepal's: its response, task, deployment, warehouse rows or streams. (A transfer
    /// from Manila names Kathmandu as its destination: that is Manila's to see.)
    static func showsNepal(_ text: String) -> Bool {
        ["NPL-EQ", "T-NPL", "D-NPL", "Kathmandu", ",KTM,TARP,", "stock-KTM", "warehouse-KTM"].contains { text.contains($0) }
    }

    static func head(_ d: TestDaemon) async throws -> Int64 { try await d.store.pool.withConnection { c in try c.query("SELECT position FROM event_head").decode(0, 0) } }

    @Test("a PHL-scoped operator dispatches from Manila but gets 403 out-of-scope at Kathmandu, and writes nothing; a transfer needs both ends")
    func writes() async throws {
        let d = try await Self.seeded()
        defer { Task { await d.stop() } }
        let phl = try await Self.token(d, .operator, Scope(countries: ["PHL"]))
        let dispatched = try await d.call("POST", "/v1/stock/dispatches", token: phl,
                                          body: #"{"warehouse":"MNL","item":"TARP","quantity":10,"destination":"Tacloban","response":"PHL-TC"}"#)
        #expect(dispatched.status == 200, "\(dispatched.body)")
        let before = try await Self.head(d)
        let refusals: [(String, String, String)] = [
            ("POST", "/v1/stock/dispatches", #"{"warehouse":"KTM","item":"TARP","quantity":10,"destination":"Gorkha"}"#),
            ("POST", "/v1/stock/receipts", #"{"warehouse":"KTM","item":"TARP","quantity":10,"source":"donation"}"#),
            ("POST", "/v1/stock/transfers", #"{"from":"MNL","to":"KTM","item":"TARP","quantity":5}"#),
            ("POST", "/v1/stock/transfers/X-1/receive", #"{"quantity":50}"#),
            ("PUT", "/v1/warehouses/KTM/levels/TARP", #"{"minimum":1,"target":2}"#),
            ("POST", "/v1/warehouses", #"{"code":"PKR","name":"Pokhara","country":"NPL","kind":"field"}"#),
            ("POST", "/v1/warehouses/MNL/amend", #"{"country":"NPL"}"#),
            ("POST", "/v1/responses", #"{"name":"Floods","country":"NPL","hazard":"flood","severity":"orange","declared_at":"2026-11-20T06:30:00Z"}"#),
            ("POST", "/v1/responses/NPL-EQ/severity", #"{"severity":"orange"}"#),
            ("POST", "/v1/tasks", #"{"response":"NPL-EQ","cluster":"WSH","title":"Water","priority":"low"}"#),
            ("POST", "/v1/tasks/T-NPL/start", "{}"),
            ("POST", "/v1/deployments/D-NPL/confirm", "{}"),
            ("POST", "/v1/items", #"{"code":"KIT","name":"Kit","unit":"piece"}"#),
            ("POST", "/v1/people", #"{"id":"P-9","name":"Someone","profiles":["IM"]}"#),
        ]
        for (method, path, body) in refusals {
            let r = try await d.call(method, path, token: phl, body: body, headers: ["Idempotency-Key": "k-\(path)"])
            #expect(r.status == 403, "\(method) \(path): \(r.status) \(r.body)")
            #expect((r.json["type"] as? String)?.hasSuffix("out-of-scope") == true, "\(path): \(r.body)")
        }
        #expect(try await Self.head(d) == before, "nothing was written")
        // Inside the scope, the same token works; a refusal was not kept as its key's answer.
        #expect(try await d.call("POST", "/v1/tasks/T-PHL/start", token: phl, body: "{}").status == 200)
        #expect(try await d.call("POST", "/v1/warehouses", token: phl, body: #"{"code":"CEB","name":"Cebu","country":"PHL","kind":"field"}"#).status == 201)
        // A warehouse scope reaches that warehouse only; a response scope that response's tasks and deployments.
        let ktm = try await Self.token(d, .operator, Scope(warehouses: ["KTM"]))
        #expect(try await d.call("POST", "/v1/stock/dispatches", token: ktm, body: #"{"warehouse":"KTM","item":"TARP","quantity":5,"destination":"Gorkha"}"#).status == 200)
        #expect(try await d.call("POST", "/v1/stock/dispatches", token: ktm, body: #"{"warehouse":"MNL","item":"TARP","quantity":5,"destination":"Gorkha"}"#).status == 403)
        #expect(try await d.call("POST", "/v1/stock/transfers/X-1/receive", token: ktm, body: #"{"quantity":50}"#).status == 403, "the sender is not in scope")
        let both = try await Self.token(d, .operator, Scope(warehouses: ["KTM", "MNL"]))
        #expect(try await d.call("POST", "/v1/stock/transfers/X-1/receive", token: both, body: #"{"quantity":50}"#).status == 200)
        let eq = try await Self.token(d, .operator, Scope(responses: ["NPL-EQ"]))
        #expect(try await d.call("POST", "/v1/tasks/T-NPL/start", token: eq, body: "{}").status == 200)
        #expect(try await d.call("POST", "/v1/tasks/T-PHL/complete", token: eq, body: "{}").status == 403)
        // An unknown resource is still not found, not out of scope.
        #expect(try await d.call("POST", "/v1/tasks/T-NONE/start", token: phl, body: "{}").status == 404)
        // Admins are unscoped; scopes name real countries.
        await #expect(throws: DomainError.self) { _ = try await TokenStore(pool: d.store.pool).create(subject: "a", role: .admin, scope: Scope(countries: ["PHL"])) }
        await #expect(throws: DomainError.self) { _ = try await TokenStore(pool: d.store.pool).create(subject: "a", role: .viewer, scope: Scope(countries: ["XXX"])) }
    }

    @Test("a PHL-scoped viewer reads Manila and the typhoon only: lists, CSV and HXL exports, resources, replay, the log, streams, alerts and the feed")
    func reads() async throws {
        let d = try await Self.seeded()
        defer { Task { await d.stop() } }
        let phl = try await Self.token(d, .viewer, Scope(countries: ["PHL"]))
        func ids(_ path: String, _ key: String) async throws -> Set<String> {
            let r = try await d.call("GET", path, token: phl)
            #expect(r.status == 200, "\(path): \(r.status) \(r.body)")
            return Set(((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0[key] as? String })
        }
        #expect(try await ids("/v1/warehouses", "code") == ["MNL"])
        #expect(try await ids("/v1/stock", "warehouse") == ["MNL"])
        #expect(try await ids("/v1/stock/ledger", "warehouse") == ["MNL"])
        #expect(try await ids("/v1/responses", "id") == ["PHL-TC"])
        #expect(try await ids("/v1/tasks", "id") == ["T-PHL"])
        #expect(try await ids("/v1/deployments", "id") == ["D-PHL"])
        #expect(try await ids("/v1/stock/transfers", "id") == ["X-1"], "a transfer shows at either end")
        #expect(try await ids("/v1/items", "code") == ["TARP"], "the catalogue is the region's")
        #expect(try await ids("/v1/people", "id") == ["P-1", "P-2"], "the roster is the region's")
        // The unscoped admin sees Kathmandu's alert; the PHL viewer does not.
        #expect(!(try await ids("/v1/alerts?status=all", "subject")).contains("KTM:TARP"))
        #expect(try await d.call("GET", "/v1/alerts?status=all", token: d.admin).body.contains("KTM:TARP"))
        for path in ["/v1/stock?format=csv", "/v1/stock?format=hxl", "/v1/tasks?format=csv", "/v1/deployments?format=csv", "/v1/responses?format=hxl",
                     "/v1/stock/ledger?format=csv", "/v1/warehouses?format=csv", "/v1/events?format=csv"] {
            let r = try await d.call("GET", path, token: phl)
            #expect(r.status == 200 && r.body.contains("MNL") || r.body.contains("PHL"), "\(path): \(r.body.prefix(300))")
            #expect(!Self.showsNepal(r.body), "\(path) shows Nepal: \(r.body.prefix(600))")
        }
        for path in ["/v1/warehouses/KTM", "/v1/tasks/T-NPL", "/v1/deployments/D-NPL", "/v1/responses/NPL-EQ", "/v1/responses/NPL-EQ/timeline",
                     "/v1/responses/NPL-EQ/state", "/v1/responses/NPL-EQ/review", "/v1/streams/warehouse-KTM", "/v1/streams/stock-KTM:TARP",
                     "/v1/streams/task-T-NPL"] {
            #expect(try await d.call("GET", path, token: phl).status == 404, "\(path)")
        }
        for path in ["/v1/warehouses/MNL", "/v1/tasks/T-PHL", "/v1/deployments/D-PHL", "/v1/responses/PHL-TC", "/v1/responses/PHL-TC/timeline",
                     "/v1/stock/transfers/X-1", "/v1/streams/task-T-PHL", "/v1/streams/transfer-X-1"] {
            #expect(try await d.call("GET", path, token: phl).status == 200, "\(path)")
        }
        // The state as of now shows the stock the scope reaches; the unscoped admin's shows Kathmandu's too.
        let state = try await d.call("GET", "/v1/responses/PHL-TC/state", token: phl)
        #expect(state.body.contains("MNL") && !state.body.contains("\"KTM\""), "\(state.body.prefix(400))")
        #expect(try await d.call("GET", "/v1/responses/PHL-TC/state", token: d.admin).body.contains("\"KTM\""))
        // The person's record lists the deployments the scope reaches.
        let person = try await d.call("GET", "/v1/people/P-2", token: phl)
        #expect(person.status == 200 && !person.body.contains("D-NPL"), "\(person.body)")
        // The log: Nepal's streams are not in it, pages stay full, and paging reaches the end.
        var streams = Set<String>()
        var after = 0
        while true {
            let page = try await d.call("GET", "/v1/events?limit=3&after=\(after)", token: phl)
            let events = (page.json["events"] as? [[String: Any]]) ?? []
            streams.formUnion(events.compactMap { $0["stream"] as? String })
            guard let next = page.json["next"] as? Int else { break }
            #expect(events.count == 3)
            after = next
        }
        #expect(streams.contains("warehouse-MNL") && streams.contains("task-T-PHL") && streams.contains("deployment-D-PHL") && streams.contains("transfer-X-1"))
        #expect(!streams.contains { $0.contains("KTM") || $0.contains("NPL") }, "\(streams)")
        #expect(streams.contains("person-P-2"), "the roster's events are the region's")
        // The feed, from the start of the log, then live: a new Nepal task is not shown, a Manila receipt is.
        let port = d.port
        let feed = Task {
            try await offPool { () -> String in
                let c = try HTTPClient(port: port, receiveTimeout: 60)
                c.send("GET /v1/events/live?after=0 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(phl)\r\n\r\n")
                return c.read(until: "\"quantity\": 77", deadline: Date().addingTimeInterval(40))
            }
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try await d.call("POST", "/v1/tasks", token: d.admin, body: #"{"id":"T-NPL-2","response":"NPL-EQ","cluster":"WSH","title":"Water","priority":"low"}"#).status == 201)
        #expect(try await d.call("POST", "/v1/stock/receipts", token: d.admin, body: #"{"warehouse":"KTM","item":"TARP","quantity":66,"source":"donation"}"#).status == 200)
        #expect(try await d.call("POST", "/v1/stock/receipts", token: d.admin, body: #"{"warehouse":"MNL","item":"TARP","quantity":77,"source":"donation"}"#).status == 200)
        let text = try await feed.value
        #expect(text.contains("task-T-PHL") && text.contains("\"quantity\": 77"), "\(text.suffix(1500))")
        #expect(!Self.showsNepal(text) && !text.contains("\"quantity\": 66"), "the feed shows Nepal")
    }
}
