import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

/// Lists, exports and queries as partners and coordinators use them: complete CSV and HXL (checked by libhxl),
/// every filter on every format, unknown parameters refused, one shape per resource.
@Suite("Lists and exports")
struct ListTests {
    /// A daemon with the demo scenario loaded and its read models built.
    func demo() async throws -> TestDaemon {
        let d = try await TestDaemon()
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        return d
    }

    @Test("an unknown query parameter is a 400 naming it; unreadable ones too; a bad value is a 422")
    func unknownParameters() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let typo = try await d.call("GET", "/v1/stock?stauts=below_minimum", token: d.viewer)
        #expect(typo.status == 400)
        #expect((typo.json["type"] as? String)?.hasSuffix("unknown-parameter") == true)
        #expect((typo.json["errors"] as? [[String: Any]])?.first?["field"] as? String == "stauts")
        #expect(try await d.call("GET", "/v1/stock?warehouse=%ff", token: d.viewer).status == 400, "an escape that is not UTF-8 drops no filter silently")
        #expect(try await d.call("GET", "/v1/stock?warehouse=a%00b", token: d.viewer).status == 400)
        #expect(try await d.call("GET", "/v1/stock?status=ok&status=no_levels", token: d.viewer).status == 400)
        #expect(try await d.call("GET", "/v1/tasks?overdue=yes", token: d.viewer).status == 422)
        #expect(try await d.call("GET", "/v1/deployments?active_on=0000-01-01", token: d.viewer).status == 422)
        #expect(try await d.call("GET", "/v1/deployments?ending_within_days=%2B3", token: d.viewer).status == 422)
        #expect(try await d.call("GET", "/v1/events?limit=1e1", token: d.viewer).status == 422)
        #expect(try await d.call("POST", "/v1/stock/receipts?x=1", token: d.operatorToken, body: "{}").status == 400)
        #expect(try await d.call("GET", "/healthz?verbose=1").status == 400)
    }

    @Test("Coord-Min-Position: a read answers once the read models reflect that write; a position not reached is a 503 with Retry-After after two seconds; a malformed one a 400 that changes nothing")
    func minPosition() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let ctx = CommandContext(actor: "setup", source: "test")
        _ = try await d.service.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "global_hub"), ctx)
        _ = try await d.service.execute(RegisterItem(code: "KIT", name: "Hygiene kit", unit: "kit"), ctx)
        for i in 1...20 {
            let w = try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                     body: #"{"warehouse":"MNL","item":"KIT","quantity":1,"source":"procurement"}"#, headers: ["Idempotency-Key": "r\(i)"])
            let position = w.json["position"] as? Int ?? 0
            // As a client does: a 503 (the read models were more than two seconds behind, which a loaded CI machine
            // can be) is asked again after its Retry-After; whatever answers 200 reflects the write.
            func read(_ path: String) async throws -> RawResponse {
                var r = try await d.call("GET", path, token: d.viewer, headers: ["Coord-Min-Position": String(position)])
                for _ in 0..<3 where r.status == 503 {
                    #expect(r.headers["retry-after"] != nil)
                    r = try await d.call("GET", path, token: d.viewer, headers: ["Coord-Min-Position": String(position)])
                }
                #expect(r.status == 200, "\(path) after receipt \(i): \(r.status)")
                return r
            }
            let r = try await read("/v1/stock?warehouse=MNL&item=KIT")
            #expect((r.json["items"] as? [[String: Any]])?.first?["on_hand"] as? Int == i, "receipt \(i) at \(position): \(r.body)")
            let ledger = try await read("/v1/stock/ledger?warehouse=MNL")
            #expect((ledger.json["items"] as? [[String: Any]])?.count == i, "the ledger holds receipt \(i)")
        }
        let started = Date()
        let far = try await d.call("GET", "/v1/tasks", token: d.viewer, headers: ["Coord-Min-Position": "1000000"])
        let waited = Date().timeIntervalSince(started)
        #expect(far.status == 503 && far.headers["retry-after"] != nil && waited >= 1.9 && waited < 10, "\(far.status) after \(waited) s")
        let head = try await d.service.store.headPosition()
        for bad in ["-1", "x", "1.5", "12345678901234567890", "", "0x10"] {
            let r = try await d.call("GET", "/v1/stock", token: d.viewer, headers: ["Coord-Min-Position": bad])
            #expect(r.status == 400 && (r.json["type"] as? String)?.hasSuffix("invalid-header") == true, "\(bad): \(r.status)")
            let w = try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                     body: #"{"warehouse":"MNL","item":"KIT","quantity":1,"source":"procurement"}"#, headers: ["Coord-Min-Position": bad])
            #expect(w.status == 400, "a command with a malformed header is refused too")
        }
        #expect(try await d.service.store.headPosition() == head, "the refusals wrote nothing")
        // Open routes ignore it: an anonymous caller never makes the server wait.
        let open = Date()
        #expect(try await d.call("GET", "/healthz", headers: ["Coord-Min-Position": "1000000"]).status == 200)
        #expect(Date().timeIntervalSince(open) < 1.5)
        // A command takes the header and decides on the current log as always.
        let w = try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                 body: #"{"warehouse":"MNL","item":"KIT","quantity":1,"source":"procurement"}"#, headers: ["Coord-Min-Position": "1000000"])
        #expect(w.status == 200)
    }

    @Test("every HXL export of the demo parses with libhxl: core hashtags only, every column tagged, dates dates, numbers numbers")
    func hxlExportsParse() async throws {
        let d = try await demo()
        defer { Task { await d.stop() } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coord-hxl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = DemoScenario.responseID
        var paths = Lists.all.map { spec -> String in
            App.routes.first { if case .list(let s) = $0.kind { return s.name == spec.name }; return false }!.pattern
        }
        paths += ["/v1/responses/\(r)/timeline", "/v1/responses/\(r)/review"]
        var files: [String] = []
        for path in paths {
            let answer = try await d.call("GET", path + "?format=hxl", token: d.admin)
            #expect(answer.status == 200, "\(path)")
            #expect(answer.body.components(separatedBy: "\r\n").count > 3, "\(path) has rows")
            let file = dir.appendingPathComponent(path.replacingOccurrences(of: "/", with: "_") + ".csv").path
            try answer.body.write(toFile: file, atomically: true, encoding: .utf8)
            files.append(file)
        }
        let checked = files
        guard let (status, output) = try await runBlocking({ try HXLCheck.run(checked) }) else { return }
        for line in output.split(separator: "\n") {
            let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect((result["problems"] as? [String])?.isEmpty == true, "\(result["file"] ?? ""): \(result["problems"] ?? "")")
        }
        #expect(status == 0)
        #expect(output.split(separator: "\n").count == files.count)
    }

    @Test("a CSV export without limit streams every row (2,500 tasks: 2,500 rows); with limit, a page and a Link to the next")
    func completeExports() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let lines = [#"{"command":"response.declare","id":"R1","name":"Flood","country":"BGD","hazard":"flood","severity":"orange","declared_at":"2026-11-20T00:00:00Z"}"#]
            + (0..<2500).map { #"{"command":"task.create","id":"T-\#(String(format: "%04d", $0))","response":"R1","cluster":"WSH","title":"Task \#($0)","priority":"low"}"# }
        let report = try await CommandImporter(store: d.store, actor: "test").run(lines, keepGoing: false)
        #expect(report.imported == 2501)
        try await d.settle()
        let csv = try await d.call("GET", "/v1/tasks?format=csv&response=R1", token: d.viewer)
        #expect(csv.status == 200)
        #expect(csv.headers["transfer-encoding"] == "chunked")
        let rows = csv.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.count == 2501, "a header and 2,500 rows")
        #expect(Set(rows.dropFirst().map { $0.split(separator: ",")[0] }).count == 2500)
        let hxl = try await d.call("GET", "/v1/tasks?format=hxl", token: d.viewer)
        #expect(hxl.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 2502)
        // Filters work on CSV as on JSON.
        let none = try await d.call("GET", "/v1/tasks?format=csv&status=verified", token: d.viewer)
        #expect(none.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 1)
        // With limit: one page, the next one in a Link header that works as given.
        let page = try await d.call("GET", "/v1/tasks?format=csv&limit=1000", token: d.viewer)
        #expect(page.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 1001)
        let link = try #require(page.headers["link"])
        let next = String(link.dropFirst().prefix { $0 != ">" })
        #expect(link.hasSuffix("rel=\"next\""))
        let second = try await d.call("GET", next, token: d.viewer)
        #expect(second.status == 200)
        #expect(second.body.components(separatedBy: "\r\n")[1].hasPrefix("T-1000,"))
        // The same connection serves a request after a streamed export (chunked framing keeps it open).
        let client = try await offPool { try HTTPClient(port: d.port) }
        let token = d.viewer
        let again = try await offPool { () -> [Int] in
            var statuses: [Int] = []
            for _ in 0..<2 {
                client.send("GET /v1/tasks?format=csv HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
                statuses.append(client.response()?.status ?? 0)
            }
            return statuses
        }
        #expect(again == [200, 200])
        _ = SendableBox(client)
        // limit and format work on the event log, the projections and the stock card too.
        let events = try await d.call("GET", "/v1/events?limit=5&format=csv", token: d.viewer)
        #expect(events.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 6)
        let log = try await d.call("GET", "/v1/events?limit=2", token: d.viewer)
        #expect((log.json["events"] as? [[String: Any]])?.count == 2 && log.json["next"] as? Int == 2)
        #expect(try await d.call("GET", "/v1/projections?format=hxl", token: d.viewer).status == 200)
        #expect(try await d.call("GET", "/v1/stock/ledger?limit=1&format=json", token: d.viewer).status == 200)
    }

    @Test("the roster: who is free for a whole period, by profile and search; a person's record with unavailability and deployments")
    func roster() async throws {
        let d = try await demo()
        defer { Task { await d.stop() } }
        // SURGE-004 is on leave days 2 to 20 after landfall and holds no deployment.
        let leaveFrom = Day(DemoScenario.landfall.addingTimeInterval(5 * 86_400)), leaveTo = Day(DemoScenario.landfall.addingTimeInterval(8 * 86_400))
        let period = "available_from=\(leaveFrom)&available_to=\(leaveTo)"
        let all = try await d.call("GET", "/v1/people?\(period)&limit=1000", token: d.viewer)
        let people = all.json["items"] as! [[String: Any]]
        #expect(people.count == 26)
        let leave = try #require(people.first { $0["id"] as? String == "SURGE-004" })
        #expect(leave["available"] as? Bool == false)
        #expect((leave["conflicts"] as? [String])?.first?.hasPrefix("unavailable ") == true)
        let booked = try #require(people.first { $0["id"] as? String == "SURGE-001" })
        #expect(booked["available"] as? Bool == false && (booked["conflicts"] as? [String]) == ["DEP-001"])
        #expect(people.contains { $0["available"] as? Bool == true }, "the roster members without a request are free")
        #expect(people.allSatisfy { $0["profiles"] is [String] }, "profiles are an array, as in the person's POST answer")
        let free = try await d.call("GET", "/v1/people?\(period)&available=true&profile=WASH", token: d.viewer)
        let freeIDs = (free.json["items"] as! [[String: Any]]).map { $0["id"] as! String }
        #expect(!freeIDs.isEmpty && !freeIDs.contains("SURGE-004"))
        #expect((free.json["items"] as! [[String: Any]]).allSatisfy { ($0["profiles"] as! [String]).contains("WASH") })
        // Names are searched only with personal-data access (docs/PRIVACY.md): a viewer's search matches ids.
        let search = try await d.call("GET", "/v1/people?q=member%2012", token: d.admin)
        #expect((search.json["items"] as! [[String: Any]]).map { $0["id"] as! String } == ["SURGE-012"])
        #expect((try await d.call("GET", "/v1/people?q=member%2012", token: d.viewer).json["items"] as! [Any]).isEmpty)
        #expect((try await d.call("GET", "/v1/people?q=surge-012", token: d.viewer).json["items"] as! [[String: Any]]).map { $0["id"] as! String } == ["SURGE-012"])
        let record = try await d.call("GET", "/v1/people/SURGE-004", token: d.viewer)
        #expect((record.json["unavailability"] as? [[String: Any]])?.count == 1)
        let withDeployment = try await d.call("GET", "/v1/people/SURGE-001", token: d.viewer)
        #expect((withDeployment.json["deployments"] as? [[String: Any]])?.first?["id"] as? String == "DEP-001")
    }

    @Test("deployments: active_on counts from arrival to completion; overdue ends are flagged; one deployment has every field its list row has")
    func deployments() async throws {
        let d = try await demo()
        defer { Task { await d.stop() } }
        // DEP-009 (d == 8) completed a week early, 35 days after its start.
        let dep = try await d.call("GET", "/v1/deployments/DEP-009", token: d.viewer)
        #expect(dep.json["status"] as? String == "completed")
        let completed = try #require((dep.json["completed_at"] as? String).flatMap(Timestamp.parse))
        let after = Day(completed).adding(days: 2), before = Day(completed).adding(days: -2)
        func active(_ day: Day) async throws -> [String] {
            let r = try await d.call("GET", "/v1/deployments?active_on=\(day)&limit=1000", token: d.viewer)
            return (r.json["items"] as! [[String: Any]]).map { $0["id"] as! String }
        }
        #expect(try await active(before).contains("DEP-009"))
        #expect(try await !active(after).contains("DEP-009"), "a completed deployment is not active after its completion")
        let requestedOnly = try await d.call("GET", "/v1/deployments?status=requested", token: d.viewer)
        let notArrived = (requestedOnly.json["items"] as! [[String: Any]]).map { $0["id"] as! String }
        #expect(try await Set(active(Day(DemoScenario.landfall.addingTimeInterval(20 * 86_400)))).isDisjoint(with: notArrived))
        // Still deployed after the planned end: flagged, filterable, and an alert.
        let overdue = try await d.call("GET", "/v1/deployments?overdue_end=true&limit=1000", token: d.viewer)
        let overdueIDs = (overdue.json["items"] as! [[String: Any]]).map { $0["id"] as! String }
        #expect(!overdueIDs.isEmpty)
        #expect((overdue.json["items"] as! [[String: Any]]).allSatisfy { $0["overdue_end"] as? Bool == true && $0["status"] as? String == "deployed" })
        let alerts = try await d.call("GET", "/v1/alerts?kind=deployment.overdue_end&limit=1000", token: d.viewer)
        #expect(Set((alerts.json["items"] as! [[String: Any]]).map { $0["subject"] as! String }) == Set(overdueIDs))
        // One shape: the single deployment has every field of its list row, with the same values.
        let list = try await d.call("GET", "/v1/deployments?person=SURGE-009", token: d.viewer)
        let row = try #require((list.json["items"] as? [[String: Any]])?.first)
        for (key, value) in row {
            #expect(dep.json[key] != nil || value is NSNull, "GET /v1/deployments/DEP-009 lacks \(key)")
            if let v = value as? String, let w = dep.json[key] as? String {
                if key.hasSuffix("_at") { #expect(Timestamp.parse(v) == Timestamp.parse(w), "\(key)") } else { #expect(v == w, "\(key)") }
            }
        }
        // The arrivals to expect: requested or confirmed, starting within N days.
        #expect(try await d.call("GET", "/v1/deployments?arriving_within_days=14", token: d.viewer).status == 200)
    }

    @Test("one shape per resource: a response's areas and severity history are arrays in the POST answer, the GET and the list")
    func oneShape() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        let declared = try await d.call("POST", "/v1/responses", token: t,
                                        body: #"{"id":"R1","name":"Flood","country":"BGD","hazard":"flood","severity":"orange","declared_at":"2026-11-20T00:00:00Z"}"#)
        #expect(declared.json["severity_history"] is [[String: Any]])
        let areas = try await d.call("POST", "/v1/responses/R1/areas", token: t, body: #"{"pcodes":["BD10","BD1004"]}"#)
        #expect(areas.json["areas"] as? [String] == ["BD10", "BD1004"])
        try await d.settle()
        let one = try await d.call("GET", "/v1/responses/R1", token: d.viewer)
        #expect(one.json["areas"] as? [String] == ["BD10", "BD1004"])
        #expect((one.json["severity_history"] as? [[String: Any]])?.first?["severity"] as? String == "orange")
        let list = try await d.call("GET", "/v1/responses", token: d.viewer)
        #expect((list.json["items"] as? [[String: Any]])?.first?["areas"] as? [String] == ["BD10", "BD1004"])
        let csv = try await d.call("GET", "/v1/responses?format=csv", token: d.viewer)
        #expect(csv.body.contains("BD10;BD1004"), "CSV flattens arrays as a;b")
    }

    @Test("stock: no levels reads no_levels; a loss in transit is on both warehouses' stock cards; a transfer's response reaches the ledger")
    func stockCards() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        for body in [#"{"code":"MNL","name":"Manila hub","country":"PHL","kind":"global_hub"}"#, #"{"code":"TAC","name":"Tacloban","country":"PHL","kind":"field"}"#] {
            _ = try await d.call("POST", "/v1/warehouses", token: t, body: body)
        }
        _ = try await d.call("POST", "/v1/items", token: t, body: #"{"code":"HSHEBLANCLT2","name":"Blanket","unit":"piece"}"#)
        _ = try await d.call("POST", "/v1/responses", token: t, body: #"{"id":"R1","name":"Typhoon","country":"PHL","hazard":"typhoon","severity":"red","declared_at":"2026-11-20T00:00:00Z"}"#)
        let receipt = try await d.call("POST", "/v1/stock/receipts", token: t, body: #"{"warehouse":"MNL","item":"HSHEBLANCLT2","quantity":100,"source":"donation"}"#)
        #expect(receipt.json["id"] as? String != nil, "a movement's answer carries its id")
        _ = try await d.call("POST", "/v1/stock/transfers", token: t, body: #"{"id":"TR-1","from":"MNL","to":"TAC","item":"HSHEBLANCLT2","quantity":60,"response":"R1"}"#)
        let part = try await d.call("POST", "/v1/stock/transfers/TR-1/receive", token: t, body: #"{"quantity":40}"#)
        #expect(part.json["status"] as? String == "in_transit" && part.json["received"] as? Int == 40)
        let last = try await d.call("POST", "/v1/stock/transfers/TR-1/receive", token: t, body: #"{"quantity":15,"final":true}"#)
        #expect(last.json["lost"] as? Int == 5)
        try await d.settle()
        let stock = try await d.call("GET", "/v1/stock?warehouse=MNL", token: d.viewer)
        #expect((stock.json["items"] as? [[String: Any]])?.first?["status"] as? String == "no_levels")
        #expect(try await d.call("GET", "/v1/stock?status=no_levels", token: d.viewer).status == 200)
        for warehouse in ["MNL", "TAC"] {
            let card = try await d.call("GET", "/v1/stock/ledger?warehouse=\(warehouse)&item=HSHEBLANCLT2", token: d.viewer)
            let rows = card.json["items"] as! [[String: Any]]
            let loss = try #require(rows.first { $0["movement"] as? String == "transit_loss" }, "\(warehouse) shows the loss")
            #expect(loss["lost"] as? Int == 5 && loss["quantity"] as? Int == 0 && loss["reference"] as? String == "TR-1")
            #expect(rows.filter { $0["reference"] as? String == "TR-1" }.allSatisfy { $0["response"] as? String == "R1" }, "\(warehouse): the transfer's response")
        }
        let tac = try await d.call("GET", "/v1/stock?warehouse=TAC", token: d.viewer)
        let line = try #require((tac.json["items"] as? [[String: Any]])?.first)
        #expect(line["on_hand"] as? Int == 55 && line["in_transit_in"] as? Int == 0)
    }

    @Test("the live feed with ?response= carries what concerns the response, a comment on its task included; ?type= and ?stream= filter")
    func liveFeedByResponse() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        for (id, country) in [("R1", "PHL"), ("R2", "BGD")] {
            _ = try await d.call("POST", "/v1/responses", token: t,
                                 body: #"{"id":"\#(id)","name":"n","country":"\#(country)","hazard":"flood","severity":"orange","declared_at":"2026-11-20T00:00:00Z"}"#)
        }
        _ = try await d.call("POST", "/v1/tasks", token: t, body: #"{"id":"T-1","response":"R1","cluster":"WSH","title":"Latrines","priority":"high"}"#)
        _ = try await d.call("POST", "/v1/tasks", token: t, body: #"{"id":"T-2","response":"R2","cluster":"WSH","title":"Other","priority":"high"}"#)
        let port = d.port, viewer = d.viewer
        // The feed resumes after the task's creation: the membership is learnt from the log before it.
        let head = try await d.store.headPosition()
        let feed = try await offPool { () -> SendableBox<HTTPClient> in
            let c = try HTTPClient(port: port)
            c.send("GET /v1/events/live?response=R1&after=\(head) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(viewer)\r\n\r\n")
            _ = c.read(until: "retry: 2000")
            return SendableBox(c)
        }
        _ = try await d.call("POST", "/v1/tasks/T-2/comments", token: t, body: #"{"text":"not R1"}"#)
        _ = try await d.call("POST", "/v1/tasks/T-1/comments", token: t, body: #"{"text":"Partner confirmed"}"#)
        let text = try await offPool { feed.value.read(until: "Partner confirmed") }
        #expect(text.contains("event: task.commented") && text.contains("Partner confirmed"))
        #expect(!text.contains("not R1"))
        let typed = try await offPool { () -> String in
            let c = try HTTPClient(port: port)
            c.send("GET /v1/events/live?type=task.created&after=0 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(viewer)\r\n\r\n")
            return c.read(until: "Other")
        }
        #expect(typed.contains("event: task.created") && !typed.contains("event: response.declared") && !typed.contains("event: task.commented"))
        #expect(try await d.call("GET", "/v1/events/live?respons=R1", token: viewer).status == 400)
    }
}

/// libhxl, run by `scripts/check-hxl.py`.
enum HXLCheck {
    static func run(_ files: [String]) throws -> (Int32, String)? {
        let script = OutsideTools.repo + "/scripts/check-hxl.py"
        let probe = try Subprocess.run(OutsideTools.pythonArgv + ["-c", "import hxl"])
        if probe.status != 0 { OutsideTools.missing("libhxl (PyPI)"); return nil }
        let result = try Subprocess.run(OutsideTools.pythonArgv + [script] + files)
        return (result.status, result.output)
    }
}
